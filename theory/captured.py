r"""How much of a random-orientation shift a random frozen factor lets the other factor remove.

docs/THEORY.md §1b (derived; not in Zhu et al., ICML 2024). For a shift ``Δ`` of uniformly
random orientation, the expected fraction of the shift's loss that ``b_only`` removes is
``f(Σ, r)`` and that ``a_only`` removes is ``f(G, r)``, with ``Σ`` the input second moment
and ``G`` the output metric of the adapted layer, and

.. math:: f(X, r) = \frac{E_Q \operatorname{Tr}[X Q^T (Q X Q^T)^{-1} Q X]}{\operatorname{Tr} X},
          \qquad Q \text{ Haar on } St(d, r) \text{ (orthonormal rows)}.          (5)
"""

from __future__ import annotations

import numpy as np

from theory.random import _check_draws_memory, _haar_stiefel
from theory.tolerances import RANK_RTOL, numerical_rank
from theory.validation import Array, as_covariance, as_generator, as_int

#: Relative spread ``(λ_max − λ_min) / λ_max`` below which a matrix counts as a multiple of I.
ISOTROPIC_RTOL = 1e-12


def effective_rank(cov: Array) -> float:  # (d, d) -> float
    r"""Effective rank (participation ratio) of a PSD matrix.

    .. math:: \operatorname{erank}(X) = \frac{(\operatorname{Tr} X)^2}{\operatorname{Tr} X^2}
              \in [1, \operatorname{rank} X]

    equal to ``d`` for ``X ∝ I_d`` and to ``k`` for ``k`` equal non-zero eigenvalues
    (docs/THEORY.md §1b.4, item 4). ``ValueError`` for a zero matrix, whose effective rank is
    undefined.

    Parameters
    ----------
    cov : (d, d) symmetric positive semi-definite, not zero.

    Returns
    -------
    float in [1, rank cov]
    """
    return _effective_rank(_eigenvalues(as_covariance(cov, "cov")))


def _effective_rank(evals: Array) -> float:
    """``effective_rank`` from the ascending eigenvalues of a non-zero covariance."""
    # Scale by the largest eigenvalue first: the squares of entries near MAX_ABS overflow otherwise.
    unit = evals / evals[-1]
    return float(np.sum(unit) ** 2 / np.sum(unit**2))


def _eigenvalues(cov: Array) -> Array:
    """Eigenvalues of a checked covariance, ascending, clipped at 0; ``ValueError`` if all are 0.

    The one check of ``cov`` that needs its spectrum: ``effective_rank`` and ``captured_fraction``
    call it at the door and compute from the eigenvalues it returns.
    """
    evals = np.clip(np.linalg.eigvalsh(cov), 0.0, None)
    if evals[-1] <= 0:
        raise ValueError("cov is zero: the fraction of its trace a subspace captures is undefined")
    return evals


def captured_fraction(cov: Array, rank: int, *, draws: int, rng: np.random.Generator) -> tuple[float, float]:
    r"""Eq. (5) of docs/THEORY.md §1b: the expected share of ``Tr X`` a Haar rank-r read-out captures.

    .. math:: f(X, r) = \frac{E_Q \|P_Q X^{1/2}\|_F^2}{\operatorname{Tr} X},
              \qquad P_Q = \text{orthogonal projector onto } \operatorname{col}(X^{1/2} Q^T),

    which equals the ratio in eq. (5) and stays defined when ``Q X Qᵀ`` is singular. With
    ``X = Σ`` it is the fraction of a random-orientation shift's loss that ``b_only`` (Lemma 4.1
    of Zhu et al., ICML 2024, with ``A = Q`` Haar) removes; with ``X = G``, the fraction that
    ``a_only`` (Lemma 4.2 in the metric ``G``, ``B = Qᵀ`` Haar) removes.

    Exact, with standard error 0, in two cases: ``X ∝ I`` gives ``r/d`` (``E[QᵀQ] = (r/d) I``),
    and ``rank X <= r`` gives 1 (``col(X^{1/2}Qᵀ) = range X`` for almost every ``Q``).
    Otherwise a Monte Carlo mean over ``draws`` Haar draws, whose memory is checked then (the
    exact cases accept any valid ``draws``). The value lies in ``[r/d, 1]`` and grows with ``r``
    (docs/THEORY.md §1b.4, items 2 and 3; tested).

    Parameters
    ----------
    cov : (d, d) symmetric positive semi-definite, not zero.
    rank : int in [1, d].
    draws : int, at least 2.
    rng : numpy.random.Generator

    Returns
    -------
    (mean, stderr) : tuple of float
        The estimate of ``f(X, r)`` and its standard error ``std(ddof=1) / sqrt(draws)``.
    """
    cov_ = as_covariance(cov, "cov")
    d = cov_.shape[0]
    r = as_int(rank, "rank", minimum=1)
    if r > d:
        raise ValueError(f"rank {r} exceeds the dimension d = {d} of cov")
    draws = as_int(draws, "draws", minimum=2)
    rng = as_generator(rng)
    evals = _eigenvalues(cov_)
    if evals[-1] - evals[0] <= ISOTROPIC_RTOL * evals[-1]:
        return r / d, 0.0
    if numerical_rank(evals) <= r:
        return 1.0, 0.0
    _check_draws_memory(d, r, draws)
    return _fraction_draws(cov_ / evals[-1], _haar_stiefel(d, r, rng, draws))


def _fraction_draws(cov: Array, q: Array) -> tuple[float, float]:
    """Mean and standard error of ``‖P_Q X^{1/2}‖_F² / Tr X`` over the stack ``q`` (draws, d, r)."""
    evals, evecs = np.linalg.eigh(cov)
    root = (evecs * np.sqrt(np.clip(evals, 0.0, None))) @ evecs.T
    basis, s, _ = np.linalg.svd(root @ q, full_matrices=False)  # (draws, d, r)
    keep = s > RANK_RTOL * s[:, :1]
    captured = np.sum(np.sum((np.swapaxes(basis, 1, 2) @ root) ** 2, axis=2) * keep, axis=1)
    values = np.clip(captured / np.trace(cov), 0.0, 1.0)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))
