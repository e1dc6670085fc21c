r"""Conditional-mutual-information bounds for losses in ``[0, 1]``, estimated from a supersample.

Notation (see :mod:`bounds.supersample`): ``L~_i = (l(W, Z~_{i,0}), l(W, Z~_{i,1}))`` the loss
pair of point ``i``, ``Delta L_i = L~_{i,1} - L~_{i,0}``, ``U_i`` the selector bit,
``R^ = E[L_S(W)]`` the expected training loss and ``R = E[L_mu(W)]`` the expected population
loss; ``gen = R - R^``. Every MI is unconditional (not given ``Z~``), in nats, and estimated
per point ``i`` by the plug-in with the Miller–Madow correction from all ``k_z * k_u`` runs
(:mod:`bounds.discrete_mi`); the bound is then evaluated on these estimates. With
``pool_points`` one MI is estimated from the pairs of all points instead, for learners whose
points share one law; :func:`selector_blind_floor` says where an estimate is at the estimator's
floor (docs/THEORY.md §2.4).

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


def _symbols(ss: Supersample, which: str) -> tuple[np.ndarray, int]:
    """Integer codes (k_z, k_u, n) of ``Delta L_i`` (``which="delta"``) or of the pair ``L~_i``
    (``"pair"``), and the alphabet size."""
    if which == "delta":
        delta = np.round(ss.losses[..., 1] - ss.losses[..., 0], DELTA_DECIMALS) + 0.0  # +0.0: no -0.0
        codes, m = symbol_codes(delta.ravel(), "delta")
    else:  # a pair (a, b) of loss codes is the number a * m + b: rows in lexicographic order
        values, m_values = symbol_codes(ss.losses.ravel(), "losses")
        codes, m = symbol_codes(values.reshape(-1, 2) @ np.array([m_values, 1]), "loss pairs")
    return codes.reshape(ss.selectors.shape), m


def _per_sample_mi(codes: np.ndarray, m: int, selectors: np.ndarray, picks: np.ndarray, correction: str) -> np.ndarray:
    """(n,) estimates of ``I(X_i; U_i)`` from the supersamples ``picks``, pooling their selectors."""
    n = codes.shape[-1]
    x = codes[picks].reshape(-1, n).T
    u = selectors[picks].reshape(-1, n).T
    return mi_from_counts(batched_counts(x, u, m, 2), correction)


def _checked(ss: object, rng: object, correction: object, pool_points: object) -> tuple[np.random.Generator, str]:
    """The arguments every estimate shares, validated: the generator and the correction."""
    if not isinstance(ss, Supersample):
        raise ValueError(f"supersample must be a Supersample (see run_supersample), got {type(ss).__name__}")
    if not isinstance(pool_points, (bool, np.bool_)):
        raise ValueError(f"pool_points must be True or False, got {pool_points!r}")
    return as_generator(rng), as_correction(correction)


def _estimate(
    ss: Supersample, rng: np.random.Generator, n_boot: int, confidence: float, correction: str, form: str,
    *, pool_points: bool = False, requires_interpolation: bool = False,
) -> BoundResult:
    """Evaluate the bound ``_FORMS[form]`` (per-sample MI (n,), training loss) on all supersamples
    and on bootstrap resamples of them. With ``pool_points`` the MI is one estimate (shape (1,))
    from the pairs of every point."""
    symbols, summary, finish = _FORMS[form]
    rng, correction = _checked(ss, rng, correction, pool_points)
    n_boot = as_int(n_boot, "n_boot", minimum=1)
    level = as_confidence(confidence)
    k_z = ss.losses.shape[0]
    train = ss.train_losses.mean(axis=(1, 2))  # (k_z,)
    trivial = 1.0 - float(train.mean())
    if requires_interpolation and not np.all(ss.train_losses == 0.0):
        return BoundResult(trivial, trivial, trivial, ss.draws, vacuous=True)
    codes, m = _symbols(ss, symbols)
    # pooled: the (k_z, m, 2) table of (X_i, U_i) of each supersample over its runs and points
    tables = batched_counts(codes.reshape(k_z, -1), ss.selectors.reshape(k_z, -1), m, 2) if pool_points else None

    def mi(picks: np.ndarray) -> np.ndarray:  # (B, k_z) -> (B, n) or (B, 1)
        if tables is None:
            return np.stack([_per_sample_mi(codes, m, ss.selectors, p, correction) for p in picks])
        return mi_from_counts(tables[picks].sum(axis=1), correction)[:, None]

    picks = np.vstack([np.arange(k_z), bootstrap_supersamples(rng, k_z, n_boot)])  # all, then resamples
    r_hat = np.clip(train[picks].mean(axis=1), 0.0, 1.0)
    values = [finish(float(v), float(r)) for v, r in zip(summary(mi(picks)), r_hat)]
    raw = values[0]
    low, high = basic_bootstrap_interval(raw, np.array(values[1:]), level)
    cap = lambda v: min(max(v, 0.0), trivial)  # noqa: E731
    return BoundResult(cap(raw), cap(low), cap(high), ss.draws, vacuous=raw >= trivial)


def _mean_sqrt(mi: np.ndarray) -> np.ndarray:  # (B, n) -> (B,)
    return np.mean(np.sqrt(2.0 * mi), axis=-1)


#: Per bound: the symbols whose MI with ``U_i`` it uses, a summary of the per-sample MIs
#: ((B, n) -> (B,)) and the bound as a nondecreasing function of that summary and ``R^``.
_FORMS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[float, float], float]]] = {
    "ld_cmi_bound": ("delta", _mean_sqrt, lambda s, r_hat: s),
    "ecmi_bound": ("pair", _mean_sqrt, lambda s, r_hat: s),
    "binary_kl_bound": ("pair", lambda mi: mi.mean(axis=-1), lambda s, r_hat: binary_kl_risk(r_hat, s) - r_hat),
    "fast_rate_bound": ("pair", lambda mi: mi.mean(axis=-1), lambda s, r_hat: fast_rate_risk(r_hat, s) - r_hat),
    "interpolation_bound": ("delta", lambda mi: mi.mean(axis=-1), lambda s, r_hat: s / math.log(2.0)),
}


def selector_blind_floor(
    bound: Callable[..., BoundResult],
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    draws: int = 200,
    quantile: float = 0.95,
    correction: str = "miller_madow",
    pool_points: bool = False,
) -> float:
    r"""The floor of a CMI bound's estimator: the ``quantile`` of its estimate for selectors that
    carry no information, at the sizes and loss values of ``supersample``.

    Fresh fair selectors ``U'`` drawn independently of the losses (a learner that ignores its
    selector, :func:`~bounds.supersample.redraw_selectors`) have ``I(L~_i; U'_i) = 0``: all of
    their estimate is the estimator's. Given the recorded loss symbols, the number of ``U' = 1``
    among the ``c_x`` runs with symbol ``x`` is ``Binomial(c_x, 1/2)``, independently over ``x``;
    ``draws`` such tables give the null law of the MI estimates; the bound, nondecreasing in them,
    is evaluated at their ``quantile`` and the recorded ``R^``, and capped at ``1 - R^``. An estimate
    not above this floor cannot be told from a selector-blind learner's (a one-sided test of
    ``I = 0`` at level ``1 - quantile``).

    Parameters
    ----------
    bound : ``ld_cmi_bound``, ``ecmi_bound``, ``binary_kl_bound``, ``fast_rate_bound`` or
        ``interpolation_bound``.
    supersample : Supersample
    rng : numpy.random.Generator
        Source of the null tables.
    draws : int, ``>= 1``; quantile : float in ``(0, 1)``.
    correction, pool_points
        As in :func:`ld_cmi_bound`: those of the estimate compared with the floor.

    Returns
    -------
    float, in loss units.
    """
    name = getattr(bound, "__name__", None)
    if name not in _FORMS:
        raise ValueError(f"bound must be one of {', '.join(_FORMS)}, got {bound!r}")
    rng, correction = _checked(supersample, rng, correction, pool_points)
    draws = as_int(draws, "draws", minimum=1)
    level = as_confidence(quantile)
    symbols, summary, finish = _FORMS[name]
    codes, m = _symbols(supersample, symbols)
    n = codes.shape[-1]
    x = codes.reshape(1, -1) if pool_points else codes.reshape(-1, n).T  # (points, runs)
    seen = batched_counts(x, np.zeros_like(x), m, 2)[..., 0]  # (points, m) runs with each symbol
    ones = rng.binomial(seen, 0.5, size=(draws, *seen.shape))
    mi = mi_from_counts(np.stack([seen - ones, ones], axis=-1), correction)  # (draws, points)
    r_hat = float(supersample.train_losses.mean())
    value = finish(float(np.quantile(summary(mi), level, method="higher")), r_hat)  # the bound is monotone
    return float(min(max(value, 0.0), 1.0 - r_hat))


# --- the bounds -----------------------------------------------------------------------------


def ld_cmi_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
    pool_points: bool = False,
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
    pool_points : bool
        One MI from the ``k_z k_u n`` pairs of all points, not one per point from ``k_z k_u``.
        Valid when every point's ``(L~_i, U_i)`` has the same law (i.i.d. data, fair selectors,
        a learner invariant to the order of its samples), so all ``I(L~_i; U_i)`` are equal.
    """
    return _estimate(supersample, rng, n_boot, confidence, correction, "ld_cmi_bound", pool_points=pool_points)


def ecmi_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
    pool_points: bool = False,
) -> BoundResult:
    r"""Evaluated-CMI bound ``|gen| <= (1/n) sum_i sqrt(2 I(L~_i; U_i))``.

    Assumptions and proof as :func:`ld_cmi_bound` (``(-1)^{U_i} Delta L_i`` is a function of
    ``(L~_i, U_i)``). Source: Hellström & Durisi, "A new family of generalization bounds using
    samplewise evaluated CMI" (NeurIPS 2022), the samplewise square-root e-CMI bound. Units:
    loss units; MI in nats.

    Parameters
    ----------
    supersample, rng, n_boot, confidence, correction, pool_points
        As in :func:`ld_cmi_bound`.
    """
    return _estimate(supersample, rng, n_boot, confidence, correction, "ecmi_bound", pool_points=pool_points)


def binary_kl_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
    pool_points: bool = False,
) -> BoundResult:
    r"""Binary-kl bound: ``gen <= 2 (kl^{-1}_+(R^, I) - R^)`` with ``I = (1/n) sum_i I(L~_i; U_i)``.

    The gap form of :func:`binary_kl_risk` (assumptions, proof and source there), evaluated
    at the estimated ``R^`` and ``I``. Fast rate: for ``R^ = 0`` it is about ``2 I``, not
    ``sqrt(2 I)``. Units: loss units; MI in nats.

    Parameters
    ----------
    supersample, rng, n_boot, confidence, correction, pool_points
        As in :func:`ld_cmi_bound`.
    """
    return _estimate(supersample, rng, n_boot, confidence, correction, "binary_kl_bound", pool_points=pool_points)


def fast_rate_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
    pool_points: bool = False,
) -> BoundResult:
    r"""Fast-rate bound: ``gen <= min_{C >= 1} ((C - 1) R^ + I / eta(C))``.

    The gap form of :func:`fast_rate_risk` (assumptions, derivation and ``eta(C)`` there) at the
    estimated ``R^`` and ``I = (1/n) sum_i I(L~_i; U_i)``. Units: loss units; MI in nats.

    Parameters
    ----------
    supersample, rng, n_boot, confidence, correction, pool_points
        As in :func:`ld_cmi_bound`.
    """
    return _estimate(supersample, rng, n_boot, confidence, correction, "fast_rate_bound", pool_points=pool_points)


def interpolation_bound(
    supersample: Supersample,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
    pool_points: bool = False,
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
    supersample, rng, n_boot, confidence, correction, pool_points
        As in :func:`ld_cmi_bound`.
    """
    return _estimate(
        supersample, rng, n_boot, confidence, correction, "interpolation_bound",
        pool_points=pool_points,
        requires_interpolation=True,
    )
