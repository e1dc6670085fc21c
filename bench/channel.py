r"""Time and peak memory of the Gaussian-channel estimator ``bounds.gaussian_channel_mi``.

The estimator is that of docs/THEORY.md §2.5 (``½ log det(I + Cov(W)/τ²)`` in nats, bias-corrected
with a jackknife interval when ``T >= p + 3``); the README (section "Performance", "The
Gaussian-channel estimate") reports these timings beside those of an earlier implementation.

Reference cases (``BoundsBenchConfig.full()``): ``T = 4000`` trials of ``p = 8`` parameters and
``T = 1000`` of ``p = 64`` (targets: under 2 s each, the first within 300 MB of extra memory),
both on the bias-corrected path (``T >= p + 3``), and ``T = 200`` of ``p = 1000``, which takes the
rank-deficient fallback (plug-in and ``n_boot`` bootstrap replicates through the ``T x T`` Gram
matrix) and has no target. Rows are Gaussian with covariance ``I`` and ``tau = 1``, so the true
value ``p/2 log 2`` is known and each row says whether the interval covers it.

Time: the best of ``repeats`` calls (after one warm-up call). Memory: the peak of
``tracemalloc`` (which sees NumPy's array allocations) over one further call, above what was
allocated before it; the input array is allocated before and is not counted.
"""

from __future__ import annotations

import math
import time
import tracemalloc
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from bounds.gaussian_channel import EstimateMayBeLowWarning, gaussian_channel_mi
from theory.validation import as_int

#: Targets for the corrected path: every case in under 2 s, the first case within 300 MB of
#: extra memory (printed beside the measurements; never asserted in tests).
TARGETS = {"seconds": 2.0, "extra_mb": 300.0}


@dataclass(frozen=True)
class BoundsBenchConfig:
    """The ``(trials, p)`` cases, the bootstrap size of the fallback, repeats and seed.

    What :func:`time_bounds` measures (module docstring; README, section "Performance"): each
    case ``(T, p)`` is one call of ``bounds.gaussian_channel_mi`` on ``T`` standard normal rows
    of ``p`` parameters with ``τ = 1``, timed ``repeats`` times (the best counts) and once under
    ``tracemalloc``. Fields are checked on construction (``ValueError``).

    Attributes
    ----------
    cases : tuple of (trials >= 2, p >= 1)
    n_boot : int >= 1, bootstrap replicates of the fallback path (``T < p + 3``).
    repeats : int >= 1, timed calls per case.
    seed : int, seeds the rows and the estimator's generator.
    """

    cases: tuple[tuple[int, int], ...] = ((4000, 8), (1000, 64), (200, 1000))
    n_boot: int = 200
    repeats: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        as_int(self.repeats, "repeats", minimum=1)
        as_int(self.n_boot, "n_boot", minimum=1)
        for trials, p in self.cases:
            as_int(trials, "trials", minimum=2)
            as_int(p, "p", minimum=1)

    @classmethod
    def full(cls) -> BoundsBenchConfig:
        """The reference cases of the README (section "Performance"): ``(T, p)`` = (4000, 8),
        (1000, 64) and (200, 1000), 200 bootstrap replicates, best of 3."""
        return cls()

    @classmethod
    def quick(cls) -> BoundsBenchConfig:
        """Tiny sizes for smoke tests (well under a second): one corrected case, one fallback case.

        ``(T, p)`` = (40, 4) and (6, 10), 20 bootstrap replicates, one timed call; no number in
        the README (section "Performance") comes from them."""
        return cls(cases=((40, 4), (6, 10)), n_boot=20, repeats=1)


def time_case(trials: int, p: int, n_boot: int, repeats: int, seed: int) -> dict[str, Any]:
    r"""Seconds (best of ``repeats``), tracemalloc peak (MiB) and the estimate of one case.

    Draws ``samples`` (trials, p) standard normal, so ``Cov(W) = I`` and with ``τ = 1`` the
    estimated quantity of docs/THEORY.md §2.5 is known exactly,

    .. math:: I = \tfrac12 \log\det(I_p + I_p / 1^2) = \tfrac{p}{2} \log 2 \ \text{nats}.

    One untimed warm-up call, then ``repeats`` calls timed with ``time.perf_counter`` (the best
    is reported), then one call under ``tracemalloc`` whose peak above the memory traced at its
    start is the extra memory (the input array, allocated before tracing starts, is not
    counted). ``EstimateMayBeLowWarning`` is silenced. Every call uses a fresh
    ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    trials, p : int, the shape ``(T, p)`` of the parameter samples.
    n_boot : int, bootstrap replicates of the fallback path.
    repeats : int, timed calls.
    seed : int

    Returns
    -------
    dict
        ``trials``, ``p``, ``path`` ("corrected" when ``T >= p + 3``, else "fallback"),
        ``n_boot``, ``seconds`` (best), ``seconds_runs`` (every timed call), ``peak_mib``,
        ``value``, ``low``, ``high`` (the estimate and its interval, nats), ``truth`` and
        ``covers`` (whether the interval contains ``truth``).
    """
    rng = np.random.default_rng(seed)
    samples = rng.standard_normal((trials, p))
    truth = 0.5 * p * math.log(2.0)

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimateMayBeLowWarning)
            return gaussian_channel_mi(samples, 1.0, np.random.default_rng(seed), n_boot=n_boot)

    call()  # warm-up: imports, BLAS thread pool
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        est = call()
        runs.append(time.perf_counter() - start)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return {"trials": trials, "p": p, "path": "corrected" if trials >= p + 3 else "fallback",
            "n_boot": n_boot, "seconds": min(runs), "seconds_runs": runs, "peak_mib": peak / 2**20,
            "value": est.value, "low": est.low, "high": est.high, "truth": truth, "covers": est.covers(truth)}


def time_bounds(config: BoundsBenchConfig) -> list[dict[str, Any]]:
    """One row per case of ``config`` (``time_case``).

    The measurement behind ``python -m bench --only bounds`` and the Gaussian-channel table of
    the README (section "Performance"): for each ``(T, p)`` of ``config.cases``,
    :func:`time_case` with the config's ``n_boot``, ``repeats`` and ``seed``.

    Returns
    -------
    list of dict, one per case, in the order of ``config.cases`` (keys of :func:`time_case`).
    """
    return [time_case(t, p, config.n_boot, config.repeats, config.seed) for t, p in config.cases]


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The printed table of ``time_bounds``.

    One line per row: ``T``, ``p``, path, best seconds, tracemalloc peak (MiB), the estimate
    with its interval and the true value ``p/2 log 2`` (nats), and whether the interval covers
    it ("NO" when not); what ``python -m bench`` prints for the README's Gaussian-channel table
    (section "Performance").
    """
    lines = [f"  {'trials':>6} {'p':>5} {'path':<9} {'seconds':>8} {'peak MiB':>9}  "
             f"{'value':>9} {'interval':>21} {'truth':>8}  covers"]
    for r in rows:
        lines.append(f"  {r['trials']:>6} {r['p']:>5} {r['path']:<9} {r['seconds']:>8.3f} {r['peak_mib']:>9.1f}  "
                     f"{r['value']:>9.3f} [{r['low']:>9.3f}, {r['high']:>9.3f}] {r['truth']:>8.3f}  "
                     f"{'yes' if r['covers'] else 'NO'}")
    return "\n".join(lines)


def summary_part(rows: list[dict[str, Any]]) -> str:
    """The Gaussian-channel part of the one-line summary, with the targets.

    Lists every case's ``T``, ``p``, seconds and MiB, and says "met" when every case on the
    corrected path took under ``TARGETS["seconds"]`` and the first corrected case's peak stayed
    under ``TARGETS["extra_mb"]`` (MB of 10^6 bytes), otherwise "NOT met"; with no case on the
    corrected path it says "met". Part of the summary line of ``python -m bench`` (README,
    section "Performance").
    """
    corrected = [r for r in rows if r["path"] == "corrected"]
    met = all(r["seconds"] < TARGETS["seconds"] for r in corrected) and (
        not corrected or corrected[0]["peak_mib"] * 2**20 / 1e6 < TARGETS["extra_mb"])
    cases = ", ".join(f"T={r['trials']} p={r['p']} {r['seconds']:.3g} s {r['peak_mib']:.1f} MiB" for r in rows)
    return (f"Gaussian channel {cases} (target < {TARGETS['seconds']:g} s, first case < "
            f"{TARGETS['extra_mb']:g} MB: {'met' if met else 'NOT met'})")
