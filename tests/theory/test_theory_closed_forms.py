"""Section 4.1 closed forms: Lemmas 4.1 and 4.2, eqs. (1)–(3), and the ordering of the variants."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import theory
from tests.strategies import covariance_from, linear_problems, seeds, spectrum
from tests.tolerances import tol

#: Relative slack of the variant ordering, for float round-off only.
ORDER_SLACK = 1e-9
#: Size of the random perturbations of an optimum.
PERTURBATION = 1e-3


def _invertible_problems():
    # Lemma 4.1's B* needs A Σ Aᵀ invertible: a full-rank spectrum makes it so for a Haar A.
    return linear_problems(kinds=("isotropic", "powerlaw"))


@given(_invertible_problems(), seeds)
def test_lemma_4_1_closed_form_is_the_minimum(p, seed):
    """Lemma 4.1: L(B* A) equals eq. (2), and no small perturbation of B* lowers L."""
    b_star = theory.optimal_b(p["delta"], p["a"], p["sigma"])
    at_opt = theory.population_loss(p["delta"], b_star @ p["a"], p["sigma"], p["noise_var"])
    assert_allclose(at_opt, theory.loss_b_only(p["delta"], p["a"], p["sigma"], p["noise_var"]), **tol())
    rng = np.random.default_rng(seed)
    for _ in range(5):
        b = b_star + PERTURBATION * rng.standard_normal(b_star.shape)
        moved = theory.population_loss(p["delta"], b @ p["a"], p["sigma"], p["noise_var"])
        assert moved >= at_opt * (1 - ORDER_SLACK)


@given(linear_problems(), seeds)
def test_lemma_4_2_closed_form_is_the_minimum(p, seed):
    """Lemma 4.2: L(B A*) equals eq. (3), and no small perturbation of A* lowers L."""
    a_star = theory.optimal_a(p["delta"], p["b"], p["sigma"])
    at_opt = theory.population_loss(p["delta"], p["b"] @ a_star, p["sigma"], p["noise_var"])
    assert_allclose(at_opt, theory.loss_a_only(p["delta"], p["b"], p["sigma"], p["noise_var"]), **tol())
    rng = np.random.default_rng(seed)
    for _ in range(5):
        a = a_star + PERTURBATION * rng.standard_normal(a_star.shape)
        moved = theory.population_loss(p["delta"], p["b"] @ a, p["sigma"], p["noise_var"])
        assert moved >= at_opt * (1 - ORDER_SLACK)


@given(_invertible_problems())
def test_eq2_matches_the_papers_trace_form(p):
    """Eq. (2) as printed, d_out s² + Tr[ΔΣΔᵀ] − Tr[AΣΔᵀΔΣAᵀ(AΣAᵀ)⁻¹], equals the projector form."""
    d, a, s = p["delta"], p["a"], p["sigma"]
    printed = (
        d.shape[0] * p["noise_var"]
        + np.trace(d @ s @ d.T)
        - np.trace(a @ s @ d.T @ d @ s @ a.T @ np.linalg.inv(a @ s @ a.T))
    )
    assert_allclose(theory.loss_b_only(d, a, s, p["noise_var"]), printed, rtol=1e-7, atol=1e-9)


@given(linear_problems())
def test_eq3_matches_the_papers_trace_form(p):
    """Eq. (3) as printed, d_out s² + Tr[ΔΣΔᵀ] − Tr[BᵀΔΣΔᵀB(BᵀB)⁻¹], equals the projector form."""
    d, b, s = p["delta"], p["b"], p["sigma"]
    printed = (
        d.shape[0] * p["noise_var"]
        + np.trace(d @ s @ d.T)
        - np.trace(b.T @ d @ s @ d.T @ b @ np.linalg.inv(b.T @ b))
    )
    assert_allclose(theory.loss_a_only(d, b, s, p["noise_var"]), printed, rtol=1e-7, atol=1e-9)


@given(linear_problems())
def test_variant_ordering(p):
    """For any frozen A, B: L_full <= L_lora <= min(L_b_only, L_a_only) (nested model classes)."""
    args = (p["delta"], p["sigma"])
    full = theory.loss_full(*args, p["noise_var"])
    lora = theory.loss_lora(*args, p["rank"], p["noise_var"])
    b_only = theory.loss_b_only(p["delta"], p["a"], p["sigma"], p["noise_var"])
    a_only = theory.loss_a_only(p["delta"], p["b"], p["sigma"], p["noise_var"])
    slack = ORDER_SLACK * max(1.0, abs(min(b_only, a_only)))
    assert full <= lora + slack
    assert lora <= min(b_only, a_only) + slack


@given(linear_problems())
def test_lora_loss_is_attained_by_best_rank_update(p):
    """Eckart–Young in the Σ-metric: the update of best_rank_update has rank <= r and loss loss_lora."""
    m = theory.best_rank_update(p["delta"], p["sigma"], p["rank"])
    assert np.linalg.matrix_rank(m, tol=1e-8 * max(1.0, np.abs(m).max())) <= p["rank"]
    assert_allclose(
        theory.population_loss(p["delta"], m, p["sigma"], p["noise_var"]),
        theory.loss_lora(p["delta"], p["sigma"], p["rank"], p["noise_var"]),
        rtol=1e-7,
        atol=1e-9,
    )


@given(linear_problems(), seeds)
def test_lora_is_no_worse_than_random_rank_r_updates(p, seed):
    """Eckart–Young: loss_lora <= L(B A) for random (unoptimised) rank-r factor pairs."""
    rng = np.random.default_rng(seed)
    lora = theory.loss_lora(p["delta"], p["sigma"], p["rank"], p["noise_var"])
    for _ in range(5):
        m = rng.standard_normal((p["d_out"], p["rank"])) @ rng.standard_normal((p["rank"], p["d_in"]))
        assert lora <= theory.population_loss(p["delta"], m, p["sigma"], p["noise_var"]) * (1 + ORDER_SLACK)


@given(st.integers(2, 10), st.integers(2, 10), st.data())
def test_low_rank_sigma_makes_b_only_lossless(d_out, d_in, data):
    """rank Σ <= r ⇒ L_b_only = L_full for a Haar A (almost surely), to 1e-8 relative."""
    rank = data.draw(st.integers(1, min(d_out, d_in)))
    k = data.draw(st.integers(1, rank))
    rng = np.random.default_rng(data.draw(seeds))
    sigma = covariance_from(spectrum("lowrank", d_in, k=k, scale=data.draw(st.floats(0.1, 10))), rng)
    delta = rng.standard_normal((d_out, d_in))
    a = theory.haar_stiefel(d_in, rank, rng).T
    noise_var = data.draw(st.floats(0.0, 1.0))
    assert_allclose(
        theory.loss_b_only(delta, a, sigma, noise_var),
        theory.loss_full(delta, sigma, noise_var),
        rtol=1e-8,
        atol=1e-8 * np.trace(delta @ sigma @ delta.T),
    )


def test_isotropic_sigma_has_no_asymmetry_in_expectation():
    """Σ = I: both reductions are (r/d) Tr[ΔΔᵀ] in expectation for square layers (docs/THEORY.md §1)."""
    rng = np.random.default_rng(0)
    d, r = 12, 3
    delta = rng.standard_normal((d, d))
    sigma = np.eye(d)
    mean_b, se_b = theory.expected_loss_b_only(delta, sigma, r, 0.0, draws=4000, rng=rng)
    exact_a = theory.expected_loss_a_only(delta, sigma, r, 0.0)
    assert abs(mean_b - exact_a) <= 4 * se_b
