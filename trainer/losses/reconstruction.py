"""Reconstruction losses."""

import tensorflow as tf

from trainer.losses._util import per_example_mean


def l1(x, y):
    """Mean absolute error per example: mean(|x - y|)."""
    return per_example_mean(tf.abs(tf.cast(x, tf.float32) - tf.cast(y, tf.float32)))


def l2(x, y):
    """Mean squared error per example: mean((x - y)^2)."""
    return per_example_mean(tf.square(tf.cast(x, tf.float32) - tf.cast(y, tf.float32)))
