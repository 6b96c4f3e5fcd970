"""Classification losses."""

import tensorflow as tf


def softmax_cross_entropy(labels, logits):
    """-log softmax(logits)[label] per example; labels are int class ids [B]."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)
    )


# Stands in for -inf on masked logits: softmax gives them exactly 0 weight and no NaN appears.
MASKED_LOGIT = -1e9


def group_softmax_cross_entropy(labels, logits, group_of_label):
    """Softmax cross-entropy of ``labels`` over the logits of each label's own group only.

    ``labels`` [B] index the D logits [B, D]; ``group_of_label`` [D] gives each label's group
    (StarGAN's mask vector: the dataset that label set comes from). For an example whose
    label y lies in group g:

        loss = -logits[y] + log sum_{j in g} exp(logits[j])

    The other groups' logits are masked out before the softmax and get no gradient, so an
    example of one dataset is never pushed towards or away from another dataset's labels,
    which it does not carry. With one group this is the plain softmax cross-entropy.
    """
    labels = tf.cast(labels, tf.int32)
    group_of_label = tf.cast(group_of_label, tf.int32)
    logits = tf.cast(logits, tf.float32)
    own = tf.gather(group_of_label, labels)
    same = tf.equal(group_of_label[None, :], own[:, None])
    masked = tf.where(same, logits, tf.fill(tf.shape(logits), MASKED_LOGIT))
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=masked)
