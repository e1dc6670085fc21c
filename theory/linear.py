r"""Population losses of the four tuning variants on linear least squares (Section 4.1).

Setting of Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024),
Section 4.1 (THEORY.md §1): inputs ``x`` with zero mean and covariance ``Σ`` (d_in, d_in),
targets ``y = W_t x + b_t + ε`` with ``ε ~ N(0, s² I_{d_out})`` and the bias fixed to ``b_t``;
``Δ = W_t − W0`` (d_out, d_in) is the shift the adapter must learn. The population loss of
the adapted weight ``W0 + M`` is

.. math:: L(M) = d_{out} s^2 + \operatorname{Tr}[(Δ − M) Σ (Δ − M)^T].          (1)

``noise_var`` is ``s²`` throughout. All arrays are float64.
"""

from __future__ import annotations

import warnings

import numpy as np

from theory.validation import (
    COND_WARN,
    RANK_RTOL,
    Array,
    IllConditionedWarning,
    as_covariance,
    as_matrix,
    as_rank,
    as_real,
    checked_finite,
)


def _problem(delta: object, sigma: object, noise_var: object) -> tuple[Array, Array, float]:
    delta_ = as_matrix(delta, "delta")
    sigma_ = as_covariance(sigma, "sigma", dim=delta_.shape[1])
    return delta_, sigma_, as_real(noise_var, "noise_var", minimum=0.0)


def sqrtm_psd(sigma: Array) -> Array:  # (d, d) -> (d, d)
    r"""Symmetric square root ``Σ^{1/2}`` of a PSD matrix (eigenvalues clipped at 0).

    ``sigma`` must be symmetric positive semi-definite (``ValueError`` otherwise); eigenvalues
    within round-off below zero are clipped to 0.
    """
    return _sqrtm(as_covariance(sigma, "sigma"))


def _sqrtm(sigma: Array) -> Array:
    """``sqrtm_psd`` of an already validated covariance."""
    evals, evecs = np.linalg.eigh(sigma)
    return (evecs * np.sqrt(np.clip(evals, 0.0, None))) @ evecs.T


def _orthonormal_basis(x: Array) -> Array:
    """Orthonormal basis (d, k) of the column space of ``x`` (d, m), numerical rank k."""
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return u[:, :0]
    return u[:, s > RANK_RTOL * s[0]]


@checked_finite("delta", "m", "sigma", "noise_var")
def population_loss(delta: Array, m: Array, sigma: Array, noise_var: float) -> float:
    r"""Population squared loss of the adapted weight ``W0 + M``, THEORY.md eq. (1).

    .. math:: L(M) = d_{out} s^2 + \operatorname{Tr}[(Δ − M) Σ (Δ − M)^T]

    Parameters
    ----------
    delta : (d_out, d_in) target shift ``W_t − W0``.
    m : (d_out, d_in) the update, e.g. ``B @ A``.
    sigma : (d_in, d_in) input covariance, symmetric PSD.
    noise_var : float, ``s² >= 0``.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    m_ = as_matrix(m, "m", delta_.shape)
    resid = delta_ - m_
    return float(delta_.shape[0] * s2 + np.einsum("ij,jk,ik->", resid, sigma_, resid))


@checked_finite("delta", "a", "sigma")
def optimal_b(delta: Array, a: Array, sigma: Array) -> Array:
    r"""Lemma 4.1: the best output map for a frozen feature extractor ``A``.

    .. math:: B^* = Δ Σ A^T (A Σ A^T)^{-1}

    Zhu et al. (ICML 2024), Lemma 4.1. Requires ``A Σ A^T`` invertible: ``ValueError`` when it
    is singular (eigenvalues below ``RANK_RTOL`` times the largest; ``B*`` is then not unique and
    ``loss_b_only`` still gives the minimum). When its condition number exceeds ``COND_WARN``
    the normal equations are not trusted: an ``IllConditionedWarning`` says so and ``B*`` is
    computed as the least-squares solution of ``Σ^{1/2} Aᵀ Bᵀ ≈ Σ^{1/2} Δᵀ``
    (``numpy.linalg.lstsq``), whose condition number is the square root of ``A Σ Aᵀ``'s.

    Parameters
    ----------
    delta : (d_out, d_in); a : (r, d_in); sigma : (d_in, d_in).

    Returns
    -------
    (d_out, r)
    """
    delta_, sigma_, _ = _problem(delta, sigma, 0.0)
    a_ = as_matrix(a, "a", (None, delta_.shape[1]))
    as_rank(a_.shape[0], delta_.shape[1], delta_.shape[0], name="a.shape[0] (the rank)")
    gram = a_ @ sigma_ @ a_.T
    if _ill_conditioned(gram, "A Σ Aᵀ", "a", "loss_b_only"):
        root = _sqrtm(sigma_)
        return np.linalg.lstsq(root @ a_.T, root @ delta_.T, rcond=None)[0].T
    return np.linalg.solve(gram, a_ @ sigma_ @ delta_.T).T


@checked_finite("delta", "b")
def optimal_a(delta: Array, b: Array, sigma: Array) -> Array:
    r"""Lemma 4.2: the best feature extractor for a frozen output map ``B``.

    .. math:: A^* = (B^T B)^{-1} B^T Δ

    Zhu et al. (ICML 2024), Lemma 4.2. ``A*`` does not depend on ``Σ``; with ``Σ`` singular it
    is one minimiser among many, all with the loss (3). Requires ``B`` of full column rank
    (``ValueError`` when ``BᵀB`` is singular at ``RANK_RTOL``); when ``cond(BᵀB) > COND_WARN`` an
    ``IllConditionedWarning`` says so and ``A*`` is the least-squares solution of ``B A ≈ Δ``
    (``numpy.linalg.lstsq``) instead of the normal equations.

    Parameters
    ----------
    delta : (d_out, d_in); b : (d_out, r); sigma : (d_in, d_in).

    Returns
    -------
    (r, d_in)
    """
    delta_, _, _ = _problem(delta, sigma, 0.0)
    b_ = as_matrix(b, "b", (delta_.shape[0], None))
    as_rank(b_.shape[1], delta_.shape[1], delta_.shape[0], name="b.shape[1] (the rank)")
    gram = b_.T @ b_
    if _ill_conditioned(gram, "Bᵀ B", "b", "loss_a_only"):
        return np.linalg.lstsq(b_, delta_, rcond=None)[0]
    return np.linalg.solve(gram, b_.T @ delta_)


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
        stacklevel=4,  # the caller of optimal_a / optimal_b, past checked_finite's wrapper
    )
    return True


@checked_finite("delta", "a", "sigma", "noise_var")
def loss_b_only(delta: Array, a: Array, sigma: Array, noise_var: float) -> float:
    r"""Lemma 4.1, eq. (2): the population loss after tuning ``B`` with ``A`` frozen.

    .. math::
        L(B^* A) = d_{out} s^2 + \operatorname{Tr}[ΔΣΔ^T]
                   − \operatorname{Tr}[AΣΔ^TΔΣA^T (AΣA^T)^{-1}]

    The reduction equals ``‖Δ Σ^{1/2} P‖_F²`` with ``P`` the orthogonal projector onto
    ``col(Σ^{1/2} Aᵀ)`` (THEORY.md, derived); it is computed in that form, which is the minimum
    over ``B`` also when ``A Σ Aᵀ`` is singular.

    Parameters
    ----------
    delta : (d_out, d_in); a : (r, d_in); sigma : (d_in, d_in); noise_var : float.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    a_ = as_matrix(a, "a", (None, delta_.shape[1]))
    as_rank(a_.shape[0], delta_.shape[1], delta_.shape[0], name="a.shape[0] (the rank)")
    root = _sqrtm(sigma_)
    target = delta_ @ root
    basis = _orthonormal_basis(root @ a_.T)
    reduction = float(np.sum((target @ basis) ** 2))
    return float(delta_.shape[0] * s2 + np.sum(target**2) - reduction)


@checked_finite("delta", "b", "sigma", "noise_var")
def loss_a_only(delta: Array, b: Array, sigma: Array, noise_var: float) -> float:
    r"""Lemma 4.2, eq. (3): the population loss after tuning ``A`` with ``B`` frozen.

    .. math::
        L(B A^*) = d_{out} s^2 + \operatorname{Tr}[ΔΣΔ^T]
                   − \operatorname{Tr}[B^TΔΣΔ^TB (B^TB)^{-1}]

    The reduction equals ``‖P_B Δ Σ^{1/2}‖_F²`` with ``P_B`` the projector onto ``col(B)``.

    Parameters
    ----------
    delta : (d_out, d_in); b : (d_out, r); sigma : (d_in, d_in); noise_var : float.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    b_ = as_matrix(b, "b", (delta_.shape[0], None))
    as_rank(b_.shape[1], delta_.shape[1], delta_.shape[0], name="b.shape[1] (the rank)")
    target = delta_ @ _sqrtm(sigma_)
    basis = _orthonormal_basis(b_)
    reduction = float(np.sum((basis.T @ target) ** 2))
    return float(delta_.shape[0] * s2 + np.sum(target**2) - reduction)


def best_rank_update(delta: Array, sigma: Array, rank: int) -> Array:
    r"""The minimiser of eq. (1) over updates of rank at most ``r`` (both factors trained).

    Eckart–Young in the Σ-metric (THEORY.md, derived): with ``Δ Σ^{1/2} = U S V^T``,

    .. math:: M^* = U_r S_r V_r^T (Σ^{1/2})^{+},

    where ``+`` is the pseudo-inverse; ``M* = B A`` with ``B = U_r S_r`` and
    ``A = V_r^T (Σ^{1/2})^+``.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int in [1, min(d_in, d_out)].

    Returns
    -------
    (d_out, d_in)
    """
    delta_, sigma_, _ = _problem(delta, sigma, 0.0)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    root = _sqrtm(sigma_)
    u, s, vt = np.linalg.svd(delta_ @ root, full_matrices=False)
    return (u[:, :r] * s[:r]) @ vt[:r] @ np.linalg.pinv(root, rcond=RANK_RTOL, hermitian=True)


@checked_finite("delta", "sigma", "noise_var")
def loss_lora(delta: Array, sigma: Array, rank: int, noise_var: float) -> float:
    r"""Population loss with both factors trained (``lora``): the best rank-r update.

    .. math:: \min_{\operatorname{rank} M \le r} L(M) = d_{out} s^2 + \sum_{i>r} s_i^2,

    ``s_i`` the singular values of ``Δ Σ^{1/2}`` (THEORY.md §1, derived: Eckart–Young in the
    Σ-metric).

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int; noise_var : float.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    s = np.linalg.svd(delta_ @ _sqrtm(sigma_), compute_uv=False)
    return float(delta_.shape[0] * s2 + np.sum(s[r:] ** 2))


def loss_full(delta: Array, sigma: Array, noise_var: float) -> float:
    r"""Population loss of full fine-tuning: ``M = Δ`` reaches the noise floor ``d_out s²``.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); noise_var : float.
    """
    delta_, _, s2 = _problem(delta, sigma, noise_var)
    return float(delta_.shape[0] * s2)
