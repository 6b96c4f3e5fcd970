"""A translation path as a named serving graph: the common ground of every export format.

Each path (a ``trainer.methods.paths.Path``: a functional ``keras.Model``, possibly with
several inputs and outputs, and its declared inputs and outputs) becomes a ``tf.function``
whose arguments carry the declared input names and which returns ``{declared output name:
tensor}``. TFLite signatures, ONNX graphs and the SavedModel all take their
tensor names from it, so every artifact of a path has the same input and output names.
"""

import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

SERVING_KEY = "serving_default"


_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def input_names(model):
    """The names of ``model``'s ``keras.Input``s, in the model's order."""
    return [t.name for t in model.inputs]


def check_exportable(name, path):
    """Refuses what no converter can freeze or what contradicts the path's declaration (see
    ``trainer.methods.paths.Path``), with the fix in the message."""
    model = path.model
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"translation_paths()[{name!r}].model is a {type(model).__name__}, not a keras.Model."
        )
    if not getattr(model, "inputs", None):
        raise ValueError(
            f"translation_paths()[{name!r}] ({model.name}) has no symbolic inputs: return a "
            "functional keras.Model (keras.Model(inputs, outputs)), not a subclassed one."
        )
    declared_in, declared_out = path.input_names(), path.output_names()
    for decl in declared_in + declared_out:
        if not _SAFE_NAME.match(decl):
            raise ValueError(
                f"Path {name!r} declares a tensor named {decl!r}: exported graphs are fed and "
                "read by these names, so use letters, digits and underscores."
            )
    if len(set(declared_in + declared_out)) != len(declared_in) + len(declared_out):
        raise ValueError(
            f"Path {name!r} declares inputs {declared_in} and outputs {declared_out}: each "
            "name must be used once."
        )
    actual = input_names(model)
    if sorted(actual) != sorted(declared_in):
        raise ValueError(
            f"Path {name!r}: the model's inputs are named {actual} but the path declares "
            f"inputs {declared_in} (Path.inputs). Exported graphs are fed by the declared names: "
            "name each keras.Input as declared (keras.Input(shape, name=...)) or fix the "
            "declaration."
        )
    if len(model.outputs) != len(declared_out):
        raise ValueError(
            f"Path {name!r}: the model has {len(model.outputs)} output(s) but the path declares "
            f"{len(declared_out)} ({declared_out}, Path.outputs): declare one per output, in "
            "order."
        )
    for t in model.inputs:
        if any(d is None for d in t.shape[1:]):
            raise ValueError(
                f"Input {t.name} of path {name!r} has shape {tuple(t.shape)}: export needs fixed "
                "non-batch dimensions (build the path with keras.Input((size, size, 3)))."
            )


def io_specs(path):
    """(inputs, outputs) of a declared path as metadata.json entries (``decl.to_metadata``)."""
    model = path.model
    by_name = {t.name: t for t in model.inputs}
    inputs = [d.to_metadata([None, *by_name[d.name].shape[1:]]) for d in path.inputs]
    outputs = [d.to_metadata([None, *t.shape[1:]]) for d, t in zip(path.outputs, model.outputs)]
    return inputs, outputs


def call_model(model, args):
    """Runs ``model`` on positional tensors in input order; returns a list of outputs."""
    outs = model(args[0] if len(args) == 1 else list(args), training=False)
    if isinstance(outs, dict):
        outs = [outs[k] for k in model.output_names]
    elif not isinstance(outs, (list, tuple)):
        outs = [outs]
    return list(outs)


def serving_function(model, in_names, out_names, batch=None):
    """``tf.function(**inputs) -> {output name: tensor}`` with a batch axis of ``batch``
    (None: dynamic); arguments named and ordered by ``in_names``, outputs named in order by
    ``out_names``."""
    shapes = {t.name: t.shape for t in model.inputs}
    order = input_names(model)
    specs = [tf.TensorSpec([batch, *shapes[n][1:]], tf.float32, name=n) for n in in_names]

    def serve(*args):
        by_name = dict(zip(in_names, args))
        outs = call_model(model, [tf.cast(by_name[n], tf.float32) for n in order])
        return {n: tf.cast(o, tf.float32) for n, o in zip(out_names, outs)}

    # Signature input keys (SavedModel, TFLite, ONNX) come from the TensorSpec names.
    return tf.function(serve, input_signature=specs), specs


def keras_outputs(model, feeds, out_names):
    """{output name: numpy} of the Keras model on ``{input name: array}`` (inputs by the model's
    own names), outputs named in order by ``out_names``."""
    outs = call_model(model, [tf.constant(feeds[n], tf.float32) for n in input_names(model)])
    return {
        n: np.asarray(keras.ops.convert_to_numpy(o), np.float32) for n, o in zip(out_names, outs)
    }


def write_savedmodel(model, directory, in_names, out_names, batch=None):
    """A SavedModel with one ``serving_default`` signature (TF Serving's default key), batch
    axis ``batch`` (None: dynamic)."""
    fn, specs = serving_function(model, in_names, out_names, batch)
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
        inputs = [
            keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name) for t in model.inputs
        ]
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
