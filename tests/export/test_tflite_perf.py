"""LiteRT runs the exported generators as ONE XNNPACK partition, with unchanged parity.

Partition counts are deterministic (the delegate's node list after ``allocate_tensors``), so
these tests pin the formulation that makes LiteRT fast without timing anything: reflection
padding as slices + concatenations (no MIRROR_PAD), a static batch of 1 (no shape arithmetic
around TRANSPOSE_CONV), a domain map broadcast with a multiplication (no TILE).
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from export import graph, tflite
from export.runtime import Translator
from trainer.layers import InstanceNormalization, ReflectionPad2D, ResidualBlock

from .conftest import SIZE, tiny_generator


def composed_path():
    """E1 -> G2 as two nested functional models with a shared middle layer, as UNIT's a2b."""
    shared = ResidualBlock(4, name="shared")
    x = keras.Input((SIZE, SIZE, 3), name="image")
    h = ReflectionPad2D(3)(x)
    h = keras.layers.Conv2D(4, 7)(h)
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same")(h)
    h = InstanceNormalization()(h)
    enc = keras.Model(x, shared(ResidualBlock(4)(h)), name="enc_a")
    code = keras.Input((SIZE // 2, SIZE // 2, 4), name="code")
    y = ResidualBlock(4)(shared(code))
    y = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(y)
    y = ReflectionPad2D(3)(y)
    y = keras.layers.Conv2D(3, 7)(y)
    dec = keras.Model(code, keras.layers.Activation("tanh")(y), name="dec_b")
    image = keras.Input((SIZE, SIZE, 3), name="image")
    return keras.Model(image, dec(enc(image)), name="a2b")


def two_input_path():
    """G(x, c) with the one-hot target domain broadcast over the image as ``c * ones``: a
    broadcasting MUL, which XNNPACK runs (UpSampling2D / tf.tile would be TILE, which it
    does not)."""
    image = keras.Input((SIZE, SIZE, 3), name="image")
    domain = keras.Input((3,), name="target_domain")
    c = keras.layers.Reshape((1, 1, 3))(domain)
    c = keras.layers.Lambda(
        lambda c: c * tf.ones([1, SIZE, SIZE, 1]), output_shape=(SIZE, SIZE, 3)
    )(c)
    x = ReflectionPad2D(1)(image)
    x = keras.layers.Conv2D(4, 3)(x)
    x = InstanceNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Concatenate()([x, c])
    x = keras.layers.Conv2D(3, 1)(x)
    return keras.Model([image, domain], keras.layers.Activation("tanh", name="translated")(x))


PATHS = {"cyclegan_generator": tiny_generator, "encoder_decoder": composed_path}
PATHS["two_inputs"] = two_input_path


def _names(model):
    """(input names, output names) of a test model: its own."""
    return graph.input_names(model), list(model.output_names)


def _savedmodel(model, directory, batch=tflite.BATCH):
    return graph.write_savedmodel(model, directory, *_names(model), batch=batch)


def _feeds(model, n, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, t in zip(graph.input_names(model), model.inputs):
        if len(t.shape) == 2:
            feeds[name] = np.eye(t.shape[1], dtype=np.float32)[np.arange(n) % t.shape[1]]
        else:
            feeds[name] = rng.uniform(-1, 1, (n, *t.shape[1:])).astype(np.float32)
    return feeds


@pytest.mark.parametrize("name", sorted(PATHS))
def test_fp32_tflite_is_one_xnnpack_partition_with_parity(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = PATHS[name]()
    source = tflite.write_savedmodel(model, str(tmp_path / "sm"), *_names(model))
    path = str(tmp_path / "p.tflite")
    with open(path, "wb") as f:
        f.write(tflite.convert(source, "fp32"))
    partitions, builtin = tflite.delegate_partitions(path)
    assert (partitions, builtin) == (1, {})
    # The artifact declares its static batch; the Translator feeds a batch as single calls.
    translator = Translator(path, metadata={})
    assert all(s["shape"][0] == 1 for s in translator.metadata["inputs"])
    feeds = _feeds(model, 3)
    got = translator.run(feeds)
    want = graph.keras_outputs(model, feeds, _names(model)[1])
    for key in want:
        assert got[key].shape == want[key].shape
        assert np.abs(got[key] - want[key]).max() <= 1e-4


def test_dynamic_batch_with_mirror_pad_would_split_the_graph(tmp_path):
    """The counter sees what the fix removed: a dynamic batch adds builtin shape ops."""
    model = tiny_generator()
    source = _savedmodel(model, str(tmp_path / "sm"), batch=None)
    partitions, builtin = tflite.delegate_partitions(tflite.convert(source, "fp32"))
    assert partitions > 1
    assert builtin.get("SHAPE", 0) >= 1


def test_exported_tflite_declares_batch_one_and_runs_batches(tiny_export):
    export_dir, model, result = tiny_export
    by_file = {a["file"]: a for a in result["artifacts"]}
    entry = by_file["a2b.tflite"]
    assert entry["inputs"][0]["shape"] == [1, SIZE, SIZE, 3]
    assert entry["outputs"][0]["shape"][0] == 1
    assert by_file["a2b.onnx"]["inputs"][0]["shape"][0] is None
    assert entry["parity"]["test_images"]["examples"] > 1 and entry["status"] == "ok"
    path = os.path.join(export_dir, "a2b.tflite")
    assert tflite.delegate_partitions(path) == (1, {})
    images = np.random.default_rng(5).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    out = Translator(path).translate(images)
    assert out.shape == (3, SIZE, SIZE, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(Translator(path).translate(images[1]), out[1])


def test_reflection_pad_exports_without_mirror_pad_and_matches_in_onnx(tmp_path):
    import onnxruntime as ort

    from export import onnx as onnx_lib

    model = tiny_generator()
    proto = onnx_lib.convert(model, *_names(model))
    assert "Pad" not in {node.op_type for node in proto.graph.node}
    onnx_lib.save(proto, str(tmp_path / "g.onnx"))
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    x = _feeds(model, 2)["image"]
    (got,) = session.run(None, {"image": x})
    (want,) = graph.keras_outputs(model, {"image": x}, _names(model)[1]).values()
    assert np.abs(got - want).max() <= 1e-4


def test_full_int8_keeps_norm_statistics_and_scaling_in_float_and_stays_one_partition(tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny_generator()
    source = tflite.write_savedmodel(model, str(tmp_path / "sm"), *_names(model))
    norms = sum(isinstance(layer, InstanceNormalization) for layer in _layers(model))
    # Per norm: the four ops of the variance branch, the centring SUB and the scaling MUL.
    float_model = tflite.convert(source, "fp32")
    kept = tflite.float_nodes(float_model)
    assert len(kept) == len(set(kept)) == 6 * norms
    assert sorted(_op_of(float_model, kept)) == sorted(
        ["RSQRT", "ADD", "MEAN", "SQUARED_DIFFERENCE", "SUB", "MUL"] * norms
    )
    rng = np.random.default_rng(0)
    samples = [{"image": rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32)}]
    content = tflite.convert(source, "int8_full", tflite.representative_dataset(samples * 4))
    assert tflite.delegate_partitions(content) == (1, {})
    ops = _op_types(content)
    assert {"RSQRT", "CONV_2D", "QUANTIZE", "DEQUANTIZE"} <= ops
    # The centred tensor and its scaling are float tensors in the int8 model.
    dtypes = _tensor_dtypes(content)
    assert all(dtypes[name] == np.float32 for name in kept if name in dtypes)
    assert sum(dtypes.get(name) == np.float32 for name in kept) == 6 * norms


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        yield from getattr(layer, "_layers", [])


def _op_of(content, tensor_names):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    by_output = {
        names[int(op["outputs"][0])]: op["op_name"] for op in interpreter._get_ops_details()
    }
    return [by_output[name] for name in tensor_names]


def _tensor_dtypes(content):
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=content).get_tensor_details()
    return {t["name"]: t["dtype"] for t in details}


def _op_types(content):
    from ai_edge_litert.interpreter import Interpreter

    return {op["op_name"] for op in Interpreter(model_content=content)._get_ops_details()}


def test_onnx_int8_is_a_qdq_artifact_with_parity_and_metadata(tmp_path):
    import onnx

    from export import api

    keras.utils.set_random_seed(0)
    model = tiny_generator()
    images = np.random.default_rng(1).integers(0, 256, (8, SIZE, SIZE, 3), dtype=np.uint8)
    result = api.export_paths(
        {"a2b": model},
        str(tmp_path),
        formats="onnx_int8",
        images={"a2b": (images, images)},
        allow_parity_failure=True,
        print_table=False,
    )
    (entry,) = result["artifacts"]
    assert (entry["file"], entry["format"], entry["precision"]) == ("a2b_int8.onnx", "onnx", "int8")
    assert entry["calibration"] == {"examples": 8, "source": "training images"}
    assert entry["parity"]["bound"] == {"psnr": 30.0}
    psnr = entry["parity"]["test_images"]["psnr"]
    assert (entry["status"] == "ok") == (psnr >= 30.0)
    path = tmp_path / "a2b_int8.onnx"
    proto = onnx.load(path)
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert "img2img.metadata" in {p.key for p in proto.metadata_props}
    # No fp32 .onnx was asked for: none is left behind, nor any scratch file.
    assert sorted(os.listdir(tmp_path)) == ["a2b_int8.onnx", "metadata.json"]
    out = Translator(str(path), allow_below_bound=True).translate(images[:2])
    assert out.shape == (2, SIZE, SIZE, 3)
