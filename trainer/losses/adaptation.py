"""Domain-adaptation terms: classification with partly missing labels."""

import tensorflow as tf


def masked_softmax_cross_entropy(labels, logits):
    """-log softmax(logits)[label] per example, 0 where the label is unknown (label < 0).

    Batches mark unlabelled images with -1, so a head trained on source labels ignores them;
    the caller's mean still divides by the whole batch.
    """
    labels = tf.cast(labels, tf.int32)
    known = labels >= 0
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(known, labels, tf.zeros_like(labels)), logits=tf.cast(logits, tf.float32)
    )
    return tf.where(known, ce, tf.zeros_like(ce))


def masked_accuracy(labels, logits):
    """Fraction of labelled examples (label >= 0) whose argmax logit is the label; 0 if none."""
    labels = tf.cast(labels, tf.int64)
    known = tf.cast(labels >= 0, tf.float32)
    hit = tf.cast(tf.equal(tf.argmax(logits, axis=-1), labels), tf.float32) * known
    return tf.math.divide_no_nan(tf.reduce_sum(hit), tf.reduce_sum(known))
