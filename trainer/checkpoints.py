"""Checkpoints of a model_dir: finding a readable one, restoring, cleaning up after kills.

Both the training loop (resume) and the later stages (evaluate, export) read checkpoints
through here. A damaged or missing latest checkpoint is never silently ignored: the newest
readable one is used and the person is told which one and why; when none is readable the run
stops with a clear error and nothing is deleted.
"""

import dataclasses
import os
import re

from trainer import config as config_lib
from trainer import console, io_utils

CHECKPOINT_SUBDIR = "checkpoints"
_CKPT_RE = re.compile(r"ckpt-(\d+)$")
_RESTORE_ATTEMPTS = 3


class IncompatibleModelDirError(ValueError):
    pass


class NoReadableCheckpointError(ValueError):
    pass


@dataclasses.dataclass
class Trained:
    model: object
    config: config_lib.Config
    step: int
    checkpoint: str


def checkpoint_dir(model_dir):
    return io_utils.join(model_dir, CHECKPOINT_SUBDIR)


def _step_of(prefix):
    match = _CKPT_RE.search(os.path.basename(prefix))
    return int(match.group(1)) if match else None


def _listed(ckpt_dir):
    """Checkpoint prefixes the ``checkpoint`` state file names, latest last."""
    import tensorflow as tf

    try:
        state = tf.train.get_checkpoint_state(ckpt_dir)
    except Exception:  # noqa: BLE001 - a damaged state file lists nothing
        return []
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    return [
        p if os.path.isabs(p) or io_utils.is_remote(p) else io_utils.join(ckpt_dir, p)
        for p in paths
    ]


def candidates(ckpt_dir):
    """Every checkpoint prefix in ``ckpt_dir`` (on disk or named by the state file), newest
    step first."""
    found = {}
    if io_utils.isdir(ckpt_dir):
        for index in io_utils.glob(io_utils.join(ckpt_dir, "ckpt-*.index")):
            prefix = index[: -len(".index")]
            step = _step_of(prefix)
            if step is not None:
                found[step] = prefix
    for prefix in _listed(ckpt_dir):
        step = _step_of(prefix)
        if step is not None:
            found.setdefault(step, io_utils.join(ckpt_dir, os.path.basename(prefix)))
    return [found[s] for s in sorted(found, reverse=True)]


def checkpoint_steps(model_dir):
    """The steps of ``model_dir``'s checkpoints (on disk or named by the state file), ascending."""
    return sorted(_step_of(p) for p in candidates(checkpoint_dir(model_dir)))


def unreadable_reason(prefix):
    """None if every tensor of the checkpoint ``prefix`` reads back, else why not."""
    import tensorflow as tf

    if not io_utils.exists(prefix + ".index"):
        return "its files are missing"
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)  # also for ram://, gs://
        dtypes = reader.get_variable_to_dtype_map()
        names = sorted(dtypes)
        # One RestoreV2 reads every tensor (iterator states included) without converting it.
        tf.raw_ops.RestoreV2(
            prefix=prefix,
            tensor_names=names,
            shape_and_slices=[""] * len(names),
            dtypes=[dtypes[n] for n in names],
        )
    except Exception as e:  # noqa: BLE001 - truncated files raise OutOfRange, DataLoss...
        text = re.sub(r"\{\{[^}]*\}\}\s*", "", getattr(e, "message", None) or str(e)).strip()
        text = re.sub(r"\s*\[Op:\w+\]$", "", text.splitlines()[0] if text else type(e).__name__)
        return f"unreadable: {text[:160]}"
    return None


def find_readable(model_dir, step=None, announce=True):
    """The newest readable checkpoint prefix of ``model_dir`` (or the one of ``step``), or None
    when the model dir has no checkpoint at all.

    Skipped damaged checkpoints are announced; when checkpoints exist but none is readable,
    raises NoReadableCheckpointError (nothing is deleted).
    """
    ckpt_dir = checkpoint_dir(model_dir)
    found = candidates(ckpt_dir)
    if step is not None:
        found = [p for p in found if _step_of(p) == step]
        if not found:
            steps = [str(_step_of(p)) for p in reversed(candidates(ckpt_dir))]
            raise FileNotFoundError(
                f"No checkpoint of step {step} in {ckpt_dir}; it has steps "
                f"{', '.join(steps) or 'none'}: pass one of them, or no --step for the latest."
            )
    skipped = []
    for prefix in found:
        reason = unreadable_reason(prefix)
        if reason is None:
            if skipped and announce:
                console.warn(
                    "Skipping damaged checkpoint(s) "
                    + "; ".join(f"{os.path.basename(p)} ({r})" for p, r in skipped)
                    + f": using {os.path.basename(prefix)} (step {_step_of(prefix)}), the newest "
                    "readable one. The damaged files are left in place."
                )
            return prefix
        skipped.append((prefix, reason))
    if skipped:
        problem = io_utils.pattern_path_problem(ckpt_dir)
        if problem:  # a directory from before training refused such names, or renamed since
            raise NoReadableCheckpointError(
                f"No checkpoint in {ckpt_dir} can be opened: {problem} (rename the model dir)."
            )
        raise NoReadableCheckpointError(
            f"No readable checkpoint in {ckpt_dir}: "
            + "; ".join(f"{os.path.basename(p)} {r}" for p, r in skipped)
            + ". Nothing was deleted: restore the files from a backup, or pass a new --model_dir "
            "to train from scratch."
        )
    return None


def adopt(model_dir, prefix):
    """Makes ``prefix`` the latest checkpoint in the state file, listing only those up to it
    whose files exist, so a CheckpointManager continues from it (and never counts a missing
    or newer damaged checkpoint toward its keep-N rotation).

    Each listed checkpoint keeps a timestamp (its state-file one, else its index file's
    mtime) newer than the state's ``last_preserved_timestamp``: a CheckpointManager only
    rotates the checkpoints it finds with such a timestamp, and would keep the others forever.
    """
    import tensorflow as tf

    ckpt_dir = checkpoint_dir(model_dir)
    step = _step_of(prefix)
    keep = [
        p
        for p in reversed(candidates(ckpt_dir))
        if _step_of(p) <= step and io_utils.exists(p + ".index")
    ]
    known = {}
    try:
        state = tf.train.get_checkpoint_state(ckpt_dir)
    except Exception:  # noqa: BLE001 - a damaged state file: fall back to the files' mtimes
        state = None
    if state is not None:
        paths, stamps = state.all_model_checkpoint_paths, state.all_model_checkpoint_timestamps
        known = {os.path.basename(p): t for p, t in zip(paths, stamps)}
    stamps = []
    for p in keep:
        stamp = known.get(os.path.basename(p))
        if stamp is None:
            stamp = tf.io.gfile.stat(p + ".index").mtime_nsec / 1e9
        stamps.append(stamp)
    tf.compat.v1.train.update_checkpoint_state(
        ckpt_dir,
        os.path.basename(prefix),
        all_model_checkpoint_paths=[os.path.basename(p) for p in keep],
        all_model_checkpoint_timestamps=stamps,
        last_preserved_timestamp=min(stamps, default=0.0) - 1.0,
    )


def saved_step(prefix):
    import tensorflow as tf

    if not prefix:
        return 0
    return int(
        tf.compat.v1.train.NewCheckpointReader(prefix).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")
    )


def restore(checkpoint, path, model_dir, partial=False):
    """Restores ``checkpoint`` from ``path``; a mismatch names the model dir and the fix."""
    import tensorflow as tf

    try:
        status = checkpoint.restore(path)
        if partial:
            status.expect_partial()
        else:
            status.assert_existing_objects_matched()
        return status
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        raise IncompatibleModelDirError(
            f"The checkpoint {path} in --model_dir={model_dir} does not fit this model "
            f"({type(e).__name__}: {str(e).splitlines()[0][:300]}). It was written with other "
            "settings: resume with the settings in its config.json, or pass a new --model_dir."
        ) from e


def clean_temporaries(model_dir):
    """Removes what a killed save left behind: ``checkpoints/ckpt-N_temp*``, the state file's
    ``checkpoints/checkpoint.tmp*`` and ``samples/*.tmp*``. Returns the removed paths."""
    removed = []
    for pattern in (
        io_utils.join(checkpoint_dir(model_dir), "*_temp*"),
        io_utils.join(checkpoint_dir(model_dir), "checkpoint.tmp*"),
        io_utils.join(model_dir, "samples", "*.tmp*"),
        io_utils.join(model_dir, "samples", ".*.png.*"),
    ):
        for path in io_utils.glob(pattern):
            io_utils.remove(path)
            removed.append(path)
    return removed


def check_model_dir_path(model_dir):
    """A --model_dir that is a regular file gets a clear error."""
    if not io_utils.is_remote(model_dir) and os.path.exists(model_dir):
        if not os.path.isdir(model_dir):
            raise NotADirectoryError(
                f"--model_dir={model_dir} is a regular file, not a directory: pass a directory "
                "(a new one to train from scratch)."
            )


def load_trained(model_dir, step=None):
    """Rebuilds the method saved in ``model_dir`` and restores its latest readable (or
    ``step``'s) weights."""
    import keras
    import tensorflow as tf

    from trainer import methods

    check_model_dir_path(model_dir)
    if not io_utils.isdir(model_dir):
        raise FileNotFoundError(f"--model_dir={model_dir} does not exist.")
    config = config_lib.Config.load(model_dir)
    path = find_readable(model_dir, step)
    if not path:
        raise FileNotFoundError(
            f"No checkpoint in {checkpoint_dir(model_dir)}: train first with "
            f"`python -m trainer.main --model_dir={model_dir} ...`."
        )
    keras.mixed_precision.set_global_policy("float32")
    for attempt in range(_RESTORE_ATTEMPTS):
        # Fresh objects each attempt: a restore cut short leaves pending restores from its
        # (vanished) checkpoint on the objects it was restoring into.
        model = methods.build(config)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        checkpoint = tf.train.Checkpoint(step=step_var, model=model)
        try:
            restore(checkpoint, path, model_dir, partial=True)
            break
        except IncompatibleModelDirError:
            # A trainer still writing this model_dir may have rotated the checkpoint away
            # between the check and the restore: take the newest readable one again.
            retry = step is None and attempt + 1 < _RESTORE_ATTEMPTS
            if not retry or unreadable_reason(path) is None:
                raise
            path = find_readable(model_dir) or path
    saved = int(step_var.numpy())
    held, needed = model_weights_held(path), len({id(v) for v in model.trainable_variables})
    if held < needed:
        raise IncompatibleModelDirError(
            f"The checkpoint {path} in --model_dir={model_dir} holds {held} of the model's "
            f"{needed} weights under the model itself (they were saved only through the "
            "optimizers), so a model rebuilt for evaluation or export would be untrained. Rerun "
            "the training command that wrote it (same flags, same --model_dir) with "
            f"--train_steps={saved + 1} --export_formats=none: the resumed run writes a checkpoint "
            "that holds them; then evaluate or export again."
        )
    # What the later stages evaluate and export is the averaged model (--ema_decay).
    model.adopt_averages()
    return Trained(model=model, config=config, step=saved, checkpoint=path)


def model_weights_held(path):
    """How many variables the checkpoint at ``path`` holds under its ``model`` object (what a
    restore of the model alone can reach)."""
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(path).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    todo = [c.node_id for c in graph.nodes[0].children if c.local_name == "model"]
    seen = set(todo)
    held = 0
    while todo:
        node = graph.nodes[todo.pop()]
        held += any(a.name == "VARIABLE_VALUE" for a in node.attributes)
        for child in node.children:
            if child.node_id not in seen:
                seen.add(child.node_id)
                todo.append(child.node_id)
    return held
