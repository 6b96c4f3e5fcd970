"""Failure campaign: kill -9 during training and export, bad CLI inputs, a hostile service load.

    python bench/chaos.py                                   # every campaign at its default size
    python bench/chaos.py --campaigns=train --train_kills=30
    python bench/chaos.py --campaigns=export,inputs,service --export_kills=20 --concurrent_exports=2

Campaigns (loopback only, bounded loops; every figure printed at the end, JSON with --json):

- ``train``: a smoke CycleGAN trains with a checkpoint every 2 steps and is SIGKILLed at random
  moments, half of them the moment a checkpoint save is under way (a ``*_temp*`` file appears).
  Each rerun must resume from at least the newest checkpoint committed before the kill (never
  from step 0), no readable checkpoint may vanish unless a newer one was committed, and no temp
  file may be left once the rerun has saved.
- ``export``: a trainer keeps the run going; between kills it commits a newer checkpoint and is
  stopped, then ``export.main`` with the default formats is SIGKILLed: every other kill at a
  random moment of the export, the others the moment its build is complete and the swap is
  due (its ``metadata.json`` appears). ``DIR/export/`` must then be the old complete set or
  the new complete set (same file names as a complete export), and ``metadata.json`` must
  describe the files beside it: every listed artifact exists with its size, and every ONNX
  file's own metadata names the same training step as metadata.json. Then pairs of exports are
  started together: one complete set must result, and an export that overlapped the other is
  refused naming it. A last export that completes must leave nothing of the killed ones.
- ``inputs``: about 100 bad invocations of the CLIs (bad flags, missing or damaged files,
  decompression bombs, damaged models and metadata). Each must exit non-zero with an ``error``
  line and no Python traceback.
- ``service``: bad requests (each a JSON 4xx, no 5xx), then 48 concurrent requests of large
  images at the default ``--max_pixels`` while the service's peak RSS is read from /proc;
  no absolute path of this machine in anything served.

Exits 1 if any target is missed.
"""

import argparse
import glob
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = [
    "--flagfile=smoke.flags",
    "--method=cyclegan",
    "--gen_blocks=1",
    "--disc_layers=2",
    "--pool_size=4",
]
TRACEBACK = "Traceback (most recent call last)"


def env():
    # One thread per op pool: the campaigns measure correctness, and on a shared, loaded
    # machine fewer threads per process keep each trial from crawling.
    e = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1"
    )
    e["PYTHONPATH"] = REPO + os.pathsep + e.get("PYTHONPATH", "")
    return e


def run(args, timeout=600, **kwargs):
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def train_cmd(data_dir, model_dir, *extra):
    return [
        "-m",
        "trainer.main",
        *SMOKE,
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        *extra,
    ]


def checkpoints(model_dir):
    """{step: [files]} of the checkpoints on disk, and the temp entries."""
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    steps, temps = {}, []
    if os.path.isdir(ckpt_dir):
        for name in os.listdir(ckpt_dir):
            if "_temp" in name or name.startswith(".") or ".tmp" in name:
                temps.append(name)
                continue
            m = re.match(r"ckpt-(\d+)\.index$", name)
            if m:
                steps.setdefault(int(m.group(1)), []).append(name)
    return steps, temps


def committed_step(model_dir):
    """Newest step the checkpoint state file names (what a resume must reach at least)."""
    path = os.path.join(model_dir, "checkpoints", "checkpoint")
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return 0
    m = re.search(r'model_checkpoint_path: "ckpt-(\d+)"', text)
    return int(m.group(1)) if m else 0


def progress(label, figures):
    """The figures so far, one line per trial: a long campaign stopped early still reports."""
    print(f"    {label}: {json.dumps(figures, default=str)}", flush=True)


def wait_for(predicate, timeout, proc=None, poll=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(poll)
    return False


# -- train --------------------------------------------------------------------------------------


# A trainer that runs until killed, saving every 2 steps and keeping 3 checkpoints.
ENDLESS_TRAINING = (
    "--train_steps=100000",
    "--checkpoint_every=2",
    "--keep_checkpoints=3",
    "--sample_every=0",
    "--eval_every=0",
    "--steps_per_loop=1",
)


def campaign_train(args, work):
    data_dir, model_dir = args.data_dir, os.path.join(work, "train_run")
    base = train_cmd(
        data_dir,
        model_dir,
        *ENDLESS_TRAINING,
        "--log_every=2",
    )
    rng = random.Random(args.seed)
    figures = dict(
        kills=0,
        resumes=0,
        killed_before_resume_line=0,
        restarts_from_zero=0,
        resumed_behind=0,
        deleted_before_newer=0,
        temps_left_after_save=0,
        waits_timed_out=0,
    )
    log = os.path.join(work, "train.log")
    for i in range(args.train_kills):
        before_commit = committed_step(model_dir)
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, *base], cwd=REPO, env=env(), stdout=out, stderr=subprocess.STDOUT
            )
        in_save = i % 2 == 1
        if in_save:
            # The moment a save is under way: a new temp entry in checkpoints/ once training
            # runs (one left by the previous kill is there before this process starts and is
            # cleaned by it; the resume's own state-file write comes before the resume line).
            if before_commit:
                wait_for(lambda: "Resum" in open(log).read(), args.wait_seconds, proc)
            stale = set(checkpoints(model_dir)[1])
            waited = wait_for(
                lambda stale=stale: set(checkpoints(model_dir)[1]) - stale,
                args.wait_seconds,
                proc,
                poll=0.002,
            )
        else:
            first = committed_step(model_dir)
            waited = wait_for(
                lambda first=first: committed_step(model_dir) > first, args.wait_seconds, proc
            )
            if waited:
                time.sleep(rng.uniform(0.0, 1.5))
        if not waited:
            figures["waits_timed_out"] += 1
        before = checkpoints(model_dir)[0]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        figures["kills"] += 1
        text = open(log).read()
        resumed = re.search(r"Resum\w* from .*?\(step (\d+)\)", text)
        started_training = re.search(r"^step\s+\d+/", text, re.M)
        if before_commit and resumed is None and not started_training:
            figures["killed_before_resume_line"] += 1
        elif before_commit:
            if resumed is None:
                figures["restarts_from_zero"] += 1
            elif int(resumed.group(1)) < before_commit:
                figures["resumed_behind"] += 1
            else:
                figures["resumes"] += 1
        after = checkpoints(model_dir)[0]
        newest_after = max(after) if after else -1
        for step in set(before) - set(after):
            if step >= newest_after:
                figures["deleted_before_newer"] += 1
        progress(f"kill {i + 1}/{args.train_kills}", figures)
    # One clean rerun that saves: no temp entry may be left.
    commit = committed_step(model_dir)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, *base], cwd=REPO, env=env(), stdout=out, stderr=subprocess.STDOUT
        )
    wait_for(lambda: committed_step(model_dir) >= commit + 4, 2 * args.wait_seconds, proc)
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    temps = checkpoints(model_dir)[1]
    samples = os.path.join(model_dir, "samples")
    if os.path.isdir(samples):
        temps += [n for n in os.listdir(samples) if ".tmp" in n]
    figures["temps_left_after_save"] = len(temps)
    ok = (
        figures["restarts_from_zero"] == 0
        and figures["resumed_behind"] == 0
        and figures["deleted_before_newer"] == 0
        and figures["temps_left_after_save"] == 0
    )
    return ok, figures


# -- export -------------------------------------------------------------------------------------


def export_consistent(export_dir):
    """(ok, reason): metadata.json describes the files beside it."""
    meta_path = os.path.join(export_dir, "metadata.json")
    if not os.path.exists(meta_path):
        return (not os.path.exists(export_dir) or not os.listdir(export_dir)), "no metadata.json"
    try:
        meta = json.load(open(meta_path))
    except ValueError as e:
        return False, f"metadata.json unreadable: {e}"
    for a in meta.get("artifacts", []):
        if a.get("status") in ("not supported",):
            continue
        path = os.path.join(export_dir, a["file"])
        if not os.path.exists(path):
            return False, f"{a['file']} listed but missing"
        if a.get("step") != meta.get("step"):
            return False, f"{a['file']} entry step {a.get('step')} != {meta.get('step')}"
        if a["file"].endswith(".onnx"):
            import onnx

            props = {
                p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props
            }
            if str(props.get("step")) != str(meta.get("step")):
                return False, f"{a['file']} holds step {props.get('step')} != {meta.get('step')}"
        if (
            a.get("size_bytes")
            and os.path.isfile(path)
            and (os.path.getsize(path) != a["size_bytes"])
        ):
            return False, f"{a['file']} is {os.path.getsize(path)} bytes, listed {a['size_bytes']}"
    return True, "ok"


def export_snapshot(export_dir):
    """(step, file names) of the set in ``export_dir``; (None, ()) when there is none."""
    try:
        meta = json.load(open(os.path.join(export_dir, "metadata.json")))
    except (OSError, ValueError):
        return None, ()
    on_disk = sorted(n for n in os.listdir(export_dir) if not n.startswith("."))
    return meta.get("step"), tuple(on_disk)


def export_leftovers(model_dir):
    """Entries an export leaves beside DIR/export besides the current set and the one it
    replaced (kept readable until the next export): build dirs, stray links, the lock."""
    current = os.path.realpath(os.path.join(model_dir, "export"))
    names = [n for n in os.listdir(model_dir) if n.startswith((".export.", "export.lock"))]
    others = [n for n in names if os.path.join(model_dir, n) != current]
    return [n for n in others if not n.startswith(".export.")] + (
        [n for n in others if n.startswith(".export.")][1:]
    )


def campaign_export(args, work):
    """The run's trainer stays up (stopped with SIGSTOP between steps, so each new checkpoint
    costs no process start): every export reads a new checkpoint while the trainer holds the
    model dir, and nothing moves while an export runs, so the new set's step is known."""
    data_dir, model_dir = args.data_dir, os.path.join(work, "export_run")
    export_dir = os.path.join(model_dir, "export")
    trainer = subprocess.Popen(
        [
            sys.executable,
            *train_cmd(
                data_dir,
                model_dir,
                *ENDLESS_TRAINING,
            ),
        ],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return _export_trials(args, model_dir, export_dir, trainer)
    finally:
        trainer.kill()
        trainer.wait()


def _export_trials(args, model_dir, export_dir, trainer):
    rng = random.Random(args.seed + 1)
    export_cmd = [sys.executable, "-m", "export.main", f"--model_dir={model_dir}"]
    figures = dict(
        kills=0,
        aimed_at_commit=0,
        consistent=0,
        inconsistent=0,
        old_set=0,
        new_set=0,
        neither_set=0,
    )
    figures["reasons"] = []

    def advance():
        """Lets the trainer commit a newer checkpoint, then stops it; returns that step."""
        first = committed_step(model_dir)
        trainer.send_signal(signal.SIGCONT)
        if not wait_for(lambda: committed_step(model_dir) > first, 2 * args.wait_seconds, trainer):
            raise RuntimeError(f"the trainer committed no checkpoint after step {first}")
        trainer.send_signal(signal.SIGSTOP)
        return committed_step(model_dir)

    # A complete export: its file names are what every later set must hold.
    step = advance()
    started = time.monotonic()
    full = run(export_cmd[1:], timeout=3600)
    export_seconds = time.monotonic() - started
    full_step, full_names = export_snapshot(export_dir)
    figures.update(export_seconds=round(export_seconds, 1), export_exit=full.returncode)
    if full.returncode or full_step != step:
        figures["reasons"].append(f"the complete export failed: {full.stderr[-1500:]}")
        return False, figures
    for _ in range(args.export_kills):
        old = export_snapshot(export_dir)
        step = advance()
        proc = subprocess.Popen(
            export_cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started = time.monotonic()
        if figures["kills"] % 2:
            # Aimed at the commit: the build's metadata.json is the last file before the swap.
            built = os.path.join(model_dir, f".export.{proc.pid}.*", "metadata.json")
            if wait_for(lambda built=built: glob.glob(built), 3600, proc):
                # The machine's load moves: the next random kills spread over this export's time.
                export_seconds = time.monotonic() - started
                time.sleep(rng.uniform(0.0, 0.05))
                figures["aimed_at_commit"] += 1
        else:
            time.sleep(rng.uniform(0.5, max(1.0, export_seconds)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        figures["kills"] += 1
        ok, reason = export_consistent(export_dir)
        figures["consistent" if ok else "inconsistent"] += 1
        if not ok:
            figures["reasons"].append(reason)
        now = export_snapshot(export_dir)
        if now == old:
            figures["old_set"] += 1
        elif now == (step, full_names):
            figures["new_set"] += 1
        else:
            figures["neither_set"] += 1
            figures["reasons"].append(f"after the kill at step {step}: {now}, before {old}")
        progress(f"kill {figures['kills']}/{args.export_kills} (step {step})", figures)

    # Two exports started together on one model_dir: one set results, and an export that
    # overlapped the other is refused naming it (exit 1, no traceback).
    pairs = dict(pairs=0, one_refused=0, both_ran=0, bad=0)
    for _ in range(args.concurrent_exports):
        step = advance()
        procs = [
            subprocess.Popen(
                export_cmd,
                cwd=REPO,
                env=env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outs = [(p, *p.communicate(timeout=1200)) for p in procs]
        pairs["pairs"] += 1
        codes = sorted(p.returncode for p, _, _ in outs)
        refused = [
            (p, err)
            for p, _, err in outs
            if p.returncode == 1
            and re.search(r"in use by another export: pid \d+ on host \S+, started", err)
            and TRACEBACK not in err
        ]
        other = [p for p in procs if not refused or p is not refused[0][0]]
        names_holder = bool(refused) and f"pid {other[0].pid} " in refused[0][1]
        complete = export_snapshot(export_dir) == (step, full_names)
        consistent = export_consistent(export_dir)[0]
        if codes == [0, 1] and len(refused) == 1 and names_holder and complete and consistent:
            pairs["one_refused"] += 1
        elif codes == [0, 0] and complete and consistent:
            pairs["both_ran"] += 1
        else:
            pairs["bad"] += 1
            figures["reasons"].append(
                f"pair at step {step}: exits {codes}, "
                f"{[e.strip().splitlines()[-1:] for _, _, e in outs]}"
            )
        progress(f"pair {pairs['pairs']}/{args.concurrent_exports} (step {step})", pairs)
    figures["concurrent"] = pairs

    # One export that completes: nothing a killed export left may remain after it.
    step = advance()
    last = run(export_cmd[1:], timeout=3600)
    figures["leftovers_after_clean_export"] = export_leftovers(model_dir)
    ok = (
        figures["inconsistent"] == 0
        and figures["neither_set"] == 0
        and pairs["bad"] == 0
        and last.returncode == 0
        and not figures["leftovers_after_clean_export"]
        and export_snapshot(export_dir) == (step, full_names)
    )
    return ok, figures


# -- inputs -------------------------------------------------------------------------------------


def _png(size=(32, 32)):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), np.uint8)).save(
        buf, "PNG"
    )
    return buf.getvalue()


def _bomb_png(side=30000):
    """A tiny PNG whose header declares side x side pixels."""
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def make_fixtures(work, model_dir):
    f = {}
    os.makedirs(work, exist_ok=True)

    def put(name, data):
        path = os.path.join(work, name)
        with open(path, "wb") as out:
            out.write(data)
        return path

    f["empty"] = put("empty.png", b"")
    f["text"] = put("notes.png", b"this is not an image\n")
    f["bomb"] = put("bomb.png", _bomb_png())
    f["truncated"] = put("truncated.png", _png((64, 64))[:120])
    f["good"] = put("good.png", _png())
    f["file_as_dir"] = put("a_file", b"x")
    folder = os.path.join(work, "mixed_folder")
    os.makedirs(folder, exist_ok=True)
    for name in ("empty", "text", "bomb", "truncated", "good"):
        shutil.copy(f[name], os.path.join(folder, os.path.basename(f[name])))
    f["folder"] = folder
    junk = os.path.join(work, "junk_folder")
    os.makedirs(junk, exist_ok=True)
    for name in ("empty", "text", "bomb", "truncated"):
        shutil.copy(f[name], os.path.join(junk, os.path.basename(f[name])))
    f["junk"] = junk
    f["corrupt_config_dir"] = os.path.join(work, "corrupt_config")
    os.makedirs(f["corrupt_config_dir"], exist_ok=True)
    put("corrupt_config/config.json", b"{not json")
    f["empty_model_dir"] = os.path.join(work, "empty_model_dir")
    os.makedirs(f["empty_model_dir"], exist_ok=True)
    export_dir = os.path.join(model_dir, "export")
    f["onnx"] = os.path.join(export_dir, "a2b.onnx")
    f["tflite"] = os.path.join(export_dir, "a2b.tflite")
    bad_models = os.path.join(work, "bad_models")
    os.makedirs(bad_models, exist_ok=True)
    for name in ("a2b.onnx", "a2b.tflite", "metadata.json"):
        src = os.path.join(export_dir, name)
        data = open(src, "rb").read() if os.path.exists(src) else b""
        put(f"bad_models/trunc_{name}", data[: len(data) // 3])
    f["bad_models"] = bad_models
    # A metadata.json that contradicts its model (wrong image size).
    contra = os.path.join(work, "contradicting")
    os.makedirs(contra, exist_ok=True)
    if os.path.exists(f["onnx"]):
        shutil.copy(f["onnx"], os.path.join(contra, "a2b.onnx"))
        meta = json.load(open(os.path.join(export_dir, "metadata.json")))
        for a in meta["artifacts"]:
            a["image_size"] = 48
            for i in a.get("inputs", []):
                if i.get("kind") == "image":
                    i["shape"] = [None, 48, 48, 3]
        open(os.path.join(contra, "metadata.json"), "w").write(json.dumps(meta))
    f["contradicting"] = os.path.join(contra, "a2b.onnx")
    return f


def bad_invocations(data_dir, model_dir, f, out):
    """[(name, argv)] of invocations that must fail cleanly."""
    train = ["-m", "trainer.main", *SMOKE, f"--data_dir={data_dir}"]
    new_dir = os.path.join(out, "new_run")
    cases = []

    def t(name, *a, model=new_dir):
        cases.append((f"train {name}", [*train, f"--model_dir={model}", *a]))

    t("unknown method", "--method=nope")
    t("unknown domain", "--domain_b=nope")
    t("unknown dataset", "--dataset=nope_dataset")
    t("unknown strategy", "--strategy=nope")
    t("zero batch", "--batch_size=0")
    t("negative batch", "--batch_size=-4")
    t("negative steps", "--train_steps=-1")
    t("image size 0", "--image_size=0")
    t("image size 3", "--image_size=3")
    t("image size 4096", "--image_size=4096", "--pool_size=50", "--filters=64")
    t("huge batch", "--batch_size=100000", "--image_size=256", "--filters=64")
    t("bad export format", "--export_formats=tflite,jpeg")
    t("bad gan loss", "--gan_loss=nope")
    t("wgan without constraint", "--gan_loss=wgan")
    t("negative lambda", "--lambda_cycle=-1")
    t("bad norm", "--norm=nope")
    t("cpu devices 0", "--cpu_devices=0")
    t("batch not divisible", "--strategy=mirrored", "--cpu_devices=2", "--batch_size=3")
    t("checkpoint every 0", "--checkpoint_every=0")
    t("keep 0", "--keep_checkpoints=0")
    t("negative lr", "--lr=-0.1")
    t("bad flag", "--no_such_flag=1")
    t("bad flag type", "--batch_size=eight")
    t("stray argument", "extra_positional")
    t("missing flagfile", "--flagfile=does_not_exist.flags")
    t("model_dir is a file", model=f["file_as_dir"])
    t("corrupt config.json", model=f["corrupt_config_dir"])
    t("other method in model_dir", "--method=unit", model=model_dir)
    t("other image size in model_dir", "--image_size=16", model=model_dir)
    t("other filters in model_dir", "--filters=8", model=model_dir)
    t("folder missing", "--dataset=folder", "--data_dir=/nonexistent/folder")
    t("folder of junk", "--dataset=folder", f"--data_dir={f['folder']}", "--strict_images")
    t("unwritable model_dir", model="/proc/img2img_run")
    t("tfds not prepared", "--dataset=cycle_gan/horse2zebra", "--domain_a=A", "--domain_b=B")
    t("folder without trainB", "--dataset=folder", f"--data_dir={f['corrupt_config_dir']}")
    ev = ["-m", "trainer.evaluate"]
    cases += [
        ("evaluate no model_dir", [*ev]),
        ("evaluate missing", [*ev, "--model_dir=/nonexistent/run"]),
        ("evaluate file", [*ev, f"--model_dir={f['file_as_dir']}"]),
        ("evaluate empty", [*ev, f"--model_dir={f['empty_model_dir']}"]),
        ("evaluate corrupt config", [*ev, f"--model_dir={f['corrupt_config_dir']}"]),
        ("evaluate bad step", [*ev, f"--model_dir={model_dir}", "--step=999999"]),
        ("evaluate negative step", [*ev, f"--model_dir={model_dir}", "--step=-3"]),
        ("evaluate bad metrics", [*ev, f"--model_dir={model_dir}", "--metrics=nope"]),
    ]
    ex = ["-m", "export.main"]
    cases += [
        ("export no model_dir", [*ex]),
        ("export missing", [*ex, "--model_dir=/nonexistent/run"]),
        ("export file", [*ex, f"--model_dir={f['file_as_dir']}"]),
        ("export empty", [*ex, f"--model_dir={f['empty_model_dir']}"]),
        ("export corrupt config", [*ex, f"--model_dir={f['corrupt_config_dir']}"]),
        ("export bad format", [*ex, f"--model_dir={model_dir}", "--formats=jpeg"]),
        ("export no format", [*ex, f"--model_dir={model_dir}", "--formats=none"]),
        ("export bad path", [*ex, f"--model_dir={model_dir}", "--paths=nope"]),
        ("export unwritable", [*ex, f"--model_dir={model_dir}", "--export_dir=/proc/x/export"]),
        ("export stray", [*ex, f"--model_dir={model_dir}", "stray"]),
        ("export bad flag", [*ex, f"--model_dir={model_dir}", "--no_such_flag=1"]),
    ]
    er = ["-m", "export.run"]
    cases += [
        ("evaluate stray", [*ev, f"--model_dir={model_dir}", "stray"]),
        (
            "export.run folder of junk",
            [
                *er,
                f"--model={f['onnx']}",
                f"--input={f['junk']}",
                f"--output={os.path.join(out, 'junk_out')}",
            ],
        ),
        (
            "edge folder of junk",
            [
                "-m",
                "mobile_demo.edge",
                f"--model={f['tflite']}",
                f"--input={f['junk']}",
                f"--output={os.path.join(out, 'junk_out_edge')}",
            ],
        ),
    ]
    o = os.path.join(out, "run_out.png")
    for name in ("empty", "text", "bomb", "truncated"):
        cases.append(
            (
                f"export.run {name}",
                [*er, f"--model={f['onnx']}", f"--input={f[name]}", f"--output={o}"],
            )
        )
        cases.append(
            (
                f"edge {name}",
                [
                    "-m",
                    "mobile_demo.edge",
                    f"--model={f['tflite']}",
                    f"--input={f[name]}",
                    f"--output={o}",
                ],
            )
        )
    for name in ("trunc_a2b.onnx", "trunc_a2b.tflite"):
        model = os.path.join(f["bad_models"], name)
        cases.append(
            (
                f"export.run {name}",
                [*er, f"--model={model}", f"--input={f['good']}", f"--output={o}"],
            )
        )
        cases.append(
            (
                f"edge {name}",
                [
                    "-m",
                    "mobile_demo.edge",
                    f"--model={model}",
                    f"--input={f['good']}",
                    f"--output={o}",
                ],
            )
        )
    cases += [
        (
            "export.run missing model",
            [*er, "--model=/nonexistent.onnx", f"--input={f['good']}", f"--output={o}"],
        ),
        (
            "export.run missing input",
            [*er, f"--model={f['onnx']}", "--input=/nonexistent.png", f"--output={o}"],
        ),
        ("export.run no args", [*er]),
        (
            "export.run bad domain",
            [
                *er,
                f"--model={f['onnx']}",
                f"--input={f['good']}",
                f"--output={o}",
                "--target_domain=nope",
            ],
        ),
        (
            "export.run txt model",
            [*er, f"--model={f['text']}", f"--input={f['good']}", f"--output={o}"],
        ),
        (
            "export.run unwritable output",
            [*er, f"--model={f['onnx']}", f"--input={f['good']}", "--output=/proc/x/out.png"],
        ),
        (
            "export.run contradicting metadata",
            [*er, f"--model={f['contradicting']}", f"--input={f['good']}", f"--output={o}"],
        ),
        ("edge no args", ["-m", "mobile_demo.edge"]),
        (
            "edge missing model",
            [
                "-m",
                "mobile_demo.edge",
                "--model=/nonexistent.tflite",
                f"--input={f['good']}",
                f"--output={o}",
            ],
        ),
        (
            "edge onnx given",
            [
                "-m",
                "mobile_demo.edge",
                f"--model={f['onnx']}",
                f"--input={f['good']}",
                f"--output={o}",
            ],
        ),
        (
            "edge bad threads",
            [
                "-m",
                "mobile_demo.edge",
                f"--model={f['tflite']}",
                f"--input={f['good']}",
                f"--output={o}",
                "--threads=0",
            ],
        ),
        (
            "edge bad domain",
            [
                "-m",
                "mobile_demo.edge",
                f"--model={f['tflite']}",
                f"--input={f['good']}",
                f"--output={o}",
                "--target_domain=nope",
            ],
        ),
        ("service missing model", ["-m", "mobile_demo.service", "--model=/nonexistent.onnx"]),
        ("service txt model", ["-m", "mobile_demo.service", f"--model={f['text']}"]),
        (
            "service truncated model",
            [
                "-m",
                "mobile_demo.service",
                f"--model={os.path.join(f['bad_models'], 'trunc_a2b.onnx')}",
            ],
        ),
        (
            "service contradicting metadata",
            ["-m", "mobile_demo.service", f"--model={f['contradicting']}"],
        ),
        (
            "service zero body",
            ["-m", "mobile_demo.service", f"--model={f['onnx']}", "--max_body_bytes=0"],
        ),
        (
            "service negative body",
            ["-m", "mobile_demo.service", f"--model={f['onnx']}", "--max_body_bytes=-1"],
        ),
        ("service bad port", ["-m", "mobile_demo.service", f"--model={f['onnx']}", "--port=70000"]),
        ("serve_web missing dir", ["-m", "mobile_demo.serve_web", "--export_dir=/nonexistent"]),
        ("serve_web file", ["-m", "mobile_demo.serve_web", f"--export_dir={f['good']}"]),
        (
            "serve_web bad port",
            [
                "-m",
                "mobile_demo.serve_web",
                f"--export_dir={os.path.dirname(f['onnx'])}",
                "--port=-1",
            ],
        ),
    ]
    # The same damaged files through every loader that takes a model.
    for name in ("trunc_metadata.json",):
        meta_dir = os.path.join(out, "bad_meta")
        os.makedirs(meta_dir, exist_ok=True)
        if os.path.exists(f["onnx"]):
            shutil.copy(f["onnx"], os.path.join(meta_dir, "a2b.onnx"))
            shutil.copy(
                os.path.join(f["bad_models"], name), os.path.join(meta_dir, "metadata.json")
            )
        cases.append(
            (
                "export.run truncated metadata.json",
                [
                    *er,
                    f"--model={os.path.join(meta_dir, 'a2b.onnx')}",
                    f"--input={f['good']}",
                    f"--output={o}",
                ],
            )
        )
        cases.append(
            (
                "service truncated metadata.json",
                ["-m", "mobile_demo.service", f"--model={os.path.join(meta_dir, 'a2b.onnx')}"],
            )
        )
    return cases


def campaign_inputs(args, work, model_dir):
    fixtures = make_fixtures(os.path.join(work, "fixtures"), model_dir)
    cases = bad_invocations(args.data_dir, model_dir, fixtures, work)
    figures = dict(cases=len(cases), clean=0, tracebacks=[], exit_zero=[], no_message=[])
    for name, argv in cases:
        try:
            proc = run(argv, timeout=300, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            figures["exit_zero"].append(f"{name} (hung)")
            continue
        text = proc.stdout + proc.stderr
        if TRACEBACK in text:
            figures["tracebacks"].append(name)
        elif proc.returncode == 0:
            figures["exit_zero"].append(name)
        elif not re.search(r"(?im)^(error|fatal|usage)\b|error:", text):
            figures["no_message"].append(name)
        else:
            figures["clean"] += 1
        if args.verbose:
            last = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or [""]
            print(f"  [{proc.returncode}] {name}: {last[0][:160]}", flush=True)
    ok = figures["clean"] == figures["cases"]
    return ok, figures


# -- service ------------------------------------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def campaign_service(args, model_dir):
    import httpx
    from PIL import Image

    model = os.path.join(model_dir, "export", "a2b.onnx")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mobile_demo.service",
            f"--model={model}",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    figures = dict(
        bad_requests=0,
        bad_4xx_json=0,
        five_xx=[],
        peak_rss_mb=None,
        concurrent_ok=0,
        leaked_paths=[],
    )
    try:
        if not wait_for(lambda: _healthy(url), 120, proc):
            return False, {
                "start": proc.stderr.read()[-2000:]
                if proc.poll() is not None
                else "no /healthz within 120 s"
            }
        big = io.BytesIO()
        # About the default --max_pixels for a 32 px model: as large as it allows.
        side = 1000
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (side, side, 3), np.uint8)).save(
            big, "PNG"
        )
        png = _png()
        bomb = _bomb_png()
        bad = [
            ("empty body", dict(content=b"", headers={"Content-Type": "image/png"})),
            ("text body", dict(content=b"hello", headers={"Content-Type": "image/png"})),
            ("bomb", dict(content=bomb, headers={"Content-Type": "image/png"})),
            ("truncated", dict(content=png[:100], headers={"Content-Type": "image/png"})),
            ("json type", dict(content=b"{}", headers={"Content-Type": "application/json"})),
            (
                "eps",
                dict(
                    content=b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
                    headers={"Content-Type": "application/postscript"},
                ),
            ),
            (
                "eps as png",
                dict(
                    content=b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
                    headers={"Content-Type": "image/png"},
                ),
            ),
            (
                "unknown domain",
                dict(
                    content=png,
                    headers={"Content-Type": "image/png"},
                    params={"target_domain": "nope"},
                ),
            ),
            (
                "oversized body",
                dict(content=b"\0" * (9 * 1024 * 1024), headers={"Content-Type": "image/png"}),
            ),
        ]
        with httpx.Client(timeout=30) as client:
            for name, kw in bad:
                figures["bad_requests"] += 1
                try:
                    r = client.post(f"{url}/translate", **kw)
                except httpx.HTTPError:
                    figures["bad_4xx_json"] += 1  # connection refused by the server is fine
                    continue
                if r.status_code >= 500:
                    figures["five_xx"].append(f"{name}: {r.status_code}")
                elif 400 <= r.status_code < 500 and _is_json(r):
                    figures["bad_4xx_json"] += 1
            for method, path in (
                ("GET", "/nope"),
                ("DELETE", "/translate"),
                ("GET", "/translate"),
                ("GET", "/docs"),
                ("GET", "/%00"),
            ):
                figures["bad_requests"] += 1
                r = client.request(method, f"{url}{path}")
                if r.status_code >= 500:
                    figures["five_xx"].append(f"{method} {path}: {r.status_code}")
                elif 400 <= r.status_code < 500 and _is_json(r):
                    figures["bad_4xx_json"] += 1
            served = client.get(f"{url}/metadata").text + client.get(f"{url}/healthz").text
        for needle in {REPO, os.path.expanduser("~"), model_dir, os.path.abspath(model_dir)}:
            if needle and needle != "/" and needle in served:
                figures["leaked_paths"].append(needle)

        results = []

        def client_loop():
            with httpx.Client(timeout=120) as c:
                r = c.post(
                    f"{url}/translate",
                    content=big.getvalue(),
                    headers={"Content-Type": "image/png"},
                )
                results.append(r.status_code)

        threads = [threading.Thread(target=client_loop) for _ in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        figures["concurrent_ok"] = sum(1 for s in results if s == 200)
        figures["concurrent_statuses"] = sorted(set(results))
        figures["peak_rss_mb"] = _peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    ok = (
        not figures["five_xx"]
        and figures["bad_4xx_json"] == figures["bad_requests"]
        and not figures["leaked_paths"]
        and figures["peak_rss_mb"] is not None
        and figures["peak_rss_mb"] < 1024
        and all(s in (200, 429, 503) for s in figures.get("concurrent_statuses", []))
    )
    return ok, figures


def _healthy(url):
    import httpx

    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _is_json(response):
    try:
        response.json()
        return True
    except ValueError:
        return False


# -- main ---------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", default="train,export,inputs,service")
    parser.add_argument("--train_kills", type=int, default=30)
    parser.add_argument("--export_kills", type=int, default=20)
    parser.add_argument(
        "--wait_seconds",
        type=float,
        default=600,
        help="train campaign: longest wait for the save (or checkpoint) a kill aims at",
    )
    parser.add_argument(
        "--concurrent_exports",
        type=int,
        default=2,
        help="export campaign: pairs of exports started together on one model_dir",
    )
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir (default: a temp dir)")
    parser.add_argument("--work_dir", default=None, help="where runs go (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    campaigns = [c.strip() for c in args.campaigns.split(",") if c.strip()]
    unknown = set(campaigns) - {"train", "export", "inputs", "service"}
    if unknown:
        parser.error(f"unknown campaign(s) {', '.join(sorted(unknown))}")
    work = args.work_dir or tempfile.mkdtemp(prefix="img2img-chaos-")
    os.makedirs(work, exist_ok=True)
    args.data_dir = args.data_dir or os.path.join(work, "tensorflow_datasets")

    # A trained, exported smoke run that the input and service campaigns use.
    model_dir = os.path.join(work, "reference_run")
    if {"inputs", "service"} & set(campaigns) and not os.path.exists(
        os.path.join(model_dir, "export", "metadata.json")
    ):
        print("Training the reference run ...", flush=True)
        proc = run(
            train_cmd(
                args.data_dir,
                model_dir,
                "--train_steps=4",
                "--export_formats=tflite,onnx,keras,savedmodel",
            )
        )
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-3000:])
            sys.exit("the reference run failed to train")

    results = {}
    for name in campaigns:
        print(f"Campaign {name} ...", flush=True)
        started = time.monotonic()
        if name == "train":
            ok, figures = campaign_train(args, work)
        elif name == "export":
            ok, figures = campaign_export(args, work)
        elif name == "inputs":
            ok, figures = campaign_inputs(args, work, model_dir)
        else:
            ok, figures = campaign_service(args, model_dir)
        figures["seconds"] = round(time.monotonic() - started, 1)
        results[name] = {"ok": ok, **figures}
        print(f"  {'ok  ' if ok else 'MISS'} {json.dumps(figures, default=str)}", flush=True)
    if args.json:
        print(json.dumps(results, default=str))
    print("\n" + "\n".join(f"{n:8s} {'ok' if r['ok'] else 'MISSED'}" for n, r in results.items()))
    sys.exit(0 if all(r["ok"] for r in results.values()) else 1)


if __name__ == "__main__":
    main()
