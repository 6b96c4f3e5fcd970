"""UNIT and CoGAN end to end through the real CLI: train, sample, resume, export."""

import json
import os

import pytest

from trainer.methods import get


def smoke_flags(method):
    """--key=value flags of the method's tiny test settings (SMOKE_HPARAMS)."""
    return [f"--{k}={v}" for k, v in get(method).SMOKE_HPARAMS.items()]


def train(run_module, method, data_dir, model_dir, *args, check=True):
    return run_module(
        "trainer.main",
        "--flagfile=smoke.flags",
        f"--method={method}",
        *smoke_flags(method),
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        *args,
        check=check,
    )


def latest_step(model_dir):
    import tensorflow as tf

    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return int(path.rsplit("-", 1)[1]) if path else 0


# Each run also evaluates (the first one in a session trains the judge classifiers) and these
# three-run tests take minutes on 2 cores.
@pytest.mark.slow
def test_unit_trains_exports_onnx_and_resumes(digits_data_dir, tmp_path, run_module):
    model_dir = tmp_path / "unit"
    out = train(run_module, "unit", digits_data_dir, model_dir, "--export_formats=onnx").stdout
    assert "Trained to step 4" in out
    assert latest_step(model_dir) == 4
    config = json.loads((model_dir / "config.json").read_text())
    assert config["method"] == "unit" and config["hparams"]["lambda_recon"] == 100
    assert sorted(os.listdir(model_dir / "samples")) == ["step_000002.png", "step_000004.png"]
    meta = json.loads((model_dir / "export" / "metadata.json").read_text())
    exported = {a["path"]: a for a in meta["artifacts"] if a["format"] == "onnx"}
    assert set(exported) == {"a2b", "b2a"}
    assert all(a["status"] != "failed" for a in exported.values()), exported
    assert [i["name"] for i in exported["a2b"]["inputs"]] == ["image"]

    out = train(run_module, "unit", digits_data_dir, model_dir, "--train_steps=6").stdout
    assert "Resuming from" in out and "(step 4)" in out
    assert latest_step(model_dir) == 6


@pytest.mark.slow
def test_cogan_with_uda_trains_and_resumes(digits_data_dir, tmp_path, run_module):
    model_dir = tmp_path / "cogan"
    out = train(
        run_module, "cogan", digits_data_dir, model_dir, "--uda", "--disc_norm=layer"
    ).stdout
    assert "Trained to step 4" in out
    assert latest_step(model_dir) == 4
    config = json.loads((model_dir / "config.json").read_text())
    assert config["hparams"]["uda"] is True and config["hparams"]["latent_dim"] == 8

    out = train(
        run_module,
        "cogan",
        digits_data_dir,
        model_dir,
        "--uda",
        "--disc_norm=layer",
        "--train_steps=6",
    ).stdout
    assert "(step 4)" in out and latest_step(model_dir) == 6
    # The classifier head is part of the network shape: a run without it is refused.
    proc = train(run_module, "cogan", digits_data_dir, model_dir, "--train_steps=8", check=False)
    assert proc.returncode != 0 and "uda True (now False)" in proc.stderr
