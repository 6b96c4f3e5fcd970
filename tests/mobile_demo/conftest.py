"""Tiny exported models for the mobile_demo tests.

Builds, once per test session, an export directory shaped like the one the export stage writes:
an unconditional path ``a2b`` (input ``image``) and a conditional path ``g`` (inputs ``image`` and
``target_domain`` one-hot), each as ``.onnx`` and every TFLite variant, plus ``metadata.json``.
"""

import os

import numpy as np
import pytest

IMAGE_SIZE = 16
DOMAINS = ("mnist", "digits", "mnist_m")


def _unconditional(keras, size):
    image = keras.Input((size, size, 3), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    out = keras.layers.Conv2D(3, 3, padding="same", activation="tanh", name="translated")(h)
    return keras.Model(image, out, name="a2b")


def _conditional(keras, size, num_domains):
    image = keras.Input((size, size, 3), name="image")
    domain = keras.Input((num_domains,), name="target_domain")
    c = keras.layers.Dense(4)(domain)
    c = keras.layers.Reshape((1, 1, 4))(c)
    c = keras.layers.UpSampling2D(size)(c)
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    h = keras.layers.Concatenate()([h, c])
    out = keras.layers.Conv2D(3, 3, padding="same", activation="tanh", name="translated")(h)
    return keras.Model([image, domain], out, name="g")


def _representative(model, size, num_domains):
    rng = np.random.default_rng(0)

    def gen():
        for _ in range(8):
            x = rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
            if len(model.inputs) == 1:
                yield {"image": x}
            else:
                c = np.eye(num_domains, dtype=np.float32)[[rng.integers(num_domains)]]
                # By name: the converted model's input order need not match Keras's.
                yield {"image": x, "target_domain": c}

    return gen


def _write_tflite(tf, model, path, variant, size, num_domains):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8_full":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(model, size, num_domains)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with open(path, "wb") as f:
        f.write(converter.convert())


def build_export_dir(root, size=IMAGE_SIZE, domains=DOMAINS):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(0)
    os.makedirs(root, exist_ok=True)
    models = {
        "a2b": _unconditional(keras, size),
        "g": _conditional(keras, size, len(domains)),
    }
    from export import metadata as md

    run = md.run_fields("tiny", 1, None, size, domains)
    paths = {
        "a2b": {"source_domain": domains[0], "target_domain": domains[1], "description": "a to b"},
        "g": {"source_domain": None, "target_domain": None, "description": "image to any domain"},
    }
    meta = md.new_metadata(run, paths)
    for name, model in models.items():
        signature = [
            tf.TensorSpec((None, *inp.shape[1:]), tf.float32, name=inp.name) for inp in model.inputs
        ]
        inputs = [
            md.tensor_spec(inp.name, (None, *inp.shape[1:]), labels=domains) for inp in model.inputs
        ]
        outputs = [md.tensor_spec("translated", (None, size, size, 3), kind="image")]
        fields = {**run, **paths[name], "inputs": inputs, "outputs": outputs, "status": md.OK}
        onnx_file = md.artifact_file(name, "onnx")
        onnx_path = os.path.join(root, onnx_file)
        tf2onnx.convert.from_keras(
            model, input_signature=signature, opset=17, output_path=onnx_path
        )
        meta["artifacts"].append(
            {
                **fields,
                "file": onnx_file,
                "path": name,
                "format": "onnx",
                "precision": "fp32",
                "runtime": md.RUNTIMES["onnx"],
                "size_bytes": os.path.getsize(onnx_path),
            }
        )
        for _, precision in md.TFLITE_VARIANTS:
            fname = md.artifact_file(name, "tflite", precision)
            fpath = os.path.join(root, fname)
            _write_tflite(tf, model, fpath, precision, size, len(domains))
            meta["artifacts"].append(
                {
                    **fields,
                    "file": fname,
                    "path": name,
                    "format": "tflite",
                    "precision": precision,
                    "runtime": md.RUNTIMES["tflite"],
                    "size_bytes": os.path.getsize(fpath),
                }
            )
    meta["artifacts"] = md.merge_artifacts([], meta["artifacts"])
    md.write_metadata(root, meta)
    return root


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    """An export directory with tiny ``a2b`` and conditional ``g`` paths in every format."""
    return build_export_dir(str(tmp_path_factory.mktemp("tiny_export")))


@pytest.fixture
def test_image_png(tmp_path):
    """A deterministic IMAGE_SIZE x IMAGE_SIZE RGB PNG and its pixels."""
    from PIL import Image

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    path = tmp_path / "input.png"
    Image.fromarray(pixels).save(path)
    return str(path), pixels
