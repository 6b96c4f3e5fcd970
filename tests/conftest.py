"""Fixtures shared by the whole suite."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The domains the suite trains and evaluates on; built once per session (about 10 s).
SUITE_DOMAINS = ("mnist", "mnist_m", "digits", "mnist_0_4", "mnist_5_9")


@pytest.fixture(scope="session")
def digits_data_dir(tmp_path_factory):
    """A TFDS data_dir holding the embedded digit domains, built once per test session."""
    from trainer import data
    from trainer.eval import classifiers

    root = str(tmp_path_factory.mktemp("tensorflow_datasets"))
    for domain in SUITE_DOMAINS:
        data.digits_builder(domain, root)
    # Smoke trainings evaluate at their end: cache tiny judges for the pair they train on, so
    # those evaluations load them instead of training full classifiers (tests that judge
    # accuracy train their own).
    classifiers.prepare("digits", "mnist", "mnist_m", data_dir=root, epochs=1, train_limit=256)
    return root


# -- shared helpers, as fixtures (test modules are imported with --import-mode=importlib) -------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _method_config(
    method, *, image_size=16, batch_size=2, smoke=True, train_steps=100, model_dir=None, **hparams
):
    """A validated-shape Config of ``method``: its defaults, its SMOKE_HPARAMS (tiny networks)
    unless ``smoke=False``, then ``hparams``."""
    from trainer.config import Config, DataConfig, EvalConfig, HParams, TrainConfig
    from trainer.methods import get

    cls = get(method)
    values = {k: s.default for k, s in cls.hparam_specs().items()}
    if smoke:
        values.update(getattr(cls, "SMOKE_HPARAMS", {}))
    unknown = sorted(set(hparams) - set(values))
    if unknown:
        raise KeyError(f"{method} has no hyperparameter {', '.join(unknown)}")
    values.update(hparams)
    train = dict(train_steps=train_steps)
    if model_dir is not None:
        train["model_dir"] = str(model_dir)
    return Config(
        method=method,
        data=DataConfig(image_size=image_size, batch_size=batch_size),
        train=TrainConfig(**train),
        eval=EvalConfig(),
        hparams=HParams(values),
    )


def _random_batch(n=2, size=16, seed=0, num_classes=10):
    """An unpaired batch in [-1, 1]: x_a, x_b, source labels y_a and unknown (-1) y_b."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    return {
        "x_a": tf.constant(rng.uniform(-1, 1, (n, size, size, 3)), tf.float32),
        "x_b": tf.constant(rng.uniform(-1, 1, (n, size, size, 3)), tf.float32),
        "y_a": tf.constant(rng.integers(0, num_classes, n), tf.int64),
        "y_b": tf.fill([n], tf.constant(-1, tf.int64)),
    }


def _run_module(module, *args, check=True, timeout=900, cwd=ROOT, env=None):
    """``python -m module args`` from the repository root with this checkout importable.

    Returns the CompletedProcess (text stdout/stderr); with ``check``, a non-zero exit fails
    with the tails of both streams. Never assert on stderr's first line: TensorFlow's C++
    side may print there first.
    """
    import subprocess
    import sys

    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, environ.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", module, *map(str, args)]
    proc = subprocess.run(
        cmd, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"`{' '.join(cmd[2:])}` exited {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
            f"\n--- stderr\n{proc.stderr[-5000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def method_config():
    """``method_config(method, image_size=16, batch_size=2, smoke=True, **hparams)``."""
    return _method_config


@pytest.fixture(scope="session")
def random_batch():
    """``random_batch(n=2, size=16, seed=0, num_classes=10)``."""
    return _random_batch


@pytest.fixture(scope="session")
def run_module():
    """``run_module(module, *args, check=True, timeout=900)``: a CLI in a subprocess."""
    return _run_module


# -- a smoke-trained CycleGAN: checkpoints at steps 2 and 4, evaluated at its end ---------------


@pytest.fixture(scope="session")
def smoke_cyclegan(digits_data_dir, tmp_path_factory):
    """The model_dir of ``python -m trainer.main --flagfile=smoke.flags --method=cyclegan``
    (steps 2 and 4 checkpointed, metrics.json of step 4). Shared: tests that write into a run
    copy it first (``shutil.copytree``)."""
    model_dir = str(tmp_path_factory.mktemp("smoke_cyclegan") / "run")
    proc = _run_module(
        "trainer.main",
        "--flagfile=smoke.flags",
        "--method=cyclegan",
        "--gen_blocks=1",
        "--disc_layers=2",
        f"--data_dir={digits_data_dir}",
        f"--model_dir={model_dir}",
        timeout=300,
    )
    # Training evaluates at its last step and prints the headline.
    assert "transfer a2b" in proc.stdout and "digit FID a2b" in proc.stdout
    return model_dir


# -- a trained StarGAN, exported: the conditional path G(x, c) the runtimes serve --------------

STARGAN_DOMAINS = ("mnist", "mnist_m", "digits")
STARGAN_SIZE = 16


@pytest.fixture(scope="session")
def trained_stargan(digits_data_dir, tmp_path_factory):
    """A StarGAN trained a few steps through the training loop on three embedded digit domains
    at 16 px, then exported by ``python -m export.main`` (ONNX and TFLite, with parity).

    Returns ``{"model_dir", "export_dir", "domains", "size", "onnx", "tflite"}``; the exported
    path is ``translate`` (inputs ``image`` and the one-hot ``target_domain``).
    """
    from trainer import train_lib
    from trainer.config import Config, DataConfig, EvalConfig, HParams, TrainConfig
    from trainer.methods import get

    cls = get("stargan")
    hparams = {k: s.default for k, s in cls.hparam_specs().items()}
    hparams.update(cls.SMOKE_HPARAMS)
    hparams.update(filters=8, lr=5e-4)
    model_dir = str(tmp_path_factory.mktemp("stargan_run"))
    steps = 40
    config = Config(
        method="stargan",
        data=DataConfig(
            dataset="digits",
            domains=STARGAN_DOMAINS,
            data_dir=digits_data_dir,
            image_size=STARGAN_SIZE,
            batch_size=8,
            shuffle_buffer=64,
        ),
        train=TrainConfig(
            model_dir=model_dir,
            train_steps=steps,
            checkpoint_every=steps,
            sample_every=0,
            log_every=steps,
            steps_per_loop=steps // 4,
        ),
        eval=EvalConfig(eval_examples=32),
        hparams=HParams(hparams),
    )
    train_lib.run(config)
    _run_module("export.main", f"--model_dir={model_dir}", "--formats=onnx,tflite", timeout=600)
    export_dir = os.path.join(model_dir, "export")
    return {
        "model_dir": model_dir,
        "export_dir": export_dir,
        "domains": STARGAN_DOMAINS,
        "size": STARGAN_SIZE,
        "onnx": os.path.join(export_dir, "translate.onnx"),
        "tflite": os.path.join(export_dir, "translate.tflite"),
    }
