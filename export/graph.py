"""A translation path as a named serving graph: the common ground of every export format.

Each path (a functional ``keras.Model``, possibly with several inputs and outputs) becomes a
``tf.function`` whose arguments are named like the model's inputs and which returns
``{output name: tensor}``. TFLite signatures, ONNX graphs and the SavedModel all take their
tensor names from it, so every artifact of a path has the same input and output names.
"""

import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from export import metadata as metadata_lib

SERVING_KEY = "serving_default"


def _clean(name, fallback):
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(name or "")).strip("_")
    return name or fallback


def io_names(model):
    """(input names, output names) of ``model``, unique and safe as graph tensor names."""
    inputs = [_clean(t.name, f"input_{i}") for i, t in enumerate(model.inputs)]
    raw = list(getattr(model, "output_names", None) or [])
    if len(raw) != len(model.outputs):
        raw = [t.name for t in model.outputs]
    outputs, seen = [], set(inputs)
    for i, name in enumerate(raw):
        name = _clean(name, f"output_{i}")
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        outputs.append(name)
    if len(set(inputs)) != len(inputs):
        raise ValueError(
            f"Model {model.name} has inputs with the same name ({inputs}): name each "
            "keras.Input (image, target_domain, z ...) so exported graphs can be fed by name."
        )
    return inputs, outputs


def io_specs(model, info=None, domains=()):
    """(inputs, outputs) as metadata tensor specs (see ``export.metadata``)."""
    info = info or {}
    labels = info.get("domains") or list(domains) or None
    in_names, out_names = io_names(model)
    kinds = info.get("input_kinds", {})
    inputs = [
        metadata_lib.tensor_spec(
            name,
            [None, *t.shape[1:]],
            "float32",
            kind=kinds.get(name),
            labels=info.get("input_labels", {}).get(name, labels),
        )
        for name, t in zip(in_names, model.inputs)
    ]
    outputs = [
        metadata_lib.tensor_spec(name, [None, *t.shape[1:]], "float32", kind=None)
        for name, t in zip(out_names, model.outputs)
    ]
    return inputs, outputs


def check_exportable(model, name):
    """Refuses what no converter can freeze, with the fix in the message."""
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"translation_paths()[{name!r}] is a {type(model).__name__}, not a keras.Model."
        )
    if not getattr(model, "inputs", None):
        raise ValueError(
            f"translation_paths()[{name!r}] ({model.name}) has no symbolic inputs: return a "
            "functional keras.Model (keras.Model(inputs, outputs)), not a subclassed one."
        )
    for t in model.inputs:
        if any(d is None for d in t.shape[1:]):
            raise ValueError(
                f"Input {t.name} of path {name!r} has shape {tuple(t.shape)}: export needs fixed "
                "non-batch dimensions (build the path with keras.Input((size, size, 3)))."
            )


def call_model(model, args):
    """Runs ``model`` on positional tensors in input order; returns a list of outputs."""
    outs = model(args[0] if len(args) == 1 else list(args), training=False)
    if isinstance(outs, dict):
        outs = [outs[k] for k in model.output_names]
    elif not isinstance(outs, (list, tuple)):
        outs = [outs]
    return list(outs)


def serving_function(model):
    """``tf.function(**inputs) -> {output name: tensor}`` with a dynamic batch axis."""
    in_names, out_names = io_names(model)
    specs = [
        tf.TensorSpec([None, *t.shape[1:]], tf.float32, name=n)
        for n, t in zip(in_names, model.inputs)
    ]

    def serve(*args):
        outs = call_model(model, [tf.cast(a, tf.float32) for a in args])
        return {n: tf.cast(o, tf.float32) for n, o in zip(out_names, outs)}

    # Signature input keys (SavedModel, TFLite, ONNX) come from the TensorSpec names.
    return tf.function(serve, input_signature=specs), specs


def keras_outputs(model, feeds, in_names=None, out_names=None):
    """{output name: numpy} of the Keras model on ``{input name: array}``; inputs are taken and
    outputs named in order by ``in_names`` / ``out_names`` (default: the model's own)."""
    if in_names is None or out_names is None:
        own_in, own_out = io_names(model)
        in_names, out_names = in_names or own_in, out_names or own_out
    outs = call_model(model, [tf.constant(feeds[n], tf.float32) for n in in_names])
    return {
        n: np.asarray(keras.ops.convert_to_numpy(o), np.float32) for n, o in zip(out_names, outs)
    }


def write_savedmodel(model, directory):
    """A SavedModel with one ``serving_default`` signature (TF Serving's default key)."""
    fn, specs = serving_function(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_KEY, fn, input_signature=specs)
    tmp = tempfile.mkdtemp(prefix=".savedmodel-", dir=os.path.dirname(os.path.abspath(directory)))
    try:
        archive.write_out(tmp, verbose=False)
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def flatten(model):
    """(flat model, renamed layers): ``model`` rebuilt as one functional graph over the same
    layer objects, nested functional models inlined.

    A path built from two models that share layers (CoGAN's ``sample``: ``g1(z), g2(z)`` with a
    common trunk) saves the shared layers under both nested models; Keras then loads their
    weights into the first only ("Layer 'project' expected 2 variables, but received 0"). Flat,
    each layer is stored once and called as often as the path uses it. Distinct layers of the
    same name in different nested models are renamed ``{model}_{name}`` for the flat graph;
    ``restore_names(renamed)`` gives them their names back.
    """
    from keras.src.models.functional import Functional

    owners, renamed = {}, []

    def inline(sub, inputs):
        def operation(op):
            if isinstance(op, Functional):
                return lambda *args, **kwargs: inline(op, args[0] if len(args) == 1 else args)
            if owners.setdefault(op.name, op) is not op:
                new, i = f"{sub.name}_{op.name}", 1
                while new in owners:
                    new, i = f"{sub.name}_{op.name}_{i}", i + 1
                renamed.append((op, op.name))
                op.name = new
                owners[new] = op
            return op

        return sub._run_through_graph(inputs, operation_fn=operation)

    try:
        inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name) for t in model.inputs]
        outputs = inline(model, inputs)
        flat = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=model.name)
    except BaseException:
        restore_names(renamed)
        raise
    return flat, renamed


def restore_names(renamed):
    for op, name in reversed(renamed):
        op.name = name


def write_keras(model, path):
    """``model`` in the Keras v3 format (as one flat graph, see ``flatten``), written to a
    temporary name first."""
    flat, renamed = flatten(model)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".tmp-{os.path.basename(path)}")
    try:
        flat.save(tmp)
    finally:
        restore_names(renamed)
    os.replace(tmp, path)
    return path


def size_bytes(path):
    if os.path.isdir(path):
        return sum(
            os.path.getsize(os.path.join(root, f))
            for root, _, files in os.walk(path)
            for f in files
        )
    return os.path.getsize(path)
