r"""Conditional-mutual-information bounds for losses in ``[0, 1]``, estimated from a supersample.

Every bound takes the arrays of a supersample experiment (:mod:`bounds.supersample`;
docs/THEORY.md §2.4): ``losses`` (k_z, k_u, n, 2) and ``selectors`` (k_z, k_u, n), validated once
at entry. Notation: ``L~_i = (l(W, Z~_{i,0}), l(W, Z~_{i,1}))`` the loss
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
its interval), and nothing more. The risk bounds behind the risk-type bounds,
``fast_rate_risk`` and ``binary_kl_risk``, are in :mod:`bounds.cmi_risk` (imported here too).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bounds.cmi_risk import _binary_kl_risk, _fast_rate_risk, binary_kl_risk, fast_rate_risk  # noqa: F401 - re-exported
from bounds.discrete_mi import as_confidence, as_correction, batched_counts, mi_from_counts, symbol_codes
from bounds.results import BoundResult, basic_bootstrap_interval
from bounds.supersample import _supersample, bootstrap_supersamples
from theory.supersample import Supersample
from theory.validation import as_generator, as_int

#: Loss differences are rounded to this many decimals before being used as symbols, so that
#: float round-off does not split one value into several.
DELTA_DECIMALS = 12

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


def _checked(
    losses: object, selectors: object, rng: object, correction: object, pool_points: object
) -> tuple[Supersample, np.random.Generator, str]:
    """The arguments every estimate shares, validated once: the arrays, the generator and the correction."""
    ss = _supersample(losses, selectors)
    if not isinstance(pool_points, (bool, np.bool_)):
        raise ValueError(f"pool_points must be True or False, got {pool_points!r}")
    return ss, as_generator(rng), as_correction(correction)


def _estimate(
    losses: object, selectors: object, rng: object, n_boot: object, confidence: object, correction: object,
    form: str, *, pool_points: object = False, requires_interpolation: bool = False,
) -> BoundResult:
    """Validate the arguments, then evaluate the bound ``_FORMS[form]`` (per-sample MI (n,), training
    loss) on all supersamples and on bootstrap resamples of them. With ``pool_points`` the MI is one
    estimate (shape (1,)) from the pairs of every point."""
    symbols, summary, finish = _FORMS[form]
    ss, rng, correction = _checked(losses, selectors, rng, correction, pool_points)
    n_boot = as_int(n_boot, "n_boot", minimum=1)
    level = as_confidence(confidence)
    k_z = ss.k_z
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
    "binary_kl_bound": ("pair", lambda mi: mi.mean(axis=-1), lambda s, r_hat: _binary_kl_risk(r_hat, s) - r_hat),
    "fast_rate_bound": ("pair", lambda mi: mi.mean(axis=-1), lambda s, r_hat: _fast_rate_risk(r_hat, s) - r_hat),
    "interpolation_bound": ("delta", lambda mi: mi.mean(axis=-1), lambda s, r_hat: s / math.log(2.0)),
}


def selector_blind_floor(
    losses: np.ndarray,
    selectors: np.ndarray,
    rng: np.random.Generator,
    *,
    bound: Callable[..., BoundResult],
    draws: int = 200,
    quantile: float = 0.95,
    correction: str = "miller_madow",
    pool_points: bool = False,
) -> float:
    r"""The floor of a CMI bound's estimator: the ``quantile`` of its estimate for selectors that
    carry no information, at the sizes and loss values of ``losses`` (docs/THEORY.md §2.4).

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
    losses, selectors, rng
        As in :func:`ld_cmi_bound`; ``rng`` is the source of the null tables.
    bound : ``ld_cmi_bound``, ``ecmi_bound``, ``binary_kl_bound``, ``fast_rate_bound`` or
        ``interpolation_bound``.
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
    ss, rng, correction = _checked(losses, selectors, rng, correction, pool_points)
    draws = as_int(draws, "draws", minimum=1)
    level = as_confidence(quantile)
    symbols, summary, finish = _FORMS[name]
    codes, m = _symbols(ss, symbols)
    n = codes.shape[-1]
    x = codes.reshape(1, -1) if pool_points else codes.reshape(-1, n).T  # (points, runs)
    seen = batched_counts(x, np.zeros_like(x), m, 2)[..., 0]  # (points, m) runs with each symbol
    ones = rng.binomial(seen, 0.5, size=(draws, *seen.shape))
    mi = mi_from_counts(np.stack([seen - ones, ones], axis=-1), correction)  # (draws, points)
    r_hat = float(ss.train_losses.mean())
    value = finish(float(np.quantile(summary(mi), level, method="higher")), r_hat)  # the bound is monotone
    return float(min(max(value, 0.0), 1.0 - r_hat))


# --- the bounds -----------------------------------------------------------------------------


def ld_cmi_bound(
    losses: np.ndarray,
    selectors: np.ndarray,
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
    losses : ndarray
        (k_z, k_u, n, 2) ``l(W, Z~_{i, j})`` of the run with selector ``(k_z, k_u)``: values in
        ``[0, 1]``, at most ``theory.supersample.MAX_LOSS_LEVELS`` (32) distinct ones, ``k_z >= 2``.
    selectors : ndarray
        (k_z, k_u, n) bits ``U_i in {0, 1}``: the run trained on ``Z~_{i, U_i}``.
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

    Returns
    -------
    BoundResult
        The bound on ``gen`` with its bootstrap interval (module docstring), capped at ``1 - R^``.
    """
    return _estimate(losses, selectors, rng, n_boot, confidence, correction, "ld_cmi_bound", pool_points=pool_points)


def ecmi_bound(
    losses: np.ndarray,
    selectors: np.ndarray,
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
    losses, selectors, rng, n_boot, confidence, correction, pool_points
        As in :func:`ld_cmi_bound`.

    Returns
    -------
    BoundResult, as in :func:`ld_cmi_bound`.
    """
    return _estimate(losses, selectors, rng, n_boot, confidence, correction, "ecmi_bound", pool_points=pool_points)


def binary_kl_bound(
    losses: np.ndarray,
    selectors: np.ndarray,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
    pool_points: bool = False,
) -> BoundResult:
    r"""Binary-kl bound: ``gen <= 2 (kl^{-1}_+(R^, I) - R^)`` with ``I = (1/n) sum_i I(L~_i; U_i)``.

    The gap form of :func:`binary_kl_risk` (assumptions, proof and source there: Hellström & Durisi, NeurIPS
    2022; docs/THEORY.md §2.4), evaluated at the estimated ``R^`` and ``I``. Fast rate: for ``R^ = 0`` it is
    about ``2 I``, not ``sqrt(2 I)``. Units: loss units; MI in nats.

    Parameters
    ----------
    losses, selectors, rng, n_boot, confidence, correction, pool_points
        As in :func:`ld_cmi_bound`.

    Returns
    -------
    BoundResult, as in :func:`ld_cmi_bound`.
    """
    return _estimate(losses, selectors, rng, n_boot, confidence, correction, "binary_kl_bound", pool_points=pool_points)


def fast_rate_bound(
    losses: np.ndarray,
    selectors: np.ndarray,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    correction: str = "miller_madow",
    pool_points: bool = False,
) -> BoundResult:
    r"""Fast-rate bound: ``gen <= min_{C >= 1} ((C - 1) R^ + I / eta(C))``.

    The gap form of :func:`fast_rate_risk` (assumptions, derivation and ``eta(C)`` there; derived,
    docs/THEORY.md §2.4) at the estimated ``R^`` and ``I = (1/n) sum_i I(L~_i; U_i)``. Units: loss units; MI in nats.

    Parameters
    ----------
    losses, selectors, rng, n_boot, confidence, correction, pool_points
        As in :func:`ld_cmi_bound`.

    Returns
    -------
    BoundResult, as in :func:`ld_cmi_bound`.
    """
    return _estimate(losses, selectors, rng, n_boot, confidence, correction, "fast_rate_bound", pool_points=pool_points)


def interpolation_bound(
    losses: np.ndarray,
    selectors: np.ndarray,
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
    losses, selectors, rng, n_boot, confidence, correction, pool_points
        As in :func:`ld_cmi_bound`.

    Returns
    -------
    BoundResult, as in :func:`ld_cmi_bound`; the trivial value with ``vacuous=True`` when a
    training loss is positive.
    """
    return _estimate(
        losses, selectors, rng, n_boot, confidence, correction, "interpolation_bound",
        pool_points=pool_points,
        requires_interpolation=True,
    )
