"""TFLite (LiteRT) writers: fp32, float16 weights, dynamic-range int8 and full int8.

All variants are converted from the path's SavedModel (``export.graph.write_savedmodel``):
converting a concrete function that captures Keras 3 variables keeps them as resource
variables, which LiteRT then reads as garbage; the SavedModel route freezes them and keeps
the named signature (inputs and outputs by name, dynamic batch).
"""

import os
import warnings

import numpy as np
import tensorflow as tf

from export.graph import SERVING_KEY

PRECISIONS = ("fp32", "fp16", "int8", "int8_full")


class ConversionNotSupported(Exception):
    """The converter cannot produce this variant for these ops; ``str()`` says why."""


def _first_line(e):
    text = " ".join(str(e).split())
    # MLIR errors put the useful part after "error:".
    if "error:" in text:
        text = text[text.index("error:") + len("error:") :].strip()
    return text[:300] or type(e).__name__


def convert(savedmodel_dir, precision="fp32", representative=None):
    """Returns the .tflite bytes of ``savedmodel_dir``'s serving signature in ``precision``.

    ``representative``: for "int8_full", a callable returning an iterable of
    ``{input name: float32 array [1, ...]}`` calibration samples.
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
        # Every op in int8 (fails rather than falling back to float); float in and out so
        # callers feed the same [-1, 1] tensors as to the fp32 model.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    try:
        with warnings.catch_warnings():
            # Calibration runs TF's own deprecated interpreter; that is the converter's business.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            return converter.convert()
    except Exception as e:  # the converter raises ConverterError, RuntimeError, ValueError ...
        if precision == "fp32":
            raise
        raise ConversionNotSupported(_first_line(e)) from e


def write(savedmodel_dir, path, precision="fp32", representative=None):
    """Converts and writes ``path`` (via a temporary name); returns the path."""
    content = convert(savedmodel_dir, precision, representative)
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
