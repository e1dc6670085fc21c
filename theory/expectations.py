r"""Expectations over a random frozen factor and the asymmetry gap (Section 4.1, Theorem 4.3).

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.1:
the frozen factor is drawn uniformly from its Stiefel manifold, ``B = U ∈ St(d_out, r)`` for
``a_only`` and ``A = Qᵀ`` with ``Q ∈ St(d_in, r)`` for ``b_only``.
"""

from __future__ import annotations

import numpy as np

from theory.linear import _as_metric, _problem, _sqrtm, _weighted
from theory.random import haar_stiefel
from theory.captured import ISOTROPIC_RTOL
from theory.validation import (
    RANK_RTOL,
    Array,
    as_array,
    as_generator,
    as_int,
    as_rank,
    checked_finite,
    numerical_rank,
)


@checked_finite("delta", "sigma", "noise_var", "metric")
def expected_loss_a_only(
    delta: Array, sigma: Array, rank: int, noise_var: float, *, metric: Array | None = None
) -> float:
    r"""Exact ``E_U[L(U A^*)]`` over a Haar output map ``B = U ∈ St(d_out, r)``.

    Since ``E_U[U Uᵀ] = (r/d_out) I`` (docs/THEORY.md §1), the expected reduction in eq. (3) is
    ``(r/d_out) Tr[ΔΣΔᵀ]``:

    .. math:: E[L_{a\_only}] = d_{out} s^2 + (1 − r/d_{out}) \operatorname{Tr}[ΔΣΔ^T].

    With an output metric ``G = c I`` (eq. (1G)) the same holds with every term scaled by ``c``.
    A general ``G`` tilts the projector (docs/THEORY.md §1b) and the expectation has no closed
    form: ``ValueError`` naming ``metric``; use ``expected_loss_a_only_mc``.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int; noise_var : float.
    metric : (d_out, d_out) output metric ``G``, a non-negative multiple of the identity, or None.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    d_out, d_in = delta_.shape
    r = as_rank(rank, d_in, d_out)
    metric_ = _as_metric(metric, d_out)
    scale = 1.0
    if metric_ is not None:
        diag = np.diagonal(metric_)
        spread = float(np.max(np.abs(metric_ - np.diag(np.full(d_out, diag.mean())))))
        if spread > ISOTROPIC_RTOL * max(float(diag.max()), np.finfo(np.float64).tiny):
            raise ValueError(
                "metric is not a multiple of the identity: E over a Haar B has no closed form for a "
                "general output metric; use expected_loss_a_only_mc(..., metric=metric, draws=, rng=)"
            )
        scale = float(diag.mean())
    energy = max(float(np.einsum("ij,jk,ik->", delta_, sigma_, delta_)), 0.0)
    return float(scale * (d_out * s2 + (1.0 - r / d_out) * energy))


@checked_finite("delta", "sigma", "q", "noise_var", "metric")
def loss_b_only_draws(
    delta: Array, sigma: Array, q: Array, noise_var: float, *, metric: Array | None = None
) -> Array:
    r"""Eq. (2) for a stack of frozen ``A = Qᵀ``, vectorised over draws.

    Reduction ``‖Ĝ P_k‖_F²`` with ``Ĝ = G^{1/2} Δ Σ^{1/2}`` (``G = I`` without a metric) and
    ``P_k`` the projector onto ``col(Σ^{1/2} Q_k)`` (docs/THEORY.md §1 and §1b).

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); q : (draws, d_in, r); noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    (draws,) the loss for each draw.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    q_ = as_array(q, "q", (None, None, None))
    if q_.shape[1] != delta_.shape[1]:
        raise ValueError(f"q must have shape (draws, d_in={delta_.shape[1]}, r), got {q_.shape}")
    as_rank(q_.shape[2], delta_.shape[1], delta_.shape[0], name="q.shape[2] (the rank)")
    target, weight = _weighted(delta_, sigma_, _as_metric(metric, delta_.shape[0]))
    u, s, _ = np.linalg.svd(_sqrtm(sigma_) @ q_, full_matrices=False)  # (draws, d_in, r), (draws, r)
    keep = s > RANK_RTOL * s[:, :1]
    reduction = np.einsum("oi,dij->doj", target, u) ** 2  # (draws, d_out, r)
    reduction = np.sum(reduction.sum(axis=1) * keep, axis=1)
    return weight * s2 + np.maximum(float(np.sum(target**2)) - reduction, 0.0)  # a projection's norm: <= ‖target‖²


@checked_finite("delta", "sigma", "u", "noise_var", "metric")
def loss_a_only_draws(
    delta: Array, sigma: Array, u: Array, noise_var: float, *, metric: Array | None = None
) -> Array:
    r"""Eq. (3) for a stack of frozen orthonormal ``B = U``, vectorised over draws.

    Reduction ``‖U_kᵀ Δ Σ^{1/2}‖_F²`` (``P_B = U Uᵀ`` for orthonormal columns); with an output
    metric ``G``, ``‖P_k Ĝ‖_F²`` with ``Ĝ = G^{1/2} Δ Σ^{1/2}`` and ``P_k`` the projector onto
    ``col(G^{1/2} U_k)`` (docs/THEORY.md §1b).

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); u : (draws, d_out, r) with orthonormal columns;
    noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    (draws,) the loss for each draw.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    u_ = as_array(u, "u", (None, None, None))
    if u_.shape[1] != delta_.shape[0]:
        raise ValueError(f"u must have shape (draws, d_out={delta_.shape[0]}, r), got {u_.shape}")
    as_rank(u_.shape[2], delta_.shape[1], delta_.shape[0], name="u.shape[2] (the rank)")
    gram = np.swapaxes(u_, 1, 2) @ u_
    if not np.allclose(gram, np.eye(u_.shape[2]), atol=1e-8):
        raise ValueError("u must have orthonormal columns (draw it with haar_stiefel)")
    metric_ = _as_metric(metric, delta_.shape[0])
    target, weight = _weighted(delta_, sigma_, metric_)
    if metric_ is None:
        reduction = np.sum(np.einsum("dor,oi->dri", u_, target) ** 2, axis=(1, 2))
    else:
        basis, s, _ = np.linalg.svd(_sqrtm(metric_) @ u_, full_matrices=False)
        keep = s > RANK_RTOL * np.maximum(s[:, :1], np.finfo(np.float64).tiny)
        reduction = np.sum(np.sum(np.einsum("dor,oi->dri", basis, target) ** 2, axis=2) * keep, axis=1)
    return weight * s2 + np.maximum(float(np.sum(target**2)) - reduction, 0.0)  # a projection's norm: <= ‖target‖²


def _mean_stderr(losses: Array) -> tuple[float, float]:
    """Sample mean and standard error of ``losses`` (draws,), scaled so the squares cannot overflow."""
    # Divide by a power of two near the largest loss (exact) so that the squares cannot overflow.
    scale = 2.0 ** int(np.frexp(np.max(np.abs(losses)))[1])
    unit = losses / scale
    return scale * float(unit.mean()), scale * float(unit.std(ddof=1) / np.sqrt(losses.size))


@checked_finite("delta", "sigma", "noise_var", "metric")
def expected_loss_b_only(
    delta: Array,
    sigma: Array,
    rank: int,
    noise_var: float,
    *,
    draws: int,
    rng: np.random.Generator,
    metric: Array | None = None,
) -> tuple[float, float]:
    r"""Monte Carlo estimate of ``E_Q[L(B^* Qᵀ)]`` over a Haar ``A = Qᵀ``, ``Q ∈ St(d_in, r)``.

    Eq. (2) has no closed-form expectation over ``Q`` for general ``Σ`` (docs/THEORY.md §1);
    this averages the exact loss (eq. (2), or (1G) with ``metric``) over ``draws`` independent
    Haar draws, vectorised.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int; noise_var : float.
    draws : int, at least 2.
    rng : numpy.random.Generator
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    (mean, stderr) : tuple of float
        Sample mean and its standard error ``std(ddof=1) / sqrt(draws)``.
    """
    delta_, _, _ = _problem(delta, sigma, noise_var)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    draws = as_int(draws, "draws", minimum=2)
    q = haar_stiefel(delta_.shape[1], r, as_generator(rng), draws=draws)
    return _mean_stderr(loss_b_only_draws(delta_, sigma, q, noise_var, metric=metric))


@checked_finite("delta", "sigma", "noise_var", "metric")
def expected_loss_a_only_mc(
    delta: Array,
    sigma: Array,
    rank: int,
    noise_var: float,
    *,
    draws: int,
    rng: np.random.Generator,
    metric: Array | None = None,
) -> tuple[float, float]:
    r"""Monte Carlo estimate of ``E_U[L(U A^*)]`` over a Haar ``B = U ∈ St(d_out, r)``.

    The Monte Carlo route for a general output metric ``G`` (docs/THEORY.md §1b), where the
    projector onto ``col(G^{1/2} U)`` is tilted toward ``G``'s large directions and the exact
    ``expected_loss_a_only`` does not apply: the mean of ``loss_a_only_draws`` over ``draws``
    independent Haar draws. Without a metric it estimates ``expected_loss_a_only``.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int; noise_var : float.
    draws : int, at least 2.
    rng : numpy.random.Generator
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    (mean, stderr) : tuple of float
    """
    delta_, _, _ = _problem(delta, sigma, noise_var)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    draws = as_int(draws, "draws", minimum=2)
    u = haar_stiefel(delta_.shape[0], r, as_generator(rng), draws=draws)
    return _mean_stderr(loss_a_only_draws(delta_, sigma, u, noise_var, metric=metric))


@checked_finite("delta", "sigma", "noise_var")
def asymmetry_gap(delta: Array, sigma: Array, rank: int, noise_var: float) -> float:
    r"""Exact ``E_U[L_{a\_only}] − L_{b\_only}`` when ``rank Σ <= r``.

    With ``rank Σ <= r`` a Haar ``A = Qᵀ`` sees the whole input range almost surely
    (``col(Σ^{1/2} Q) = range Σ``), so ``L_{b_only} = d_out s²`` and (docs/THEORY.md eq. 4, the
    equal-eigenvalue case ``Σ = σ² U_X U_Xᵀ`` of Zhu et al., Section 4.1.1, and its derived
    extension to any ``Σ`` of rank ``<= r``)

    .. math:: E[L_{a\_only}] − L_{b\_only} = (1 − r/d_{out}) \operatorname{Tr}[ΔΣΔ^T].

    Raises ``ValueError`` when ``rank Σ > r``: then ``L_{b_only}`` depends on the draw; use
    ``expected_loss_b_only`` (Monte Carlo) with ``expected_loss_a_only``.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int; noise_var : float.
    """
    delta_, sigma_, s2 = _problem(delta, sigma, noise_var)
    d_out, d_in = delta_.shape
    r = as_rank(rank, d_in, d_out)
    k = numerical_rank(np.linalg.eigvalsh(sigma_))
    if k > r:
        raise ValueError(
            f"asymmetry_gap is exact only when rank(sigma) <= rank; rank(sigma) = {k} > rank = {r}. "
            f"Estimate it with expected_loss_a_only(...) - expected_loss_b_only(..., draws=, rng=)"
        )
    # The difference computed directly: subtracting the two losses, which both hold d_out s², loses
    # every digit of the gap once s² dwarfs it (s² = 1e16 against a gap of order 1).
    energy = max(float(np.einsum("ij,jk,ik->", delta_, sigma_, delta_)), 0.0)
    return float((1.0 - r / d_out) * energy)
