"""The hypothesis strategies themselves produce what they promise."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import covariance_from, covariances, haar_factors, linear_problems, shifts, spectrum


@given(covariances(6))
def test_covariances_are_symmetric_psd(sigma):
    """Every drawn covariance is symmetric with non-negative eigenvalues."""
    assert np.array_equal(sigma, sigma.T)
    assert np.linalg.eigvalsh(sigma)[0] >= -1e-10 * np.abs(sigma).max()


@given(st.integers(1, 6))
def test_low_rank_spectrum_has_its_rank(k):
    """A 'lowrank:k' covariance has rank exactly k."""
    sigma = covariance_from(spectrum("lowrank", 6, k=k), np.random.default_rng(k))
    assert np.linalg.matrix_rank(sigma, tol=1e-9) == k


@given(st.data())
def test_shifts_have_the_requested_rank(data):
    """shifts(d_out, d_in, rank) has rank exactly `rank`."""
    k = data.draw(st.integers(1, 4))
    delta = data.draw(shifts(5, 7, rank=k))
    assert delta.shape == (5, 7)
    assert np.linalg.matrix_rank(delta) == k


@given(haar_factors(7, 3))
def test_haar_factors_are_orthonormal(q):
    """haar_factors(d, r) has orthonormal columns."""
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)


@given(linear_problems())
def test_linear_problems_are_consistent(p):
    """Shapes fit: Δ (d_out, d_in), Σ (d_in, d_in), A (r, d_in), B (d_out, r)."""
    assert p["delta"].shape == (p["d_out"], p["d_in"])
    assert p["sigma"].shape == (p["d_in"], p["d_in"])
    assert p["a"].shape == (p["rank"], p["d_in"])
    assert p["b"].shape == (p["d_out"], p["rank"])
