"""What argument validation costs: the time a public call spends in ``theory.validation``.

Two calls are measured, the ones where validation showed up in profiles: ``measure_gap`` with
200 trials on a small ``LinearTask`` and ``theory.loss_b_only`` at ``d = 8``. For each the
report gives

- the wall time per call (the median of repeated runs, no profiler attached);
- the number of calls into ``theory/validation.py`` that one public call makes;
- the share of the profiled time spent validating (``_validation_share``).

The profiler slows every Python call by a similar factor, so the share is a ratio of like with
like; the wall time is the number a user feels. Compare two checkouts by running this module
from each in the same session: ``python -m bench.validation`` prints one JSON object.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

VALIDATION_FILE = "theory/validation.py"
PACKAGES = ("theory", "synthetic", "bounds")


def _cases() -> dict[str, tuple[Callable[[], Any], int]]:
    """The measured calls, each with how many times to repeat it for the wall time."""
    import theory
    from synthetic import LinearTask, measure_gap

    rng = np.random.default_rng(0)
    d = 8
    delta = rng.standard_normal((d, d))
    a = rng.standard_normal((2, d))
    sigma = np.diag(1.0 / np.arange(1, d + 1))
    task = LinearTask(d_in=8, d_out=8, delta_rank=2)

    def gap() -> Any:
        return measure_gap(task, "b_only", 2, 32, 200, loss="population", seed=0)

    def b_only() -> float:
        return theory.loss_b_only(delta, a, sigma, 0.1)

    return {"measure_gap_200_trials": (gap, 20), "loss_b_only_d8": (b_only, 2000)}


def _validation_share(call: Callable[[], Any]) -> tuple[int, float]:
    """(calls into the validation module, share of the time spent in validation) for one call.

    Time between two profiler events goes to validation when the innermost frame of the
    toolkit's own code is in ``theory/validation.py``; NumPy and standard-library frames count
    for the toolkit frame that called them. A decorator wrapper that validates and then calls
    the function counts as validation only until that call.
    """
    roots = tuple(str(Path(__file__).resolve().parents[1] / pkg) for pkg in PACKAGES)
    state = {"last": 0.0, "inside": 0.0, "total": 0.0, "calls": 0}

    def owner(frame: Any) -> bool:
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(roots):
                return name.endswith(VALIDATION_FILE)
            frame = frame.f_back
        return False

    def hook(frame: Any, event: str, _arg: Any) -> None:
        now = time.perf_counter()
        elapsed = now - state["last"]
        state["total"] += elapsed
        if owner(frame):
            state["inside"] += elapsed
        if event == "call" and frame.f_code.co_filename.endswith(VALIDATION_FILE):
            state["calls"] += 1
        state["last"] = time.perf_counter()

    state["last"] = time.perf_counter()
    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
    return int(state["calls"]), state["inside"] / state["total"]


def measure() -> dict[str, dict[str, float]]:
    """Wall time, validator calls and validation share of each case (see the module docstring).

    For each case of ``_cases``: one untimed warm-up call; then five runs of ``repeats`` calls
    (20 for ``measure_gap`` with 200 trials, 2000 for ``loss_b_only`` at ``d = 8``), timed with
    ``time.perf_counter``, whose median per call is ``seconds_per_call``; then one call under
    ``sys.setprofile`` (``_validation_share``) for ``validator_calls`` and ``validation_share``.
    It measures what checking arguments once at the public boundary costs, the design that the
    README describes where it names ``python -m bench.validation`` (section "What the paper
    claims, and what the toolkit checks").

    Returns
    -------
    dict {case name: {"seconds_per_call": float, "validator_calls": int, "validation_share": float}}
        The share is a fraction in ``[0, 1]`` of the profiled time.
    """
    report = {}
    for name, (call, repeats) in _cases().items():
        call()  # warm caches (compiled kernels, imports) before timing
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeats):
                call()
            times.append((time.perf_counter() - start) / repeats)
        calls, share = _validation_share(call)
        report[name] = {
            "seconds_per_call": statistics.median(times),
            "validator_calls": calls,
            "validation_share": share,
        }
    return report


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
