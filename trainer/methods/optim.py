"""Optimisation helpers every method shares: the LR schedule, variables counted once, clipping."""

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
