r"""The minimisers of eq. (1) and (1G): ``B*`` (Lemma 4.1), ``A*`` (Lemma 4.2), the best rank-r update.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.1,
and docs/THEORY.md §1.2, §1.3 and §1b.2; the losses these minimisers attain are in
``theory.linear``, which also holds the argument checks and kernels used here. Each public
function checks its arguments once and calls its unchecked core.
"""

from __future__ import annotations

import warnings

import numpy as np

from theory.linear import _as_frozen_a, _as_frozen_b, _as_metric, _as_shift, _metric_root, _sqrtm, _weighted
from theory.tolerances import COND_WARN, RANK_RTOL, IllConditionedWarning
from theory.validation import Array, as_rank, checked_finite

#: Stack frames from ``_ill_conditioned`` to the caller of a public function: ``_ill_conditioned``,
#: the core, the public function, ``checked_finite``'s wrapper, the caller.
_CALLER = 5


@checked_finite("delta", "a", "sigma")
def optimal_b(delta: Array, a: Array, sigma: Array) -> Array:
    r"""Lemma 4.1: the best output map for a frozen feature extractor ``A``.

    .. math:: B^* = Δ Σ A^T (A Σ A^T)^{-1}

    Zhu et al. (ICML 2024), Lemma 4.1 (docs/THEORY.md §1.2). Requires ``A Σ A^T`` invertible:
    ``ValueError`` when it is singular (eigenvalues below ``RANK_RTOL`` times the largest; ``B*``
    is then not unique and ``loss_b_only`` still gives the minimum). When its condition number
    exceeds ``COND_WARN`` the normal equations are not trusted: an ``IllConditionedWarning`` says
    so and ``B*`` is computed as the least-squares solution of ``Σ^{1/2} Aᵀ Bᵀ ≈ Σ^{1/2} Δᵀ``
    (``numpy.linalg.lstsq``), whose condition number is the square root of ``A Σ Aᵀ``'s.

    Parameters
    ----------
    delta : (d_out, d_in); a : (r, d_in); sigma : (d_in, d_in).

    Returns
    -------
    (d_out, r)
    """
    delta_, sigma_ = _as_shift(delta, sigma)
    return _optimal_b(delta_, _as_frozen_a(a, delta_), sigma_)


def _optimal_b(delta: Array, a: Array, sigma: Array) -> Array:
    """``optimal_b`` of checked arguments; ``A Σ Aᵀ`` is checked for singularity where it is formed."""
    gram = a @ sigma @ a.T
    if _ill_conditioned(gram, "A Σ Aᵀ", "a", "loss_b_only"):
        root = _sqrtm(sigma)
        return np.linalg.lstsq(root @ a.T, root @ delta.T, rcond=None)[0].T
    return np.linalg.solve(gram, a @ sigma @ delta.T).T


@checked_finite("delta", "b", "metric")
def optimal_a(delta: Array, b: Array, sigma: Array, *, metric: Array | None = None) -> Array:
    r"""Lemma 4.2: the best feature extractor for a frozen output map ``B``, in the metric ``G``.

    .. math:: A^* = (B^T G B)^{-1} B^T G Δ

    Zhu et al. (ICML 2024), Lemma 4.2, for ``G = I`` (``A* = (BᵀB)⁻¹BᵀΔ``); the metric form is
    derived in docs/THEORY.md §1b.2 (minimise eq. (1G) over ``A``: the normal equations
    ``BᵀG(BA − Δ)Σ = 0``). ``A*`` does not depend on ``Σ`` (checked all the same); with ``Σ``
    singular it is one minimiser among many, all with the loss (3). Requires ``BᵀGB`` invertible
    (``ValueError`` when it is singular at ``RANK_RTOL``); when its condition number exceeds
    ``COND_WARN`` an ``IllConditionedWarning`` says so and ``A*`` is the least-squares solution
    of ``G^{1/2} B A ≈ G^{1/2} Δ`` (``numpy.linalg.lstsq``) instead of the normal equations.

    Parameters
    ----------
    delta : (d_out, d_in); b : (d_out, r); sigma : (d_in, d_in).
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    (r, d_in)
    """
    delta_, _ = _as_shift(delta, sigma)
    b_ = _as_frozen_b(b, delta_)
    return _optimal_a(delta_, b_, _as_metric(metric, delta_.shape[0]))


def _optimal_a(delta: Array, b: Array, metric: Array | None) -> Array:
    """``optimal_a`` of checked arguments; ``BᵀGB`` is checked for singularity where it is formed."""
    gb = b if metric is None else metric @ b
    gram = (b.T @ gb + gb.T @ b) / 2
    label = "Bᵀ B" if metric is None else "Bᵀ G B"
    if _ill_conditioned(gram, label, "b" if metric is None else "b and metric", "loss_a_only"):
        root = np.eye(delta.shape[0]) if metric is None else _sqrtm(metric)
        return np.linalg.lstsq(root @ b, root @ delta, rcond=None)[0]
    return np.linalg.solve(gram, gb.T @ delta)


def _ill_conditioned(gram: Array, label: str, arg: str, fallback: str) -> bool:
    """Raise ``ValueError`` if the Gram matrix is singular at ``RANK_RTOL``; warn and return True
    if its condition number exceeds ``COND_WARN`` (the caller then solves by least squares)."""
    if not np.all(np.isfinite(gram)):
        raise ValueError(f"{label} overflows float64 for this {arg}: scale the inputs down")
    evals = np.linalg.eigvalsh(gram)
    top = float(evals[-1])
    if top <= 0 or float(evals[0]) <= RANK_RTOL * top:
        rank = int(np.count_nonzero(evals > RANK_RTOL * max(top, 0.0))) if top > 0 else 0
        raise ValueError(
            f"{label} is singular (rank {rank} < {gram.shape[0]}) for this {arg}: the optimum "
            f"is not unique; {fallback} gives the minimum loss"
        )
    cond = top / float(evals[0])
    if cond <= COND_WARN:
        return False
    warnings.warn(
        f"{label} is ill-conditioned for this {arg} (condition number {cond:.3g} > {COND_WARN:.0e}): "
        f"solving the least-squares problem with numpy.linalg.lstsq instead of the normal equations",
        IllConditionedWarning,
        stacklevel=_CALLER,
    )
    return True


def best_rank_update(delta: Array, sigma: Array, rank: int, *, metric: Array | None = None) -> Array:
    r"""The minimiser of eq. (1) (or (1G)) over updates of rank at most ``r`` (both factors trained).

    Eckart–Young in the Σ-metric (docs/THEORY.md §1.3 and §1b.2, derived): with
    ``G^{1/2} Δ Σ^{1/2} = U S V^T``,

    .. math:: M^* = (G^{1/2})^{+} U_r S_r V_r^T (Σ^{1/2})^{+},

    where ``+`` is the pseudo-inverse and ``G = I`` without a metric; ``M* = B A`` with
    ``B = (G^{1/2})^+ U_r S_r`` and ``A = V_r^T (Σ^{1/2})^+``.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int in [1, min(d_in, d_out)].
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    (d_out, d_in)
    """
    delta_, sigma_ = _as_shift(delta, sigma)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    return _best_rank_update(delta_, sigma_, r, _as_metric(metric, delta_.shape[0]))


def _best_rank_update(delta: Array, sigma: Array, r: int, metric: Array | None) -> Array:
    """``best_rank_update`` of checked arguments."""
    root, metric_root = _sqrtm(sigma), _metric_root(metric)
    u, s, vt = np.linalg.svd(_weighted(delta, root, metric_root), full_matrices=False)
    update = (u[:, :r] * s[:r]) @ vt[:r] @ np.linalg.pinv(root, rcond=RANK_RTOL, hermitian=True)
    if metric_root is None:
        return update
    return np.linalg.pinv(metric_root, rcond=RANK_RTOL, hermitian=True) @ update
