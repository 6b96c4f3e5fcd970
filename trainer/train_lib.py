"""The training loop: strategy, datasets, checkpoints, resume, summaries, samples, eval, export.

One code path for every strategy: a ``tf.function`` runs ``steps_per_loop`` steps of
``strategy.run(model.train_step)``; the host checks the losses, writes summaries, samples,
checkpoints and evaluations at step boundaries.
"""

import dataclasses
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from trainer import config as config_lib
from trainer import data as data_lib
from trainer import methods
from trainer import strategy as strategy_lib
from trainer.io_utils import atomic_write_json

CHECKPOINT_SUBDIR = "checkpoints"


class TrainingDivergedError(FloatingPointError):
    pass


class IncompatibleModelDirError(ValueError):
    pass


@dataclasses.dataclass
class Trained:
    model: object
    config: config_lib.Config
    step: int
    checkpoint: str


# -- data -------------------------------------------------------------------------------------


def _domain(config, domain, split):
    d = config.data
    return data_lib.load_domain(
        d.dataset,
        domain,
        split,
        data_dir=d.data_dir,
        image_size=d.image_size,
        strict_images=d.strict_images,
    )


def make_dataset(config, kind, split, *, batch_size, training, seed):
    """The batches ``kind`` (a method's DATA) asks for, from ``split`` of the configured domains."""
    d = config.data
    if kind == "unpaired":
        return data_lib.unpaired_dataset(
            _domain(config, d.domain_a, split),
            _domain(config, d.domain_b, split),
            batch_size=batch_size,
            seed=seed,
            augment=d.augment and training,
            flip=d.flip and training,
            image_size=d.image_size,
            shuffle_buffer=d.shuffle_buffer,
            repeat=training,
        )
    if kind == "single":
        return data_lib.single_dataset(
            _domain(config, d.domain_a, split),
            batch_size=batch_size,
            seed=seed,
            shuffle=training,
            repeat=training,
            augment=d.augment and training,
            image_size=d.image_size,
        )
    raise ValueError(f"Unknown data kind {kind!r} declared by method {config.method}.")


# -- model_dir ---------------------------------------------------------------------------------

_SHAPE_KEYS = ("image_size",)


def check_model_dir(config):
    """Refuses a model_dir that holds a run of another method or network shape."""
    path = os.path.join(config.train.model_dir, "config.json")
    if not os.path.exists(path):
        return
    old = config_lib.Config.load(config.train.model_dir)
    problems = []
    if old.method != config.method:
        problems.append(f"method {old.method} (now {config.method})")
    if old.data.image_size != config.data.image_size:
        problems.append(f"image_size {old.data.image_size} (now {config.data.image_size})")
    cls = methods.get(config.method)
    for key in cls.hparam_specs():
        if key in old.hparams and key in SHAPE_HPARAMS and old.hparams[key] != config.hparams[key]:
            problems.append(f"{key} {old.hparams[key]} (now {config.hparams[key]})")
    if problems:
        raise IncompatibleModelDirError(
            f"--model_dir={config.train.model_dir} holds a run with {', '.join(problems)}. "
            "Resume it with the same settings, or pass a new --model_dir."
        )


# Hyperparameters that change variable shapes: a resumed run must keep them.
SHAPE_HPARAMS = {
    "filters",
    "gen_blocks",
    "disc_layers",
    "norm",
    "latent_dim",
    "enc_blocks",
    "dec_blocks",
    "shared_blocks",
    "n_down",
    "uda",
}


def _checkpoint(model, step, iterator=None):
    items = dict(step=step, model=model, **model.checkpoint_items())
    for name, opt in model.optimizers.items():
        items[f"optimizer_{name}"] = opt
    if iterator is not None:
        items["iterator"] = iterator
    return tf.train.Checkpoint(**items)


def _saved_step(path):
    if not path:
        return 0
    return int(tf.train.load_checkpoint(path).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


def _restore(checkpoint, path, model_dir, partial=False):
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


def load_trained(model_dir, step=None):
    """Rebuilds the method saved in ``model_dir`` and restores its latest (or ``step``) weights."""
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"--model_dir={model_dir} does not exist.")
    config = config_lib.Config.load(model_dir)
    ckpt_dir = os.path.join(model_dir, CHECKPOINT_SUBDIR)
    path = (
        tf.train.latest_checkpoint(ckpt_dir)
        if step is None
        else os.path.join(ckpt_dir, f"ckpt-{step}")
    )
    if not path:
        raise FileNotFoundError(
            f"No checkpoint in {ckpt_dir}: train first with "
            f"`python -m trainer.main --model_dir={model_dir} ...`."
        )
    keras.mixed_precision.set_global_policy("float32")
    model = methods.build(config)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(step=step_var, model=model)
    _restore(checkpoint, path, model_dir, partial=True)
    return Trained(model=model, config=config, step=int(step_var.numpy()), checkpoint=path)


# -- the loop ------------------------------------------------------------------------------------


def _lr(opt):
    inner = getattr(opt, "inner_optimizer", opt)
    return float(keras.ops.convert_to_numpy(inner.learning_rate))


def _fmt(values):
    return ", ".join(f"{k}={v:.4g}" for k, v in values.items())


def run(config):
    """Trains ``config`` to ``train_steps``, resuming from ``model_dir``; returns a summary dict."""
    t = config.train
    strategy = strategy_lib.make_strategy(t)
    strategy_text = strategy_lib.describe(strategy)
    chief = strategy_lib.is_chief(strategy)
    keras.utils.set_random_seed(t.seed)
    if t.mixed_precision:
        policy = "mixed_bfloat16" if t.strategy == "tpu" else "mixed_float16"
        keras.mixed_precision.set_global_policy(policy)
    cls = methods.get(config.method)
    if config.data.batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"--batch_size={config.data.batch_size} must be divisible by the "
            f"{strategy.num_replicas_in_sync} replicas of {strategy_text}."
        )

    model_dir = t.model_dir
    check_model_dir(config)
    write_dir = model_dir if chief else tempfile.mkdtemp(prefix="img2img-worker-")
    if chief:
        os.makedirs(model_dir, exist_ok=True)
        atomic_write_json(os.path.join(model_dir, "config.json"), config.to_dict())

    dataset = make_dataset(
        config, cls.DATA, "train", batch_size=config.data.batch_size, training=True, seed=t.seed
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)
    # Every worker restores from the chief's directory (multi-worker needs a shared filesystem).
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_SUBDIR))
    with strategy.scope():
        model = methods.build(config)
        model.make_optimizers(t.train_steps)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        if not isinstance(iterator, tf.__internal__.tracking.Trackable):
            # Distributed iterators cannot be checkpointed: the pipeline is deterministic for a
            # seed, so a resumed run skips the batches already consumed instead.
            consumed = _saved_step(latest)
            if consumed:
                iterator = iter(strategy.experimental_distribute_dataset(dataset.skip(consumed)))
            iterator_state = None
        else:
            iterator_state = iterator
        checkpoint = _checkpoint(model, step, iterator_state)
    manager = tf.train.CheckpointManager(
        checkpoint,
        os.path.join(write_dir, CHECKPOINT_SUBDIR),
        max_to_keep=t.keep_checkpoints,
        step_counter=step,
        checkpoint_interval=None,
    )
    if latest:
        _restore(checkpoint, latest, model_dir)
        logging.info("Resumed from %s at step %d.", latest, int(step.numpy()))
        print(f"Resuming from {latest} (step {int(step.numpy())}).", flush=True)

    step_fn = tf.function(model.train_step, jit_compile=True) if t.jit_compile else model.train_step

    def one_step(iterator):
        per_replica = strategy.run(step_fn, args=(next(iterator),))
        step.assign_add(1)
        # Each replica returns its share of the global-batch mean: the sum is the mean.
        return {
            k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in per_replica.items()
        }

    @tf.function
    def train_loop(iterator, n):
        """Runs n >= 1 steps in one call; returns the mean of each loss over them."""
        totals = one_step(iterator)
        for _ in tf.range(n - 1):
            losses = one_step(iterator)
            totals = {k: totals[k] + losses[k] for k in totals}
        return {k: v / tf.cast(n, v.dtype) for k, v in totals.items()}

    writer = tf.summary.create_file_writer(os.path.join(write_dir, "logs", "train"))
    sample_batch = None
    if chief:
        sample_ds = make_dataset(
            config, cls.DATA, "test", batch_size=8, training=False, seed=t.seed
        )
        sample_batch = next(iter(sample_ds))

    def boundaries(current):
        marks = [t.train_steps, current + t.steps_per_loop]
        for every in (t.checkpoint_every, t.sample_every, t.eval_every, t.log_every):
            if every:
                marks.append((current // every + 1) * every)
        return min(marks)

    start_step = int(step.numpy())
    progbar = keras.utils.Progbar(
        t.train_steps, verbose=1 if chief else 0, stateful_metrics=None, unit_name="step"
    )
    if start_step:
        progbar.update(start_step)
    losses = {}
    started = time.perf_counter()
    while int(step.numpy()) < t.train_steps:
        current = int(step.numpy())
        n = boundaries(current) - current
        tick = time.perf_counter()
        losses = {k: float(v) for k, v in train_loop(iterator, tf.constant(n)).items()}
        current = int(step.numpy())
        bad = [k for k, v in losses.items() if not np.isfinite(v)]
        if bad:
            raise TrainingDivergedError(
                f"Training diverged at step {current}: {', '.join(bad)} became NaN/Inf "
                f"({_fmt(losses)}). The last good checkpoint ({manager.latest_checkpoint}) is "
                "kept; lower --lr, check the data, or turn off --mixed_precision, then rerun "
                "to resume from it."
            )
        steps_per_sec = n / max(time.perf_counter() - tick, 1e-9)
        progbar.update(current, [*losses.items(), ("steps/s", steps_per_sec)])
        if current % t.log_every == 0 or current == t.train_steps:
            with writer.as_default(step=current):
                for k, v in losses.items():
                    tf.summary.scalar(f"loss/{k}", v)
                for name, opt in model.optimizers.items():
                    tf.summary.scalar(f"learning_rate/{name}", _lr(opt))
                tf.summary.scalar("steps_per_sec", steps_per_sec)
        if current % t.checkpoint_every == 0 or current == t.train_steps:
            manager.save(checkpoint_number=current)
        if (
            chief
            and sample_batch is not None
            and ((t.sample_every and current % t.sample_every == 0) or current == t.train_steps)
        ):
            write_samples(model, sample_batch, model_dir, current, writer)
        if chief and t.eval_every and current % t.eval_every == 0 and current != t.train_steps:
            evaluate(model, config, current, writer)
    elapsed = time.perf_counter() - started
    final_step = int(step.numpy())
    if manager.latest_checkpoint is None or not manager.latest_checkpoint.endswith(
        f"-{final_step}"
    ):
        manager.save(checkpoint_number=final_step)
    summary = {
        "step": final_step,
        "losses": losses,
        "train_seconds": elapsed,
        "model_dir": model_dir,
        "checkpoint": manager.latest_checkpoint,
        "strategy": strategy_text,
    }
    if not chief:
        shutil.rmtree(write_dir, ignore_errors=True)
        return summary
    if final_step != start_step or sample_batch is not None:
        write_samples(model, sample_batch, model_dir, final_step, writer)
    summary["metrics"] = evaluate(model, config, final_step, writer)
    writer.flush()
    if t.export_formats:
        summary["export"] = export(config)
    return summary


def write_samples(model, batch, model_dir, step, writer):
    from trainer.eval import grids

    groups = model.sample_images(batch)
    rows = [row for group in groups.values() for row in group]
    grid = grids.image_grid([keras.ops.convert_to_numpy(r) for r in rows])
    path = grids.save_png(grid, os.path.join(model_dir, "samples", f"step_{step:06d}.png"))
    with writer.as_default(step=step):
        tf.summary.image("samples", grid[None], max_outputs=1)
    return path


def evaluate(model, config, step, writer):
    try:
        from trainer.eval.evaluate import evaluate as evaluate_fn
    except ImportError:
        return None
    return evaluate_fn(model, config, step, writer=writer)


def export(config):
    try:
        from export.api import export_model_dir
    except ImportError:
        logging.warning("Export stage not installed; skipping export.")
        return None
    return export_model_dir(
        config.train.model_dir,
        formats=config.train.export_formats,
        allow_parity_failure=config.train.allow_parity_failure,
    )


def report(summary):
    """What a person reads at the end of a run: where things are and the headline figures."""
    d = summary["model_dir"]
    lines = [
        "",
        f"Trained to step {summary['step']} in {summary['train_seconds']:.0f} s "
        f"({summary['strategy']}).",
        f"  checkpoints : {os.path.join(d, CHECKPOINT_SUBDIR)}",
        f"  samples     : {os.path.join(d, 'samples')}",
        f"  TensorBoard : tensorboard --logdir {os.path.join(d, 'logs')}",
    ]
    metrics = summary.get("metrics")
    if metrics:
        lines.append(f"  metrics     : {os.path.join(d, 'metrics.md')}")
        for line in metrics.get("headline", []):
            lines.append(f"    {line}")
    exported = summary.get("export")
    if exported:
        lines.append(f"  exported    : {exported.get('export_dir', os.path.join(d, 'export'))}")
        for line in exported.get("headline", []):
            lines.append(f"    {line}")
    return "\n".join(lines)
