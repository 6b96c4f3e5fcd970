"""UNIT's VAE terms and the masked classification loss of the UDA heads, on known inputs."""

import numpy as np
import tensorflow as tf

from trainer import losses


def test_fixed_variance_sample_adds_the_given_noise():
    mu = tf.constant([[1.0, -2.0]])
    np.testing.assert_allclose(
        np.asarray(losses.fixed_variance_sample(mu, noise=tf.constant([[0.5, 0.5]]))),
        [[1.5, -1.5]],
    )


def test_fixed_variance_sample_has_unit_variance_around_mu():
    tf.random.set_seed(0)
    mu = tf.fill((20000, 2), 3.0)
    z = np.asarray(losses.fixed_variance_sample(mu))
    np.testing.assert_allclose(z.mean(0), [3.0, 3.0], atol=0.05)
    np.testing.assert_allclose(z.std(0), [1.0, 1.0], atol=0.05)


def test_vae_loss_is_weighted_l1_plus_squared_mean():
    x = np.zeros((2, 2, 2, 1), "float32")
    x_recon = np.stack([np.full((2, 2, 1), 0.5), np.full((2, 2, 1), -1.0)]).astype("float32")
    mu = np.array([[[[1.0, 3.0]]], [[[0.0, 0.0]]]], "float32")  # mean(mu^2) = 5, 0
    out = np.asarray(losses.vae_loss(x, x_recon, mu, lambda_recon=100.0, lambda_kl=0.1))
    np.testing.assert_allclose(out, [100 * 0.5 + 0.1 * 5.0, 100 * 1.0 + 0.0], rtol=1e-6)


def test_vae_loss_is_zero_for_a_perfect_code_at_the_prior_mean():
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4, 4, 3)).astype("float32")
    out = np.asarray(losses.vae_loss(x, x, np.zeros((3, 2, 2, 8), "float32"), 100.0, 0.1))
    np.testing.assert_allclose(out, 0.0)


def test_masked_cross_entropy_ignores_unknown_labels():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]], "float32")
    labels = np.array([0, -1, 1])
    out = np.asarray(losses.masked_softmax_cross_entropy(labels, logits))
    expected0 = -np.log(np.exp(2) / (np.exp(2) + 1))
    expected2 = -np.log(np.exp(-5) / (np.exp(-5) + np.exp(5)))
    np.testing.assert_allclose(out, [expected0, 0.0, expected2], rtol=1e-5)


def test_masked_accuracy_counts_labelled_examples_only():
    logits = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], "float32")
    labels = np.array([0, 0, -1, -1])
    assert float(losses.masked_accuracy(labels, logits)) == 0.5
    assert float(losses.masked_accuracy(np.array([-1, -1, -1, -1]), logits)) == 0.0
