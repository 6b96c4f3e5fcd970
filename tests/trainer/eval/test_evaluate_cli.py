"""python -m trainer.evaluate on a smoke-trained CycleGAN, and its named errors."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def run(module, *args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def smoke_model_dir(smoke_cyclegan, digit_judges, tmp_path_factory):
    """This module's own copy of the shared smoke run (its tests evaluate into it)."""
    model_dir = str(tmp_path_factory.mktemp("eval_cli") / "run")
    shutil.copytree(smoke_cyclegan, model_dir)
    return model_dir


@pytest.mark.slow
def test_cli_evaluates_a_trained_model(smoke_model_dir):
    proc = run("trainer.evaluate", f"--model_dir={smoke_model_dir}", "--eval_examples=16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| a2b (mnist → mnist_m) |" in proc.stdout and "digit FID" in proc.stdout
    with open(os.path.join(smoke_model_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["step"] == 4 and metrics["eval_examples"] == 16
    assert metrics["method"] == "cyclegan"
    assert metrics["directions"]["a2b"]["examples"] == 16
    assert 0.0 <= metrics["directions"]["b2a"]["transfer_accuracy"] <= 1.0
    assert os.listdir(os.path.join(smoke_model_dir, "logs", "eval"))

    # An earlier step into another directory: the run's own report stays the latest step's.
    elsewhere = os.path.join(smoke_model_dir, "at_2")
    proc = run(
        "trainer.evaluate",
        f"--model_dir={smoke_model_dir}",
        "--step=2",
        f"--output_dir={elsewhere}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(elsewhere, "metrics.json"), encoding="utf-8") as f:
        assert json.load(f)["step"] == 2
    assert os.path.exists(os.path.join(elsewhere, "eval_samples", "step_000002.png"))
    assert os.listdir(os.path.join(elsewhere, "logs", "eval"))
    with open(os.path.join(smoke_model_dir, "metrics.json"), encoding="utf-8") as f:
        assert json.load(f)["step"] == 4
    assert not os.path.exists(os.path.join(smoke_model_dir, "eval_samples", "step_000002.png"))

    proc = run("trainer.evaluate", f"--model_dir={smoke_model_dir}", "--step=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(smoke_model_dir, "metrics.json"), encoding="utf-8") as f:
        assert json.load(f)["step"] == 2
    assert os.path.exists(os.path.join(smoke_model_dir, "eval_samples", "step_000002.png"))


def test_cli_missing_model_dir(tmp_path):
    proc = run("trainer.evaluate", f"--model_dir={tmp_path / 'nowhere'}")
    assert proc.returncode == 1
    # The project's line is searched for: native libraries may write anything around it.
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors and "does not exist" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_model_dir_without_checkpoints(smoke_model_dir, tmp_path):
    empty = tmp_path / "untrained"
    empty.mkdir()
    shutil.copy(os.path.join(smoke_model_dir, "config.json"), empty / "config.json")
    proc = run("trainer.evaluate", f"--model_dir={empty}")
    assert proc.returncode == 1 and "error: No checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = run("trainer.evaluate", f"--model_dir={smoke_model_dir}", "--step=3")
    assert proc.returncode == 1 and "No checkpoint of step 3" in proc.stderr
    assert "it has steps 2, 4" in proc.stderr


@pytest.mark.slow
def test_cli_dataset_without_labels(smoke_model_dir, tmp_path):
    from PIL import Image

    data = tmp_path / "folders"
    for split in ("train", "test"):
        for domain, colour in (("A", (0, 0, 0)), ("B", (200, 80, 30))):
            (data / f"{split}{domain}").mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (32, 32), colour).save(data / f"{split}{domain}" / f"{i}.png")
    run_dir = tmp_path / "folder_run"
    shutil.copytree(os.path.join(smoke_model_dir, "checkpoints"), run_dir / "checkpoints")
    with open(os.path.join(smoke_model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    config["data"].update(dataset="folder", data_dir=str(data), domain_a="A", domain_b="B")
    (run_dir / "config.json").write_text(json.dumps(config))

    proc = run("trainer.evaluate", f"--model_dir={run_dir}", "--metrics=transfer")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "error:" in proc.stderr and "has no class labels" in proc.stderr
    assert "Traceback" not in proc.stderr
