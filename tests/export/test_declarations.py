"""The export stage reads each path's declaration: metadata entries, feeds, names, skips."""

import json

import keras
import numpy as np
import pytest

from export import api, verify
from trainer.methods import paths

SIZE = 8


def noise_path(dim=4):
    z = keras.Input((dim,), name="z")
    x = keras.layers.Dense(SIZE * SIZE * 3, activation="tanh")(z)
    return keras.Model(z, keras.layers.Reshape((SIZE, SIZE, 3), name="image")(x), name="z2a")


def test_noise_feeds_and_calibration_stay_inside_the_declared_prior(tmp_path, monkeypatch):
    fed = []
    real = verify.make_feeds

    def recording(*args, **kwargs):
        feeds = real(*args, **kwargs)
        fed.append(feeds["z"])
        return feeds

    monkeypatch.setattr(verify, "make_feeds", recording)
    path = paths.Path(
        noise_path(),
        inputs=(paths.Noise("z", paths.uniform(-1.0, 1.0)),),
        outputs=(paths.Image("image"),),
    )
    result = api.export_paths({"z2a": path}, str(tmp_path), formats="tflite", print_table=False)
    by_file = {a["file"]: a for a in result["artifacts"]}
    # Parity sets and the int8 calibration set were all drawn (and drawn from U(-1, 1)).
    values = np.concatenate([f.ravel() for f in fed])
    assert len(fed) >= 2 and values.size >= 4 * (verify.QUANTIZED_EXAMPLES + 32)
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert values.min() < -0.9 and values.max() > 0.9  # the whole range, not a corner of it
    assert by_file["z2a_int8_full.tflite"]["calibration"]["examples"] == api.CALIBRATION_EXAMPLES
    meta = json.load(open(tmp_path / "metadata.json"))
    (z,) = meta["artifacts"][0]["inputs"]
    assert z == {
        "name": "z",
        "kind": "noise",
        "shape": [1, 4],  # TFLite artifacts declare their static batch of 1
        "dtype": "float32",
        "prior": {"distribution": "uniform", "low": -1.0, "high": 1.0},
        "distribution": "uniform(-1, 1)",
    }


def test_make_feeds_draws_the_declared_prior():
    spec = paths.Noise("z", paths.uniform(-0.5, 0.5)).to_metadata([None, 16])
    z = verify.make_feeds([spec], n=200)["z"]
    assert z.min() >= -0.5 and z.max() <= 0.5
    spec = paths.Noise("z", paths.normal(3.0, 0.1)).to_metadata([None, 16])
    assert abs(float(verify.make_feeds([spec], n=200)["z"].mean()) - 3.0) < 0.05


def test_model_inputs_must_match_the_declaration(tmp_path):
    path = paths.Path(
        noise_path(), inputs=(paths.Noise("code", paths.uniform()),), outputs=(paths.Image("y"),)
    )
    with pytest.raises(ValueError, match=r"inputs are named \['z'\] but the path declares"):
        api.export_paths({"z2a": path}, str(tmp_path), formats="onnx")
    path = paths.Path(
        noise_path(),
        inputs=(paths.Noise("z", paths.uniform()),),
        outputs=(paths.Image("a"), paths.Image("b")),
    )
    with pytest.raises(ValueError, match=r"has 1 output\(s\) but the path declares 2"):
        api.export_paths({"z2a": path}, str(tmp_path), formats="onnx")


def test_paths_not_exported_are_skipped(tmp_path):
    inverse = paths.Path(None, inputs=(), outputs=(), exported=False, description="by inversion")
    path = paths.Path(
        noise_path(), inputs=(paths.Noise("z", paths.uniform()),), outputs=(paths.Image("y"),)
    )
    result = api.export_paths(
        {"a2b": inverse, "z2a": path}, str(tmp_path), formats="onnx", print_table=False
    )
    assert {a["path"] for a in result["artifacts"]} == {"z2a"}
    assert [s["name"] for s in result["artifacts"][0]["outputs"]] == ["y"]
    with pytest.raises(ValueError, match="no exported translation paths"):
        api.export_paths({"a2b": inverse}, str(tmp_path), formats="onnx")
    with pytest.raises(ValueError, match=r"has no path a2b \(a2b run in Python only"):
        api._select("toy", {"a2b": inverse, "z2a": path}, "a2b")


def test_bare_models_are_declared_from_their_path_info():
    image = keras.Input((SIZE, SIZE, 3), name="image")
    translate = keras.Model(image, keras.layers.Activation("tanh", name="translated")(image))
    infos = {
        "sample": {"z_distribution": "uniform(-1, 1)", "description": "pair"},
        "a2b": {"source_domain": "a", "target_domain": "b", "description": "G"},
    }
    declared = api.as_paths({"sample": noise_path(), "z2a": noise_path(), "a2b": translate}, infos)
    for name in ("sample", "z2a"):  # z2a states no prior: the method's one for z applies
        assert declared[name].inputs == (paths.Noise("z", paths.uniform(-1.0, 1.0)),)
    assert declared["a2b"].inputs == (paths.Image("image"),)
    assert declared["a2b"].outputs == (paths.Image("translated"),)
    assert declared["a2b"].info()["source_domain"] == "a"
    with pytest.raises(ValueError, match="input z .* has no declaration"):
        api.as_paths({"z2a": noise_path()})


def test_cogan_paths_declare_uniform_noise():
    from trainer.config import Config, DataConfig, EvalConfig, HParams, TrainConfig
    from trainer.methods import build
    from trainer.methods.cogan import CoGAN

    values = {k: s.default for k, s in CoGAN.hparam_specs().items()}
    values.update(filters=4, latent_dim=8, disc_layers=2)
    config = Config(
        method="cogan",
        data=DataConfig(image_size=16, batch_size=2),
        train=TrainConfig(train_steps=2),
        eval=EvalConfig(),
        hparams=HParams(values),
    )
    declared = api.method_paths(build(config))
    exported = {n for n, p in declared.items() if p.exported}
    assert exported == {"sample", "z2a", "z2b"}
    for name in exported:
        (z,) = declared[name].inputs
        assert z.kind == "noise" and z.prior == paths.uniform(-1.0, 1.0), name
