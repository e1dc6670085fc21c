r"""Expectations over a random frozen factor and the asymmetry gap (Section 4.1, Theorem 4.3).

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.1
(docs/THEORY.md §1.5 and §1.6): the frozen factor is drawn uniformly from its Stiefel manifold,
``B = U ∈ St(d_out, r)`` for ``a_only`` and ``A = Qᵀ`` with ``Q ∈ St(d_in, r)`` for ``b_only``.
Each public function checks its arguments once and calls its unchecked core; the Monte Carlo
estimates draw with ``theory.random``'s core and evaluate the draws with the cores of
``loss_b_only_draws`` and ``loss_a_only_draws``.
"""

from __future__ import annotations

import numpy as np

from theory.captured import ISOTROPIC_RTOL
from theory.linear import _as_metric, _as_problem, _metric_root, _noise_weight, _sqrtm, _weighted
from theory.random import _check_draws_memory, _haar_stiefel
from theory.tolerances import RANK_RTOL, numerical_rank
from theory.validation import Array, as_array, as_generator, as_int, as_rank, checked_finite


def _energy(delta: Array, sigma: Array) -> float:
    """``Tr[Δ Σ Δᵀ]``, the excess loss of ``M = 0`` in eq. (1); clamped at 0 against round-off."""
    return max(float(np.einsum("ij,jk,ik->", delta, sigma, delta)), 0.0)


@checked_finite("delta", "sigma", "noise_var", "metric")
def expected_loss_a_only(
    delta: Array, sigma: Array, rank: int, noise_var: float, *, metric: Array | None = None
) -> float:
    r"""Exact ``E_U[L(U A^*)]`` over a Haar output map ``B = U ∈ St(d_out, r)``.

    Since ``E_U[U Uᵀ] = (r/d_out) I`` (docs/THEORY.md §1.5), the expected reduction in eq. (3) is
    ``(r/d_out) Tr[ΔΣΔᵀ]``:

    .. math:: E[L_{a\_only}] = d_{out} s^2 + (1 − r/d_{out}) \operatorname{Tr}[ΔΣΔ^T].

    With an output metric ``G = c I`` (eq. (1G)) the same holds with every term scaled by ``c``.
    A general ``G`` tilts the projector (docs/THEORY.md §1b.2) and the expectation has no closed
    form: ``ValueError`` naming ``metric``; use ``expected_loss_a_only_mc``.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int; noise_var : float.
    metric : (d_out, d_out) output metric ``G``, a non-negative multiple of the identity, or None.

    Returns
    -------
    float
    """
    delta_, sigma_, s2 = _as_problem(delta, sigma, noise_var)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    scale = _isotropic_scale(_as_metric(metric, delta_.shape[0]))
    return _expected_loss_a_only(delta_, sigma_, r, s2, scale)


def _isotropic_scale(metric: Array | None) -> float:
    """``c`` for a checked output metric ``G = c I`` (1 for None); ``ValueError`` naming metric otherwise."""
    if metric is None:
        return 1.0
    diag = np.diagonal(metric)
    spread = float(np.max(np.abs(metric - np.diag(np.full(metric.shape[0], diag.mean())))))
    if spread > ISOTROPIC_RTOL * max(float(diag.max()), np.finfo(np.float64).tiny):
        raise ValueError(
            "metric is not a multiple of the identity: E over a Haar B has no closed form for a "
            "general output metric; use expected_loss_a_only_mc(..., metric=metric, draws=, rng=)"
        )
    return float(diag.mean())


def _expected_loss_a_only(delta: Array, sigma: Array, r: int, s2: float, scale: float) -> float:
    """``expected_loss_a_only`` of checked arguments, for the metric ``G = scale · I``."""
    d_out = delta.shape[0]
    return float(scale * (d_out * s2 + (1.0 - r / d_out) * _energy(delta, sigma)))


def _as_draws(value: object, name: str, side: str, delta: Array) -> Array:
    """A checked stack (draws, d, r) of frozen factors, ``d`` the ``side`` ("d_in" or "d_out") of ``delta``."""
    d = delta.shape[1] if side == "d_in" else delta.shape[0]
    stack = as_array(value, name, (None, None, None))
    if stack.shape[1] != d:
        raise ValueError(f"{name} must have shape (draws, {side}={d}, r), got {stack.shape}")
    as_rank(stack.shape[2], delta.shape[1], delta.shape[0], name=f"{name}.shape[2] (the rank)")
    return stack


@checked_finite("delta", "sigma", "q", "noise_var", "metric")
def loss_b_only_draws(
    delta: Array, sigma: Array, q: Array, noise_var: float, *, metric: Array | None = None
) -> Array:
    r"""Eq. (2) for a stack of frozen ``A = Qᵀ``, vectorised over draws.

    Reduction ``‖Ĝ P_k‖_F²`` with ``Ĝ = G^{1/2} Δ Σ^{1/2}`` (``G = I`` without a metric) and
    ``P_k`` the projector onto ``col(Σ^{1/2} Q_k)`` (Lemma 4.1; docs/THEORY.md §1.4 and §1b.2).

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); q : (draws, d_in, r); noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    (draws,) the loss for each draw.
    """
    delta_, sigma_, s2 = _as_problem(delta, sigma, noise_var)
    q_ = _as_draws(q, "q", "d_in", delta_)
    return _loss_b_only_draws(delta_, sigma_, q_, s2, _as_metric(metric, delta_.shape[0]))


def _loss_b_only_draws(delta: Array, sigma: Array, q: Array, s2: float, metric: Array | None) -> Array:
    """``loss_b_only_draws`` of checked arguments."""
    root = _sqrtm(sigma)
    target = _weighted(delta, root, _metric_root(metric))
    u, s, _ = np.linalg.svd(root @ q, full_matrices=False)  # (draws, d_in, r), (draws, r)
    keep = s > RANK_RTOL * s[:, :1]
    reduction = np.einsum("oi,dij->doj", target, u) ** 2  # (draws, d_out, r)
    reduction = np.sum(reduction.sum(axis=1) * keep, axis=1)
    # A projection's squared norm is at most ‖target‖²: clamp the round-off below it.
    return _noise_weight(delta, metric) * s2 + np.maximum(float(np.sum(target**2)) - reduction, 0.0)


@checked_finite("delta", "sigma", "u", "noise_var", "metric")
def loss_a_only_draws(
    delta: Array, sigma: Array, u: Array, noise_var: float, *, metric: Array | None = None
) -> Array:
    r"""Eq. (3) for a stack of frozen orthonormal ``B = U``, vectorised over draws.

    Reduction ``‖U_kᵀ Δ Σ^{1/2}‖_F²`` (``P_B = U Uᵀ`` for orthonormal columns; Lemma 4.2); with an
    output metric ``G``, ``‖P_k Ĝ‖_F²`` with ``Ĝ = G^{1/2} Δ Σ^{1/2}`` and ``P_k`` the projector
    onto ``col(G^{1/2} U_k)`` (docs/THEORY.md §1b.2).

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); u : (draws, d_out, r) with orthonormal columns
    (``UᵀU = I`` to 1e-8, ``ValueError`` otherwise); noise_var : float.
    metric : (d_out, d_out) output metric ``G``, symmetric PSD; None (default) is the identity.

    Returns
    -------
    (draws,) the loss for each draw.
    """
    delta_, sigma_, s2 = _as_problem(delta, sigma, noise_var)
    u_ = _as_draws(u, "u", "d_out", delta_)
    if not np.allclose(np.swapaxes(u_, 1, 2) @ u_, np.eye(u_.shape[2]), atol=1e-8):
        raise ValueError("u must have orthonormal columns (draw it with haar_stiefel)")
    return _loss_a_only_draws(delta_, sigma_, u_, s2, _as_metric(metric, delta_.shape[0]))


def _loss_a_only_draws(delta: Array, sigma: Array, u: Array, s2: float, metric: Array | None) -> Array:
    """``loss_a_only_draws`` of checked arguments."""
    metric_root = _metric_root(metric)
    target = _weighted(delta, _sqrtm(sigma), metric_root)
    if metric_root is None:
        reduction = np.sum(np.einsum("dor,oi->dri", u, target) ** 2, axis=(1, 2))
    else:
        basis, s, _ = np.linalg.svd(metric_root @ u, full_matrices=False)
        keep = s > RANK_RTOL * np.maximum(s[:, :1], np.finfo(np.float64).tiny)
        reduction = np.sum(np.sum(np.einsum("dor,oi->dri", basis, target) ** 2, axis=2) * keep, axis=1)
    # A projection's squared norm is at most ‖target‖²: clamp the round-off below it.
    return _noise_weight(delta, metric) * s2 + np.maximum(float(np.sum(target**2)) - reduction, 0.0)


def _mean_stderr(losses: Array) -> tuple[float, float]:
    """Sample mean and standard error of ``losses`` (draws,), scaled so the squares cannot overflow."""
    # Divide by a power of two near the largest loss (exact) so that the squares cannot overflow.
    scale = 2.0 ** int(np.frexp(np.max(np.abs(losses)))[1])
    unit = losses / scale
    return scale * float(unit.mean()), scale * float(unit.std(ddof=1) / np.sqrt(losses.size))


def _as_monte_carlo(
    delta: object, sigma: object, rank: object, noise_var: object, draws: object, rng: object, side: str
) -> tuple[Array, Array, int, float, int, np.random.Generator]:
    """The checked ``(Δ, Σ, r, s², draws, rng)`` of a Monte Carlo expectation over Haar draws on the
    ``side`` ("d_in" or "d_out"), the memory the draws need included."""
    delta_, sigma_, s2 = _as_problem(delta, sigma, noise_var)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    draws = as_int(draws, "draws", minimum=2)
    rng = as_generator(rng)
    _check_draws_memory(delta_.shape[1] if side == "d_in" else delta_.shape[0], r, draws)
    return delta_, sigma_, r, s2, draws, rng


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

    Eq. (2) has no closed-form expectation over ``Q`` for general ``Σ`` (docs/THEORY.md §1.5);
    this averages the exact loss (eq. (2), or (1G) with ``metric``) over ``draws`` independent
    Haar draws, vectorised, as ``loss_b_only_draws`` on ``haar_stiefel(d_in, r, rng, draws=draws)``.

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
    delta_, sigma_, r, s2, draws, rng = _as_monte_carlo(delta, sigma, rank, noise_var, draws, rng, "d_in")
    metric_ = _as_metric(metric, delta_.shape[0])
    q = _haar_stiefel(delta_.shape[1], r, rng, draws)
    return _mean_stderr(_loss_b_only_draws(delta_, sigma_, q, s2, metric_))


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

    The Monte Carlo route for a general output metric ``G`` (docs/THEORY.md §1b.1 and §1b.2),
    where the projector onto ``col(G^{1/2} U)`` is tilted toward ``G``'s large directions and the
    exact ``expected_loss_a_only`` does not apply: the mean of ``loss_a_only_draws`` over
    ``draws`` independent Haar draws. Without a metric it estimates ``expected_loss_a_only``.

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
    delta_, sigma_, r, s2, draws, rng = _as_monte_carlo(delta, sigma, rank, noise_var, draws, rng, "d_out")
    metric_ = _as_metric(metric, delta_.shape[0])
    u = _haar_stiefel(delta_.shape[0], r, rng, draws)
    return _mean_stderr(_loss_a_only_draws(delta_, sigma_, u, s2, metric_))


@checked_finite("delta", "sigma", "noise_var")
def asymmetry_gap(delta: Array, sigma: Array, rank: int, noise_var: float) -> float:
    r"""Exact ``E_U[L_{a\_only}] − L_{b\_only}`` when ``rank Σ <= r``.

    With ``rank Σ <= r`` a Haar ``A = Qᵀ`` sees the whole input range almost surely
    (``col(Σ^{1/2} Q) = range Σ``), so ``L_{b_only} = d_out s²`` and (docs/THEORY.md §1.6, eq. (4),
    the equal-eigenvalue case ``Σ = σ² U_X U_Xᵀ`` of Zhu et al., Section 4.1.1, and its derived
    extension to any ``Σ`` of rank ``<= r``)

    .. math:: E[L_{a\_only}] − L_{b\_only} = (1 − r/d_{out}) \operatorname{Tr}[ΔΣΔ^T].

    Raises ``ValueError`` when ``rank Σ > r``: then ``L_{b_only}`` depends on the draw; use
    ``expected_loss_b_only`` (Monte Carlo) with ``expected_loss_a_only``. ``noise_var`` is
    checked but cancels from the gap.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); rank : int; noise_var : float.

    Returns
    -------
    float, at least 0.
    """
    delta_, sigma_, _ = _as_problem(delta, sigma, noise_var)
    r = as_rank(rank, delta_.shape[1], delta_.shape[0])
    k = numerical_rank(np.linalg.eigvalsh(sigma_))
    if k > r:
        raise ValueError(
            f"asymmetry_gap is exact only when rank(sigma) <= rank; rank(sigma) = {k} > rank = {r}. "
            f"Estimate it with expected_loss_a_only(...) - expected_loss_b_only(..., draws=, rng=)"
        )
    return _asymmetry_gap(delta_, sigma_, r)


def _asymmetry_gap(delta: Array, sigma: Array, r: int) -> float:
    """``asymmetry_gap`` of checked arguments with ``rank Σ <= r``.

    The difference is computed directly: subtracting the two losses, which both hold ``d_out s²``,
    loses every digit of the gap once ``s²`` dwarfs it (``s² = 1e16`` against a gap of order 1).
    """
    return float((1.0 - r / delta.shape[0]) * _energy(delta, sigma))
