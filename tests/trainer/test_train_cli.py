"""CycleGAN end to end through the real CLI: train, resume, distribute, crash, bad input."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = [
    "--flagfile=smoke.flags",
    "--method=cyclegan",
    "--gen_blocks=1",
    "--disc_layers=2",
    "--pool_size=4",
]


def train(data_dir, model_dir, *args, env=None, check=True, timeout=300):
    cmd = [
        sys.executable,
        "-m",
        "trainer.main",
        *SMOKE,
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        *args,
    ]
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    proc = subprocess.run(
        cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def scalars(model_dir, tag):
    """{step: value} of a TensorBoard scalar written by the run."""
    import tensorflow as tf

    values = {}
    log_dir = os.path.join(model_dir, "logs", "train")
    for name in sorted(os.listdir(log_dir)):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


def latest_step(model_dir):
    import tensorflow as tf

    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return int(path.rsplit("-", 1)[1]) if path else 0


def test_train_writes_everything_and_resume_continues(digits_data_dir, tmp_path):
    model_dir = tmp_path / "run"
    proc = train(digits_data_dir, model_dir)
    out = proc.stdout
    assert "Trained to step 4" in out
    # Redirected output is plain: one progress line per --log_every, no long lines; library
    # chatter is in the run log.
    progress = [line for line in out.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in progress] == ["2/4", "4/4"], out
    assert "gen_loss=" in progress[0] and "ETA" in progress[-1]
    assert max(len(line) for line in (out + proc.stderr).splitlines()) <= 300
    assert "\r" not in out and "\x1b[" not in out
    assert (model_dir / "logs" / "run.log").stat().st_size > 0
    assert latest_step(model_dir) == 4
    config = json.loads((model_dir / "config.json").read_text())
    assert config["method"] == "cyclegan" and config["hparams"]["gen_blocks"] == 1
    assert sorted(os.listdir(model_dir / "samples")) == ["step_000002.png", "step_000004.png"]
    losses = scalars(model_dir, "loss/gen_loss")
    assert sorted(losses) == [2, 4] and all(np.isfinite(v) for v in losses.values())
    assert set(scalars(model_dir, "learning_rate/gen")) == {2, 4}

    out = train(digits_data_dir, model_dir, "--train_steps=6").stdout
    assert "Resuming from" in out and "(step 4)" in out
    assert latest_step(model_dir) == 6
    assert sorted(scalars(model_dir, "loss/gen_loss")) == [2, 4, 6]


def test_a_first_run_that_builds_its_data_trains_the_model_of_every_later_run(
    digits_data_dir, tmp_path
):
    """Same --seed, same flags: the run that builds the datasets in its own process (a new
    user's first run) and a run that finds them built start from the same weights."""
    fresh = tmp_path / "data"
    # Only the judges are copied (the final evaluation loads them); the domains are built.
    shutil.copytree(
        os.path.join(digits_data_dir, "img2img_classifiers"), fresh / "img2img_classifiers"
    )
    common = ["--train_steps=1", "--steps_per_loop=1", "--log_every=1"]
    train(fresh, tmp_path / "first", *common)
    assert (fresh / "digit_domains" / "mnist_m").is_dir()
    train(digits_data_dir, tmp_path / "later", *common)
    for tag in ("loss/gen_loss", "loss/disc_loss"):
        first, later = (scalars(tmp_path / d, tag)[1] for d in ("first", "later"))
        assert first == later, tag


def test_mirrored_first_step_matches_default(digits_data_dir, tmp_path):
    common = ["--train_steps=1", "--steps_per_loop=1", "--log_every=1", "--batch_size=4"]
    train(digits_data_dir, tmp_path / "default", *common)
    train(digits_data_dir, tmp_path / "mirrored", *common, "--strategy=mirrored", "--cpu_devices=2")
    for tag in ("loss/gen_loss", "loss/cycle", "loss/disc_loss"):
        a = scalars(tmp_path / "default", tag)[1]
        b = scalars(tmp_path / "mirrored", tag)[1]
        # disc_loss is computed after the generator update: equal only if the replicas'
        # gradients were scaled by the global batch and summed.
        np.testing.assert_allclose(b, a, rtol=2e-4, err_msg=tag)


def _restored_raw(model_dir, step):
    """The run's model with the weights of checkpoint ``step`` as saved (averages not adopted)."""
    import tensorflow as tf

    from trainer import methods
    from trainer.config import Config

    model = methods.build(Config.load(str(model_dir)))
    path = os.path.join(model_dir, "checkpoints", f"ckpt-{step}")
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return model


def test_weight_averages_follow_the_weights_when_mirrored_and_are_what_later_stages_run(
    digits_data_dir, tmp_path
):
    from trainer import checkpoints

    model_dir = tmp_path / "run"
    train(
        digits_data_dir,
        model_dir,
        "--train_steps=2",
        "--steps_per_loop=1",
        "--checkpoint_every=1",
        "--batch_size=4",
        "--ema_decay=0.999",
        "--strategy=mirrored",
        "--cpu_devices=2",
    )
    first, second = _restored_raw(model_dir, 1), _restored_raw(model_dir, 2)
    assert len(second.averages.values) == len(second.averages._live) > 0
    # The update after the second step (step 1), decay min(0.999, 2 / 11), on the replicas.
    decay = 2 / 11
    for a1, a2, w2 in zip(first.averages.values, second.averages.values, second.averages._live):
        expected = decay * a1.numpy() + (1 - decay) * w2.numpy()
        np.testing.assert_allclose(a2.numpy(), expected, rtol=1e-5, atol=1e-7)
    # The raw weights are not the averages, and what evaluation and export restore
    # (load_trained) runs the averages.
    pairs = zip(second.averages._live, second.averages.values)
    assert any(not np.allclose(w.numpy(), a.numpy()) for w, a in pairs)
    trained = checkpoints.load_trained(str(model_dir)).model
    for w, a in zip(trained.averages._live, second.averages.values):
        np.testing.assert_array_equal(w.numpy(), a.numpy())

    # Averaging on or off changes what a checkpoint holds: a resume across it is refused.
    proc = train(digits_data_dir, model_dir, "--train_steps=3", "--ema_decay=0", check=False)
    assert proc.returncode != 0 and "ema_decay > 0 True (now False)" in proc.stderr
    out = train(digits_data_dir, model_dir, "--train_steps=3", "--ema_decay=0.99").stdout
    assert "(step 2)" in out and latest_step(model_dir) == 3


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_over_loopback(digits_data_dir, tmp_path):
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        cmd = [
            sys.executable,
            "-m",
            "trainer.main",
            *SMOKE,
            f"--data_dir={digits_data_dir}",
            f"--model_dir={tmp_path / 'mw'}",
            "--strategy=multi_worker",
            "--batch_size=4",
        ]
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs.append(
            subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [p.communicate(timeout=400)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-4000:]
    assert "MultiWorkerMirroredStrategy with 2 replica(s)" in outputs[0]
    assert latest_step(tmp_path / "mw") == 4
    assert os.path.exists(tmp_path / "mw" / "samples" / "step_000004.png")


@pytest.mark.slow
def test_kill_9_loses_at_most_the_steps_since_the_last_checkpoint(digits_data_dir, tmp_path):
    model_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "trainer.main",
        *SMOKE,
        f"--data_dir={digits_data_dir}",
        f"--model_dir={model_dir}",
        "--train_steps=100000",
        "--checkpoint_every=3",
        "--steps_per_loop=1",
        "--sample_every=0",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    deadline = time.time() + 240
    while latest_step(model_dir) < 6 and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(0.7)  # land somewhere inside a later step or save
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The newest complete checkpoint on disk: a kill between writing its files and naming it in
    # the state file leaves it newer than the state file says, and the resume adopts it.
    from trainer import checkpoints

    saved = checkpoints.saved_step(checkpoints.find_readable(str(model_dir), announce=False))
    assert saved >= max(6, latest_step(model_dir))
    out = train(digits_data_dir, model_dir, f"--train_steps={saved + 2}").stdout
    assert f"(step {saved})" in out
    assert latest_step(model_dir) == saved + 2


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(digits_data_dir, tmp_path):
    model_dir = tmp_path / "run"
    train(digits_data_dir, model_dir, "--train_steps=2")
    proc = train(digits_data_dir, model_dir, "--train_steps=4", "--lr=1e30", check=False)
    assert proc.returncode != 0
    assert "diverged" in proc.stderr and "NaN/Inf" in proc.stderr
    assert latest_step(model_dir) == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["--domain_b=svhn"], "svhn"),
        (["--dataset=folder", "--data_dir=/nonexistent/photos"], "/nonexistent/photos"),
        (["--image_size=30"], "--image_size=30"),
        (["--method=cyclegn"], "choose one of"),
        (["--ema_decay=1"], "--ema_decay must be in [0, 1)"),
    ],
)
def test_bad_input_gets_a_clear_error(digits_data_dir, tmp_path, args, message):
    proc = train(digits_data_dir, tmp_path / "run", *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_model_dir_of_another_shape_is_refused(digits_data_dir, tmp_path):
    model_dir = tmp_path / "run"
    train(digits_data_dir, model_dir, "--train_steps=2")
    proc = train(digits_data_dir, model_dir, "--filters=8", check=False)
    assert proc.returncode != 0 and "filters 4 (now 8)" in proc.stderr
    # The refused run left the run's own configuration in place.
    assert json.loads((model_dir / "config.json").read_text())["hparams"]["filters"] == 4
    proc = train(digits_data_dir, model_dir, "--image_size=64", check=False)
    assert proc.returncode != 0 and "image_size 32 (now 64)" in proc.stderr


def test_help_lists_the_project_flags_grouped_and_exits_0(run_module):
    # run_module fails the test on a non-zero exit, with both streams' tails.
    proc = run_module("trainer.main", "--help", timeout=300)
    out = proc.stdout
    for heading in ("run flags:", "data flags:", "training flags:", "evaluation flags:"):
        assert heading in out
    assert "--model_dir=runs/default" in out and "--image_size=32" in out
    # Each method's hyperparameters with that method's default.
    cyclegan = out.split("--method=cyclegan hyperparameters")[1].split("\n\n")[0]
    assert "--lambda_cycle=10.0" in cyclegan and "--filters=64" in cyclegan
    cogan = out.split("--method=cogan hyperparameters")[1].split("\n\n")[0]
    assert "--filters=32" in cogan
    from trainer.methods import METHODS

    assert "one of " + ", ".join(sorted(METHODS)) in " ".join(out.split())  # help wraps lines
    assert "--helpfull" in out

    proc = run_module("trainer.main", "--helpfull", timeout=300)
    assert "run flags:" in proc.stdout and "--[no]logtostderr" in proc.stdout


def test_summary_keeps_its_first_line_and_calls_out_below_bound_variants():
    from export.metadata import BELOW_BOUND
    from trainer import main

    parity = {"bound": {"psnr": 25.0}, "judged_on": ["test"], "test": {"psnr": 24.995}}
    summary = {
        "step": 4,
        "train_seconds": 3.0,
        "model_dir": "runs/x",
        "strategy": "default strategy with 1 replica(s)",
        "export": {
            "export_dir": "runs/x/export",
            "headline": ["a2b.onnx  max|err| 2.1e-06  ok"],
            "artifacts": [
                {"file": "a2b.onnx", "status": "ok"},
                {"file": "a2b_int8_full.tflite", "status": BELOW_BOUND, "parity": parity},
            ],
        },
    }
    text = main.report(summary)
    lines = text.strip().splitlines()
    assert lines[0].startswith("Trained to step 4 ")
    below = text.split("BELOW BOUND")[1]
    assert "1 quantized variant(s)" in below and "a2b_int8_full.tflite  PSNR" in below
    assert "a2b.onnx" not in below
