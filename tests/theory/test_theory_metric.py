"""The output side of Section 4.1 (docs/THEORY.md §1b): losses in an output metric G, and eq. (5).

Each test states its claim; closed forms are checked against an independent reference (a
vectorised least-squares solve, a brute-force projector) or against Monte Carlo over the random
shift and the frozen factor, with the Monte Carlo slack ``MC_SIGMAS`` standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import theory
from tests.strategies import covariance_from, covariances, linear_problems, seeds, spectrum
from tests.tolerances import MC_SIGMAS, tol
from theory.captured import _fraction_draws

@given(p=linear_problems())
def test_metric_none_and_identity_are_eq1(p):
    """``metric=None`` and ``metric=I`` give the losses and optima of eq. (1) (G = I in eq. (1G))."""
    eye = np.eye(p["d_out"])
    delta, sigma, s2, r = p["delta"], p["sigma"], p["noise_var"], p["rank"]
    m = p["b"] @ p["a"]
    pairs = [
        (theory.population_loss(delta, m, sigma, s2), theory.population_loss(delta, m, sigma, s2, metric=eye)),
        (theory.loss_b_only(delta, p["a"], sigma, s2), theory.loss_b_only(delta, p["a"], sigma, s2, metric=eye)),
        (theory.loss_a_only(delta, p["b"], sigma, s2), theory.loss_a_only(delta, p["b"], sigma, s2, metric=eye)),
        (theory.loss_lora(delta, sigma, r, s2), theory.loss_lora(delta, sigma, r, s2, metric=eye)),
        (theory.loss_full(delta, sigma, s2), theory.loss_full(delta, sigma, s2, metric=eye)),
        (theory.expected_loss_a_only(delta, sigma, r, s2), theory.expected_loss_a_only(delta, sigma, r, s2, metric=eye)),
        (theory.optimal_a(delta, p["b"], sigma), theory.optimal_a(delta, p["b"], sigma, metric=eye)),
        (theory.best_rank_update(delta, sigma, r), theory.best_rank_update(delta, sigma, r, metric=eye)),
    ]
    scale = 1.0 + float(np.sum(delta**2)) * float(np.abs(sigma).max()) + s2 * p["d_out"]
    for plain, with_eye in pairs:
        np.testing.assert_allclose(with_eye, plain, rtol=tol()["rtol"], atol=tol()["atol"] * scale)


def _a_only_by_vectorised_lstsq(delta, b, sigma, metric, s2):
    """Independent reference for eq. (1G) minimised over A: least squares in vec(A).

    ``‖G^{1/2}(Δ − BA)Σ^{1/2}‖_F² = ‖(Σ^{1/2} ⊗ G^{1/2}B) vec(A) − vec(G^{1/2}ΔΣ^{1/2})‖²``
    (column-major vec).
    """
    g_root, s_root = theory.sqrtm_psd(metric), theory.sqrtm_psd(sigma)
    design = np.kron(s_root.T, g_root @ b)
    target = (g_root @ delta @ s_root).reshape(-1, order="F")
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    a = coef.reshape((b.shape[1], delta.shape[1]), order="F")
    return a, s2 * np.trace(metric) + float(np.sum((design @ coef - target) ** 2))


@given(p=linear_problems(), data=st.data())
def test_a_only_in_a_metric_is_the_least_squares_optimum(p, data):
    """§1b: with output metric G, ``min_A L_G(BA)`` is attained at ``A* = (BᵀGB)⁻¹BᵀGΔ`` and equals
    ``loss_a_only(metric=G)``; both agree with a least-squares solve in vec(A)."""
    metric = data.draw(covariances(p["d_out"], kinds=("isotropic", "powerlaw")))
    delta, b, sigma, s2 = p["delta"], p["b"], p["sigma"], p["noise_var"]
    a_ref, loss_ref = _a_only_by_vectorised_lstsq(delta, b, sigma, metric, s2)
    a_star = theory.optimal_a(delta, b, sigma, metric=metric)
    loss = theory.loss_a_only(delta, b, sigma, s2, metric=metric)
    scale = 1.0 + loss_ref
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-7, atol=1e-9 * scale)
    at_star = theory.population_loss(delta, b @ a_star, sigma, s2, metric=metric)
    np.testing.assert_allclose(at_star, loss_ref, rtol=1e-7, atol=1e-9 * scale)
    if np.linalg.eigvalsh(sigma)[0] > 1e-6 * np.linalg.eigvalsh(sigma)[-1]:  # A* unique when Σ ≻ 0
        np.testing.assert_allclose(a_star, a_ref, rtol=1e-6, atol=1e-8 * (1 + np.abs(a_ref).max()))


@given(p=linear_problems(), data=st.data())
def test_b_only_optimum_does_not_depend_on_the_metric(p, data):
    """§1b: ``B* = ΔΣAᵀ(AΣAᵀ)⁻¹`` minimises ``L_G(BA)`` for every G ⪰ 0, and ``loss_b_only(metric=G)``
    equals ``L_G(B* A)``; random perturbations of B* never do better."""
    metric = data.draw(covariances(p["d_out"]))
    delta, a, sigma, s2 = p["delta"], p["a"], p["sigma"], p["noise_var"]
    if np.linalg.eigvalsh(a @ sigma @ a.T)[0] <= 1e-6 * np.linalg.eigvalsh(sigma)[-1]:
        return  # B* not unique; loss_b_only still gives the minimum, tested in test_theory_closed_forms
    b_star = theory.optimal_b(delta, a, sigma)
    loss = theory.loss_b_only(delta, a, sigma, s2, metric=metric)
    scale = 1.0 + abs(loss)
    np.testing.assert_allclose(theory.population_loss(delta, b_star @ a, sigma, s2, metric=metric), loss,
                               rtol=1e-7, atol=1e-9 * scale)
    rng = np.random.default_rng(data.draw(seeds))
    for _ in range(3):
        other = b_star + 0.1 * rng.standard_normal(b_star.shape)
        assert theory.population_loss(delta, other @ a, sigma, s2, metric=metric) >= loss - 1e-9 * scale


@given(p=linear_problems(), data=st.data())
def test_lora_in_a_metric_is_eckart_young_and_beats_single_factors(p, data):
    """§1b: ``min_{rank M <= r} L_G(M)`` is Eckart–Young on ``G^{1/2}ΔΣ^{1/2}``, attained by
    ``best_rank_update(metric=G)``, and no larger than the b_only and a_only losses or random rank-r updates."""
    metric = data.draw(covariances(p["d_out"]))
    delta, sigma, s2, r = p["delta"], p["sigma"], p["noise_var"], p["rank"]
    lora = theory.loss_lora(delta, sigma, r, s2, metric=metric)
    scale = 1.0 + abs(lora) + float(np.sum(delta**2)) * float(np.abs(sigma).max() * np.abs(metric).max())
    attained = theory.population_loss(delta, theory.best_rank_update(delta, sigma, r, metric=metric), sigma, s2,
                                      metric=metric)
    np.testing.assert_allclose(attained, lora, rtol=1e-7, atol=1e-9 * scale)
    for single in (theory.loss_b_only(delta, p["a"], sigma, s2, metric=metric),
                   theory.loss_a_only(delta, p["b"], sigma, s2, metric=metric)):
        assert lora <= single + 1e-9 * scale
    rng = np.random.default_rng(data.draw(seeds))
    m = rng.standard_normal((p["d_out"], r)) @ rng.standard_normal((r, p["d_in"]))
    assert lora <= theory.population_loss(delta, m, sigma, s2, metric=metric) + 1e-9 * scale


def test_a_only_expectation_needs_monte_carlo_for_a_general_metric():
    """With G = cI the Haar-B expectation stays exact (scaled by c) and the Monte Carlo route agrees;
    a general G has no closed form: ``expected_loss_a_only`` refuses it, naming the metric."""
    rng = np.random.default_rng(3)
    delta, sigma = rng.standard_normal((6, 5)), covariance_from(spectrum("powerlaw", 5), rng)
    exact = theory.expected_loss_a_only(delta, sigma, 2, 0.3, metric=2.5 * np.eye(6))
    np.testing.assert_allclose(exact, 2.5 * theory.expected_loss_a_only(delta, sigma, 2, 0.3), **tol())
    mean, se = theory.expected_loss_a_only_mc(delta, sigma, 2, 0.3, metric=2.5 * np.eye(6), draws=4000, rng=rng)
    assert abs(mean - exact) <= MC_SIGMAS * se
    with pytest.raises(ValueError, match="metric is not a multiple of the identity"):
        theory.expected_loss_a_only(delta, sigma, 2, 0.3, metric=np.diag(np.arange(1.0, 7.0)))


# --- eq. (5): the captured fraction f(X, r) ----------------------------------------------------------


def test_captured_fraction_exact_cases():
    """f(cI, r) = r/d and f(X, r) = 1 when rank X <= r, both exact (standard error 0)."""
    rng = np.random.default_rng(0)
    assert theory.captured_fraction(3.0 * np.eye(7), 2, draws=2, rng=rng) == (2 / 7, 0.0)
    low = covariance_from(spectrum("lowrank", 7, k=3), rng)
    assert theory.captured_fraction(low, 3, draws=2, rng=rng) == (1.0, 0.0)
    assert theory.captured_fraction(low, 5, draws=2, rng=rng) == (1.0, 0.0)


def test_captured_fraction_matches_a_brute_force_projector():
    """Eq. (5) as written, ``Tr[XQᵀ(QXQᵀ)⁻¹QX]/Tr X`` averaged over the same Haar draws, equals the
    projector form the library computes."""
    rng = np.random.default_rng(1)
    x = covariance_from(spectrum("powerlaw", 9, alpha=1.3), rng)
    q = theory.haar_stiefel(9, 3, np.random.default_rng(5), draws=50)
    brute = [np.trace(x @ qk @ np.linalg.solve(qk.T @ x @ qk, qk.T @ x)) / np.trace(x) for qk in q]
    mean, _ = _fraction_draws(x / np.linalg.eigvalsh(x)[-1], q)
    np.testing.assert_allclose(mean, np.mean(brute), **tol())


@given(data=st.data())
def test_a_tilted_read_out_captures_at_least_an_untilted_one(data):
    """For every Q with orthonormal rows, ``Tr[X P_Q] >= Tr[Q X Qᵀ]``, P_Q the projector onto
    col(X^{1/2}Qᵀ); with ``E Tr[QXQᵀ] = (r/d) Tr X`` this proves f(X, r) >= r/d, and P_Q ⪯ I gives f <= 1.

    Proof (docs/THEORY.md §1b): with M = QXQᵀ and N = QX²Qᵀ, N − M² = QX(I − QᵀQ)XQᵀ ⪰ 0, so
    ``Tr[XP_Q] = Tr[M⁻¹N] >= Tr[M⁻¹M²] = Tr M``."""
    d = data.draw(st.integers(2, 9))
    r = data.draw(st.integers(1, d))
    x = data.draw(covariances(d))
    q = theory.haar_stiefel(d, r, np.random.default_rng(data.draw(seeds)), draws=8)
    top = np.linalg.eigvalsh(x)[-1]
    captured = [_fraction_draws(x / top, qk[None].repeat(2, axis=0))[0] * np.trace(x) for qk in q]
    untilted = [np.trace(qk.T @ x @ qk) for qk in q]
    slack = 1e-10 * np.trace(x)
    assert all(c >= u - slack for c, u in zip(captured, untilted))
    assert all(c <= np.trace(x) + slack for c in captured)


@given(data=st.data())
def test_captured_fraction_grows_with_rank(data):
    """f(X, r) <= f(X, r + 1): the first r columns of a Haar (d, r + 1) frame are a Haar (d, r) frame, and
    the projector onto the larger, nested subspace captures at least as much, draw by draw."""
    d = data.draw(st.integers(2, 9))
    r = data.draw(st.integers(1, d - 1))
    x = data.draw(covariances(d))
    x = x / np.linalg.eigvalsh(x)[-1]
    q = theory.haar_stiefel(d, r + 1, np.random.default_rng(data.draw(seeds)), draws=16)
    for qk in q:
        small = _fraction_draws(x, qk[None, :, :r].repeat(2, axis=0))[0]
        large = _fraction_draws(x, qk[None].repeat(2, axis=0))[0]
        assert small <= large + 1e-10


def test_captured_fraction_is_not_the_effective_rank_approximation():
    """docs/THEORY.md §1b.4's check: at d = 24, r = 3, Σ_j ∝ j^-1.5, f = 0.448 (20,000 draws, s.e. 0.0006)
    while r / erank = 0.739."""
    sigma = np.diag(np.arange(1, 25.0) ** -1.5)
    mean, se = theory.captured_fraction(sigma, 3, draws=4000, rng=np.random.default_rng(0))
    assert abs(mean - 0.448) <= MC_SIGMAS * np.hypot(se, 0.0006)  # the reference's own s.e. included
    assert abs(3 / theory.effective_rank(sigma) - 0.739) < 0.0005


def test_effective_rank_of_known_spectra():
    """erank(cI_d) = d; erank of k equal non-zero eigenvalues = k; erank lies in [1, rank X]."""
    rng = np.random.default_rng(2)
    assert theory.effective_rank(4.0 * np.eye(6)) == pytest.approx(6.0, rel=1e-12)
    assert theory.effective_rank(covariance_from(spectrum("lowrank", 6, k=2), rng)) == pytest.approx(2.0, rel=1e-9)
    e = theory.effective_rank(covariance_from(spectrum("powerlaw", 6, alpha=2.0), rng))
    assert e >= 1.0 and e <= 6.0


# --- the prediction for a random-orientation shift ----------------------------------------------------


def test_single_factor_fractions_for_a_random_shift_match_eq5():
    """§1b: for Δ with i.i.d. Gaussian entries, E[reduction] / E[Tr GΔΣΔᵀ] is f(Σ, r) for b_only (Haar A)
    and f(G, r) for a_only (Haar B). A read-out R (5 × 16) gives G = RᵀR; d_in = 24, Σ_j ∝ j^-1.5, r = 3.

    Measured with the closed forms of eq. (1G) per draw of (Δ, frozen factor); E Tr[GΔΣΔᵀ] = Tr G Tr Σ."""
    rng = np.random.default_rng(11)
    d_in, d_out, r, draws = 24, 16, 3, 600
    sigma = np.diag(np.arange(1, d_in + 1.0) ** -1.5)
    read = rng.standard_normal((5, d_out))
    metric = read.T @ read
    energy = np.trace(metric) * np.trace(sigma)
    b_red, a_red = np.empty(draws), np.empty(draws)
    for k in range(draws):
        delta = rng.standard_normal((d_out, d_in))
        a = theory.haar_stiefel(d_in, r, rng).T
        b = theory.haar_stiefel(d_out, r, rng)
        start = theory.population_loss(delta, np.zeros_like(delta), sigma, 0.0, metric=metric)
        b_red[k] = (start - theory.loss_b_only(delta, a, sigma, 0.0, metric=metric)) / energy
        a_red[k] = (start - theory.loss_a_only(delta, b, sigma, 0.0, metric=metric)) / energy
    for measured, x in ((b_red, sigma), (a_red, metric)):
        f, f_se = theory.captured_fraction(x, r, draws=4000, rng=rng)
        se = np.hypot(measured.std(ddof=1) / np.sqrt(draws), f_se)
        assert abs(measured.mean() - f) <= MC_SIGMAS * se, (measured.mean(), f, se)
    # The read-out is narrow (rank G = 5 < d_out), so a_only wins here: the prediction's sign.
    assert a_red.mean() > b_red.mean()
