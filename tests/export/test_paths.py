"""Paths of every shape export and verify: two inputs, two outputs, encoder -> decoder.

The toy models are built from the project's layers, as StarGAN (image + target domain),
CoGAN (z -> (x_a, x_b)) and UNIT (E1 -> G2) will build theirs.
"""

import os

import keras
import numpy as np
import pytest

from export import api
from export import metadata as metadata_lib
from export.runtime import Translator
from trainer.layers import InstanceNormalization, ReflectionPad2D, ResidualBlock
from trainer.methods import paths

SIZE = 16
DOMAINS = ["black", "blond", "brown"]


def two_input_path():
    """G(x, c): the one-hot target domain tiled over the image, as in StarGAN."""
    image = keras.Input((SIZE, SIZE, 3), name="image")
    domain = keras.Input((len(DOMAINS),), name="target_domain")
    c = keras.layers.Reshape((1, 1, len(DOMAINS)))(domain)
    c = keras.layers.UpSampling2D(SIZE)(c)
    x = ReflectionPad2D(1)(image)
    x = keras.layers.Conv2D(4, 3)(x)
    x = InstanceNormalization()(x)
    x = keras.layers.ReLU()(x)
    # After the norm: instance norm would cancel a spatially constant domain map.
    x = keras.layers.Concatenate()([x, c])
    x = keras.layers.Conv2D(3, 1)(x)
    return keras.Model([image, domain], keras.layers.Activation("tanh", name="translated")(x))


def two_output_path():
    """z -> (x_a, x_b) with a shared trunk, as CoGAN's coupled generators."""
    z = keras.Input((8,), name="z")
    x = keras.layers.Dense(4 * 4 * 8)(z)
    x = keras.layers.Reshape((4, 4, 8))(x)
    x = keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same")(x)
    x = InstanceNormalization()(x)
    x = keras.layers.ReLU()(x)
    outs = []
    for name in ("x_a", "x_b"):
        y = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same")(x)
        outs.append(keras.layers.Activation("tanh", name=name)(y))
    return keras.Model(z, outs, name="cogan_g")


def composed_path():
    """E1 -> G2 as two nested functional models, as UNIT's a2b."""
    x = keras.Input((SIZE, SIZE, 3), name="image")
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)
    h = InstanceNormalization()(h)
    h = ResidualBlock(4)(h)
    enc = keras.Model(x, h, name="enc_a")
    code = keras.Input((SIZE // 2, SIZE // 2, 4), name="code")
    y = ResidualBlock(4)(code)
    y = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(y)
    y = ReflectionPad2D(1)(y)
    y = keras.layers.Conv2D(3, 3)(y)
    dec = keras.Model(code, keras.layers.Activation("tanh")(y), name="dec_b")
    image = keras.Input((SIZE, SIZE, 3), name="image")
    return keras.Model(image, dec(enc(image)), name="a2b")


def declared(model, *inputs, outputs=None):
    """``model`` with its declaration: ``inputs`` as given, NHWC outputs as images."""
    outs = outputs or tuple(paths.Image(n) for n in model.output_names)
    return paths.Path(model, inputs=tuple(inputs), outputs=outs, description=model.name)


def _export(tmp_path, name, path, formats):
    keras.utils.set_random_seed(0)
    result = api.export_paths(
        {name: path},
        str(tmp_path),
        formats=formats,
        run=metadata_lib.run_fields("toy", 1, "ckpt-1", SIZE, DOMAINS),
        print_table=False,
    )
    by_file = {a["file"]: a for a in result["artifacts"]}
    return result, by_file


def _assert_ok(by_file, files):
    for f in files:
        assert by_file[f]["status"] == "ok", (f, by_file[f])
    # Full int8 either passes its bound or says why the converter refused it.
    for f, a in by_file.items():
        if a["precision"] == "int8_full":
            assert a["status"] in ("ok", "not supported"), (f, a)


def test_two_input_path(tmp_path):
    model = two_input_path()
    path = declared(model, paths.Image("image"), paths.OneHot("target_domain", tuple(DOMAINS)))
    result, by_file = _export(tmp_path, "g", path, ("tflite", "onnx", "keras"))
    _assert_ok(by_file, ["g.onnx", "g.tflite", "g_fp16.tflite", "g_int8.tflite", "g.keras"])
    spec = {s["name"]: s for s in by_file["g.onnx"]["inputs"]}
    assert spec["image"]["kind"] == "image" and spec["target_domain"]["kind"] == "onehot"
    assert spec["target_domain"]["labels"] == DOMAINS
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    x = image[None].astype(np.float32) / 127.5 - 1
    for file in ("g.onnx", "g.tflite"):
        t = Translator(os.path.join(tmp_path, file))
        assert t.target_domains == DOMAINS
        out = t.translate(image, target_domain="blond")
        ref = np.asarray(model([x, np.eye(3, dtype=np.float32)[[1]]]))[0]
        assert np.abs(out.astype(np.float32) / 127.5 - 1 - ref).max() <= 1.5 / 127.5
        # Another domain changes the picture; an index selects the same as the name.
        assert not np.array_equal(out, t.translate(image, target_domain="black"))
        np.testing.assert_array_equal(out, t.translate(image, target_domain=1))
        with pytest.raises(ValueError, match="black, blond, brown"):
            t.translate(image)
        with pytest.raises(ValueError, match="Unknown target_domain"):
            t.translate(image, target_domain="red")


def test_two_output_path(tmp_path):
    model = two_output_path()
    path = declared(model, paths.Noise("z", paths.normal()))
    result, by_file = _export(tmp_path, "z", path, ("tflite", "onnx"))
    _assert_ok(by_file, ["z.onnx", "z.tflite", "z_fp16.tflite", "z_int8.tflite"])
    assert [s["name"] for s in by_file["z.onnx"]["outputs"]] == ["x_a", "x_b"]
    assert by_file["z.onnx"]["inputs"][0]["kind"] == "noise"
    for file in ("z.onnx", "z.tflite"):
        t = Translator(os.path.join(tmp_path, file))
        out = t.generate(3, seed=5)
        assert set(out) == {"x_a", "x_b"}
        assert out["x_a"].shape == (3, SIZE, SIZE, 3) and out["x_a"].dtype == np.uint8
        np.testing.assert_array_equal(out["x_b"], t.generate(3, seed=5)["x_b"])
        z = np.random.default_rng(5).standard_normal((3, 8)).astype(np.float32)
        ref = model(z)
        got = t.run({"z": z})
        for name, r in zip(("x_a", "x_b"), ref):
            assert np.abs(got[name] - np.asarray(r)).max() <= 1e-4
        with pytest.raises(ValueError, match="generates from noise"):
            t.translate(np.zeros((SIZE, SIZE, 3), np.uint8))


def test_composed_path(tmp_path):
    model = composed_path()
    path = paths.image_path(model, "black", "blond", "E1 -> G2")
    result, by_file = _export(tmp_path, "a2b", path, ("tflite", "onnx", "keras", "savedmodel"))
    _assert_ok(
        by_file,
        ["a2b.onnx", "a2b.tflite", "a2b_fp16.tflite", "a2b_int8.tflite", "a2b.keras"],
    )
    assert by_file["a2b_savedmodel"]["status"] == "ok"
    assert by_file["a2b.onnx"]["parity"]["random"]["max_abs"] <= 1e-4
    # The declared output name, not the nested model's own ("dec_b").
    assert [s["name"] for s in by_file["a2b.onnx"]["outputs"]] == ["translated"]
    t = Translator(os.path.join(tmp_path, "a2b.tflite"))
    assert t.translate(np.zeros((SIZE, SIZE, 3), np.uint8)).shape == (SIZE, SIZE, 3)


def coupled_path():
    """z -> (g1(z), g2(z)), two nested models sharing their trunk, as CoGAN's ``sample``; each
    has its own head layer under the same name."""
    trunk = [keras.layers.Dense(4 * 4 * 4, name="project"), keras.layers.Reshape((4, 4, 4))]

    def generator(name):
        z = keras.Input((8,), name="z")
        x = z
        for layer in trunk:
            x = layer(x)
        x = keras.layers.Conv2DTranspose(3, 3, strides=4, padding="same", name="head")(x)
        return keras.Model(z, keras.layers.Activation("tanh", name="image")(x), name=name)

    gen_a, gen_b = generator("gen_a"), generator("gen_b")
    z = keras.Input((8,), name="z")
    a = keras.layers.Activation("linear", name="image_a")(gen_a(z))
    b = keras.layers.Activation("linear", name="image_b")(gen_b(z))
    return keras.Model(z, [a, b], name="sample"), gen_a, gen_b


def _assert_keras_reloads(path_model, file, feeds):
    loaded = keras.saving.load_model(file, safe_mode=True, compile=False)
    want = path_model(feeds)
    got = loaded(feeds)
    for w, g in zip(want, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-6)


def test_path_of_models_sharing_layers_saves_as_keras(tmp_path):
    model, gen_a, gen_b = coupled_path()
    path = declared(model, paths.Noise("z", paths.uniform()))
    _, by_file = _export(tmp_path, "sample", path, ("keras",))
    assert by_file["sample.keras"]["status"] == "ok", by_file["sample.keras"]
    z = np.random.default_rng(0).uniform(-1, 1, (2, 8)).astype(np.float32)
    _assert_keras_reloads(model, tmp_path / "sample.keras", z)
    # Saving renamed nothing in the live models.
    assert gen_a.get_layer("head") is not gen_b.get_layer("head")
    assert gen_a.get_layer("project") is gen_b.get_layer("project")


@pytest.mark.slow
def test_cogan_sample_path_saves_as_keras(tmp_path):
    """The real CoGAN: its ``sample`` path's .keras file reloads and computes the same."""
    from trainer.config import Config, DataConfig, EvalConfig, HParams, TrainConfig
    from trainer.methods import build
    from trainer.methods.cogan import CoGAN

    values = {k: s.default for k, s in CoGAN.hparam_specs().items()}
    values.update(filters=4, latent_dim=8, disc_layers=2)
    config = Config(
        method="cogan",
        data=DataConfig(image_size=SIZE, batch_size=2),
        train=TrainConfig(train_steps=2),
        eval=EvalConfig(),
        hparams=HParams(values),
    )
    keras.utils.set_random_seed(0)
    declared_paths = api.method_paths(build(config))
    sample = declared_paths["sample"]
    _, by_file = _export(tmp_path, "sample", sample, ("keras",))
    assert by_file["sample.keras"]["status"] == "ok", by_file["sample.keras"]
    z = np.random.default_rng(1).uniform(-1, 1, (2, 8)).astype(np.float32)
    _assert_keras_reloads(sample.model, tmp_path / "sample.keras", z)
