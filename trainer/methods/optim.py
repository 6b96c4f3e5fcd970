"""Optimisation helpers every method shares: the optimizer, the LR schedule, variables counted
once, clipping."""

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


def clip_weights(variables, bound):
    """Clips each variable to [-bound, bound] in place (WGAN's Lipschitz constraint)."""

    def clip(strategy):
        for v in variables:
            v = getattr(v, "value", v)  # the tf.Variable behind a Keras variable
            strategy.extended.update(
                v, lambda var: var.assign(tf.clip_by_value(var, -bound, bound))
            )

    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context
        clip(tf.distribute.get_strategy())
    else:
        context.merge_call(clip)
