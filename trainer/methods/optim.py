"""Optimisation helpers every method shares: the optimizer, the LR schedule, variables counted
once, clipping."""

import contextlib

import keras
import tensorflow as tf


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant ``initial`` until ``decay_start``, then linear to 0 at ``total_steps``."""

    def __init__(self, initial, decay_start, total_steps):
        self.initial = float(initial)
        self.decay_start = int(decay_start)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        span = float(max(self.total_steps - self.decay_start, 1))
        frac = tf.clip_by_value((step - self.decay_start) / span, 0.0, 1.0)
        return self.initial * (1.0 - frac)

    def get_config(self):
        return {
            "initial": self.initial,
            "decay_start": self.decay_start,
            "total_steps": self.total_steps,
        }


# What a method can declare as its OPTIMIZER: Adam (AdamW with --weight_decay) with --beta_1 and
# --beta_2, or RMSProp (WGAN and DualGAN: momentum made their weight-clipped critics unstable).
OPTIMIZERS = ("adam", "rmsprop")


def make_optimizer(kind, learning_rate, hp, name):
    """A fresh optimizer of ``kind`` (one of OPTIMIZERS) at ``learning_rate`` (a rate or a
    schedule), with ``hp.weight_decay`` as decoupled weight decay when > 0."""
    decay = {"weight_decay": hp.weight_decay} if hp.weight_decay > 0 else {}
    if kind == "adam":
        opt = keras.optimizers.AdamW if decay else keras.optimizers.Adam
        return opt(learning_rate, beta_1=hp.beta_1, beta_2=hp.beta_2, **decay, name=name)
    if kind == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, **decay, name=name)
    raise ValueError(f"Unknown optimizer {kind!r}: choose one of {', '.join(OPTIMIZERS)}.")


def unique_variables(models):
    """Trainable variables of ``models`` with shared layers counted once (UNIT, CoGAN)."""
    seen, out = set(), []
    for model in models:
        for v in model.trainable_variables:
            key = id(v)
            if key not in seen:
                seen.add(key)
                out.append(v)
    return out


def tf_variable(v):
    """The tf.Variable behind a Keras variable (a tf.Variable is returned as it is)."""
    return v if isinstance(v, tf.Variable) else getattr(v, "value", v)


def clip_weights(variables, bound):
    """Clips each variable to [-bound, bound] in place (WGAN's Lipschitz constraint)."""

    def clip(strategy):
        for v in variables:
            v = tf_variable(v)
            strategy.extended.update(
                v, lambda var: var.assign(tf.clip_by_value(var, -bound, bound))
            )

    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context
        clip(tf.distribute.get_strategy())
    else:
        context.merge_call(clip)


class WeightAverages(tf.Module):
    """An exponential moving average of some weights (``--ema_decay``), kept beside them.

    Averaging the generator's weights over the last few hundred updates removes much of the
    step-to-step jitter of adversarial training (Yazici et al. 2019, "The Unusual Effectiveness
    of Averaging in GAN Training"; StarGAN v2 and StyleGAN evaluate and ship the average). The
    averages are variables of this module, so a checkpoint of the model holds them and a
    resumed run continues them.

    The decay warms up as ``min(decay, (1 + step) / (10 + step))`` (as
    ``tf.train.ExponentialMovingAverage`` with ``num_updates``), so the early, untrained weights
    do not linger in the average of a short run. Only trainable weights are averaged: batch-norm
    statistics stay those the raw weights produced.
    """

    def __init__(self, variables, decay):
        super().__init__(name="weight_averages")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"--ema_decay must be in (0, 1) (0 = off), got {decay}.")
        self.decay = float(decay)
        self._track_live(variables, tf.distribute.get_strategy())
        self.values = [
            tf.Variable(tf_variable(v).read_value(), trainable=False, name=f"average_{i}")
            for i, v in enumerate(self._live)
        ]

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _track_live(self, variables, strategy):
        # The averaged variables belong to the networks: not saved a second time under here.
        self._live = tuple(variables)
        # The strategy the variables were made under (the updates run outside its scope).
        self._strategy = strategy

    def effective_decay(self, step):
        step = tf.cast(step, tf.float32)
        return tf.minimum(self.decay, (1.0 + step) / (10.0 + step))

    def update(self, step):
        """Moves each average toward its weight; in cross-replica context (after
        ``strategy.run``), on every device that holds a copy."""
        strategy = self._strategy
        decay = self.effective_decay(step)

        def move(average, value):
            return average.assign(decay * average + (1.0 - decay) * tf.cast(value, average.dtype))

        for average, live in zip(self.values, self._live):
            strategy.extended.update(average, move, args=(tf_variable(live),), group=False)

    def _assign(self, targets, sources):
        strategy = self._strategy
        for target, source in zip(targets, sources):
            target = tf_variable(target)
            strategy.extended.update(target, lambda t, s: t.assign(s), args=(source,))

    def adopt(self):
        """Overwrites the weights with their averages, for good (export, a later evaluation)."""
        self._assign(self._live, self.values)

    @contextlib.contextmanager
    def swapped_in(self):
        """The weights hold their averages inside the block and their own values after it."""
        saved = [tf.identity(tf_variable(v).read_value()) for v in self._live]
        self._assign(self._live, self.values)
        try:
            yield
        finally:
            self._assign(self._live, saved)
