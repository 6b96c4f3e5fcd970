"""DTN's losses on known inputs: the three-way discriminator and generator, realness,
f-constancy, target identity and total variation."""

import numpy as np
import pytest

from trainer import losses


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def test_three_way_discriminator_is_cross_entropy_on_each_class():
    fs = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], "float32")
    ft = np.array([[0.0, 3.0, 0.0], [1.0, -1.0, 0.5]], "float32")
    rt = np.array([[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], "float32")
    expected = -_log_softmax(fs)[:, 0] - _log_softmax(ft)[:, 1] - _log_softmax(rt)[:, 2]
    got = np.asarray(losses.three_way_discriminator(fs, ft, rt))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # Uniform logits: each term is log 3.
    np.testing.assert_allclose(got[1], -_log_softmax(ft)[1, 1] + 2 * np.log(3), rtol=1e-6)
    # A confident, right D pays almost nothing; a confident, wrong one a lot.
    right = np.array([[20.0, 0, 0]], "float32"), np.array([[0, 20.0, 0]], "float32")
    real = np.array([[0, 0, 20.0]], "float32")
    assert float(losses.three_way_discriminator(*right, real)[0]) < 1e-6
    assert float(losses.three_way_discriminator(real, real, right[0])[0]) > 50


def test_three_way_generator_wants_both_fakes_called_real():
    fs = np.array([[0.0, 0.0, 0.0]], "float32")
    ft = np.array([[0.0, 0.0, np.log(2.0)]], "float32")  # D_3 = 2/4
    np.testing.assert_allclose(
        np.asarray(losses.three_way_generator(fs, ft)), [np.log(3.0) + np.log(2.0)], rtol=1e-6
    )


def test_realness_is_the_log_odds_of_real_and_its_vanilla_loss_is_the_generators():
    logits = np.array([[0.3, -0.2, 1.1], [2.0, 2.0, 0.0]], "float32")
    p = np.exp(_log_softmax(logits))
    np.testing.assert_allclose(
        np.asarray(losses.realness(logits)), np.log(p[:, 2] / (p[:, 0] + p[:, 1])), rtol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(losses.vanilla_generator(losses.realness(logits)))
        + np.asarray(losses.vanilla_generator(losses.realness(logits))),
        np.asarray(losses.three_way_generator(logits, logits)),
        rtol=1e-5,
    )


def test_f_constancy_and_target_identity_are_mean_squared_errors():
    f_x = np.array([[1.0, 2.0], [0.0, 0.0]], "float32")
    f_gx = np.array([[1.0, 0.0], [3.0, -1.0]], "float32")
    np.testing.assert_allclose(np.asarray(losses.f_constancy(f_x, f_gx)), [2.0, 5.0])
    x_t = np.zeros((2, 2, 2, 1), "float32")
    g_xt = np.stack([np.full((2, 2, 1), 0.5), np.full((2, 2, 1), -1.0)]).astype("float32")
    np.testing.assert_allclose(np.asarray(losses.target_identity(x_t, g_xt)), [0.25, 1.0])


def test_total_variation_on_known_images():
    flat = np.full((1, 4, 4, 3), 0.7, "float32")
    assert float(losses.total_variation(flat)[0]) == pytest.approx(1e-4, abs=1e-6)  # sqrt(eps)
    # A horizontal ramp of step 0.5: every |dx| = 0.5, every dy = 0.
    ramp = np.tile(np.arange(4, dtype="float32")[None, None, :, None] * 0.5, (1, 4, 1, 1))
    assert float(losses.total_variation(ramp)[0]) == pytest.approx(0.5, rel=1e-5)
    # A diagonal ramp: dx = dy = 1, sqrt(2) per pixel; per example.
    diag = (np.arange(3)[:, None] + np.arange(3)[None, :]).astype("float32")[None, ..., None]
    out = np.asarray(losses.total_variation(np.concatenate([diag, flat[:, :3, :3, :1]])))
    np.testing.assert_allclose(out, [np.sqrt(2.0), 1e-4], rtol=1e-4, atol=1e-6)
