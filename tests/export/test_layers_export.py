"""Every layer of trainer/layers (and the converter traps around them) in every format.

Each layer sits between a 3x3 convolution and a tanh head, as in the generators, so the
quantized variants see the value ranges they see in a real path.
"""

import keras
import numpy as np
import pytest

from export import api
from export import metadata as metadata_lib
from trainer.layers import InstanceNormalization, ReflectionPad2D, ResidualBlock

SIZE = 16
FORMATS = ("tflite", "onnx", "keras", "savedmodel")

LAYERS = {
    "instance_norm": lambda: InstanceNormalization(),
    "instance_norm_affine": lambda: InstanceNormalization(center=True, scale=True),
    # Large reflection pads were reported to give wrong results in TFLite.
    "reflection_pad_7": lambda: keras.Sequential(
        [ReflectionPad2D(7), keras.layers.Conv2D(4, 15)], name="pad_then_conv"
    ),
    "residual_block": lambda: ResidualBlock(4),
    "conv_transpose": lambda: keras.Sequential(
        [
            keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same"),
            keras.layers.AveragePooling2D(2),
        ],
        name="up_down",
    ),
}


def _model(layer):
    x = inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    x = layer(x)
    x = keras.layers.Conv2D(3, 1)(x)
    return keras.Model(inputs, keras.layers.Activation("tanh", name="translated")(x))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_exports_in_every_format(tmp_path, name):
    keras.utils.set_random_seed(0)
    model = _model(LAYERS[name]())
    # Gamma/beta away from their initial 1/0 so the affine case checks them.
    for w in model.weights:
        if "gamma" in w.path or "beta" in w.path:
            w.assign(np.random.default_rng(1).uniform(0.5, 1.5, w.shape).astype("float32"))
    images = np.random.default_rng(2).integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
    result = api.export_paths(
        {"p": model},
        str(tmp_path),
        formats=FORMATS,
        run=metadata_lib.run_fields("toy", 0, None, SIZE, ["a", "b"]),
        images={"p": (images, images)},
        print_table=False,
    )
    by_file = {a["file"]: a for a in result["artifacts"]}
    expected = {
        "p.keras",
        "p_savedmodel",
        "p.tflite",
        "p_fp16.tflite",
        "p_int8.tflite",
        "p_int8_full.tflite",
        "p.onnx",
    }
    assert set(by_file) == expected
    for file, a in by_file.items():
        if a["precision"] == "int8_full" and a["status"] == "not supported":
            assert a["reason"]
            continue
        assert a["status"] == "ok", (file, a.get("parity"), a.get("error"))
        if a["precision"] == "fp32":
            assert a["parity"]["test_images"]["max_abs"] <= 1e-4
            assert a["parity"]["random"]["max_abs"] <= 1e-4
    assert result["failed"] == 0
