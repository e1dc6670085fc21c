r"""Did each bound hold? One record per (configuration, bound, variant), in every figure's JSON.

A generalization bound is compared only with the measured gap of the loss it is a bound on
(docs/THEORY.md §2; Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models", ICML 2024,
Section 4.2). Both carry intervals: the bound a bootstrap interval when it is estimated (equal
ends when it is a closed form), the gap a Monte Carlo interval. A bound **held** when

.. math:: \text{bound}_{high} \ge \text{gap}_{low},

i.e. it is not below its measured gap beyond both intervals; otherwise the check is a violation,
which the caption and ``lora-asym figures`` report (a finding, not an error).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

#: The ``bound_checks_note`` of a figure that compares no bound with a measured gap.
NO_BOUND_NOTE = "this figure compares no bound with a measured gap"

#: Names of the gap intervals the figures use.
T_INTERVAL = "mean, 95 % Student-t interval over training sets"
TWO_SE = "mean ± 2 s.e. over training sets"
BOOTSTRAP = "95 % basic bootstrap interval over supersamples"


def _finite(value: Any, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def bound_check(
    where: Mapping[str, Any],
    bound: str,
    bound_value: float,
    *,
    loss: str,
    gap: float,
    gap_low: float,
    gap_high: float,
    gap_interval: str,
    bound_low: float | None = None,
    bound_high: float | None = None,
    vacuous: bool | None = None,
) -> dict[str, Any]:
    r"""The record of one bound against the measured gap of the same loss.

    ``held = bound_high >= gap_low``: the bound is not below the gap beyond both intervals.

    Parameters
    ----------
    where : the configuration, e.g. ``{"variant": "lora", "n": 64}`` (JSON-serialisable values).
    bound : name of the bound, e.g. ``"Lemma 4.5"``.
    bound_value, bound_low, bound_high : the bound and its interval, in the loss's units; the
        ends default to ``bound_value`` (a closed form).
    loss : the loss both the bound and the gap are about, with its units.
    gap, gap_low, gap_high : the measured expected gap and its interval, in the same units.
    gap_interval : which interval ``gap_low``/``gap_high`` are (e.g. ``T_INTERVAL``).
    vacuous : whether the bound reaches the trivial bound of the loss; ``None`` if unknown.

    Returns
    -------
    dict with keys ``where, bound, bound_value, bound_low, bound_high, loss, gap, gap_low,
    gap_high, gap_interval, held, vacuous``.
    """
    value = _finite(bound_value, "bound_value")
    low = value if bound_low is None else _finite(bound_low, "bound_low")
    high = value if bound_high is None else _finite(bound_high, "bound_high")
    if low > high:
        raise ValueError(f"bound_low must not exceed bound_high, got {low} > {high}")
    g, g_low, g_high = _finite(gap, "gap"), _finite(gap_low, "gap_low"), _finite(gap_high, "gap_high")
    if g_low > g_high:
        raise ValueError(f"gap_low must not exceed gap_high, got {g_low} > {g_high}")
    if not bound or not loss or not gap_interval:
        raise ValueError(f"bound, loss and gap_interval must be non-empty, got {bound!r}, {loss!r}, {gap_interval!r}")
    return {
        "where": {str(k): v for k, v in where.items()},
        "bound": bound, "bound_value": value, "bound_low": low, "bound_high": high,
        "loss": loss, "gap": g, "gap_low": g_low, "gap_high": g_high, "gap_interval": gap_interval,
        "held": high >= g_low, "vacuous": None if vacuous is None else bool(vacuous),
    }


def violations(checks: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The checks whose bound fell below its measured gap beyond both intervals (``held`` false)."""
    return [c for c in checks if not c["held"]]


def _number(x: float) -> str:
    """Three decimals, or three significant digits for magnitudes below 0.01."""
    return f"{x:.3f}" if x == 0 or abs(x) >= 0.01 else f"{x:.3g}"


def where_text(where: Mapping[str, Any]) -> str:
    """``"variant = lora, n = 64"``."""
    return ", ".join(f"{k} = {v}" for k, v in where.items())


def violation_line(figure: str, check: Mapping[str, Any]) -> str:
    """``VIOLATION fig: bound below measured loss gap at where: bound ≤ x < gap ≥ y``."""
    return (
        f"VIOLATION {figure}: {check['bound']} below measured {check['loss']} gap at {where_text(check['where'])}: "
        f"bound ≤ {_number(check['bound_high'])} < gap ≥ {_number(check['gap_low'])}"
    )


def report_lines(figure: str, checks: list[Mapping[str, Any]]) -> list[str]:
    """What ``lora-asym figures`` prints after a figure: one line per violation, else
    ``bounds held: k of k checks``; nothing when the figure has no checks."""
    bad = violations(checks)
    if bad:
        return [violation_line(figure, c) for c in bad]
    return [f"bounds held: {len(checks)} of {len(checks)} checks"] if checks else []


def caption_sentence(checks: list[Mapping[str, Any]]) -> str:
    """A caption's sentence on the checks: every bound held, or which fell below their gap."""
    if not checks:
        return "No bound is compared with a measured gap."
    bad = violations(checks)
    if not bad:
        return (f"Every bound held against the measured gap of its loss ({len(checks)} of {len(checks)} checks: "
                "bound ≥ gap beyond the intervals).")
    listed = "; ".join(
        f"{c['bound']} at {where_text(c['where'])} ({_number(c['bound_high'])} < {_number(c['gap_low'])})" for c in bad
    )
    return (f"VIOLATION, bound below its measured gap beyond both intervals in {len(bad)} of {len(checks)} checks: "
            f"{listed}.")
