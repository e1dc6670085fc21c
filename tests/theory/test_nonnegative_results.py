"""Results that cannot be negative never are, and differences of losses are computed directly.

Two classes of numerical failure at the public boundary: a covariance whose smallest eigenvalue is
negative within the round-off tolerance (``theory.validation.PSD_RTOL``) must not yield a negative
loss, and an exact zero (a factor that sees the whole shift) must not come out as −1e-15; a gap of
two losses that share a huge noise floor must not lose its digits to cancellation.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import theory
from tests.strategies import seeds
from theory.validation import PSD_RTOL


@st.composite
def barely_indefinite(draw):
    """A (d, d) symmetric matrix whose smallest eigenvalue is negative but within the PSD tolerance,
    with a shift Δ that acts on that eigenvector (so the quadratic form would be negative as given)."""
    d = draw(st.integers(2, 7))
    rng = np.random.default_rng(draw(seeds))
    v = theory.haar_stiefel(d, d, rng)
    positive = (v[:, 1:] * rng.uniform(0.1, 1.0, d - 1)) @ v[:, 1:].T
    # Half the tolerance of the largest entry at most: entries change by far less than that below.
    negative = -draw(st.floats(0.05, 0.5)) * PSD_RTOL * float(np.abs(positive).max())
    sigma = positive + negative * np.outer(v[:, 0], v[:, 0])
    sigma = (sigma + sigma.T) / 2
    delta = np.outer(rng.standard_normal(draw(st.integers(1, 5))), v[:, 0])  # rows along the negative direction
    return delta, sigma


@given(problem=barely_indefinite())
def test_losses_stay_non_negative_on_a_barely_indefinite_covariance(problem):
    """Every loss is at least its noise floor (0 here) when Σ has a tiny negative eigenvalue that the
    validation accepts: Σ is projected onto the PSD cone, and each excess loss is clamped at 0."""
    delta, sigma = problem
    d_out, d_in = delta.shape
    rank = 1
    rng = np.random.default_rng(0)
    a = theory.haar_stiefel(d_in, rank, rng).T
    b = theory.haar_stiefel(d_out, rank, rng)
    values = [
        theory.population_loss(delta, np.zeros_like(delta), sigma, 0.0),
        theory.loss_b_only(delta, a, sigma, 0.0),
        theory.loss_a_only(delta, b, sigma, 0.0),
        theory.loss_lora(delta, sigma, rank, 0.0),
        theory.expected_loss_a_only(delta, sigma, rank, 0.0),
        theory.expected_loss_b_only(delta, sigma, rank, 0.0, draws=3, rng=rng)[0],
        *theory.loss_b_only_draws(delta, sigma, a.T[None].repeat(2, 0), 0.0),
        *theory.loss_a_only_draws(delta, sigma, b[None].repeat(2, 0), 0.0),
    ]
    assert min(values) >= 0.0, values


@pytest.mark.parametrize("d", [3, 6])
def test_a_factor_that_sees_everything_leaves_exactly_the_noise_floor(d):
    """At rank = d a frozen Haar A spans the input space, so b_only removes the whole shift: the loss
    is exactly d_out s² (never below it by round-off), for one draw and for a stack of draws."""
    rng = np.random.default_rng(d)
    delta = rng.standard_normal((d + 1, d)) * 3.0
    g = rng.standard_normal((d, d))
    sigma = g @ g.T
    a = theory.haar_stiefel(d, d, rng).T
    assert theory.loss_b_only(delta, a, sigma, 0.0) >= 0.0
    assert theory.loss_b_only(delta, a, sigma, 0.25) >= (d + 1) * 0.25
    q = theory.haar_stiefel(d, d, rng, draws=20)
    assert np.all(theory.loss_b_only_draws(delta, sigma, q, 0.0) >= 0.0)
    mean, _ = theory.expected_loss_b_only(delta, sigma, d, 0.0, draws=20, rng=rng)
    assert mean >= 0.0


@pytest.mark.parametrize("noise_var", [0.0, 1.0, 1e8, 1e16, 1e100, 1e150])
def test_asymmetry_gap_does_not_depend_on_the_noise(noise_var):
    """E[L_a_only] − L_b_only = (1 − r/d_out) Tr[ΔΣΔᵀ] for rank Σ <= r (eq. (4)): the noise floor d_out s²
    is in both losses and cancels exactly, so the gap is the same at every s², however large."""
    rng = np.random.default_rng(1)
    delta = rng.standard_normal((6, 5))
    u = theory.haar_stiefel(5, 2, rng)
    sigma = u @ u.T
    expected = (1 - 2 / 6) * np.trace(delta @ sigma @ delta.T)
    assert theory.asymmetry_gap(delta, sigma, 2, noise_var) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("variant", "rank"), [("full", None), ("lora", 5), ("a_only", 5)])
def test_an_exact_fit_has_a_training_loss_of_zero_not_below(variant, rank):
    """With zero noise and n >= d_in, full, lora at full rank and a_only at rank d_out fit the training set
    exactly; the sufficient-statistics sampler's expanded squared norm must give 0, never −1e-15."""
    import synthetic

    task = synthetic.LinearTask(d_in=6, d_out=5, noise_var=0.0, spectrum="powerlaw:1", n_test=16)
    out = synthetic.linear_trial_losses(task, variant, rank, 12, 100, loss="population", seed=0, sampler="sufficient")
    assert out["train_loss"].min() >= 0.0 and out["test_loss"].min() >= 0.0
    assert out["train_loss"].max() < 1e-12
