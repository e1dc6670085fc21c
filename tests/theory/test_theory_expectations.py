"""Random frozen factors: E over Haar B (exact), E over Haar A (Monte Carlo), the asymmetry gap."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import theory
from tests.strategies import covariance_from, covariances, seeds, shifts, spectrum
from tests.tolerances import MC_SIGMAS, tol

MC_DRAWS = 2000


@settings(max_examples=15)
@given(st.integers(2, 8), st.integers(2, 8), st.data())
def test_expected_a_only_matches_monte_carlo(d_out, d_in, data):
    """E_U[L_a_only] = d_out s² + (1 − r/d_out) Tr[ΔΣΔᵀ] agrees with an average over Haar U within 4 s.e."""
    rank = data.draw(st.integers(1, min(d_out, d_in)))
    delta = data.draw(shifts(d_out, d_in))
    sigma = data.draw(covariances(d_in))
    rng = np.random.default_rng(data.draw(seeds))
    u = theory.haar_stiefel(d_out, rank, rng, draws=MC_DRAWS)
    losses = np.array([theory.loss_a_only(delta, b, sigma, 0.5) for b in u])
    exact = theory.expected_loss_a_only(delta, sigma, rank, 0.5)
    assert abs(losses.mean() - exact) <= MC_SIGMAS * losses.std(ddof=1) / np.sqrt(MC_DRAWS) + 1e-9 * exact


@settings(max_examples=15)
@given(st.integers(2, 8), st.integers(2, 8), st.data())
def test_vectorised_b_only_draws_match_one_at_a_time(d_out, d_in, data):
    """loss_b_only_draws equals loss_b_only applied to each draw (vectorisation is exact)."""
    rank = data.draw(st.integers(1, min(d_out, d_in)))
    delta, sigma = data.draw(shifts(d_out, d_in)), data.draw(covariances(d_in))
    q = theory.haar_stiefel(d_in, rank, np.random.default_rng(data.draw(seeds)), draws=6)
    one_by_one = [theory.loss_b_only(delta, qk.T, sigma, 0.1) for qk in q]
    assert_allclose(theory.loss_b_only_draws(delta, sigma, q, 0.1), one_by_one, rtol=1e-7, atol=1e-9)


@given(st.integers(2, 12), st.integers(2, 12), st.data())
def test_asymmetry_gap_equals_eq4(d_out, d_in, data):
    """Eq. (4): Σ = σ² U_X U_Xᵀ of rank r ⇒ E[L_a_only] − L_b_only = (1 − r/d_out) σ² Tr[U_X U_Xᵀ ΔᵀΔ]."""
    rank = data.draw(st.integers(1, min(d_out, d_in)))
    rng = np.random.default_rng(data.draw(seeds))
    u_x = theory.haar_stiefel(d_in, rank, rng)
    var = data.draw(st.floats(0.1, 10.0))
    sigma = var * u_x @ u_x.T
    delta = data.draw(shifts(d_out, d_in))
    eq4 = (1 - rank / d_out) * var * np.trace(u_x @ u_x.T @ delta.T @ delta)
    assert_allclose(theory.asymmetry_gap(delta, sigma, rank, 0.3), eq4, **tol())


@settings(max_examples=10)
@given(st.integers(3, 8), st.data())
def test_asymmetry_gap_matches_monte_carlo(d, data):
    """rank Σ <= r: the exact gap equals E[L_a_only] (exact) minus the Monte Carlo mean of L_b_only."""
    rank = data.draw(st.integers(1, d - 1))
    k = data.draw(st.integers(1, rank))
    rng = np.random.default_rng(data.draw(seeds))
    sigma = covariance_from(spectrum("lowrank", d, k=k), rng)
    delta = rng.standard_normal((d, d))
    mean_b, se_b = theory.expected_loss_b_only(delta, sigma, rank, 0.2, draws=200, rng=rng)
    measured = theory.expected_loss_a_only(delta, sigma, rank, 0.2) - mean_b
    exact = theory.asymmetry_gap(delta, sigma, rank, 0.2)
    assert abs(measured - exact) <= MC_SIGMAS * se_b + 1e-8 * abs(exact)


def test_asymmetry_gap_refuses_full_rank_sigma():
    """rank Σ > r: the gap has no closed form and the function says which to use instead."""
    with pytest.raises(ValueError, match="expected_loss_b_only"):
        theory.asymmetry_gap(np.eye(4), np.eye(4), 2, 0.0)


@pytest.mark.parametrize(("d_out", "d_in", "rank"), [(12, 12, 1), (12, 12, 5), (8, 20, 3), (20, 8, 3)])
def test_isotropic_inputs_b_only_removes_r_over_d_in(d_out, d_in, rank):
    r"""Σ = cI (README, "Isotropic inputs"): E_A[P_A] = (r/d_in) I over a Haar A, so
    E[L_b_only] − s² d_out = (1 − r/d_in) Tr[ΔΣΔᵀ], while E[L_a_only] − s² d_out = (1 − r/d_out) Tr[ΔΣΔᵀ]:
    the two single-factor expectations coincide exactly when the layer is square."""
    rng = np.random.default_rng(d_out * 100 + d_in + rank)
    delta = rng.standard_normal((d_out, d_in))
    sigma = 2.5 * np.eye(d_in)
    energy = np.trace(delta @ sigma @ delta.T)
    mean_b, se_b = theory.expected_loss_b_only(delta, sigma, rank, 0.3, draws=MC_DRAWS, rng=rng)
    assert abs(mean_b - 0.3 * d_out - (1 - rank / d_in) * energy) <= MC_SIGMAS * se_b
    exact_a = theory.expected_loss_a_only(delta, sigma, rank, 0.3)
    assert exact_a - 0.3 * d_out == pytest.approx((1 - rank / d_out) * energy, rel=1e-10)
    if d_in == d_out:
        assert abs(mean_b - exact_a) <= MC_SIGMAS * se_b


def test_b_only_beats_a_only_on_low_rank_sigma():
    """Theorem 4.3's regime: low-rank Σ, random Δ ⇒ E[L_b_only] < E[L_a_only], far beyond the MC error."""
    rng = np.random.default_rng(1)
    d, r = 32, 4
    sigma = covariance_from(spectrum("lowrank", d, k=4), rng)
    delta = rng.standard_normal((d, d))
    mean_b, se_b = theory.expected_loss_b_only(delta, sigma, r, 0.0, draws=500, rng=rng)
    assert mean_b + MC_SIGMAS * se_b < theory.expected_loss_a_only(delta, sigma, r, 0.0)


def test_counterexample_a_only_beats_b_only():
    """docs/THEORY.md (derived): the asymmetry is not unconditional.

    Σ has variance 1000 on e_1..e_16 and 1 on e_17..e_32, and Δ acts only on the low-variance
    block (row space ⟂ Σ's top eigenvectors). A random A spends its r directions mostly on the
    high-variance block, which Δ ignores; a random B still captures r/d_out of Δ's output energy.
    Statement checked: the a_only reduction of the loss exceeds the b_only one by over 100×.
    """
    rng = np.random.default_rng(2)
    d, r, k = 32, 4, 16
    sigma = np.diag(np.r_[np.full(k, 1000.0), np.full(d - k, 1.0)])
    delta = np.zeros((d, d))
    delta[:, k:] = rng.standard_normal((d, d - k))
    energy = np.trace(delta @ sigma @ delta.T)  # loss of the pretrained model, W = W0
    mean_b, se_b = theory.expected_loss_b_only(delta, sigma, r, 0.0, draws=500, rng=rng)
    reduction_b_upper = energy - (mean_b - MC_SIGMAS * se_b)
    reduction_a = energy - theory.expected_loss_a_only(delta, sigma, r, 0.0)
    assert 100 * reduction_b_upper < reduction_a


@settings(max_examples=15)
@given(st.integers(2, 8), st.integers(2, 8), st.data())
def test_vectorised_a_only_draws_match_one_at_a_time(d_out, d_in, data):
    """loss_a_only_draws equals loss_a_only applied to each draw (vectorisation is exact)."""
    rank = data.draw(st.integers(1, min(d_out, d_in)))
    delta, sigma = data.draw(shifts(d_out, d_in)), data.draw(covariances(d_in))
    u = theory.haar_stiefel(d_out, rank, np.random.default_rng(data.draw(seeds)), draws=6)
    one_by_one = [theory.loss_a_only(delta, b, sigma, 0.1) for b in u]
    assert_allclose(theory.loss_a_only_draws(delta, sigma, u, 0.1), one_by_one, rtol=1e-7, atol=1e-9)
