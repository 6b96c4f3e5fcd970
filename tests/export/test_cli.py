"""The export CLI on a model trained through the real training CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, digits_data_dir):
    """A smoke CycleGAN, exported to ONNX by the training run's own export hook."""
    model_dir = str(tmp_path_factory.mktemp("smoke_cyclegan"))
    proc = _run(
        [
            "trainer.main",
            "--flagfile=smoke.flags",
            "--method=cyclegan",
            "--gen_blocks=1",
            "--disc_layers=2",
            f"--data_dir={digits_data_dir}",
            f"--model_dir={model_dir}",
            "--export_formats=onnx",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return model_dir, proc.stdout


@pytest.mark.slow
def test_training_exports_and_cli_reexports(trained_dir, tmp_path):
    model_dir, train_out = trained_dir
    export_dir = os.path.join(model_dir, "export")
    # The training run's report names the export and its headline.
    assert "a2b.onnx  max|err|" in train_out and export_dir in train_out
    assert sorted(f for f in os.listdir(export_dir) if not f.startswith(".")) == [
        "a2b.onnx",
        "b2a.onnx",
        "metadata.json",
    ]

    out_dir = str(tmp_path / "exp")
    proc = _run(
        [
            "export.main",
            f"--model_dir={model_dir}",
            "--formats=tflite,keras",
            "--paths=b2a",
            f"--export_dir={out_dir}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "b2a_int8_full.tflite" in proc.stdout and "test max|err|" in proc.stdout
    meta = json.load(open(os.path.join(out_dir, "metadata.json")))
    assert meta["method"] == "cyclegan" and meta["step"] == 4
    assert meta["checkpoint"].endswith("ckpt-4")
    files = {a["file"]: a for a in meta["artifacts"]}
    assert set(files) == {
        "b2a.keras",
        "b2a.tflite",
        "b2a_fp16.tflite",
        "b2a_int8.tflite",
        "b2a_int8_full.tflite",
    }
    fp32 = files["b2a.tflite"]
    assert fp32["source_domain"] == "mnist_m" and fp32["target_domain"] == "mnist"
    assert fp32["parity"]["test_images"]["max_abs"] <= 1e-4
    assert files["b2a_int8_full.tflite"]["calibration"]["source"] == "training images"

    from export.runtime import Translator

    t = Translator(os.path.join(out_dir, "b2a.tflite"))
    out = t.translate(np.zeros((40, 40, 3), np.uint8))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


@pytest.mark.slow
def test_cli_errors(trained_dir, tmp_path):
    model_dir, _ = trained_dir
    proc = _run(["export.main", f"--model_dir={tmp_path / 'missing'}"], timeout=300)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "does not exist" in proc.stderr
    proc = _run(["export.main", f"--model_dir={model_dir}", "--paths=c2d"], timeout=300)
    assert proc.returncode == 1 and "has no path c2d" in proc.stderr
    proc = _run(["export.main", f"--model_dir={model_dir}", "--formats=coreml"], timeout=300)
    assert proc.returncode == 1 and "Unknown export format" in proc.stderr
