"""The training loop: strategy, datasets, checkpoints, resume, and the periodic actions.

One code path for every strategy: a ``tf.function`` runs ``steps_per_loop`` steps of
``strategy.run(model.train_step)``; between calls the host checks the losses and runs the
periodic actions that are due (progress line, TensorBoard summaries, checkpoint, sample grid,
evaluation), each a small object with its own interval. ``run`` is a sequence of named steps;
``trainer/main.py`` composes training with the final evaluation and the export stage (this
module never imports the export stage).
"""

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from trainer import checkpoints as ckpt_lib
from trainer import config as config_lib
from trainer import console, io_utils, locks, methods
from trainer import data as data_lib
from trainer import strategy as strategy_lib
from trainer.checkpoints import CHECKPOINT_SUBDIR, IncompatibleModelDirError

LOCK_NAME = "lock"


class TrainingDivergedError(FloatingPointError):
    pass


ModelDirInUseError = locks.DirInUseError


class OutOfMemoryEstimateError(ValueError):
    pass


# -- data -------------------------------------------------------------------------------------


def make_dataset(config, kind, split, *, batch_size, training, seed):
    """The batches ``kind`` (a method's DATA) asks for; library output goes to the run log."""
    with console.library_output():
        return data_lib.make_dataset(
            config, kind, split, batch_size=batch_size, training=training, seed=seed
        )


# -- model_dir ---------------------------------------------------------------------------------


def shape_hparams(cls):
    """Hyperparameters the method marks as changing variable shapes."""
    return [k for k, s in cls.hparam_specs().items() if getattr(s, "shape", False)]


def _differences(old, config, keys):
    out = []
    if old.method != config.method:
        out.append(f"method {old.method} (now {config.method})")
    if old.data.image_size != config.data.image_size:
        out.append(f"image_size {old.data.image_size} (now {config.data.image_size})")
    for key in keys:
        if key in old.hparams and key in config.hparams and old.hparams[key] != config.hparams[key]:
            out.append(f"{key} {old.hparams[key]} (now {config.hparams[key]})")
    if old.method != config.method:
        return out
    cls = methods.get(config.method)
    was, now = cls.network_switches(old.hparams), cls.network_switches(config.hparams)
    out += [f"{k} {was[k]} (now {now[k]})" for k in now if was.get(k, now[k]) != now[k]]
    if cls.DATA == "multi_domain":
        # The domain labels size the condition input and the classification head.
        from trainer.data.multi_domain import domain_labels

        was, now = domain_labels(old), domain_labels(config)
        if was != now:
            out.append(f"domains {','.join(was)} (now {','.join(now)})")
    return out


def check_model_dir(config):
    """Refuses a model_dir that holds a run of another method or variable shapes; returns the
    saved run's Config (None for a new model_dir)."""
    model_dir = config.train.model_dir
    ckpt_lib.check_model_dir_path(model_dir)
    if not io_utils.exists(io_utils.join(model_dir, "config.json")):
        return None
    old = config_lib.Config.load(model_dir)
    keys = shape_hparams(methods.get(config.method)) if old.method == config.method else []
    problems = _differences(old, config, keys)
    if problems:
        raise IncompatibleModelDirError(
            f"--model_dir={model_dir} holds a run with {', '.join(problems)}. "
            "Resume it with the same settings, or pass a new --model_dir."
        )
    return old


# -- one trainer per model_dir -------------------------------------------------------------------


class ModelDirLock(locks.DirLock):
    """MODEL_DIR/lock: host, pid, start time and command of the trainer using the directory
    (see trainer/locks.py: the export stage uses the same code for its own lock)."""

    def __init__(self, model_dir):
        super().__init__(
            io_utils.join(model_dir, LOCK_NAME),
            owner="trainer",
            subject=f"--model_dir={model_dir}",
            alternative="pass another --model_dir",
        )


# -- memory -------------------------------------------------------------------------------------

# Rough bytes of activations per pixel, per filter of the first layer, per image of the batch
# for a training step of the image-to-image methods (two generators and two discriminators,
# forward and backward, float32). An estimate to refuse absurd settings, not an allocator.
ACTIVATION_FACTOR = 160


def estimate_memory(config):
    """Rough bytes a training step needs: image pools plus batch activations."""
    d, hp = config.data, config.hparams
    pixels = d.image_size * d.image_size
    filters = int(hp.get("filters", 64)) if hasattr(hp, "get") else 64
    activations = d.batch_size * pixels * max(filters, 1) * ACTIVATION_FACTOR
    pool = int(hp.get("pool_size", 0)) if hasattr(hp, "get") else 0
    pools = 2 * pool * pixels * 3 * 4
    return activations + pools


def available_memory():
    """(bytes, what) of the memory the run allocates from: device memory on a GPU, else host RAM."""
    if tf.config.list_physical_devices("GPU"):
        import subprocess

        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.split()
            if out:
                return int(out[0]) * 1024 * 1024, "device memory of GPU:0"
        except (OSError, ValueError, subprocess.SubprocessError):
            return None, None
        return None, None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host RAM"
    except (ValueError, OSError, AttributeError):
        return None, None


def check_memory(config, replicas=1):
    need = estimate_memory(config) / max(replicas, 1)
    have, what = available_memory()
    if have and need > have:
        gib = 1024**3
        raise OutOfMemoryEstimateError(
            f"--image_size={config.data.image_size} with --batch_size={config.data.batch_size} "
            f"needs about {need / gib:.1f} GiB per device for a training step (image pools and "
            f"activations), more than the {have / gib:.1f} GiB of {what}. Lower --image_size, "
            "--batch_size, --filters or --pool_size."
        )
    return need


# -- periodic actions --------------------------------------------------------------------------


@dataclasses.dataclass
class Action:
    """Work the loop does every ``every`` steps (0 = never periodically) and, with ``at_end``,
    at the last step; without it, never at the last step, even where ``every`` divides it (the
    evaluation, which the evaluate stage runs there). ``fn(step, losses, steps_per_sec)``."""

    name: str
    every: int
    fn: Callable
    at_end: bool = True

    def due(self, step, total):
        if step == total:
            return self.at_end
        return bool(self.every and step % self.every == 0)


def next_boundary(current, total, steps_per_loop, actions):
    """The next step where the loop must stop to run an action (or ``steps_per_loop`` later)."""
    marks = [total, current + steps_per_loop]
    for action in actions:
        if action.every:
            marks.append((current // action.every + 1) * action.every)
    return min(marks)


def _lr(opt):
    inner = getattr(opt, "inner_optimizer", opt)
    return float(keras.ops.convert_to_numpy(inner.learning_rate))


def _fmt(values):
    return ", ".join(f"{k}={v:.4g}" for k, v in values.items())


def summaries_action(run_state):
    t = run_state.config.train

    def write(step, losses, steps_per_sec):
        with run_state.writer.as_default(step=step):
            for k, v in losses.items():
                tf.summary.scalar(f"loss/{k}", v)
            for name, opt in run_state.model.optimizers.items():
                tf.summary.scalar(f"learning_rate/{name}", _lr(opt))
            tf.summary.scalar("steps_per_sec", steps_per_sec)

    return Action("summaries", t.log_every, write)


def progress_action(run_state):
    t = run_state.config.train
    progress = run_state.progress

    def show(step, losses, steps_per_sec):
        progress.update(step, losses)

    # On a terminal the bar updates after every call; in a log, one line per --log_every.
    every = 1 if progress.interactive else t.log_every
    return Action("progress", every, show)


def checkpoint_action(run_state):
    def save(step, losses, steps_per_sec):
        run_state.manager.save(checkpoint_number=step)

    return Action("checkpoint", run_state.config.train.checkpoint_every, save)


def samples_action(run_state):
    def sample(step, losses, steps_per_sec):
        write_samples(
            run_state.model, run_state.sample_batch, run_state.model_dir, step, run_state.writer
        )

    return Action("samples", run_state.config.train.sample_every, sample)


def evaluation_action(run_state):
    """Evaluation during training; the final one is the evaluate stage's (trainer/main.py)."""

    def run_eval(step, losses, steps_per_sec):
        evaluate(run_state.model, run_state.config, step, run_state.writer)

    return Action("evaluation", run_state.config.train.eval_every, run_eval, at_end=False)


# -- the run -------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunState:
    config: config_lib.Config
    strategy: object = None
    strategy_text: str = ""
    chief: bool = True
    model_dir: str = ""
    write_dir: str = ""
    old_config: object = None
    dataset: object = None
    model: object = None
    step: object = None
    iterator: object = None
    checkpoint: object = None
    manager: object = None
    writer: object = None
    sample_batch: object = None
    train_loop: object = None
    progress: object = None
    start_step: int = 0
    losses: dict = dataclasses.field(default_factory=dict)
    train_seconds: float = 0.0


@dataclasses.dataclass
class TrainResult:
    """What training hands to the next stages."""

    summary: dict
    chief: bool
    model: object
    config: config_lib.Config
    step: int
    writer: object


def setup_strategy(state):
    t = state.config.train
    state.strategy = strategy_lib.make_strategy(t)
    state.strategy_text = strategy_lib.describe(state.strategy)
    state.chief = strategy_lib.is_chief(state.strategy)
    keras.utils.set_random_seed(t.seed)
    if t.mixed_precision:
        policy = "mixed_bfloat16" if t.strategy == "tpu" else "mixed_float16"
        keras.mixed_precision.set_global_policy(policy)
    replicas = state.strategy.num_replicas_in_sync
    if state.config.data.batch_size % replicas:
        raise ValueError(
            f"--batch_size={state.config.data.batch_size} must be divisible by the "
            f"{replicas} replicas of {state.strategy_text}."
        )
    check_memory(state.config, replicas)


def prepare_model_dir(state):
    """Checks the model_dir and cleans what killed runs left (chief)."""
    config = state.config
    state.model_dir = config.train.model_dir
    state.old_config = check_model_dir(config)
    if state.chief:
        state.write_dir = state.model_dir
        io_utils.makedirs(state.model_dir)
        for path in ckpt_lib.clean_temporaries(state.model_dir):
            logging.info("Removed %s, left by an interrupted run.", path)
    else:
        state.write_dir = tempfile.mkdtemp(prefix="img2img-worker-")


def build_data(state):
    config, t = state.config, state.config.train
    cls = methods.get(config.method)
    dataset = make_dataset(
        config, cls.DATA, "train", batch_size=config.data.batch_size, training=True, seed=t.seed
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    state.dataset = dataset.with_options(options)
    if state.chief:
        sample_ds = make_dataset(
            config, cls.DATA, "test", batch_size=8, training=False, seed=t.seed
        )
        with console.library_output():
            state.sample_batch = next(iter(sample_ds))


def _checkpoint(model, step, iterator=None):
    items = dict(step=step, model=model, **model.checkpoint_items())
    for name, opt in model.optimizers.items():
        items[f"optimizer_{name}"] = opt
    if iterator is not None:
        items["iterator"] = iterator
    return tf.train.Checkpoint(**items)


def _batch_size_changed(state):
    old = state.old_config
    return old is not None and old.data.batch_size != state.config.data.batch_size


def build_model_and_restore(state):
    """Builds the model, optimizers and data iterator in the strategy's scope and restores the
    newest readable checkpoint (every worker reads the chief's directory)."""
    config, t = state.config, state.config.train
    latest = ckpt_lib.find_readable(state.model_dir)
    restart_data = bool(latest) and _batch_size_changed(state)
    strategy = state.strategy
    # Seeded again here: a first run builds its datasets in this process, and the builder draws
    # from the global generators. Without this the first run of a flagfile starts from other
    # weights than every later run with the same --seed, and trains another model.
    keras.utils.set_random_seed(t.seed)
    with strategy.scope():
        state.model = methods.build(config)
        state.model.make_optimizers(t.train_steps)
        state.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        iterator = iter(strategy.experimental_distribute_dataset(state.dataset))
        if not isinstance(iterator, tf.__internal__.tracking.Trackable):
            # Distributed iterators cannot be checkpointed: the pipeline is deterministic for a
            # seed, so a resumed run skips the batches already consumed instead.
            consumed = 0 if restart_data else ckpt_lib.saved_step(latest)
            if consumed:
                iterator = iter(
                    strategy.experimental_distribute_dataset(state.dataset.skip(consumed))
                )
            iterator_state = None
        else:
            iterator_state = iterator
        state.iterator = iterator
        state.checkpoint = _checkpoint(state.model, state.step, iterator_state)
        restore_from = _checkpoint(state.model, state.step) if restart_data else state.checkpoint
    if latest:
        if state.chief:
            ckpt_lib.adopt(state.model_dir, latest)
        _restore_or_explain(state, restore_from, latest, partial=restart_data)
        if restart_data:
            console.warn(
                f"--batch_size={config.data.batch_size} differs from the "
                f"{state.old_config.data.batch_size} this run was trained with: the data "
                "iterator restarts from a fresh shuffle (the model and optimizers resume)."
            )
        step = int(state.step.numpy())
        logging.info("Resumed from %s at step %d.", latest, step)
        print(f"Resuming from {latest} (step {step}).", flush=True)
    state.manager = tf.train.CheckpointManager(
        state.checkpoint,
        io_utils.join(state.write_dir, CHECKPOINT_SUBDIR),
        max_to_keep=t.keep_checkpoints,
        step_counter=state.step,
        checkpoint_interval=None,
    )
    state.start_step = int(state.step.numpy())
    if state.chief:
        # Only once the checkpoint fits: a refused resume leaves the run's config.json as it was.
        io_utils.atomic_write_json(io_utils.join(state.model_dir, "config.json"), config.to_dict())


def _restore_or_explain(state, checkpoint, path, partial):
    try:
        ckpt_lib.restore(checkpoint, path, state.model_dir, partial=partial)
    except IncompatibleModelDirError as e:
        old = state.old_config
        if old is not None:
            differing = [
                f"{k} {old.hparams[k]} (now {v})"
                for k, v in state.config.hparams.items()
                if k in old.hparams and old.hparams[k] != v
            ]
            if differing:
                raise IncompatibleModelDirError(
                    f"--model_dir={state.model_dir} holds a run whose variables do not fit this "
                    f"model; its settings differ in {', '.join(differing)}. Resume it with the "
                    "same settings, or pass a new --model_dir."
                ) from e
        raise


def build_train_loop(state):
    t, strategy, step = state.config.train, state.strategy, state.step
    model = state.model
    step_fn = tf.function(model.train_step, jit_compile=True) if t.jit_compile else model.train_step

    def one_step(iterator):
        per_replica = strategy.run(step_fn, args=(next(iterator),))
        model.update_averages(step)
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

    state.train_loop = train_loop
    state.writer = tf.summary.create_file_writer(io_utils.join(state.write_dir, "logs", "train"))


def rewrite_lost_samples(state):
    """A sample grid due at the restored step but lost to a kill is written again."""
    t, step = state.config.train, state.start_step
    if not (state.chief and step and state.sample_batch is not None and t.sample_every):
        return
    if step % t.sample_every == 0 and not io_utils.exists(sample_path(state.model_dir, step)):
        write_samples(state.model, state.sample_batch, state.model_dir, step, state.writer)


def make_actions(state):
    actions = [progress_action(state), summaries_action(state), checkpoint_action(state)]
    if state.chief and state.sample_batch is not None:
        actions.append(samples_action(state))
        if state.config.train.eval_every:
            actions.append(evaluation_action(state))
    return actions


def train_to_end(state, actions):
    """Calls the train loop up to ``train_steps``, running the actions that are due."""
    t = state.config.train
    first_call = True
    started = time.perf_counter()
    while int(state.step.numpy()) < t.train_steps:
        current = int(state.step.numpy())
        n = next_boundary(current, t.train_steps, t.steps_per_loop, actions) - current
        tick = time.perf_counter()
        losses = {k: float(v) for k, v in state.train_loop(state.iterator, tf.constant(n)).items()}
        now = time.perf_counter()
        current = int(state.step.numpy())
        if first_call:
            # The first call traces and builds the graph: speed and ETA start after it.
            state.progress.measure_from(current, now)
            first_call = False
        bad = [k for k, v in losses.items() if not np.isfinite(v)]
        if bad:
            raise TrainingDivergedError(
                f"Training diverged at step {current}: {', '.join(bad)} became NaN/Inf "
                f"({_fmt(losses)}). The last good checkpoint ({state.manager.latest_checkpoint}) "
                "is kept; lower --lr, check the data, or turn off --mixed_precision, then rerun "
                "to resume from it."
            )
        state.losses = losses
        steps_per_sec = n / max(now - tick, 1e-9)
        for action in actions:
            if action.due(current, t.train_steps):
                action.fn(current, losses, steps_per_sec)
    state.train_seconds = time.perf_counter() - started
    state.progress.close()


def finish(state):
    """The last checkpoint and sample grid (also when the run was already at train_steps)."""
    final_step = int(state.step.numpy())
    latest = state.manager.latest_checkpoint
    if latest is None or not latest.endswith(f"-{final_step}"):
        state.manager.save(checkpoint_number=final_step)
    if state.chief and state.sample_batch is not None:
        # The sample action has written the grid when the last step was one of its steps.
        if not io_utils.exists(sample_path(state.model_dir, final_step)):
            write_samples(
                state.model, state.sample_batch, state.model_dir, final_step, state.writer
            )
        state.writer.flush()
    return {
        "step": final_step,
        "losses": state.losses,
        "train_seconds": state.train_seconds,
        "model_dir": state.model_dir,
        "checkpoint": state.manager.latest_checkpoint,
        "strategy": state.strategy_text,
    }


def run(config):
    """Trains ``config`` to ``train_steps``, resuming from ``model_dir``; returns a TrainResult
    (the final evaluation and the export are the next stages, see trainer/main.py)."""
    state = RunState(config=config)
    setup_strategy(state)
    lock = None
    if state.chief:
        ckpt_lib.check_model_dir_path(config.train.model_dir)
        lock = ModelDirLock(config.train.model_dir).acquire()
    try:
        prepare_model_dir(state)
        build_data(state)
        build_model_and_restore(state)
        build_train_loop(state)
        state.progress = console.Progress(
            config.train.train_steps,
            stream=None if state.chief else open(os.devnull, "w"),  # noqa: SIM115
        )
        rewrite_lost_samples(state)
        train_to_end(state, make_actions(state))
        summary = finish(state)
    finally:
        if lock is not None:
            lock.release()
    if not state.chief:
        shutil.rmtree(state.write_dir, ignore_errors=True)
    return TrainResult(
        summary=summary,
        chief=state.chief,
        model=state.model,
        config=config,
        step=summary["step"],
        writer=state.writer,
    )


def final_evaluation(result):
    """The evaluate stage on the trained model in memory (trainer/main.py calls it)."""
    metrics = evaluate(result.model, result.config, result.step, result.writer)
    if result.writer is not None:
        result.writer.flush()
    return metrics


# -- samples and evaluation ------------------------------------------------------------------------


def sample_path(model_dir, step):
    return io_utils.join(model_dir, "samples", f"step_{step:06d}.png")


def write_samples(model, batch, model_dir, step, writer):
    """Writes the labelled sample grid of ``step`` (through the file layer) and its TensorBoard
    image; the path is ``sample_path(model_dir, step)``. With --ema_decay the grid shows the
    averaged weights, as evaluation and export run them."""
    from trainer.eval import grids

    with model.averaged_weights():
        return grids.write_samples(model, batch, model_dir, step, writer)


def evaluate(model, config, step, writer):
    """The evaluation of the model in memory, on its averaged weights with --ema_decay."""
    from trainer.eval.evaluate import evaluate as evaluate_fn

    with model.averaged_weights():
        return evaluate_fn(model, config, step, writer=writer)


# -- the end-of-run summary ------------------------------------------------------------------------


def report(summary):
    """What a person reads at the end of training: where things are and the headline figures
    (trainer/main.py adds the export stage's). The first line stays ``Trained to step N ...``:
    scripts read it."""
    d = summary["model_dir"]
    lines = [
        f"Trained to step {summary['step']} in {summary['train_seconds']:.0f} s "
        f"({summary['strategy']}).",
        f"  checkpoints : {io_utils.join(d, CHECKPOINT_SUBDIR)}",
        f"  samples     : {io_utils.join(d, 'samples')}",
        f"  TensorBoard : tensorboard --logdir {io_utils.join(d, 'logs')}",
    ]
    log = console.log_file()
    if log:
        lines.append(f"  library log : {log}")
    metrics = summary.get("metrics")
    if metrics:
        lines.append(f"  metrics     : {io_utils.join(d, 'metrics.md')}")
        for line in metrics.get("headline", []):
            lines.append(f"    {line}")
    return "\n".join(["", *lines])
