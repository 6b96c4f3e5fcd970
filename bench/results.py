"""The results table: train every registered method's shipped flagfile, evaluate, export, tabulate.

    python bench/results.py                                 # every method, default steps
    python bench/results.py --methods=cyclegan --train_steps=500
    python bench/results.py --skip_trained                  # re-tabulate finished runs
    python bench/results.py --variants=cyclegan:ablation=gan_only   # a flagfile + flags as a row
    python bench/results.py --variants=latent_explore_mnist_m       # a second shipped flagfile

For each method in ``trainer.methods.registry.METHODS`` with a flagfile
``trainer/configs/<method>.flags`` (so a new method appears by being registered and shipping
one), this runs ``python -m trainer.main --flagfile=<method>.flags --model_dir=<work_dir>/<method>``,
reads the run's ``metrics.json`` and ``export/metadata.json``, times the exported a2b ONNX model
with onnxruntime, and adds or replaces the run's row in the table of ``bench/RESULTS.md``, with
its date and command; every other row, and every hand-written section of the file, is kept
(``bench/results_table.py``; the rows' records are in ``bench/results.json``). So the table can
be filled one method at a time, over several idle periods; the table is rewritten after every
run, so a batch stopped part-way keeps the rows it finished. Steps shorter than the flagfile's
are marked.
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import results_table  # noqa: E402 - bench/results_table.py, beside this script

from trainer.flagfiles import CONFIG_DIR, flagfile_values  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("methods", [], "Methods to run (default: every registered method).")
flags.DEFINE_integer(
    "train_steps", 0, "Override every flagfile's --train_steps (0 = the flagfile's own)."
)
flags.DEFINE_string("data_dir", None, "--data_dir passed to training (default: TFDS's).")
flags.DEFINE_string(
    "work_dir", os.path.join(ROOT, "bench", "runs"), "Where the runs' model_dirs go."
)
flags.DEFINE_string(
    "output",
    os.path.join(ROOT, "bench", "RESULTS.md"),
    "The file whose table is updated (its other sections are kept).",
)
flags.DEFINE_string(
    "rows",
    os.path.join(ROOT, "bench", "results.json"),
    "Every row's record (cells, date, command): a run replaces its own rows only.",
)
flags.DEFINE_string(
    "charts_dir",
    os.path.join(ROOT, "bench", "charts"),
    "Where each row's curve (ROW.png, its points ROW.json) and final sample grid "
    "(ROW_samples.png) go; the table links them.",
)
flags.DEFINE_integer("eval_examples", 0, "Override --eval_examples (0 = the flagfile's).")
flags.DEFINE_boolean(
    "skip_trained", False, "Reuse a run whose metrics.json already has the requested steps."
)
flags.DEFINE_integer("latency_runs", 50, "Timed runs of the ONNX model (batch 1, median).")
flags.DEFINE_boolean(
    "allow_parity_failure",
    False,
    "Pass --allow_parity_failure to training: keep a row whose float32 export misses its parity "
    "bound (a quantized variant below its bound never fails a run; the table names it).",
)
flags.DEFINE_integer("timeout", 6 * 3600, "Seconds a method's training may take.")
flags.DEFINE_multi_string(
    "variants",
    [],
    "Extra rows, each a shipped flagfile (NAME.flags) run as it is or with more flags: "
    "'NAME' or 'NAME:key=value,key=value' (e.g. cyclegan:ablation=gan_only); the row is named "
    "'NAME' or 'NAME[key=value,...]', its model_dir 'NAME' or 'NAME+key=value+...'. Without "
    "--methods only the variants run.",
)

KEEP_CHECKPOINTS = 1000


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
        if not os.path.exists(path) or not all("=" in p for p in pairs):
            raise ValueError(
                f"--variants={spec!r}: write NAME or NAME:key=value[,key=value...] with NAME a "
                f"flagfile of trainer/configs (e.g. cyclegan:ablation=gan_only)."
            )
        row = f"{name}[{','.join(pairs)}]" if pairs else name
        out.append((row, path, [f"--{p}" for p in pairs]))
    return out


def run_dir_name(row):
    """The model_dir name of a row: 'NAME[k=v,k=v]' as 'NAME+k=v+k=v' (TensorFlow reads a
    checkpoint path as a file pattern, where brackets are a character class)."""
    return row.replace("[", "+").replace(",", "+").replace("]", "")


def train_args(flagfile, model_dir, train_steps, data_dir, eval_examples, extra=()):
    """The training CLI's arguments for one row (after ``python -m trainer.main``)."""
    cmd = [f"--flagfile={os.path.basename(flagfile)}", *extra, f"--model_dir={model_dir}"]
    if FLAGS.allow_parity_failure:
        cmd.append("--allow_parity_failure")
    if train_steps:
        cmd.append(f"--train_steps={train_steps}")
    if data_dir:
        cmd.append(f"--data_dir={data_dir}")
    if eval_examples:
        cmd.append(f"--eval_examples={eval_examples}")
    # Every checkpoint stays on disk: bench/curve.py scores each for the row's curve.
    cmd.append(f"--keep_checkpoints={KEEP_CHECKPOINTS}")
    return cmd


def command_text(args):
    """The row's command as a person would type it from the repository's root."""
    shown = [a.replace(ROOT + os.sep, "") for a in args]
    return " ".join(["python -m trainer.main", *shown])


def run_script(cmd, timeout=None):
    """``cmd`` from the repository's root with TensorFlow's native logging quiet; the
    CompletedProcess (text stdout and stderr)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def train(method, args, model_dir, timeout):
    """Runs the training CLI; returns (seconds of training reported by it, wall seconds)."""
    print(f"{method}: {command_text(args)}", flush=True)
    start = time.perf_counter()
    proc = run_script([sys.executable, "-m", "trainer.main", *args], timeout)
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
    """Median ms of one 1-image translation (one sample for a noise-input path) with the fp32
    a2b ONNX model (onnxruntime)."""
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
    onehot = [i for i in artifact.get("inputs", []) if i.get("kind") == "onehot"]
    if onehot and onehot[0].get("labels"):
        # A conditional path (G(x, c), cGAN's class): timed towards its last label (an index).
        kwargs["target_domain"] = len(onehot[0]["labels"]) - 1

    takes_image = any(i.get("kind") == "image" for i in artifact.get("inputs", []))

    def once():
        if takes_image:
            return translator.translate(image, **kwargs)
        return translator.generate(1, seed=0, **kwargs)  # a noise-input path: one sample

    for _ in range(5):
        once()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), artifact["file"]


def pictures(row, model_dir, metrics, charts_dir, table_dir):
    """Draws the row's curve (bench/curve.py, in a subprocess) and copies its final sample
    grid into ``charts_dir``; returns the table's cell linking them (paths relative to the
    table's directory), "—" where neither exists."""
    name = run_dir_name(row)
    chart = os.path.join(charts_dir, f"{name}.png")
    title = f"{row}: {results_table.pair_text(metrics)}"
    cmd = [sys.executable, os.path.join(ROOT, "bench", "curve.py"), f"--model_dir={model_dir}"]
    cmd += [f"--output={chart}", f"--title={title}"]
    print(f"{row}: scoring the kept checkpoints for the curve", flush=True)
    proc = run_script(cmd)
    links = []
    if proc.returncode == 0 and os.path.exists(chart):
        links.append(f"[curve]({os.path.relpath(chart, table_dir)})")
    else:
        last = (proc.stdout + proc.stderr).strip().splitlines()
        print(f"{row}: no curve ({last[-1] if last else 'no output'}).", flush=True)
    grid = os.path.join(model_dir, "eval_samples", f"step_{int(metrics['step']):06d}.png")
    if os.path.exists(grid):
        copy = os.path.join(charts_dir, f"{name}_samples.png")
        os.makedirs(charts_dir, exist_ok=True)
        shutil.copyfile(grid, copy)
        links.append(f"[samples]({os.path.relpath(copy, table_dir)})")
    return ", ".join(links) or "—"


def not_ok(metadata):
    """``file status (parity figure, bound)`` of each artifact whose status is not ok (a
    quantized variant below its PSNR bound, one that failed or could not be converted)."""
    from export.runtime import parity_text

    out = []
    for a in metadata.get("artifacts", []):
        if a.get("status", "ok") != "ok":
            figure = parity_text(a)
            out.append(f"{a['file']} {a['status']}" + (f" ({figure})" if figure else ""))
    return out


def collect(method, model_dir, flag_values, train_seconds, wall, latency_runs):
    """One table row's values from the run's files."""
    with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    row = {
        "method": method,
        "steps": metrics["step"],
        "default_steps": int(flag_values.get("train_steps", 0) or 0),
        "train_seconds": train_seconds,
        "wall_seconds": wall,
        "metrics": metrics,
        "export_bytes": None,
        "export_file": None,
        "onnx_ms": None,
        "not_ok": [],
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
        row["not_ok"] = not_ok(metadata)
        sized = [a for a in metadata.get("artifacts", []) if a.get("file") == row["export_file"]]
        if not sized:
            sized = [a for a in metadata.get("artifacts", []) if a.get("size_bytes")]
        if sized:
            row["export_bytes"] = sized[0].get("size_bytes")
            row["export_file"] = sized[0].get("file")
    return row


def main(argv):
    del argv
    from trainer.io_utils import atomic_write_text

    rows, failures = [], []
    date = time.strftime("%Y-%m-%d")

    def write_table():
        # After every run, so a long batch stopped part-way keeps the rows it finished.
        records = results_table.load(FLAGS.rows)
        for r in rows:
            records[r["method"]] = results_table.record(r, r["command"], date)
        atomic_write_text(FLAGS.rows, json.dumps(records, indent=1, ensure_ascii=False) + "\n")
        old = open(FLAGS.output, encoding="utf-8").read() if os.path.exists(FLAGS.output) else ""
        table = results_table.section(records, failures)
        atomic_write_text(FLAGS.output, results_table.splice(old, table))
        return table, len(records)

    runs = [] if FLAGS.variants and not FLAGS.methods else shipped_methods(FLAGS.methods)
    runs = [(m, f, []) for m, f in runs] + variant_runs(FLAGS.variants)
    for method, flagfile, extra in runs:
        values = flagfile_values(flagfile)
        model_dir = os.path.join(FLAGS.work_dir, run_dir_name(method))
        os.makedirs(model_dir, exist_ok=True)
        steps = FLAGS.train_steps or int(values.get("train_steps", 0) or 0)
        metrics_path = os.path.join(model_dir, "metrics.json")
        train_seconds = wall = None
        args = train_args(
            flagfile, model_dir, FLAGS.train_steps, FLAGS.data_dir, FLAGS.eval_examples, extra
        )
        reuse = False
        if FLAGS.skip_trained and os.path.exists(metrics_path):
            with open(metrics_path, encoding="utf-8") as f:
                reuse = json.load(f).get("step") == steps
        try:
            timing_path = os.path.join(model_dir, "bench_timing.json")
            if reuse:
                log = open(os.path.join(model_dir, "bench_train.log"), encoding="utf-8").read()
                match = re.search(r"Trained to step \d+ in (\d+(?:\.\d+)?) s", log)
                train_seconds = float(match.group(1)) if match else None
                if os.path.exists(timing_path):
                    with open(timing_path, encoding="utf-8") as f:
                        wall = json.load(f).get("wall_seconds")
            else:
                # A fresh run: resuming an older one would mix its steps into the timing.
                shutil.rmtree(model_dir, ignore_errors=True)
                os.makedirs(model_dir)
                train_seconds, wall = train(method, args, model_dir, FLAGS.timeout)
                atomic_write_text(
                    timing_path,
                    json.dumps({"train_seconds": train_seconds, "wall_seconds": wall}) + "\n",
                )
            row = collect(method, model_dir, values, train_seconds, wall, FLAGS.latency_runs)
            table_dir = os.path.dirname(os.path.abspath(FLAGS.output))
            row["pictures"] = pictures(
                method, model_dir, row["metrics"], FLAGS.charts_dir, table_dir
            )
            rows.append({**row, "command": command_text(args)})
        except (RuntimeError, OSError, subprocess.TimeoutExpired, KeyError) as e:
            print(f"{method}: {e}", flush=True)
            failures.append((method, str(e)))
        table, total = write_table()
    if not rows and not failures:
        return
    print(table, flush=True)
    print(f"Wrote {len(rows)} row(s) into {FLAGS.output} ({total} in all).", flush=True)


if __name__ == "__main__":
    app.run(main)
