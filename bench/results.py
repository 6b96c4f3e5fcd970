"""The results table: train every registered method's shipped flagfile, evaluate, export, tabulate.

    python bench/results.py                                 # every method, default steps
    python bench/results.py --methods=cyclegan --train_steps=500
    python bench/results.py --skip_trained                  # re-tabulate finished runs
    python bench/results.py --variants=cyclegan:ablation=gan_only   # a flagfile + flags as a row

For each method in ``trainer.methods.registry.METHODS`` with a flagfile
``trainer/configs/<method>.flags`` (so a new method appears by being registered and shipping
one), this runs ``python -m trainer.main --flagfile=<method>.flags --model_dir=<work_dir>/<method>``,
reads the run's ``metrics.json`` and ``export/metadata.json``, times the exported a2b ONNX model
with onnxruntime, and writes ``bench/RESULTS.md``. Steps shorter than the flagfile's are marked.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FLAGS = flags.FLAGS
flags.DEFINE_list("methods", [], "Methods to run (default: every registered method).")
flags.DEFINE_integer(
    "train_steps", 0, "Override every flagfile's --train_steps (0 = the flagfile's own)."
)
flags.DEFINE_string("data_dir", None, "--data_dir passed to training (default: TFDS's).")
flags.DEFINE_string(
    "work_dir", os.path.join(ROOT, "bench", "runs"), "Where the runs' model_dirs go."
)
flags.DEFINE_string("output", os.path.join(ROOT, "bench", "RESULTS.md"), "The table written.")
flags.DEFINE_integer("eval_examples", 0, "Override --eval_examples (0 = the flagfile's).")
flags.DEFINE_boolean(
    "skip_trained", False, "Reuse a run whose metrics.json already has the requested steps."
)
flags.DEFINE_integer("latency_runs", 50, "Timed runs of the ONNX model (batch 1, median).")
flags.DEFINE_boolean(
    "strict_parity", False, "Fail a run whose export misses a parity bound (default: report it)."
)
flags.DEFINE_integer("timeout", 6 * 3600, "Seconds a method's training may take.")
flags.DEFINE_multi_string(
    "variants",
    [],
    "Extra rows, each a shipped flagfile run with more flags: 'NAME:key=value,key=value' "
    "(e.g. cyclegan:ablation=gan_only); the row and its model_dir are named 'NAME[key=value,"
    "...]'. Without --methods only the variants run.",
)

CONFIG_DIR = os.path.join(ROOT, "trainer", "configs")


def flagfile_values(path):
    """{flag: value} of the ``--flag=value`` lines of a flagfile."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("--") and "=" in line:
                key, value = line[2:].split("=", 1)
                values[key] = value
    return values


def shipped_methods(names=None):
    """[(method, flagfile path)] for registered methods that ship ``<method>.flags``."""
    from trainer.methods.registry import METHODS

    wanted = names or sorted(METHODS)
    unknown = [m for m in wanted if m not in METHODS]
    if unknown:
        raise ValueError(
            f"Unknown --methods {', '.join(unknown)}: registered are {', '.join(sorted(METHODS))}."
        )
    out = []
    for method in wanted:
        path = os.path.join(CONFIG_DIR, f"{method}.flags")
        if os.path.exists(path):
            out.append((method, path))
        else:
            print(f"{method}: no trainer/configs/{method}.flags; not in the table.", flush=True)
    return out


def variant_runs(specs):
    """[(row name, flagfile path, [extra flags])] of ``--variants`` specs 'NAME:k=v,k=v'."""
    out = []
    for spec in specs:
        name, _, overrides = spec.partition(":")
        path = os.path.join(CONFIG_DIR, f"{name}.flags")
        pairs = [p for p in overrides.split(",") if p]
        if not os.path.exists(path) or not pairs or not all("=" in p for p in pairs):
            raise ValueError(
                f"--variants={spec!r}: write NAME:key=value[,key=value...] with NAME a "
                f"flagfile of trainer/configs (e.g. cyclegan:ablation=gan_only)."
            )
        out.append((f"{name}[{','.join(pairs)}]", path, [f"--{p}" for p in pairs]))
    return out


def train(method, flagfile, model_dir, train_steps, data_dir, eval_examples, timeout, extra=()):
    """Runs the training CLI; returns (seconds of training reported by it, wall seconds, log)."""
    cmd = [sys.executable, "-m", "trainer.main", f"--flagfile={flagfile}", *extra]
    cmd.append(f"--model_dir={model_dir}")
    if not FLAGS.strict_parity:
        # A quantized variant missing its parity bound is reported in metadata.json; the
        # table is about training results, so it does not stop the run.
        cmd.append("--allow_parity_failure")
    if train_steps:
        cmd.append(f"--train_steps={train_steps}")
    if data_dir:
        cmd.append(f"--data_dir={data_dir}")
    if eval_examples:
        cmd.append(f"--eval_examples={eval_examples}")
    print(f"{method}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    with open(os.path.join(model_dir, "bench_train.log"), "w", encoding="utf-8") as f:
        f.write(log)
    if proc.returncode != 0:
        last = log.strip().splitlines()[-1] if log.strip() else "no output"
        raise RuntimeError(f"training failed (exit {proc.returncode}): {last}")
    match = re.search(r"Trained to step (\d+) in (\d+(?:\.\d+)?) s", proc.stdout)
    return (float(match.group(2)) if match else None), wall


def onnx_latency_ms(export_dir, metadata, runs):
    """Median ms of one 1-image translation with the fp32 a2b ONNX model (onnxruntime)."""
    artifact = next(
        (
            a
            for a in metadata.get("artifacts", [])
            if a.get("format") == "onnx"
            and a.get("status") in ("ok", "failed")
            and a.get("path") in ("a2b", metadata.get("default_path"))
        ),
        None,
    ) or next((a for a in metadata.get("artifacts", []) if a.get("format") == "onnx"), None)
    if artifact is None:
        return None, None
    import numpy as np

    from export.runtime import Translator

    translator = Translator(os.path.join(export_dir, artifact["file"]))
    size = translator.image_size or metadata.get("image_size", 32)
    image = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    kwargs = {}
    if translator.domains and any("domain" in n for n in translator.input_names):
        kwargs["target_domain"] = translator.domains[-1]
    for _ in range(5):
        translator.translate(image, **kwargs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        translator.translate(image, **kwargs)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), artifact["file"]


def collect(method, model_dir, flag_values, train_seconds, wall, latency_runs):
    """One table row's values from the run's files."""
    with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    row = {
        "method": method,
        "pair": f"{metrics['domains']['a']} → {metrics['domains']['b']}",
        "steps": metrics["step"],
        "default_steps": int(flag_values.get("train_steps", 0) or 0),
        "train_seconds": train_seconds,
        "wall_seconds": wall,
        "metrics": metrics,
        "export_bytes": None,
        "export_file": None,
        "onnx_ms": None,
    }
    export_dir = os.path.join(model_dir, "export")
    meta_path = os.path.join(export_dir, "metadata.json")
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            metadata = json.load(f)
        try:
            row["onnx_ms"], row["export_file"] = onnx_latency_ms(export_dir, metadata, latency_runs)
        except Exception as e:  # a latency we cannot measure is reported, not fatal
            print(f"{method}: ONNX latency not measured ({type(e).__name__}: {e}).", flush=True)
        sized = [a for a in metadata.get("artifacts", []) if a.get("file") == row["export_file"]]
        if not sized:
            sized = [a for a in metadata.get("artifacts", []) if a.get("size_bytes")]
        if sized:
            row["export_bytes"] = sized[0].get("size_bytes")
            row["export_file"] = sized[0].get("file")
    return row


def _f(value, fmt="{:.3f}"):
    return "n/a" if value is None else fmt.format(value)


def render(rows, failures):
    host = f"{os.cpu_count()} CPU cores" + (
        f", {os.environ.get('BENCH_HOST')}" if os.environ.get("BENCH_HOST") else ""
    )
    lines = [
        "# Results on the embedded digit domains",
        "",
        "Written by `python bench/results.py` (see its docstring): each registered method's "
        "shipped flagfile, trained, evaluated by `trainer.eval` and exported. Transfer accuracy: "
        "translated test images classified by the target domain's classifier against the source "
        "labels; domain score: the fraction the A-vs-B domain classifier takes for the target "
        "domain (a translation counts only where both are high; identity = doing nothing). digit "
        "FID/KID: on the target digit classifier's penultimate features (not InceptionV3), "
        "translated vs real target test images. ONNX latency: fp32 a2b model, onnxruntime, one "
        f"image, median. Host: {host}.",
        "",
        "| method | pair | steps | train time | transfer a2b (domain) | identity a2b (domain) | "
        "transfer b2a (domain) | UDA accuracy (gap closed) | digit FID a2b / b2a | "
        "digit KID a2b | exported size | ONNX latency |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["metrics"]
        d, base = m["directions"], m["baselines"]

        def transfer(role, src=d):
            e = src.get(role)
            if not e:
                return "n/a"
            acc = e.get("transfer_accuracy", e.get("identity_accuracy"))
            dom = e.get("domain_score", e.get("identity_domain_score"))
            return f"{_f(acc)} ({_f(dom, '{:.2f}')})"

        ident = base.get("a2b")
        ident_text = (
            f"{_f(ident['identity_accuracy'])} ({_f(ident['identity_domain_score'], '{:.2f}')})"
            if ident
            else "n/a"
        )
        uda = m.get("uda")
        uda_text = f"{_f(uda['accuracy'])} ({_f(uda['gap_closed'], '{:.2f}')})" if uda else "—"
        fid = " / ".join(_f(d[k].get("fid"), "{:.1f}") if k in d else "n/a" for k in ("a2b", "b2a"))
        kid = (
            f"{d['a2b']['kid']:.3f} ± {d['a2b']['kid_std']:.3f}"
            if "a2b" in d and d["a2b"].get("kid") is not None
            else "n/a"
        )
        steps = str(r["steps"])
        if r["default_steps"] and r["steps"] < r["default_steps"]:
            steps += f" (of {r['default_steps']})"
        secs = r["train_seconds"] if r["train_seconds"] is not None else r["wall_seconds"]
        size = (
            f"{r['export_bytes'] / 1e6:.2f} MB ({r['export_file']})" if r["export_bytes"] else "n/a"
        )
        lines.append(
            f"| {r['method']} | {r['pair']} | {steps} | {_f(secs, '{:.0f} s')} | "
            f"{transfer('a2b')} | {ident_text} | {transfer('b2a')} | {uda_text} | {fid} | {kid} | "
            f"{size} | {_f(r['onnx_ms'], '{:.2f} ms')} |"
        )
    lines.append("")
    lines += [
        "Judges (test accuracy of the classifiers that score the table):",
        "",
    ]
    seen = {}
    for r in rows:
        for name, c in r["metrics"]["classifiers"].items():
            label = (
                f"{r['metrics']['domains']['a']} vs {r['metrics']['domains']['b']} (domain)"
                if name == "domain"
                else f"{name} (digit class)"
            )
            seen[label] = c["test_accuracy"]
    lines += [f"- {label}: {acc:.3f}" for label, acc in seen.items()]
    notes = sorted({n for r in rows for n in r["metrics"].get("notes", [])})
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    if failures:
        lines += ["", "Failed runs:", ""] + [f"- {m}: {msg.splitlines()[0]}" for m, msg in failures]
    lines.append("")
    return "\n".join(lines)


def main(argv):
    del argv
    from trainer.io_utils import atomic_write_text

    rows, failures = [], []
    runs = [] if FLAGS.variants and not FLAGS.methods else shipped_methods(FLAGS.methods)
    runs = [(m, f, []) for m, f in runs] + variant_runs(FLAGS.variants)
    for method, flagfile, extra in runs:
        values = flagfile_values(flagfile)
        model_dir = os.path.join(FLAGS.work_dir, method)
        os.makedirs(model_dir, exist_ok=True)
        steps = FLAGS.train_steps or int(values.get("train_steps", 0) or 0)
        metrics_path = os.path.join(model_dir, "metrics.json")
        train_seconds = wall = None
        reuse = False
        if FLAGS.skip_trained and os.path.exists(metrics_path):
            with open(metrics_path, encoding="utf-8") as f:
                reuse = json.load(f).get("step") == steps
        try:
            if reuse:
                log = open(os.path.join(model_dir, "bench_train.log"), encoding="utf-8").read()
                match = re.search(r"Trained to step \d+ in (\d+(?:\.\d+)?) s", log)
                train_seconds = float(match.group(1)) if match else None
            else:
                # A fresh run: resuming an older one would mix its steps into the timing.
                shutil.rmtree(model_dir, ignore_errors=True)
                os.makedirs(model_dir)
                train_seconds, wall = train(
                    method,
                    flagfile,
                    model_dir,
                    FLAGS.train_steps,
                    FLAGS.data_dir,
                    FLAGS.eval_examples,
                    FLAGS.timeout,
                    extra,
                )
            rows.append(collect(method, model_dir, values, train_seconds, wall, FLAGS.latency_runs))
        except (RuntimeError, OSError, subprocess.TimeoutExpired, KeyError) as e:
            print(f"{method}: {e}", flush=True)
            failures.append((method, str(e)))
    text = render(rows, failures)
    atomic_write_text(FLAGS.output, text)
    print(text, flush=True)
    print(f"Wrote {FLAGS.output}.", flush=True)


if __name__ == "__main__":
    app.run(main)
