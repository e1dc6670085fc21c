"""Haar sampling on the Stiefel manifold, and the identity E_U[U Uᵀ] = (r/d) I."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import theory
from tests.strategies import seeds
from tests.tolerances import MC_SIGMAS, tol

DRAWS = 20000


@given(st.integers(1, 12), st.data())
def test_columns_are_orthonormal(d, data):
    """Every draw has Qᵀ Q = I_r."""
    r = data.draw(st.integers(1, d))
    q = theory.haar_stiefel(d, r, np.random.default_rng(data.draw(seeds)), draws=3)
    assert_allclose(np.swapaxes(q, 1, 2) @ q, np.broadcast_to(np.eye(r), (3, r, r)), atol=1e-12)


def _mean_and_se(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])


@pytest.mark.parametrize("d,r", [(3, 1), (5, 2), (6, 6)])
def test_second_moment_is_r_over_d_identity(d, r):
    """E_U[U Uᵀ] = (r/d) I_d for U Haar on St(d, r) (docs/THEORY.md §1), within 4 s.e. entrywise."""
    q = theory.haar_stiefel(d, r, np.random.default_rng(0), draws=DRAWS)
    mean, se = _mean_and_se(q @ np.swapaxes(q, 1, 2))
    assert np.all(np.abs(mean - (r / d) * np.eye(d)) <= MC_SIGMAS * se + tol()["atol"])


def test_entries_have_zero_mean_unlike_plain_qr():
    """Haar ⇒ E[Q] = 0 (Q and −Q are equally likely). Plain QR without the sign fix fails this."""
    rng = np.random.default_rng(1)
    d, r = 4, 2
    mean, se = _mean_and_se(theory.haar_stiefel(d, r, rng, draws=DRAWS))
    assert np.all(np.abs(mean) <= MC_SIGMAS * se)
    plain, _ = np.linalg.qr(rng.standard_normal((DRAWS, d, r)))
    plain_mean, plain_se = _mean_and_se(plain)
    assert np.any(np.abs(plain_mean) > 10 * plain_se)  # the check has power: it catches plain QR


def test_same_generator_state_same_draw():
    """Randomness comes only from the Generator passed in."""
    a = theory.haar_stiefel(5, 2, np.random.default_rng(7))
    b = theory.haar_stiefel(5, 2, np.random.default_rng(7))
    assert np.array_equal(a, b)
