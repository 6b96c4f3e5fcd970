import numpy as np
import pytest
import tensorflow as tf

from trainer import losses


def _np(x):
    return np.asarray(x)


def test_lsgan_values_on_known_logits():
    real = np.array([[1.0, 1.0], [0.0, 2.0]], "float32")
    fake = np.array([[0.0, 0.0], [1.0, -1.0]], "float32")
    np.testing.assert_allclose(_np(losses.lsgan_generator(fake)), [1.0, 2.0])
    # 0.5 * (mean((real-1)^2) + mean(fake^2))
    np.testing.assert_allclose(
        _np(losses.lsgan_discriminator(real, fake)), [0.0, 0.5 * (1.0 + 1.0)]
    )


def test_vanilla_gan_is_cross_entropy():
    real = np.array([[2.0]], "float32")
    fake = np.array([[-1.0]], "float32")
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    np.testing.assert_allclose(_np(losses.vanilla_generator(fake)), [-np.log(sig(-1.0))], rtol=1e-6)
    expected = -np.log(sig(2.0)) - np.log(1 - sig(-1.0))
    np.testing.assert_allclose(_np(losses.vanilla_discriminator(real, fake)), [expected], rtol=1e-6)


def test_wgan_and_hinge():
    real = np.array([[0.5, 1.5]], "float32")
    fake = np.array([[-2.0, 0.0]], "float32")
    np.testing.assert_allclose(_np(losses.wgan_critic(real, fake)), [-1.0 - 1.0])
    np.testing.assert_allclose(_np(losses.wgan_generator(fake)), [1.0])
    # relu(1 - 0.5)=0.5, relu(1-1.5)=0 -> 0.25 ; relu(1-2)=0, relu(1+0)=1 -> 0.5
    np.testing.assert_allclose(_np(losses.hinge_discriminator(real, fake)), [0.75])


def test_gan_loss_lookup_and_error():
    assert losses.gan_loss("lsgan").generator is losses.lsgan_generator
    with pytest.raises(ValueError, match="lsgan, vanilla, wgan, hinge"):
        losses.gan_loss("relativistic")


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = sum(w * x): grad norm is ||w|| everywhere, so the penalty is (||w|| - 1)^2.
    w = tf.constant(np.full((1, 2, 2, 1), 0.75, "float32"))

    def critic(x, training=True):
        return tf.reduce_sum(x * w, axis=[1, 2, 3])

    real = tf.ones((3, 2, 2, 1))
    fake = tf.zeros((3, 2, 2, 1))
    gp = _np(losses.gradient_penalty(critic, real, fake, seed=(1, 2)))
    np.testing.assert_allclose(gp, [(1.5 - 1.0) ** 2] * 3, rtol=1e-4)


def test_gradient_penalty_by_hand_on_a_quadratic_critic():
    # D(x) = 0.5 * sum(x^2) has gradient x, so at x_hat = eps * real + (1 - eps) * fake the
    # penalty is (||x_hat|| - 1)^2: with fake = 0 and real = 3 everywhere on 4 entries,
    # ||x_hat|| = eps * 3 * 2. eps comes from the same stateless draw the loss makes.
    def critic(x, training=True):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    real = tf.fill((2, 2, 2, 1), 3.0)
    fake = tf.zeros((2, 2, 2, 1))
    eps = tf.random.stateless_uniform([2, 1, 1, 1], seed=(3, 4)).numpy().ravel()
    gp = _np(losses.gradient_penalty(critic, real, fake, seed=(3, 4)))
    np.testing.assert_allclose(gp, (eps * 6.0 - 1.0) ** 2, rtol=1e-5)


def test_gradient_penalty_interpolates_each_example_with_its_own_eps():
    # D(x) = 0.5 * sum(x^2): the penalty of example i is (||x_hat_i|| - 1)^2 with
    # x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i, from that example's own pair and eps.
    # real_0 = 3 and real_1 = -1 everywhere, fake_0 = 1 and fake_1 = 2 (4 entries, norm 2x).
    def critic(x, training=True):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    real = tf.constant(np.stack([np.full((2, 2, 1), 3.0), np.full((2, 2, 1), -1.0)]), tf.float32)
    fake = tf.constant(np.stack([np.full((2, 2, 1), 1.0), np.full((2, 2, 1), 2.0)]), tf.float32)
    eps = tf.random.stateless_uniform([2, 1, 1, 1], seed=(5, 6)).numpy().ravel()
    assert abs(eps[0] - eps[1]) > 1e-3  # one draw per example
    value = eps * np.array([3.0, -1.0]) + (1 - eps) * np.array([1.0, 2.0])
    expected = (np.abs(value) * 2.0 - 1.0) ** 2
    gp = _np(losses.gradient_penalty(critic, real, fake, seed=(5, 6)))
    np.testing.assert_allclose(gp, expected, rtol=1e-5)
    # Swapping the examples swaps the penalties only if eps is swapped too: the pairs are
    # never mixed across the batch.
    swapped = _np(losses.gradient_penalty(critic, real[::-1], fake[::-1], seed=(5, 6)))
    value = eps * np.array([-1.0, 3.0]) + (1 - eps) * np.array([2.0, 1.0])
    np.testing.assert_allclose(swapped, (np.abs(value) * 2.0 - 1.0) ** 2, rtol=1e-5)


def test_gradient_penalty_averages_a_patch_map_and_reads_dict_outputs():
    # A PatchGAN-like critic with 4 patch logits, each w * x at its own pixel, mean-reduced
    # per example: the gradient is w / 4 at every pixel, norm = |w| / 4 * sqrt(4) = |w| / 2.
    def critic(x, training=True):
        return {"logits": 3.0 * x, "features": x}

    gp = _np(losses.gradient_penalty(critic, tf.ones((2, 2, 2, 1)), tf.zeros((2, 2, 2, 1))))
    np.testing.assert_allclose(gp, [(1.5 - 1.0) ** 2] * 2, rtol=1e-5)


def test_reconstruction_losses():
    x = np.zeros((2, 2, 2, 1), "float32")
    y = np.stack([np.ones((2, 2, 1)), np.full((2, 2, 1), -2.0)]).astype("float32")
    np.testing.assert_allclose(_np(losses.l1(x, y)), [1.0, 2.0])
    np.testing.assert_allclose(_np(losses.l2(x, y)), [1.0, 4.0])


def test_kl_terms():
    mu = np.array([[1.0, -1.0], [0.0, 2.0]], "float32")
    np.testing.assert_allclose(_np(losses.unit_variance_kl(mu)), [1.0, 2.0])
    log_var = np.zeros_like(mu)
    # KL(N(mu, 1) || N(0, 1)) = 0.5 * sum(mu^2)
    np.testing.assert_allclose(_np(losses.gaussian_kl(mu, log_var)), [1.0, 2.0])
    # A standard normal posterior costs nothing; a narrower one costs 0.5*(e^lv - lv - 1).
    np.testing.assert_allclose(
        _np(losses.gaussian_kl(np.zeros((1, 1), "f"), np.full((1, 1), -1.0, "f"))),
        [0.5 * (np.exp(-1.0) + 1.0 - 1.0)],
        rtol=1e-6,
    )


def test_softmax_cross_entropy():
    logits = np.log(np.array([[0.25, 0.75], [0.5, 0.5]], "float32"))
    np.testing.assert_allclose(
        _np(losses.softmax_cross_entropy([1, 0], logits)), [-np.log(0.75), -np.log(0.5)], rtol=1e-6
    )


def test_group_softmax_cross_entropy_uses_only_the_labels_of_the_example_group():
    # Labels 0-1 are dataset 0's, labels 2-4 dataset 1's (StarGAN's mask vector).
    logits = tf.constant([[2.0, 0.0, 5.0, 5.0, 1.0], [2.0, 0.0, 5.0, 5.0, 1.0]])
    groups = tf.constant([0, 0, 1, 1, 1])
    loss = _np(losses.group_softmax_cross_entropy([0, 4], logits, groups))
    # Example 0 (label 0): softmax over [2, 0] only; group 1's large logits do not count.
    # Example 1 (label 4): softmax over [5, 5, 1].
    expected = [np.log1p(np.exp(-2.0)), np.log(2 * np.exp(5.0) + np.exp(1.0)) - 1.0]
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    # One group: the plain softmax cross-entropy over every label.
    np.testing.assert_allclose(
        _np(losses.group_softmax_cross_entropy([3, 1], logits, tf.zeros([5], tf.int32))),
        _np(losses.softmax_cross_entropy([3, 1], logits)),
        rtol=1e-6,
    )
    # No gradient reaches another group's logits; the own group's all get one.
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = losses.group_softmax_cross_entropy([0, 4], logits, groups)
    grad = tape.gradient(loss, logits).numpy()
    assert np.all(grad[0, 2:] == 0) and np.all(grad[0, :2] != 0)
    assert np.all(grad[1, :2] == 0) and np.all(grad[1, 2:] != 0)
    assert np.all(np.isfinite(grad))
