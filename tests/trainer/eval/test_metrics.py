"""FID and KID estimators on inputs whose answer is known, and against a plain reference."""

import itertools

import numpy as np
import pytest
import scipy.linalg

from trainer.eval import metrics


def reference_fid(x, y):
    """The textbook formula, written out once more without shortcuts."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x = sum(np.outer(v - mu_x, v - mu_x) for v in x) / (len(x) - 1)
    cov_y = sum(np.outer(v - mu_y, v - mu_y) for v in y) / (len(y) - 1)
    root = np.real(scipy.linalg.sqrtm(cov_x @ cov_y))
    return float(np.sum((mu_x - mu_y) ** 2) + np.trace(cov_x + cov_y - 2 * root))


def reference_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, by explicit double loops."""
    m, d = x.shape

    def k(a, b):
        return (np.dot(a, b) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_identical_sets_are_zero():
    x = np.random.default_rng(0).normal(size=(200, 8))
    assert metrics.fid(x, x) == pytest.approx(0.0, abs=1e-6)
    mean, _ = metrics.kid(x, x, num_subsets=20)
    shifted, _ = metrics.kid(x, x + 1.0, num_subsets=20)
    # Different subsets are drawn from each side, so KID is near 0 rather than exactly 0.
    assert abs(mean) < 0.05 * shifted


def test_frechet_distance_closed_form_isotropic():
    d = 6
    mu1, mu2 = np.zeros(d), np.arange(d, dtype=float)
    a, b = 0.5, 2.0
    expected = np.sum(mu2**2) + d * (a - b) ** 2
    got = metrics.frechet_distance(mu1, a * a * np.eye(d), mu2, b * b * np.eye(d))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_closed_form_general_covariances():
    rng = np.random.default_rng(1)
    d = 5
    q = rng.normal(size=(d, d))
    s1 = q @ q.T + np.eye(d)
    r = rng.normal(size=(d, d))
    s2 = r @ r.T + 0.5 * np.eye(d)
    # Tr((S1 S2)^1/2) is the sum of square roots of the (real, positive) eigenvalues of S1 S2.
    trace_root = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real))
    expected = 4.0 + np.trace(s1) + np.trace(s2) - 2 * trace_root
    got = metrics.frechet_distance(np.zeros(d), s1, np.full(d, 2.0 / np.sqrt(d)), s2)
    assert got == pytest.approx(expected, rel=1e-7)


def test_fid_of_shifted_gaussian_samples_matches_the_shift():
    rng = np.random.default_rng(2)
    shift = np.array([3.0, -1.0, 0.5, 0.0])
    x = rng.normal(size=(20000, 4))
    y = rng.normal(size=(20000, 4)) + shift
    # Same covariance: FID is the squared distance between the means.
    assert metrics.fid(x, y) == pytest.approx(np.sum(shift**2), rel=0.03)


def test_fid_matches_reference():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6))
    y = rng.normal(size=(70, 6)) * 1.5 + 0.3
    assert metrics.fid(x, y) == pytest.approx(reference_fid(x, y), rel=1e-8)


def test_fid_with_fewer_samples_than_dimensions_is_finite():
    rng = np.random.default_rng(4)
    value = metrics.fid(rng.normal(size=(10, 32)), rng.normal(size=(10, 32)) + 1)
    assert np.isfinite(value) and value > 0


def test_mmd2_matches_reference():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(12, 5))
    y = rng.normal(size=(12, 5)) + 0.7
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(reference_mmd2(x, y), rel=1e-10)


def test_kid_is_unbiased_for_same_distribution_and_positive_for_shift():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(400, 8))
    same = rng.normal(size=(400, 8))
    shifted = rng.normal(size=(400, 8)) + 1.0
    mean_same, std_same = metrics.kid(x, same, num_subsets=50, subset_size=100)
    mean_shift, std_shift = metrics.kid(x, shifted, num_subsets=50, subset_size=100)
    assert abs(mean_same) < 3 * std_same + 1e-3
    assert mean_shift > 5 * std_shift > 0


def test_kid_subsets_use_the_reference_estimator():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(10, 3))
    y = rng.normal(size=(10, 3)) + 0.5
    # Sets of 3 vectors are used whole: every subset is the full set.
    mean, std = metrics.kid(x[:3], y[:3], num_subsets=4)
    assert mean == pytest.approx(reference_mmd2(x[:3], y[:3]), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("sizes", [(40, 40), (30, 52), (9, 6)])
def test_kid_from_whole_set_kernels_matches_a_kernel_per_subset(sizes, monkeypatch):
    """Sets up to FULL_KERNEL_LIMIT read every subset off the whole-set kernels; larger ones
    compute a kernel per subset. Both give the same subsets' mean and spread."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(sizes[0], 6))
    y = rng.normal(size=(sizes[1], 6)) + 0.4
    fast = metrics.kid(x, y, num_subsets=7)
    subsets_rng = np.random.default_rng(0)
    m = min(sizes) // 2
    expected = []
    for _ in range(7):
        i = subsets_rng.choice(sizes[0], m, replace=False)
        j = subsets_rng.choice(sizes[1], m, replace=False)
        expected.append(reference_mmd2(x[i], y[j]))
    assert fast == pytest.approx((np.mean(expected), np.std(expected)), rel=1e-9)
    monkeypatch.setattr(metrics, "FULL_KERNEL_LIMIT", 0)
    assert metrics.kid(x, y, num_subsets=7) == pytest.approx(fast, rel=1e-9)


def test_polynomial_kernel_of_any_degree():
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    for degree in (1, 2, 3, 2.5):
        expected = (0.2 * (x @ y.T) + 3.0) ** degree
        got = metrics.polynomial_kernel(x, y, degree=degree, gamma=0.2, coef0=3.0)
        np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (1, 4)])
def test_bad_inputs_raise(shape):
    with pytest.raises(ValueError):
        metrics.fid(np.zeros(shape), np.zeros((5, 4)))
