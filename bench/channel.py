r"""Time and peak memory of the Gaussian-channel estimator ``bounds.gaussian_channel_mi``.

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

#: Targets of the issue (printed beside the measurements; never asserted in tests).
TARGETS = {"seconds": 2.0, "extra_mb": 300.0}


@dataclass(frozen=True)
class BoundsBenchConfig:
    """The ``(trials, p)`` cases, the bootstrap size of the fallback, repeats and seed."""

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
        """The reference cases."""
        return cls()

    @classmethod
    def quick(cls) -> BoundsBenchConfig:
        """Tiny sizes for smoke tests (well under a second): one corrected case, one fallback case."""
        return cls(cases=((40, 4), (6, 10)), n_boot=20, repeats=1)


def time_case(trials: int, p: int, n_boot: int, repeats: int, seed: int) -> dict[str, Any]:
    """Seconds (best of ``repeats``), tracemalloc peak (MiB) and the estimate of one case."""
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
    """One row per case of ``config`` (``time_case``)."""
    return [time_case(t, p, config.n_boot, config.repeats, config.seed) for t, p in config.cases]


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The printed table of ``time_bounds``."""
    lines = [f"  {'trials':>6} {'p':>5} {'path':<9} {'seconds':>8} {'peak MiB':>9}  "
             f"{'value':>9} {'interval':>21} {'truth':>8}  covers"]
    for r in rows:
        lines.append(f"  {r['trials']:>6} {r['p']:>5} {r['path']:<9} {r['seconds']:>8.3f} {r['peak_mib']:>9.1f}  "
                     f"{r['value']:>9.3f} [{r['low']:>9.3f}, {r['high']:>9.3f}] {r['truth']:>8.3f}  "
                     f"{'yes' if r['covers'] else 'NO'}")
    return "\n".join(lines)


def summary_part(rows: list[dict[str, Any]]) -> str:
    """The Gaussian-channel part of the one-line summary, with the targets."""
    corrected = [r for r in rows if r["path"] == "corrected"]
    met = all(r["seconds"] < TARGETS["seconds"] for r in corrected) and (
        not corrected or corrected[0]["peak_mib"] * 2**20 / 1e6 < TARGETS["extra_mb"])
    cases = ", ".join(f"T={r['trials']} p={r['p']} {r['seconds']:.3g} s {r['peak_mib']:.1f} MiB" for r in rows)
    return (f"Gaussian channel {cases} (target < {TARGETS['seconds']:g} s, first case < "
            f"{TARGETS['extra_mb']:g} MB: {'met' if met else 'NOT met'})")
