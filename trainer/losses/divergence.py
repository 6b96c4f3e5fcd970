"""KL divergences of Gaussian posteriors to the standard normal prior."""

import tensorflow as tf

from trainer.losses._util import per_example_mean, per_example_sum


def unit_variance_kl(mu):
    """KL(N(mu, I) || N(0, I)) up to the constant factor UNIT uses: mean(mu^2).

    With the posterior variance fixed to 1 (UNIT, Liu et al. 2017), the KL term reduces to
    0.5 * sum(mu^2); UNIT's reference implementation takes the mean of mu^2, which only rescales
    ``lambda_kl``. We follow the reference so its weights carry over.
    """
    return per_example_mean(tf.square(tf.cast(mu, tf.float32)))


def gaussian_kl(mu, log_var):
    """KL(N(mu, diag(exp(log_var))) || N(0, I)) = 0.5 * sum(mu^2 + exp(log_var) - log_var - 1)."""
    mu = tf.cast(mu, tf.float32)
    log_var = tf.cast(log_var, tf.float32)
    return 0.5 * per_example_sum(tf.square(mu) + tf.exp(log_var) - log_var - 1.0)
