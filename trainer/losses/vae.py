"""VAE terms of UNIT's shared-latent objective (Liu et al. 2017, eq. 3 and 5)."""

import tensorflow as tf

from trainer.losses.divergence import unit_variance_kl
from trainer.losses.reconstruction import l1


def fixed_variance_sample(mu, noise=None):
    """z = mu + eps, eps ~ N(0, I): a sample of UNIT's posterior q(z|x) = N(mu, I).

    ``noise`` (same shape as ``mu``) is drawn when not given; pass it to make the sample
    deterministic.
    """
    mu = tf.convert_to_tensor(mu)
    if noise is None:
        noise = tf.random.normal(tf.shape(mu), dtype=mu.dtype)
    return mu + tf.cast(noise, mu.dtype)


def vae_loss(x, x_recon, mu, lambda_recon, lambda_kl):
    """Per-example VAE loss: lambda_recon * mean|x_recon - x| + lambda_kl * mean(mu^2).

    The reconstruction likelihood is Laplacian (L1), and the KL of the fixed-variance
    posterior N(mu, I) to the prior N(0, I) is its squared-mean term (``unit_variance_kl``,
    mean over the code as in the UNIT reference, so its weights carry over). The cycle loss
    (eq. 5) has the same form with x_recon = x_aba and mu = E2(x_ab).
    """
    return lambda_recon * l1(x_recon, x) + lambda_kl * unit_variance_kl(mu)
