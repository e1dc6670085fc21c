"""Symbolic derivations of Lemmas 4.1, 4.2, eqs. (2)–(3) and E[U Uᵀ] = (r/d) I (theory.symbolic)."""

import sympy as sp

from theory import symbolic


def test_every_symbolic_identity_holds():
    """theory.symbolic.verify(): stationarity, eqs. (2)–(3) and the Haar second moment, proved by sympy."""
    results = symbolic.verify()
    names = {i.name for i in results}
    assert {"lemma_4_1_stationarity", "lemma_4_1_loss_eq2", "lemma_4_2_stationarity",
            "lemma_4_2_loss_eq3", "metric_a_only_stationarity", "metric_b_only_stationarity",
            "haar_moment_d2", "haar_moment_d3"} <= names
    failed = [i for i in results if not i.holds]
    assert not failed, failed


def test_stationarity_check_rejects_a_wrong_optimum():
    """The check has power: B = ΔΣAᵀ (Lemma 4.1 without (AΣAᵀ)⁻¹) is reported as not stationary."""
    delta, sigma = symbolic._matrix("delta", 2, 2), symbolic._covariance(2)
    a, b = symbolic._matrix("a", 1, 2), symbolic._matrix("b", 2, 1)
    loss = symbolic._loss(delta, b * a, sigma, sp.Symbol("s2"))
    wrong = delta * sigma * a.T
    assert not symbolic._is_zero(symbolic._gradient(loss, b).subs(dict(zip(b, wrong))))


def test_metric_check_rejects_the_identity_metric_optimum():
    """The check has power under a metric: ``A = (BᵀB)⁻¹BᵀΔ`` (Lemma 4.2 for G = I) is not stationary
    for ``L_G`` with a general symmetric G."""
    delta, sigma = symbolic._matrix("delta", 3, 2), symbolic._covariance(2)
    g = symbolic._matrix("g", 3, 3)
    metric = sp.Matrix(3, 3, lambda i, j: g[min(i, j), max(i, j)])
    a, b = symbolic._matrix("a", 1, 2), symbolic._matrix("b", 3, 1)
    loss = symbolic._loss(delta, b * a, sigma, sp.Symbol("s2"), metric)
    wrong = (b.T * b).inv() * b.T * delta
    assert not symbolic._is_zero(symbolic._gradient(loss, a).subs(dict(zip(a, wrong))))
