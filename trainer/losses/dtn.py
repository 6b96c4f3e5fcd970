"""The Domain Transfer Network's losses (Taigman, Polyak & Wolf, arXiv 1611.02200).

The three-way discriminator D has logits [B, 3] (or [B, ..., 3]) over the classes
``FAKE_FROM_SOURCE`` (G(x) for a source image x), ``FAKE_FROM_TARGET`` (G(x) for a target
image x) and ``REAL_TARGET``.
"""

import tensorflow as tf

from trainer.losses._util import per_example_mean

FAKE_FROM_SOURCE, FAKE_FROM_TARGET, REAL_TARGET = 0, 1, 2


def _cross_entropy(logits, label):
    """-log softmax(logits)[label] per example, averaged over any positions ([B, ..., 3])."""
    return -per_example_mean(tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)[..., label])


def three_way_discriminator(fake_from_source, fake_from_target, real_target):
    """DTN's L_D: -log D_1(G(x_s)) - log D_2(G(x_t)) - log D_3(x_t), per example.

    Each argument holds D's three logits of one batch; example i of each is one term.
    """
    return (
        _cross_entropy(fake_from_source, FAKE_FROM_SOURCE)
        + _cross_entropy(fake_from_target, FAKE_FROM_TARGET)
        + _cross_entropy(real_target, REAL_TARGET)
    )


def three_way_generator(fake_from_source, fake_from_target):
    """DTN's L_GANG: -log D_3(G(x_s)) - log D_3(G(x_t)), per example: both translations
    should pass for real target images."""
    return _cross_entropy(fake_from_source, REAL_TARGET) + _cross_entropy(
        fake_from_target, REAL_TARGET
    )


def realness(logits):
    """The log-odds of "real target" against either fake class: log D_3 - log(D_1 + D_2).

    A binary discriminator logit read off the three-way D (the vanilla GAN loss on it equals the
    three-way generator loss); other GAN losses (lsgan, hinge, wgan) use it as their score.
    """
    logits = tf.cast(logits, tf.float32)
    return logits[..., REAL_TARGET] - tf.reduce_logsumexp(logits[..., :REAL_TARGET], axis=-1)


def f_constancy(features, translated_features):
    """DTN's L_CONST: ||f(x) - f(G(x))||^2, the mean squared distance of the feature vectors
    per example (the translation keeps what f sees in the source image)."""
    diff = tf.cast(features, tf.float32) - tf.cast(translated_features, tf.float32)
    return per_example_mean(tf.square(diff))


def target_identity(target, translated_target):
    """DTN's L_TID: ||x_t - G(x_t)||^2, mean squared error per example (G leaves an image
    that is already in the target domain unchanged)."""
    diff = tf.cast(target, tf.float32) - tf.cast(translated_target, tf.float32)
    return per_example_mean(tf.square(diff))


def total_variation(images, eps=1e-8):
    """DTN's L_TV with B = 1: mean over pixels and channels of
    sqrt((z[i, j+1] - z[i, j])^2 + (z[i+1, j] - z[i, j])^2), per example (smooths G's output).

    ``eps`` inside the root keeps the gradient finite on flat regions.
    """
    z = tf.cast(images, tf.float32)
    dx = z[:, :-1, 1:, :] - z[:, :-1, :-1, :]
    dy = z[:, 1:, :-1, :] - z[:, :-1, :-1, :]
    return per_example_mean(tf.sqrt(tf.square(dx) + tf.square(dy) + eps))
