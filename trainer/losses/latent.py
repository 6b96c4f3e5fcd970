"""Terms of latent-space exploration (arXiv 1805.10130): the VAE's negative ELBO, the pair
discriminator over (code, code) pairs, and the noise regulariser of the latent generator."""

import tensorflow as tf

from trainer.losses._util import per_example_mean, per_example_sum
from trainer.losses.divergence import gaussian_kl


def gaussian_sample(mu, log_var, noise=None):
    """z = mu + exp(log_var / 2) * eps, eps ~ N(0, I): a reparameterised sample of the learned
    posterior q(z|x) = N(mu, diag(exp(log_var))). ``noise`` (shaped as ``mu``) makes it
    deterministic."""
    mu = tf.convert_to_tensor(mu)
    if noise is None:
        noise = tf.random.normal(tf.shape(mu), dtype=mu.dtype)
    return mu + tf.exp(0.5 * tf.cast(log_var, mu.dtype)) * tf.cast(noise, mu.dtype)


def negative_elbo(x, x_recon, mu, log_var):
    """-ELBO per pixel: (sum((x_recon - x)^2) + KL(q(z|x) || N(0, I))) / D, D = pixels * channels.

    The likelihood is a Gaussian decoder of variance 1/2 (its -log is the summed squared error
    up to a constant) and ``x_recon`` decodes one posterior sample; dividing by D keeps the
    term on the scale of a per-pixel reconstruction loss.
    """
    x = tf.cast(x, tf.float32)
    sq = per_example_sum(tf.square(tf.cast(x_recon, tf.float32) - x))
    size = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
    return (sq + gaussian_kl(mu, log_var)) / size


def pair_discriminator_loss(discriminator_loss, real, fake, noise, matched=None):
    """Per-example loss of a pair discriminator D(z, z') over three kinds of pairs:

        matched * 0.5 * [d(D(real), D(fake)) + d(D(real), D(noise))]

    ``real``: logits of matched pairs (c = 1), ``fake``: of generated pairs (z, G(z, eps))
    (c = 0), ``noise``: of noise pairs (z, eps) (c = 0); ``d`` is a ``--gan_loss``
    discriminator loss (real, fake) -> [B], so a real pair weighs as much as the two negative
    kinds together. ``matched`` ([B], 0 or 1) drops the examples that found no real partner.
    """
    loss = 0.5 * (discriminator_loss(real, fake) + discriminator_loss(real, noise))
    if matched is not None:
        loss = loss * tf.cast(matched, loss.dtype)
    return loss


def noise_regulariser(eps, g_eps):
    """(1 / n) * ||eps - G(eps, z)||^2 per example, n the code size: G fed the noise in place of
    a code is pulled to return it, which keeps G from ignoring its noise input."""
    return per_example_mean(tf.square(tf.cast(eps, tf.float32) - tf.cast(g_eps, tf.float32)))
