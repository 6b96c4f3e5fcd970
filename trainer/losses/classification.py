"""Classification losses."""

import tensorflow as tf


def softmax_cross_entropy(labels, logits):
    """-log softmax(logits)[label] per example; labels are int class ids [B]."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)
    )
