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

Each public function checks its arguments once (the ``_as_*`` helpers below, built on
``theory.validation``) and then calls its unchecked core, its name with a leading underscore.
``theory.optima`` and ``theory.expectations`` use the same checks and the kernels defined here.
"""

from __future__ import annotations

import numpy as np

from theory.tolerances import RANK_RTOL
from theory.validation import Array, as_covariance, as_matrix, as_rank, as_real, checked_finite

# --- the checks at the door -------------------------------------------------------------------


def _as_shift(delta: object, sigma: object) -> tuple[Array, Array]:
    """The checked shift ``Δ`` (d_out, d_in) and input covariance ``Σ`` (d_in, d_in), in that order."""
    delta_ = as_matrix(delta, "delta")
    return delta_, as_covariance(sigma, "sigma", dim=delta_.shape[1])


def _as_problem(delta: object, sigma: object, noise_var: object) -> tuple[Array, Array, float]:
    """``_as_shift`` and then the checked noise variance ``s² >= 0``."""
    delta_, sigma_ = _as_shift(delta, sigma)
    return delta_, sigma_, as_real(noise_var, "noise_var", minimum=0.0)


def _as_metric(metric: object, d_out: int) -> Array | None:
    """The checked output metric ``G`` (d_out, d_out), or None for the identity."""
    return None if metric is None else as_covariance(metric, "metric", dim=d_out)


def _as_frozen_a(a: object, delta: Array) -> Array:
    """A checked feature extractor ``A`` (r, d_in) with ``1 <= r <= min(d_in, d_out)``."""
    a_ = as_matrix(a, "a", (None, delta.shape[1]))
    as_rank(a_.shape[0], delta.shape[1], delta.shape[0], name="a.shape[0] (the rank)")
    return a_


def _as_frozen_b(b: object, delta: Array) -> Array:
    """A checked output map ``B`` (d_out, r) with ``1 <= r <= min(d_in, d_out)``."""
    b_ = as_matrix(b, "b", (delta.shape[0], None))
    as_rank(b_.shape[1], delta.shape[1], delta.shape[0], name="b.shape[1] (the rank)")
    return b_


# --- kernels shared by the cores: they trust their inputs -------------------------------------


def _sqrtm(sigma: Array) -> Array:
    """``sqrtm_psd`` of an already validated covariance."""
    evals, evecs = np.linalg.eigh(sigma)
    return (evecs * np.sqrt(np.clip(evals, 0.0, None))) @ evecs.T


def _metric_root(metric: Array | None) -> Array | None:
    """``G^{1/2}``, or None for the identity metric."""
    return None if metric is None else _sqrtm(metric)


def _weighted(delta: Array, root: Array, metric_root: Array | None) -> Array:
    """``Ĝ = G^{1/2} Δ Σ^{1/2}`` from ``Σ^{1/2}`` and ``G^{1/2}``: the shift in the metrics of both sides.

    Every loss of eq. (1G) is ``s² Tr G + ‖G^{1/2} (Δ − M) Σ^{1/2}‖_F²``.
    """
    target = delta @ root
    return target if metric_root is None else metric_root @ target


def _noise_weight(delta: Array, metric: Array | None) -> float:
    """``Tr G``, the weight of ``s²`` in eq. (1G); ``d_out`` for the identity metric (eq. (1))."""
    return float(delta.shape[0]) if metric is None else float(np.trace(metric))


def _excess(target: Array, reduction: float) -> float:
    """``‖target‖_F² − reduction``, the loss left above the noise floor, clamped at 0.

    The reduction is the squared norm of a projection of ``target``, so the difference is
    non-negative; round-off can make an exact zero (a factor that sees the whole shift) come out
    as −1e-15, which is returned as 0.
    """
    return max(float(np.sum(target**2)) - reduction, 0.0)


def _orthonormal_basis(x: Array) -> Array:
    """Orthonormal basis (d, k) of the column space of ``x`` (d, m), numerical rank k."""
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return u[:, :0]
    return u[:, s > RANK_RTOL * s[0]]


# --- the public functions and their cores ------------------------------------------------------


def sqrtm_psd(sigma: Array) -> Array:  # (d, d) -> (d, d)
    r"""Symmetric square root ``Σ^{1/2}`` of a PSD matrix (eigenvalues clipped at 0).

    .. math:: Σ^{1/2} = V \operatorname{diag}(\sqrt{\max(λ_i, 0)}) V^T, \qquad Σ = V \operatorname{diag}(λ) V^T,

    the square root through which every loss of docs/THEORY.md §1 is computed
    (``‖(Δ − M) Σ^{1/2}‖_F²`` is the excess loss of eq. (1)). Eigenvalues within round-off below
    zero are clipped to 0.

    Parameters
    ----------
    sigma : (d, d) symmetric positive semi-definite (``ValueError`` otherwise).

    Returns
    -------
    (d, d) symmetric PSD, with ``Σ^{1/2} Σ^{1/2} = Σ`` up to round-off.
    """
    return _sqrtm(as_covariance(sigma, "sigma"))


@checked_finite("delta", "m", "sigma", "noise_var", "metric")
def population_loss(delta: Array, m: Array, sigma: Array, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Population squared loss of the adapted weight ``W0 + M``, docs/THEORY.md eq. (1) and (1G).

    .. math:: L_G(M) = s^2 \operatorname{Tr} G + \operatorname{Tr}[G (Δ − M) Σ (Δ − M)^T],

    which is eq. (1), ``d_out s² + Tr[(Δ − M) Σ (Δ − M)ᵀ]``, for ``G = I`` (Zhu et al., ICML
    2024, Section 4.1; the metric form is docs/THEORY.md §1b.1).

    Parameters
    ----------
    delta : (d_out, d_in) target shift ``W_t − W0``.
    m : (d_out, d_in) the update, e.g. ``B @ A``.
    sigma : (d_in, d_in) input covariance, symmetric PSD.
    noise_var : float, ``s² >= 0``.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    float, at least the noise floor ``s² Tr G``.
    """
    delta_, sigma_, s2 = _as_problem(delta, sigma, noise_var)
    m_ = as_matrix(m, "m", delta_.shape)
    return _population_loss(delta_, m_, sigma_, s2, _as_metric(metric, delta_.shape[0]))


def _population_loss(delta: Array, m: Array, sigma: Array, s2: float, metric: Array | None) -> float:
    """``population_loss`` of checked arguments (``s2`` is ``s²``, ``metric`` None or ``G``)."""
    resid = delta - m
    if metric is None:
        excess = float(np.einsum("ij,jk,ik->", resid, sigma, resid))
        return float(delta.shape[0] * s2 + max(excess, 0.0))  # a PSD quadratic form: >= 0 but for round-off
    excess = float(np.einsum("ab,ai,ij,bj->", metric, resid, sigma, resid))
    return float(s2 * np.trace(metric) + max(excess, 0.0))


@checked_finite("delta", "a", "sigma", "noise_var", "metric")
def loss_b_only(delta: Array, a: Array, sigma: Array, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Lemma 4.1, eq. (2): the population loss after tuning ``B`` with ``A`` frozen.

    .. math::
        L(B^* A) = d_{out} s^2 + \operatorname{Tr}[ΔΣΔ^T]
                   − \operatorname{Tr}[AΣΔ^TΔΣA^T (AΣA^T)^{-1}]

    The reduction equals ``‖Δ Σ^{1/2} P‖_F²`` with ``P`` the orthogonal projector onto
    ``col(Σ^{1/2} Aᵀ)`` (docs/THEORY.md §1.4, derived); it is computed in that form, which is the
    minimum over ``B`` also when ``A Σ Aᵀ`` is singular. With an output metric ``G``
    (eq. (1G), docs/THEORY.md §1b.2) the minimiser ``B* = ΔΣAᵀ(AΣAᵀ)⁻¹`` is unchanged and the
    loss is ``s² Tr G + ‖G^{1/2} Δ Σ^{1/2} (I − P)‖_F²``.

    Parameters
    ----------
    delta : (d_out, d_in); a : (r, d_in); sigma : (d_in, d_in); noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    float
    """
    delta_, sigma_, s2 = _as_problem(delta, sigma, noise_var)
    a_ = _as_frozen_a(a, delta_)
    return _loss_b_only(delta_, a_, sigma_, s2, _as_metric(metric, delta_.shape[0]))


def _loss_b_only(delta: Array, a: Array, sigma: Array, s2: float, metric: Array | None) -> float:
    """``loss_b_only`` of checked arguments."""
    root = _sqrtm(sigma)
    target = _weighted(delta, root, _metric_root(metric))
    basis = _orthonormal_basis(root @ a.T)
    reduction = float(np.sum((target @ basis) ** 2))
    return float(_noise_weight(delta, metric) * s2 + _excess(target, reduction))


@checked_finite("delta", "b", "sigma", "noise_var", "metric")
def loss_a_only(delta: Array, b: Array, sigma: Array, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Lemma 4.2, eq. (3): the population loss after tuning ``A`` with ``B`` frozen.

    .. math::
        L(B A^*) = d_{out} s^2 + \operatorname{Tr}[ΔΣΔ^T]
                   − \operatorname{Tr}[B^TΔΣΔ^TB (B^TB)^{-1}]

    The reduction equals ``‖P_B Δ Σ^{1/2}‖_F²`` with ``P_B`` the projector onto ``col(B)``
    (docs/THEORY.md §1.4). With an output metric ``G`` (eq. (1G), docs/THEORY.md §1b.2) the
    optimum is ``A* = (BᵀGB)⁻¹BᵀGΔ`` and the reduction is ``‖P Ĝ‖_F²`` with
    ``Ĝ = G^{1/2} Δ Σ^{1/2}`` and ``P`` the projector onto ``col(G^{1/2} B)``: the output side is
    now tilted by ``G`` as the input side of eq. (2) is tilted by ``Σ``.

    Parameters
    ----------
    delta : (d_out, d_in); b : (d_out, r); sigma : (d_in, d_in); noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    float
    """
    delta_, sigma_, s2 = _as_problem(delta, sigma, noise_var)
    b_ = _as_frozen_b(b, delta_)
    return _loss_a_only(delta_, b_, sigma_, s2, _as_metric(metric, delta_.shape[0]))


def _loss_a_only(delta: Array, b: Array, sigma: Array, s2: float, metric: Array | None) -> float:
    """``loss_a_only`` of checked arguments."""
    metric_root = _metric_root(metric)
    target = _weighted(delta, _sqrtm(sigma), metric_root)
    basis = _orthonormal_basis(b if metric_root is None else metric_root @ b)
    reduction = float(np.sum((basis.T @ target) ** 2))
    return float(_noise_weight(delta, metric) * s2 + _excess(target, reduction))


@checked_finite("delta", "sigma", "noise_var", "metric")
def loss_lora(delta: Array, sigma: Array, rank: int, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Population loss with both factors trained (``lora``): the best rank-r update.

    .. math:: \min_{\operatorname{rank} M \le r} L_G(M) = s^2 \operatorname{Tr} G + \sum_{i>r} s_i^2,

    ``s_i`` the singular values of ``G^{1/2} Δ Σ^{1/2}`` (docs/THEORY.md §1.3 and §1b.2, derived:
    Eckart–Young in the metrics of both sides; ``G = I`` gives ``d_out s² + Σ_{i>r} s_i²``).

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int in [1, min(d_in, d_out)];
    noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    float
    """
    delta_, sigma_, s2 = _as_problem(delta, sigma, noise_var)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    return _loss_lora(delta_, sigma_, r, s2, _as_metric(metric, delta_.shape[0]))


def _loss_lora(delta: Array, sigma: Array, r: int, s2: float, metric: Array | None) -> float:
    """``loss_lora`` of checked arguments."""
    s = np.linalg.svd(_weighted(delta, _sqrtm(sigma), _metric_root(metric)), compute_uv=False)
    return float(_noise_weight(delta, metric) * s2 + np.sum(s[r:] ** 2))


def loss_full(delta: Array, sigma: Array, noise_var: float, *, metric: Array | None = None) -> float:
    r"""Population loss of full fine-tuning: ``M = Δ`` reaches the noise floor ``s² Tr G``.

    ``d_out s²`` without a metric (eq. (1), docs/THEORY.md §1.3); ``s² Tr G`` with one
    (eq. (1G), docs/THEORY.md §1b.1). ``sigma`` is checked but does not enter the result.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    float
    """
    delta_, _, s2 = _as_problem(delta, sigma, noise_var)
    return _loss_full(delta_, s2, _as_metric(metric, delta_.shape[0]))


def _loss_full(delta: Array, s2: float, metric: Array | None) -> float:
    """``loss_full`` of checked arguments."""
    return float(delta.shape[0] * s2 if metric is None else s2 * np.trace(metric))
