"""TFLite (LiteRT) writers: fp32, float16 weights, dynamic-range int8 and full int8.

All variants are converted from a SavedModel of the path (``write_savedmodel`` here):
converting a concrete function that captures Keras 3 variables keeps them as resource
variables, which LiteRT then reads as garbage; the SavedModel route freezes them and keeps
the named signature (inputs and outputs by name).

The TFLite graph has a static batch of 1 (inputs ``[1, ...]``): with a dynamic batch the
converter writes shape arithmetic (SHAPE, STRIDED_SLICE, PACK) around every TRANSPOSE_CONV,
which the XNNPACK delegate does not take, so LiteRT ran the graph in many pieces with
builtin kernels between them. At batch 1 (and with ``ReflectionPad2D`` written as slices and
concatenations) the fp32 generators run as ONE XNNPACK partition; ``delegate_partitions``
counts them. Runtimes feed N images as N calls (``export.runtime`` does).
"""

import os
import warnings

import numpy as np
import tensorflow as tf

from export import graph
from export.graph import SERVING_KEY

BATCH = 1

PRECISIONS = ("fp32", "fp16", "int8", "int8_full")


class ConversionNotSupported(Exception):
    """The converter cannot produce this variant for these ops; ``str()`` says why."""


def _first_line(e):
    text = " ".join(str(e).split())
    # MLIR errors put the useful part after "error:".
    if "error:" in text:
        text = text[text.index("error:") + len("error:") :].strip()
    return text[:300] or type(e).__name__


def write_savedmodel(model, directory, in_names, out_names, batch=BATCH):
    """The SavedModel every TFLite variant is converted from: one ``serving_default``
    signature with the declared input and output names and a static batch of ``batch``."""
    return graph.write_savedmodel(model, directory, in_names, out_names, batch=batch)


def artifact_specs(specs, batch=BATCH):
    """Metadata tensor specs with the TFLite artifact's static batch (copies)."""
    return [{**s, "shape": [batch, *s["shape"][1:]]} for s in specs]


def delegate_partitions(model, threads=1):
    """How LiteRT's XNNPACK delegate takes ``model`` (a path or .tflite bytes):
    ``(partitions, {op name: count})`` with the ops left to builtin kernels between them.

    One partition and no builtin op is the fast case: every partition boundary is a round
    trip through memory and a builtin kernel is single-threaded reference code.
    """
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, (str, os.PathLike)):
        interpreter = Interpreter(model_path=os.fspath(model), num_threads=threads)
    else:
        interpreter = Interpreter(model_content=bytes(model), num_threads=threads)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {int(t): op["index"] for op in original for t in op["outputs"]}
    by_index = {op["index"]: op for op in original}
    delegated = set()
    # A partition is every node between the delegate node's inputs and its outputs.
    for node in delegates:
        stop = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            index = producer.get(stack.pop())
            if index is None or index in delegated:
                continue
            delegated.add(index)
            stack.extend(int(t) for t in by_index[index]["inputs"] if int(t) not in stop)
    builtin = {}
    for op in original:
        if op["index"] not in delegated:
            builtin[op["op_name"]] = builtin.get(op["op_name"], 0) + 1
    return len(delegates), builtin


def convert(savedmodel_dir, precision="fp32", representative=None, float_model=None):
    """Returns the .tflite bytes of ``savedmodel_dir``'s serving signature in ``precision``.

    ``representative``: for "int8_full", a callable returning an iterable of
    ``{input name: float32 array [1, ...]}`` calibration samples. ``float_model``: for
    "int8_full", the fp32 .tflite bytes of the same SavedModel when already converted (its
    normalizations are read from them; converted here otherwise).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown TFLite precision {precision!r}: one of {PRECISIONS}.")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        savedmodel_dir, signature_keys=[SERVING_KEY]
    )
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision == "int8_full":
        if representative is None:
            raise ValueError("Full int8 quantization needs a representative dataset.")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        # Float in and out so callers feed the same [-1, 1] tensors as to the fp32 model.
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    try:
        with warnings.catch_warnings():
            # Calibration runs TF's own deprecated interpreter; that is the converter's business.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            if precision == "int8_full":
                return _full_integer(converter, savedmodel_dir, representative, float_model)
            return converter.convert()
    except Exception as e:  # the converter raises ConverterError, RuntimeError, ValueError ...
        if precision == "fp32":
            raise
        raise ConversionNotSupported(_first_line(e)) from e


# The variance branch of a normalization as the converter lowers it (read from the output
# backwards): rsqrt(mean(squared_difference(x, mean)) + epsilon).
_VARIANCE_CHAIN = ("RSQRT", "ADD", "MEAN", "SQUARED_DIFFERENCE")


def float_nodes(content):
    """Output tensor names of every normalization's ops that stay in float in full int8, in
    the .tflite ``content``: the variance branch and the centring and scaling
    ``(x - mean) * rsqrt(...)``.

    The variance branch loses the picture in int8 (squares span a range 8 bits cannot hold),
    and XNNPACK takes neither an int8 SQUARED_DIFFERENCE nor RSQRT nor an int8 ADD of epsilon,
    so each norm split the graph into three more partitions of builtin kernels. The centred
    tensor ``x - mean`` shares one int8 scale across channels before each channel is
    multiplied by its own 1 / std: a channel with a small spread keeps a few of the 256 levels
    and its error is multiplied back up (the main job's UNIT a2b: 24.5 dB with it in int8,
    30.3 dB without). Kept in float, they run inside the one XNNPACK partition between
    QUANTIZE / DEQUANTIZE pairs, at no measured cost (CycleGAN generator, 128 px: 151 and
    149 ms).
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=bytes(content))
    ops = interpreter._get_ops_details()
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    producer = {int(t): op for op in ops for t in op["outputs"]}

    def feeding(op, kind):
        found = [producer.get(int(t)) for t in op["inputs"]]
        return [p for p in found if p is not None and p["op_name"] == kind]

    found = []
    for op in ops:
        if op["op_name"] == _VARIANCE_CHAIN[0]:
            chain = [op]
            for want in _VARIANCE_CHAIN[1:]:
                feeders = feeding(chain[-1], want)
                if not feeders:
                    break
                chain.append(feeders[0])
            found += [names[int(node["outputs"][0])] for node in chain]
        elif op["op_name"] == "MUL" and feeding(op, "RSQRT"):
            found += [names[int(node["outputs"][0])] for node in [op, *feeding(op, "SUB")]]
    return found


def _full_integer(converter, savedmodel_dir, representative, float_model=None):
    """Full-integer conversion with the normalizations' statistics and scaling in float (see
    ``float_nodes``); every other op in int8 with per-channel weights."""
    if float_model is None:
        float_model = tf.lite.TFLiteConverter.from_saved_model(
            savedmodel_dir, signature_keys=[SERVING_KEY]
        ).convert()
    nodes = float_nodes(float_model)
    if not nodes:
        # Every op in int8 (fails rather than falling back to float).
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=representative,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes),
    )
    return debugger.get_nondebug_quantized_model()


def write(savedmodel_dir, path, precision="fp32", representative=None, float_model=None):
    """Converts and writes ``path`` (via a temporary name); returns the path."""
    content = convert(savedmodel_dir, precision, representative, float_model)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".tmp-{os.path.basename(path)}")
    with open(tmp, "wb") as f:
        f.write(content)
    os.replace(tmp, path)
    return path


def representative_dataset(samples):
    """A converter callable over ``samples``: a list of ``{name: array [1, ...]}`` dicts."""

    def gen():
        for sample in samples:
            yield {k: np.asarray(v, np.float32) for k, v in sample.items()}

    return gen
