"""Adversarial losses on discriminator logits (any shape [B, ...]; PatchGAN maps included).

Each returns the per-example mean over the logit map.
"""

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from trainer.losses._util import per_example_mean


def lsgan_generator(fake):
    """Least-squares GAN, generator side (Mao et al. 2017): mean((D(G(z)) - 1)^2)."""
    return per_example_mean(tf.square(tf.cast(fake, tf.float32) - 1.0))


def lsgan_discriminator(real, fake):
    """Least-squares GAN, discriminator side: 0.5 * [mean((D(x) - 1)^2) + mean(D(G(z))^2)].

    The 0.5 slows D relative to G, as in the CycleGAN reference.
    """
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    return 0.5 * (per_example_mean(tf.square(real - 1.0)) + per_example_mean(tf.square(fake)))


def vanilla_generator(fake):
    """Non-saturating GAN generator loss (Goodfellow et al. 2014): mean(-log sigmoid(D(G(z))))."""
    return per_example_mean(tf.nn.softplus(-tf.cast(fake, tf.float32)))


def vanilla_discriminator(real, fake):
    """Cross-entropy GAN discriminator loss: mean(-log sigmoid(D(x))) + mean(-log(1 - sigmoid(D(G(z)))))."""
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    return per_example_mean(tf.nn.softplus(-real)) + per_example_mean(tf.nn.softplus(fake))


def wgan_generator(fake):
    """Wasserstein GAN generator loss (Arjovsky et al. 2017): -mean(D(G(z)))."""
    return -per_example_mean(fake)


def wgan_critic(real, fake):
    """Wasserstein critic loss: mean(D(G(z))) - mean(D(x))."""
    return per_example_mean(fake) - per_example_mean(real)


def hinge_generator(fake):
    """Hinge GAN generator loss (Lim & Ye 2017): -mean(D(G(z)))."""
    return -per_example_mean(fake)


def hinge_discriminator(real, fake):
    """Hinge discriminator loss: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))."""
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    return per_example_mean(tf.nn.relu(1.0 - real)) + per_example_mean(tf.nn.relu(1.0 + fake))


def gradient_penalty(critic, real, fake, seed=None):
    """WGAN-GP penalty (Gulrajani et al. 2017): (||grad_x_hat D(x_hat)||_2 - 1)^2 per example.

    x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per example. ``critic`` maps images to
    logits (if it returns several outputs, the first is used; a dict, its ``"logits"``). A
    PatchGAN's logit map is averaged per example first, as its loss is: the penalty holds that
    per-image critic value to norm 1.
    """
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    shape = [tf.shape(real)[0]] + [1] * (real.shape.rank - 1)
    if seed is None:
        eps = tf.random.uniform(shape)
    else:
        eps = tf.random.stateless_uniform(shape, seed=seed)
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        out = critic(x_hat, training=True)
        if isinstance(out, dict):
            out = out["logits"]
        elif isinstance(out, (list, tuple)):
            out = out[0]
        out = tf.reduce_sum(per_example_mean(out))
    grad = tape.gradient(out, x_hat)
    norm = tf.sqrt(tf.reduce_sum(tf.reshape(tf.square(grad), [tf.shape(grad)[0], -1]), 1) + 1e-12)
    return tf.square(norm - 1.0)


class GanLoss(NamedTuple):
    generator: Callable
    discriminator: Callable


GAN_LOSSES = {
    "lsgan": GanLoss(lsgan_generator, lsgan_discriminator),
    "vanilla": GanLoss(vanilla_generator, vanilla_discriminator),
    "wgan": GanLoss(wgan_generator, wgan_critic),
    "hinge": GanLoss(hinge_generator, hinge_discriminator),
}


def gan_loss(kind):
    """The (generator, discriminator) pair for a ``--gan_loss`` value."""
    try:
        return GAN_LOSSES[kind]
    except KeyError:
        raise ValueError(
            f"Unknown --gan_loss={kind!r}: choose one of {', '.join(GAN_LOSSES)}."
        ) from None
