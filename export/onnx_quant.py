"""ONNX Runtime static int8 quantization (QDQ) of an exported fp32 ONNX path.

    from export import onnx_quant
    onnx_quant.quantize("export/a2b.onnx", "export/a2b_int8.onnx", samples)

``samples``: calibration feeds ``[{input name: float32 array [1, ...]}]``, from the path's
training images (``export.api.calibration_samples``). Convolutions and dense layers (but not
the thin image stem and head, see ``MIN_CHANNELS``) get int8 weights, symmetric per output
channel, and uint8 activations with min/max ranges calibrated on the samples (u8 x s8 is the pair x86's int8 dot products and ONNX Runtime's
fused QLinearConv kernels are fastest on; s8 activations measured 1.4x slower than fp32 here,
u8 1.3x faster). Normalizations, padding slices and the tanh head stay in float between
QuantizeLinear / DequantizeLinear pairs: quantizing every op cost 2 dB more and no time.
The result is a plain .onnx with a dynamic batch, run by ``export.runtime.Translator`` and
the service like the fp32 file.
"""

import logging
import os
import tempfile

import numpy as np


class _DropPreprocessingHint(logging.Filter):
    def filter(self, record):
        return "pre-processing" not in str(record.msg) and "pre-process" not in str(record.msg)


# The ops whose inputs and weights are quantized: the convolutions carry nearly all the work.
QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# Convolutions with this few input or output channels stay in float: the image stem (3 in)
# and the head (3 out) are memory-bound, quantizing their 3-channel tensors costs a
# Quantize/Dequantize pass each and ~1 dB, and saves no arithmetic (measured on the 128 px
# generator: int8 / fp32 CPU time 0.71 with them quantized, 0.55 without; PSNR +1 dB).
MIN_CHANNELS = 5


def thin_convolutions(proto, min_channels=MIN_CHANNELS):
    """Names of the Conv/ConvTranspose nodes of ``proto`` with fewer than ``min_channels``
    input or output channels (read from their weight initializers)."""
    weights = {w.name: list(w.dims) for w in proto.graph.initializer}
    names = []
    for node in proto.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose") or len(node.input) < 2:
            continue
        dims = weights.get(node.input[1])
        if not dims or len(dims) < 2:
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1) or 1
        if node.op_type == "Conv":
            out_channels, in_channels = dims[0], dims[1] * group
        else:
            in_channels, out_channels = dims[0], dims[1] * group
        if min(in_channels, out_channels) < min_channels:
            names.append(node.name)
    return names


# Calibration samples whose intermediate tensors are held at once: the MinMax calibrator keeps
# every intermediate tensor of what it is given (tens of GB for 32 samples of a 256 px
# generator), so it is given one sample at a time and merges the ranges ("CalibStridedMinMax"),
# which gives the same min/max as all samples at once.
CALIBRATION_STRIDE = 1


def quantize(fp32_path, out_path, samples, per_channel=True, op_types=QUANTIZED_OPS):
    """Writes the QDQ int8 model of ``fp32_path`` to ``out_path`` (via a temporary name)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    samples = list(samples)
    if not samples:
        raise ValueError("Static int8 quantization needs calibration samples (got none).")
    excluded = thin_convolutions(onnx.load(fp32_path))

    class Reader(CalibrationDataReader):
        """The samples, in ranges the strided calibration sets (``set_range``)."""

        def __init__(self):
            self._samples = iter(samples)

        def __len__(self):
            return len(samples)

        def set_range(self, start_index, end_index):
            self._samples = iter(samples[start_index:end_index])

        def get_next(self):
            sample = next(self._samples, None)
            if sample is None:
                return None
            return {k: np.asarray(v, np.float32) for k, v in sample.items()}

    tmp = os.path.join(
        os.path.dirname(os.path.abspath(out_path)), f".tmp-{os.path.basename(out_path)}"
    )
    # The quantizer suggests its pre-processing (shape inference + graph optimization) on
    # the root logger; measured here it changed neither speed nor PSNR, so the hint is noise.
    hint = _DropPreprocessingHint()
    logging.getLogger().addFilter(hint)
    try:
        quantize_static(
            fp32_path,
            tmp,
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=None if op_types is None else list(op_types),
            nodes_to_exclude=excluded,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={
                "ActivationSymmetric": False,
                "WeightSymmetric": True,
                "CalibStridedMinMax": CALIBRATION_STRIDE,
            },
            calibration_providers=["CPUExecutionProvider"],
        )
    finally:
        logging.getLogger().removeFilter(hint)
    os.replace(tmp, out_path)
    return out_path


def write(model, path, in_names, out_names, samples, fp32_path=None):
    """Writes ``path``, the int8 ONNX of the Keras path ``model`` (inputs and outputs named
    ``in_names`` / ``out_names``), from the fp32 ONNX at ``fp32_path`` when it exists (else
    converted here into a scratch file)."""
    if fp32_path and os.path.isfile(fp32_path):
        return quantize(fp32_path, path, samples)
    from export import onnx as onnx_lib

    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(prefix=".onnx-fp32-", dir=directory) as scratch:
        source = os.path.join(scratch, "model.onnx")
        onnx_lib.write(model, source, in_names, out_names)
        return quantize(source, path, samples)
