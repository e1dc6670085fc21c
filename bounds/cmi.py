r"""Conditional-mutual-information bounds for losses in ``[0, 1]``, estimated from a supersample.

Notation (see :mod:`bounds.supersample`): ``L~_i = (l(W, Z~_{i,0}), l(W, Z~_{i,1}))`` the loss
pair of point ``i``, ``Delta L_i = L~_{i,1} - L~_{i,0}``, ``U_i`` the selector bit,
``R^ = E[L_S(W)]`` the expected training loss and ``R = E[L_mu(W)]`` the expected population
loss; ``gen = R - R^``. Every MI is unconditional (not given ``Z~``), in nats, and estimated
per point ``i`` by the plug-in with the Miller–Madow correction from all ``k_z * k_u`` runs
(:mod:`bounds.discrete_mi`); the bound is then evaluated on these estimates.

All proofs go through the Donsker–Varadhan inequality
``E_P[g] <= D(P || Q) + log E_Q[exp g]`` with ``P`` the joint law of ``(L~_i, U_i)`` and
``Q = P_{L~_i} x Bernoulli(1/2)``, for which ``D(P || Q) = I(L~_i; U_i)``.

Every function returns a :class:`~bounds.results.BoundResult` whose ``value`` bounds ``gen``
(for the risk-type bounds, the risk bound minus the measured ``R^``); ``low``/``high`` is the
basic bootstrap interval (:func:`~bounds.results.basic_bootstrap_interval`) obtained by
resampling whole supersamples (each with all its selectors) ``n_boot`` times and recomputing
the MI estimates, the training loss and the bound. It describes the Monte Carlo uncertainty of
the estimated bound, including the first-order bias of the plug-in MI (which is upwards, so
the point estimate tends to overstate the bound and, with few runs, sits at the upper end of
its interval), and nothing more.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bounds.discrete_mi import as_confidence, as_correction, batched_counts, mi_from_counts, symbol_codes
from bounds.kl import kl_inverse
from bounds.results import BoundResult, basic_bootstrap_interval
from bounds.supersample import Supersample, bootstrap_supersamples
from theory.validation import as_generator, as_int, as_real

#: Loss differences are rounded to this many decimals before being used as symbols, so that
#: float round-off does not split one value into several.
DELTA_DECIMALS = 12

# Grid of the fast-rate trade-off C >= 1 and, for each C, the largest eta with
# exp(eta) + exp(-C eta) <= 2 (see fast_rate_risk). Newton from eta = ln 2 (where the convex
# function exp(eta) + exp(-C eta) - 2 is positive) decreases monotonically to the root.
_C_GRID = 1.0 + np.geomspace(1e-3, 1e4, 2001)


def _eta_on_grid(c: np.ndarray) -> np.ndarray:
    eta = np.full_like(c, math.log(2.0))
    for _ in range(200):
        f = np.expm1(eta) + np.expm1(-c * eta)
        step = f / (np.exp(eta) - c * np.exp(-c * eta))
        eta = eta - step
        if np.all(np.abs(step) <= 1e-15 * eta):
            break
    # Guard: never report an eta outside the feasible set (f <= 0) because of round-off.
    return eta * (1.0 - 1e-9)


_ETA_GRID = _eta_on_grid(_C_GRID)


def fast_rate_risk(train_loss: float, mi_nats: float) -> float:
    r"""Fast-rate risk bound ``R <= min_{C >= 1} (C R^ + I / eta(C))``, capped at 1.

    ``eta(C)`` is the largest ``eta > 0`` with ``e^eta + e^{-C eta} <= 2``; ``I`` is the
    average ``(1/n) sum_i I(L~_i; U_i)`` in nats. With ``R^ = 0`` the minimum is the limit
    ``C -> inf``, ``I / ln 2``. The minimum is taken over a fixed grid of ``C`` (every grid
    point gives a valid bound).

    Derivation (derived here, in the spirit of the fast-rate bounds of Wang & Mao, "Tighter
    information-theoretic generalization bounds from supersamples", ICML 2023): take
    ``g = eta (L~_{i,1-U_i} - C L~_{i,U_i})`` in Donsker–Varadhan. Under ``Q`` its exponential
    moment given ``L~_i = (a, b)`` is ``(e^{eta(b - Ca)} + e^{eta(a - Cb)})/2``, convex in
    ``(a, b)``, so its maximum over ``[0, 1]^2`` is at a vertex: 1 at ``(0, 0)``,
    ``e^{eta(1-C)} <= 1`` at ``(1, 1)`` and ``(e^eta + e^{-C eta})/2 <= 1`` at ``(1, 0)``. Hence
    ``eta (R_i - C R^_i) <= I(L~_i; U_i)``; average over ``i``.

    Parameters
    ----------
    train_loss : float
        ``R^`` in ``[0, 1]``.
    mi_nats : float
        ``I >= 0`` in nats.
    """
    train_loss = as_real(train_loss, "train_loss", minimum=0.0, maximum=1.0)
    mi_nats = as_real(mi_nats, "mi_nats", minimum=0.0)
    if train_loss == 0.0:
        return min(mi_nats / math.log(2.0), 1.0)
    return min(float(np.min(_C_GRID * train_loss + mi_nats / _ETA_GRID)), 1.0)


def binary_kl_risk(train_loss: float, mi_nats: float) -> float:
    r"""Binary-kl risk bound ``R <= 2 kl^{-1}_+(R^, I) - R^``, capped at 1.

    From ``kl(R^ || (R^ + R)/2) <= I`` with ``I = (1/n) sum_i I(L~_i; U_i)`` in nats.
    Derivation: with ``g = lambda L~_{i,U_i}``, the exponential moment under ``Q`` is
    ``E[(e^{lambda L~_{i,0}} + e^{lambda L~_{i,1}})/2] <= 1 + m_i (e^lambda - 1)`` for losses in
    ``[0, 1]`` (convexity of ``x -> e^{lambda x}``), ``m_i = (R^_i + R_i)/2``; the supremum over
    ``lambda`` of ``lambda R^_i - log(1 + m_i (e^lambda - 1))`` is ``kl(R^_i || m_i)``. Average over
    ``i`` with the joint convexity of kl. Source: Hellström & Durisi, "A new family of
    generalization bounds using samplewise evaluated CMI" (NeurIPS 2022).

    Parameters
    ----------
    train_loss : float
        ``R^`` in ``[0, 1]``.
    mi_nats : float
        ``I >= 0`` in nats.
    """
    train_loss = as_real(train_loss, "train_loss", minimum=0.0, maximum=1.0)
    mi_nats = as_real(mi_nats, "mi_nats", minimum=0.0)
    return min(2.0 * kl_inverse(train_loss, mi_nats, side="upper") - train_loss, 1.0)


# --- estimation machinery -------------------------------------------------------------------


def _symbols(ss: Supersample) -> dict[str, tuple[np.ndarray, int]]:
    """Integer codes (k_z, k_u, n) of ``Delta L_i`` and of the pair ``L~_i``, with alphabet sizes."""
    shape = ss.selectors.shape
    delta = np.round(ss.losses[..., 1] - ss.losses[..., 0], DELTA_DECIMALS) + 0.0  # +0.0: no -0.0
    d_codes, m_d = symbol_codes(delta.ravel(), "delta")
    p_codes, m_p = symbol_codes(ss.losses.reshape(-1, 2), "loss pairs")
    return {"delta": (d_codes.reshape(shape), m_d), "pair": (p_codes.reshape(shape), m_p)}


def _per_sample_mi(codes: np.ndarray, m: int, selectors: np.ndarray, picks: np.ndarray, correction: str) -> np.ndarray:
    """(n,) estimates of ``I(X_i; U_i)`` from the supersamples ``picks``, pooling their selectors."""
    n = codes.shape[-1]
    x = codes[picks].reshape(-1, n).T
    u = selectors[picks].reshape(-1, n).T
    return mi_from_counts(batched_counts(x, u, m, 2), correction)


def _estimate(
    ss: Supersample,
    rng: np.random.Generator,
    n_boot: int,
    confidence: float,
    correction: str,
    symbols: str,
    gap_bound: Callable[[np.ndarray, float], float],
    *,
    requires_interpolation: bool = False,
) -> BoundResult:
    """Evaluate ``gap_bound(per-sample MI (n,), training loss)`` on all supersamples and on
    bootstrap resamples of them; ``symbols`` picks ``"delta"`` (``Delta L_i``) or ``"pair"`` (``L~_i``)."""
    if not isinstance(ss, Supersample):
        raise ValueError(f"supersample must be a Supersample (see run_supersample), got {type(ss).__name__}")
    rng = as_generator(rng)
    n_boot = as_int(n_boot, "n_boot", minimum=1)
    level = as_confidence(confidence)
    correction = as_correction(correction)
    k_z = ss.losses.shape[0]
    train = ss.train_losses.mean(axis=(1, 2))  # (k_z,)
    trivial = 1.0 - float(train.mean())
    if requires_interpolation and not np.all(ss.train_losses == 0.0):
        return BoundResult(trivial, trivial, trivial, ss.draws, vacuous=True)
    codes, m = _symbols(ss)[symbols]

    def statistic(picks: np.ndarray) -> float:
        mi = _per_sample_mi(codes, m, ss.selectors, picks, correction)
        return gap_bound(mi, float(min(max(train[picks].mean(), 0.0), 1.0)))

    raw = statistic(np.arange(k_z))
    boot = np.array([statistic(p) for p in bootstrap_supersamples(rng, k_z, n_boot)])
    low, high = basic_bootstrap_interval(raw, boot, level)
    cap = lambda v: min(max(v, 0.0), trivial)  # noqa: E731
    return BoundResult(cap(raw), cap(low), cap(high), ss.draws, vacuous=raw >= trivial)


# --- the bounds -----------------------------------------------------------------------------


def ld_cmi_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
) -> BoundResult:
    r"""Loss-difference bound ``|gen| <= (1/n) sum_i sqrt(2 I(Delta L_i; U_i))``.

    Assumptions: losses in ``[0, 1]`` (so ``Delta L_i in [-1, 1]``), i.i.d. data, fair
    selectors. Proof: ``gen_i = E[(-1)^{U_i} Delta L_i]``; with ``g = lambda (-1)^{U_i} Delta L_i``,
    under ``Q`` the exponential moment is ``E[cosh(lambda Delta L_i)] <= e^{lambda^2/2}``, so
    ``gen_i <= I/lambda + lambda/2``; optimise ``lambda``. Source: Wang & Mao, "Tighter
    information-theoretic generalization bounds from supersamples" (ICML 2023), the
    unconditional loss-difference MI bound. Never looser than :func:`ecmi_bound` for exact MIs
    (``Delta L_i`` is a function of ``L~_i``). Units: loss units; MI in nats.

    Parameters
    ----------
    supersample : Supersample
    rng : numpy.random.Generator
        Source of the bootstrap resampling.
    n_boot, confidence
        Bootstrap replicates and interval level.
    correction : {"miller_madow", "none"}
        Bias correction of the plug-in MI.
    """
    return _estimate(
        supersample, rng, n_boot, confidence, correction, "delta",
        lambda mi, r_hat: float(np.mean(np.sqrt(2.0 * mi))),
    )


def ecmi_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
) -> BoundResult:
    r"""Evaluated-CMI bound ``|gen| <= (1/n) sum_i sqrt(2 I(L~_i; U_i))``.

    Assumptions and proof as :func:`ld_cmi_bound` (``(-1)^{U_i} Delta L_i`` is a function of
    ``(L~_i, U_i)``). Source: Hellström & Durisi, "A new family of generalization bounds using
    samplewise evaluated CMI" (NeurIPS 2022), the samplewise square-root e-CMI bound. Units:
    loss units; MI in nats.

    Parameters
    ----------
    supersample, rng, n_boot, confidence, correction
        As in :func:`ld_cmi_bound`.
    """
    return _estimate(
        supersample, rng, n_boot, confidence, correction, "pair",
        lambda mi, r_hat: float(np.mean(np.sqrt(2.0 * mi))),
    )


def binary_kl_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
) -> BoundResult:
    r"""Binary-kl bound: ``gen <= 2 (kl^{-1}_+(R^, I) - R^)`` with ``I = (1/n) sum_i I(L~_i; U_i)``.

    The gap form of :func:`binary_kl_risk` (assumptions, proof and source there), evaluated
    at the estimated ``R^`` and ``I``. Fast rate: for ``R^ = 0`` it is about ``2 I``, not
    ``sqrt(2 I)``. Units: loss units; MI in nats.

    Parameters
    ----------
    supersample, rng, n_boot, confidence, correction
        As in :func:`ld_cmi_bound`.
    """
    return _estimate(
        supersample, rng, n_boot, confidence, correction, "pair",
        lambda mi, r_hat: binary_kl_risk(r_hat, float(np.mean(mi))) - r_hat,
    )


def fast_rate_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
) -> BoundResult:
    r"""Fast-rate bound: ``gen <= min_{C >= 1} ((C - 1) R^ + I / eta(C))``.

    The gap form of :func:`fast_rate_risk` (assumptions, derivation and ``eta(C)`` there) at the
    estimated ``R^`` and ``I = (1/n) sum_i I(L~_i; U_i)``. Units: loss units; MI in nats.

    Parameters
    ----------
    supersample, rng, n_boot, confidence, correction
        As in :func:`ld_cmi_bound`.
    """
    return _estimate(
        supersample, rng, n_boot, confidence, correction, "pair",
        lambda mi, r_hat: fast_rate_risk(r_hat, float(np.mean(mi))) - r_hat,
    )


def interpolation_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
) -> BoundResult:
    r"""Interpolating algorithms: ``R <= (1/n) sum_i I(Delta L_i; U_i) / ln 2``, with equality
    for a loss in ``{0, 1}``.

    Assumption: the training loss is exactly 0 on every run (checked on the recorded runs;
    if any training loss is positive the bound does not apply and the trivial value is
    returned with ``vacuous=True``). With zero training loss ``Delta L_i = (-1)^{U_i}`` times the
    test loss, so a non-zero ``Delta L_i`` reveals ``U_i``. For ``{0, 1}`` losses this gives
    ``I(Delta L_i; U_i) = ln 2 * P(test error)`` exactly (Wang & Mao, "Tighter
    information-theoretic generalization bounds from supersamples", ICML 2023); for ``[0, 1]``
    losses the inequality is the ``C -> inf`` limit of :func:`fast_rate_risk` (``L~_i`` and
    ``Delta L_i`` determine each other when the training loss is 0). Since ``R^ = 0``, the
    value bounds ``gen = R``. Units: loss units; MI in nats.

    Parameters
    ----------
    supersample, rng, n_boot, confidence, correction
        As in :func:`ld_cmi_bound`.
    """
    return _estimate(
        supersample, rng, n_boot, confidence, correction, "delta",
        lambda mi, r_hat: float(np.mean(mi)) / math.log(2.0),
        requires_interpolation=True,
    )
