r"""Population losses of the four tuning variants on linear least squares (Section 4.1).

Setting of Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024),
Section 4.1 (docs/THEORY.md §1): inputs ``x`` with zero mean and covariance ``Σ`` (d_in, d_in),
targets ``y = W_t x + b_t + ε`` with ``ε ~ N(0, s² I_{d_out})`` and the bias fixed to ``b_t``;
``Δ = W_t − W0`` (d_out, d_in) is the shift the adapter must learn. The population loss of
the adapted weight ``W0 + M`` is

.. math:: L(M) = d_{out} s^2 + \operatorname{Tr}[(Δ − M) Σ (Δ − M)^T].          (1)

Inside a network the layer's outputs are read by the rest of it, and a local (Gauss–Newton)
view weights output errors by the *output metric* ``G`` (d_out, d_out), symmetric PSD
(docs/THEORY.md §1b, derived; not in the paper):

.. math:: L_G(M) = s^2 \operatorname{Tr} G + \operatorname{Tr}[G (Δ − M) Σ (Δ − M)^T].      (1G)

Every loss here takes ``metric=G``; ``metric=None`` means ``G = I`` and gives eq. (1).
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


def _as_metric(metric: object, d_out: int) -> Array | None:
    """The validated output metric ``G`` (d_out, d_out), or None for the identity."""
    return None if metric is None else as_covariance(metric, "metric", dim=d_out)


def _weighted(delta: Array, sigma: Array, metric: Array | None) -> tuple[Array, float]:
    """``(G^{1/2} Δ Σ^{1/2}, Tr G)``: the shift in the metrics of both sides, and the noise weight.

    Every loss of eq. (1G) is ``s² Tr G + ‖G^{1/2} (Δ − M) Σ^{1/2}‖_F²``.
    """
    target = delta @ _sqrtm(sigma)
    if metric is None:
        return target, float(delta.shape[0])
    return _sqrtm(metric) @ target, float(np.trace(metric))


def _excess(target: Array, reduction: float) -> float:
    """``‖target‖_F² − reduction``, the loss left above the noise floor, clamped at 0.

    The reduction is the squared norm of a projection of ``target``, so the difference is
    non-negative; round-off can make an exact zero (a factor that sees the whole shift) come out
    as −1e-15, which is returned as 0.
    """
    return max(float(np.sum(target**2)) - reduction, 0.0)


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


@checked_finite("delta", "m", "sigma", "noise_var", "metric")
def population_loss(delta: Array, m: Array, sigma: Array, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Population squared loss of the adapted weight ``W0 + M``, docs/THEORY.md eq. (1) and (1G).

    .. math:: L_G(M) = s^2 \operatorname{Tr} G + \operatorname{Tr}[G (Δ − M) Σ (Δ − M)^T],

    which is eq. (1), ``d_out s² + Tr[(Δ − M) Σ (Δ − M)ᵀ]``, for ``G = I``.

    Parameters
    ----------
    delta : (d_out, d_in) target shift ``W_t − W0``.
    m : (d_out, d_in) the update, e.g. ``B @ A``.
    sigma : (d_in, d_in) input covariance, symmetric PSD.
    noise_var : float, ``s² >= 0``.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    m_ = as_matrix(m, "m", delta_.shape)
    metric_ = _as_metric(metric, delta_.shape[0])
    resid = delta_ - m_
    if metric_ is None:
        excess = float(np.einsum("ij,jk,ik->", resid, sigma_, resid))
        return float(delta_.shape[0] * s2 + max(excess, 0.0))  # a PSD quadratic form: >= 0 but for round-off
    excess = float(np.einsum("ab,ai,ij,bj->", metric_, resid, sigma_, resid))
    return float(s2 * np.trace(metric_) + max(excess, 0.0))


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


@checked_finite("delta", "b", "metric")
def optimal_a(delta: Array, b: Array, sigma: Array, *, metric: Array | None = None) -> Array:
    r"""Lemma 4.2: the best feature extractor for a frozen output map ``B``, in the metric ``G``.

    .. math:: A^* = (B^T G B)^{-1} B^T G Δ

    Zhu et al. (ICML 2024), Lemma 4.2, for ``G = I`` (``A* = (BᵀB)⁻¹BᵀΔ``); the metric form is
    derived in docs/THEORY.md §1b (minimise eq. (1G) over ``A``: the normal equations
    ``BᵀG(BA − Δ)Σ = 0``). ``A*`` does not depend on ``Σ``; with ``Σ`` singular it is one
    minimiser among many, all with the loss (3). Requires ``BᵀGB`` invertible (``ValueError``
    when it is singular at ``RANK_RTOL``); when its condition number exceeds ``COND_WARN`` an
    ``IllConditionedWarning`` says so and ``A*`` is the least-squares solution of
    ``G^{1/2} B A ≈ G^{1/2} Δ`` (``numpy.linalg.lstsq``) instead of the normal equations.

    Parameters
    ----------
    delta : (d_out, d_in); b : (d_out, r); sigma : (d_in, d_in).
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    (r, d_in)
    """
    delta_, _, _ = _problem(delta, sigma, 0.0)
    b_ = as_matrix(b, "b", (delta_.shape[0], None))
    as_rank(b_.shape[1], delta_.shape[1], delta_.shape[0], name="b.shape[1] (the rank)")
    metric_ = _as_metric(metric, delta_.shape[0])
    gb = b_ if metric_ is None else metric_ @ b_
    gram = (b_.T @ gb + gb.T @ b_) / 2
    label = "Bᵀ B" if metric_ is None else "Bᵀ G B"
    if _ill_conditioned(gram, label, "b" if metric_ is None else "b and metric", "loss_a_only"):
        root = np.eye(delta_.shape[0]) if metric_ is None else _sqrtm(metric_)
        return np.linalg.lstsq(root @ b_, root @ delta_, rcond=None)[0]
    return np.linalg.solve(gram, gb.T @ delta_)


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


@checked_finite("delta", "a", "sigma", "noise_var", "metric")
def loss_b_only(delta: Array, a: Array, sigma: Array, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Lemma 4.1, eq. (2): the population loss after tuning ``B`` with ``A`` frozen.

    .. math::
        L(B^* A) = d_{out} s^2 + \operatorname{Tr}[ΔΣΔ^T]
                   − \operatorname{Tr}[AΣΔ^TΔΣA^T (AΣA^T)^{-1}]

    The reduction equals ``‖Δ Σ^{1/2} P‖_F²`` with ``P`` the orthogonal projector onto
    ``col(Σ^{1/2} Aᵀ)`` (docs/THEORY.md §1, derived); it is computed in that form, which is the
    minimum over ``B`` also when ``A Σ Aᵀ`` is singular. With an output metric ``G``
    (eq. (1G), docs/THEORY.md §1b) the minimiser ``B* = ΔΣAᵀ(AΣAᵀ)⁻¹`` is unchanged and the
    loss is ``s² Tr G + ‖G^{1/2} Δ Σ^{1/2} (I − P)‖_F²``.

    Parameters
    ----------
    delta : (d_out, d_in); a : (r, d_in); sigma : (d_in, d_in); noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    a_ = as_matrix(a, "a", (None, delta_.shape[1]))
    as_rank(a_.shape[0], delta_.shape[1], delta_.shape[0], name="a.shape[0] (the rank)")
    target, weight = _weighted(delta_, sigma_, _as_metric(metric, delta_.shape[0]))
    basis = _orthonormal_basis(_sqrtm(sigma_) @ a_.T)
    reduction = float(np.sum((target @ basis) ** 2))
    return float(weight * s2 + _excess(target, reduction))


@checked_finite("delta", "b", "sigma", "noise_var", "metric")
def loss_a_only(delta: Array, b: Array, sigma: Array, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Lemma 4.2, eq. (3): the population loss after tuning ``A`` with ``B`` frozen.

    .. math::
        L(B A^*) = d_{out} s^2 + \operatorname{Tr}[ΔΣΔ^T]
                   − \operatorname{Tr}[B^TΔΣΔ^TB (B^TB)^{-1}]

    The reduction equals ``‖P_B Δ Σ^{1/2}‖_F²`` with ``P_B`` the projector onto ``col(B)``.
    With an output metric ``G`` (eq. (1G), docs/THEORY.md §1b) the optimum is
    ``A* = (BᵀGB)⁻¹BᵀGΔ`` and the reduction is ``‖P Ĝ‖_F²`` with ``Ĝ = G^{1/2} Δ Σ^{1/2}`` and
    ``P`` the projector onto ``col(G^{1/2} B)``: the output side is now tilted by ``G`` as the
    input side of eq. (2) is tilted by ``Σ``.

    Parameters
    ----------
    delta : (d_out, d_in); b : (d_out, r); sigma : (d_in, d_in); noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    b_ = as_matrix(b, "b", (delta_.shape[0], None))
    as_rank(b_.shape[1], delta_.shape[1], delta_.shape[0], name="b.shape[1] (the rank)")
    metric_ = _as_metric(metric, delta_.shape[0])
    target, weight = _weighted(delta_, sigma_, metric_)
    basis = _orthonormal_basis(b_ if metric_ is None else _sqrtm(metric_) @ b_)
    reduction = float(np.sum((basis.T @ target) ** 2))
    return float(weight * s2 + _excess(target, reduction))


def best_rank_update(delta: Array, sigma: Array, rank: int, *, metric: Array | None = None) -> Array:
    r"""The minimiser of eq. (1) (or (1G)) over updates of rank at most ``r`` (both factors trained).

    Eckart–Young in the Σ-metric (docs/THEORY.md §1, derived): with
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
    delta_, sigma_, _ = _problem(delta, sigma, 0.0)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    metric_ = _as_metric(metric, delta_.shape[0])
    root = _sqrtm(sigma_)
    target, _ = _weighted(delta_, sigma_, metric_)
    u, s, vt = np.linalg.svd(target, full_matrices=False)
    update = (u[:, :r] * s[:r]) @ vt[:r] @ np.linalg.pinv(root, rcond=RANK_RTOL, hermitian=True)
    if metric_ is None:
        return update
    return np.linalg.pinv(_sqrtm(metric_), rcond=RANK_RTOL, hermitian=True) @ update


@checked_finite("delta", "sigma", "noise_var", "metric")
def loss_lora(delta: Array, sigma: Array, rank: int, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Population loss with both factors trained (``lora``): the best rank-r update.

    .. math:: \min_{\operatorname{rank} M \le r} L_G(M) = s^2 \operatorname{Tr} G + \sum_{i>r} s_i^2,

    ``s_i`` the singular values of ``G^{1/2} Δ Σ^{1/2}`` (docs/THEORY.md §1 and §1b, derived:
    Eckart–Young in the metrics of both sides; ``G = I`` gives ``d_out s² + Σ_{i>r} s_i²``).

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int; noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    target, weight = _weighted(delta_, sigma_, _as_metric(metric, delta_.shape[0]))
    s = np.linalg.svd(target, compute_uv=False)
    return float(weight * s2 + np.sum(s[r:] ** 2))


def loss_full(delta: Array, sigma: Array, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Population loss of full fine-tuning: ``M = Δ`` reaches the noise floor ``s² Tr G``.

    ``d_out s²`` without a metric (eq. (1)); ``s² Tr G`` with one (eq. (1G)).

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.
    """
    delta_, _, s2 = _problem(delta, sigma, noise_var)
    metric_ = _as_metric(metric, delta_.shape[0])
    return float(delta_.shape[0] * s2 if metric_ is None else s2 * np.trace(metric_))
