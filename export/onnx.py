"""ONNX writer: tf2onnx from the path's named serving function, dynamic batch, metadata."""

import os

import onnx
import tf2onnx

from export import metadata as metadata_lib
from export.graph import serving_function

DEFAULT_OPSET = 17
BATCH_DIM = "batch"


def convert(model, in_names, out_names, opset=DEFAULT_OPSET):
    """The ``onnx.ModelProto`` of a functional Keras path, inputs and outputs named as declared."""
    fn, specs = serving_function(model, in_names, out_names)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=opset)
    # tf2onnx names the free batch axis unk__N; one shared name tells runtimes that every
    # input and output has the same batch size.
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM
    proto.producer_name = "img2img-edge"
    onnx.checker.check_model(proto)
    return proto


def set_metadata(proto, artifact):
    """Replaces the model's ``metadata_props`` with ``artifact``'s (see export.metadata)."""
    entry = {k: v for k, v in artifact.items() if k != "size_bytes"}
    del proto.metadata_props[:]
    for key, value in metadata_lib.onnx_metadata_props(entry).items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    return proto


def save(proto, path):
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".tmp-{os.path.basename(path)}")
    onnx.save(proto, tmp)
    os.replace(tmp, path)
    return path


def write(model, path, in_names, out_names, artifact=None, opset=DEFAULT_OPSET):
    """Converts ``model`` and writes ``path``; returns the ModelProto (to update metadata)."""
    proto = convert(model, in_names, out_names, opset)
    if artifact is not None:
        set_metadata(proto, artifact)
    save(proto, path)
    return proto


def update_metadata(path, artifact):
    """Rewrites the ``metadata_props`` of the ONNX file at ``path`` (after parity is known)."""
    proto = onnx.load(path)
    set_metadata(proto, artifact)
    return save(proto, path)
