import tensorflow as tf


def per_example_mean(x):
    """Mean over every axis but the first, in float32: [B, ...] -> [B]."""
    x = tf.cast(x, tf.float32)
    if x.shape.rank == 1:
        return x
    return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def per_example_sum(x):
    """Sum over every axis but the first, in float32: [B, ...] -> [B]."""
    x = tf.cast(x, tf.float32)
    if x.shape.rank == 1:
        return x
    return tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)
