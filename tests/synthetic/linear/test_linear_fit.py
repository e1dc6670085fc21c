"""Batched closed-form fits (synthetic.linear.fit) against independent per-trial references."""

import numpy as np
import pytest
from hypothesis import given
from numpy.testing import assert_allclose

import theory
from theory.variants import INITS
from synthetic.linear.fit import (
    fit_a_only,
    fit_b_only,
    fit_full,
    fit_lora,
    frozen_factor,
)
from synthetic.linear.lstsq import lstsq_batched
from tests.strategies import batched_designs, linear_problems, seeds
from tests.tolerances import tol

#: Relative slack of "no rank-r candidate beats reduced-rank regression", for round-off only.
OPTIMALITY_SLACK = 1e-9


def _augment(x, y, ridge):
    """Ridge as least squares on augmented data: [X; sqrt(n λ) I], [Y; 0] (independent route)."""
    n, p = x.shape
    return np.vstack([x, np.sqrt(n * ridge) * np.eye(p)]), np.vstack([y, np.zeros((p, y.shape[1]))])


def _ref_lstsq(x, y, ridge):
    if ridge > 0:
        x, y = _augment(x, y, ridge)
    return np.linalg.lstsq(x, y, rcond=None)[0]


def _frozen(p, side, seed):
    rng = np.random.default_rng(seed)
    t, _, d_in = p["x"].shape
    d_out = p["y"].shape[2]
    return np.stack([frozen_factor("gaussian", side, d_in, d_out, p["rank"], rng) for _ in range(t)])


def _train_loss(x, y, m):
    return np.sum((y - x @ m.T) ** 2) / x.shape[0]


@given(batched_designs())
def test_full_equals_per_trial_lstsq(p):
    """fit_full is numpy.linalg.lstsq (minimum-norm) per trial, or ridge via augmented data."""
    m = fit_full(p["x"], p["y"], ridge=p["ridge"])
    for t in range(p["x"].shape[0]):
        assert_allclose(m[t], _ref_lstsq(p["x"][t], p["y"][t], p["ridge"]).T, **tol())


@given(batched_designs(), seeds)
def test_b_only_equals_per_trial_lstsq_on_projected_features(p, seed):
    """fit_b_only is least squares of Y on the features X Aᵀ, per trial (Lemma 4.1, sample)."""
    a = _frozen(p, "a", seed)
    b = fit_b_only(p["x"], p["y"], a, ridge=p["ridge"])
    for t in range(p["x"].shape[0]):
        assert_allclose(b[t], _ref_lstsq(p["x"][t] @ a[t].T, p["y"][t], p["ridge"]).T, **tol())


@given(batched_designs(), seeds)
def test_a_only_equals_per_trial_vectorised_lstsq(p, seed):
    """fit_a_only solves min ‖Y − X Aᵀ Bᵀ‖² (+ nλ‖A‖²) as the vectorised system (B ⊗ X) vec(Aᵀ) = vec(Y)."""
    b = _frozen(p, "b", seed)
    a = fit_a_only(p["x"], p["y"], b, ridge=p["ridge"])
    for t in range(p["x"].shape[0]):
        x, y, bt = p["x"][t], p["y"][t], b[t]
        design, target = np.kron(bt, x), y.flatten(order="F")
        if p["ridge"] > 0:
            k = design.shape[1]
            design = np.vstack([design, np.sqrt(x.shape[0] * p["ridge"]) * np.eye(k)])
            target = np.r_[target, np.zeros(k)]
        g = np.linalg.lstsq(design, target, rcond=None)[0].reshape((x.shape[1], bt.shape[1]), order="F")
        assert_allclose(a[t], g.T, **tol())


def _sample_metric_truncation(x, y, rank):
    """Best rank-r M in the metric XᵀX (full column rank): [M̂ S^½]_r S^−½ (Eckart–Young)."""
    evals, evecs = np.linalg.eigh(x.T @ x)
    root = (evecs * np.sqrt(evals)) @ evecs.T
    inv_root = (evecs / np.sqrt(evals)) @ evecs.T
    m_ols = np.linalg.lstsq(x, y, rcond=None)[0].T
    u, s, vt = np.linalg.svd(m_ols @ root)
    return (u[:, :rank] * s[:rank]) @ vt[:rank] @ inv_root


@given(batched_designs())
def test_lora_equals_eckart_young_in_the_sample_metric(p):
    """Reduced-rank regression equals the best rank-r approximation of the OLS fit in the
    metric of XᵀX; with ridge, the same on the augmented data [X; √(nλ) I], [Y; 0]."""
    b, a = fit_lora(p["x"], p["y"], p["rank"], ridge=p["ridge"])
    for t in range(p["x"].shape[0]):
        x, y = p["x"][t], p["y"][t]
        if p["ridge"] > 0:
            x, y = _augment(x, y, p["ridge"])
        elif p["design"] != "gaussian":
            continue  # no unique minimiser; covered by the optimality test below
        s = np.linalg.svd(x @ np.linalg.lstsq(x, y, rcond=None)[0], compute_uv=False)
        if s.size > p["rank"] and s[p["rank"] - 1] - s[p["rank"]] < 1e-6 * s[0]:
            continue  # (near-)tie at the r-th singular value: the minimiser is not unique
        assert_allclose(b[t] @ a[t], _sample_metric_truncation(x, y, p["rank"]), rtol=1e-7, atol=1e-9)


@given(batched_designs(), seeds)
def test_lora_is_the_best_rank_r_fit_on_the_sample(p, seed):
    """No rank-r update has a lower training error than reduced-rank regression: not the
    Euclidean truncation of OLS, not b_only with random A, not lora's own fit with fewer ranks."""
    b, a = fit_lora(p["x"], p["y"], p["rank"])
    m_full = fit_full(p["x"], p["y"])
    a_rand = _frozen(p, "a", seed)
    b_rand = fit_b_only(p["x"], p["y"], a_rand)
    r = p["rank"]
    for t in range(p["x"].shape[0]):
        x, y = p["x"][t], p["y"][t]
        best = _train_loss(x, y, b[t] @ a[t])
        assert np.linalg.matrix_rank(b[t] @ a[t]) <= r
        u, s, vt = np.linalg.svd(m_full[t])
        for rival in ((u[:, :r] * s[:r]) @ vt[:r], b_rand[t] @ a_rand[t]):
            assert best <= _train_loss(x, y, rival) * (1 + OPTIMALITY_SLACK) + 1e-12


@given(batched_designs())
def test_fits_are_finite_on_singular_systems(p):
    """Singular sample systems (n < d_in, duplicated directions, all-zero inputs) give finite fits."""
    x = p["x"].copy()
    x[0] = 0.0
    a = np.ones((x.shape[0], 1, x.shape[2]))
    b = np.ones((x.shape[0], p["y"].shape[2], 1))
    outputs = [
        fit_full(x, p["y"], ridge=p["ridge"]),
        fit_b_only(x, p["y"], a, ridge=p["ridge"]),
        fit_a_only(x, p["y"], b, ridge=p["ridge"]),
        *fit_lora(x, p["y"], p["rank"], ridge=p["ridge"]),
        lstsq_batched(x, p["y"], ridge=p["ridge"]),
    ]
    for out in outputs:
        assert np.all(np.isfinite(out))
    assert np.all(outputs[0][0] == 0)  # no data: the minimum-norm (and ridge) update is zero


@given(linear_problems(kinds=("isotropic", "powerlaw")), seeds)
def test_noise_free_fits_reach_the_population_optima(p, seed):
    """With noise-free targets y = Δx and n >= d_in, the sample fits are Lemma 4.2's
    A* = (BᵀB)⁻¹BᵀΔ and full's M = Δ exactly, and lora's is Δ when rank Δ <= r."""
    rng = np.random.default_rng(seed)
    d_in, r = p["d_in"], p["rank"]
    root = theory.sqrtm_psd(p["sigma"])
    x = (rng.standard_normal((1, 3 * d_in, d_in)) @ root)
    y = x @ p["delta"].T
    a = fit_a_only(x, y, p["b"][None])[0]
    assert_allclose(a, theory.optimal_a(p["delta"], p["b"], p["sigma"]), rtol=1e-7, atol=1e-9)
    assert_allclose(fit_full(x, y)[0], p["delta"], rtol=1e-7, atol=1e-9)
    b_l, a_l = fit_lora(x, y, r)
    if np.linalg.matrix_rank(p["delta"]) <= r:
        assert_allclose(b_l[0] @ a_l[0], p["delta"], rtol=1e-7, atol=1e-9)
    else:  # the sample metric is not Σ, so only the population inequality holds
        loss = theory.population_loss(p["delta"], b_l[0] @ a_l[0], p["sigma"], p["noise_var"])
        assert loss >= theory.loss_lora(p["delta"], p["sigma"], r, p["noise_var"]) * (1 - OPTIMALITY_SLACK)


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("side", ["a", "b"])
def test_frozen_inits_have_the_documented_law(init, side):
    """Haar factors are orthonormal, Kaiming-uniform within ±1/√fan_in, w0_top_singular spans W0's
    top singular space; every init has the documented shape."""
    d_in, d_out, r = 7, 5, 3
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((d_out, d_in))
    f = frozen_factor(init, side, d_in, d_out, r, rng, w0=w0)
    assert f.shape == ((r, d_in) if side == "a" else (d_out, r))
    cols = f.T if side == "a" else f
    fan_in = d_in if side == "a" else r
    if init in ("haar", "w0_top_singular"):
        assert_allclose(cols.T @ cols, np.eye(r), **tol())
    if init == "kaiming_uniform":
        assert np.all(np.abs(f) <= 1 / np.sqrt(fan_in))
    if init == "w0_top_singular":
        s = np.linalg.svd(w0, compute_uv=False)
        captured = w0 @ cols if side == "a" else cols.T @ w0
        assert_allclose(np.sum(captured**2), np.sum(s[:r] ** 2), **tol())


def test_frozen_factor_and_fit_errors_name_the_argument():
    """Unknown init/side, a missing W0, shape mismatches and a bad rank raise ValueError naming it."""
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="init 'xavier'"):
        frozen_factor("xavier", "a", 4, 4, 2, rng)
    with pytest.raises(ValueError, match="side"):
        frozen_factor("haar", "c", 4, 4, 2, rng)
    with pytest.raises(ValueError, match="w0"):
        frozen_factor("w0_top_singular", "a", 4, 4, 2, rng)
    with pytest.raises(ValueError, match="rank 5 exceeds min"):
        frozen_factor("haar", "a", 4, 6, 5, rng)
    x, y = np.ones((2, 5, 4)), np.ones((2, 5, 3))
    with pytest.raises(ValueError, match="^y has shape"):
        fit_full(x, np.ones((2, 6, 3)))
    with pytest.raises(ValueError, match="^a has shape"):
        fit_b_only(x, y, np.ones((2, 2, 5)))
    with pytest.raises(ValueError, match="b must have full column rank"):
        fit_a_only(x, y, np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="rank 4 exceeds min"):
        fit_lora(x, y, 4)
    with pytest.raises(ValueError, match="ridge must be >= 0"):
        fit_full(x, y, ridge=-1.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        fit_full(np.full((1, 2, 2), np.nan), np.ones((1, 2, 2)))
