r"""Did each bound hold? One record per (configuration, bound, variant), in every figure's JSON.

A generalization bound is compared only with the measured gap of the loss it is a bound on
(docs/THEORY.md §2; Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models", ICML 2024,
Section 4.2). Both carry intervals: the bound a bootstrap interval when it is estimated (equal
ends when it is a closed form), the gap a Monte Carlo interval. A bound **held** when

.. math:: \text{bound}_{high} \ge \text{gap}_{low},

i.e. it is not below its measured gap beyond both intervals; otherwise the check is a violation,
which the caption and ``lora-asym figures`` report (a finding, not an error).

A bound that held says something only when it is **informative**: not **vacuous** (at or above
the range of its loss, which bounds any gap of that loss trivially) and, when it is estimated,
**resolved** (:func:`is_resolved`: the estimate is at least twice its interval's
half-width and above its estimator's floor). A closed-form bound has no estimation interval and
``resolved = None``. Captions and the command line count the informative checks and name the
vacuous and unresolved ones (docs/THEORY.md §2.7).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Iterable, Mapping

import numpy as np

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


def is_resolved(value: float, low: float, high: float, floor: float = 0.0) -> bool:
    r"""Whether an estimated bound is resolved: ``value >= 2 · (high − low)/2`` and ``value > floor``.

    The estimate must stand out from its own interval (``[low, high]``, of half-width
    ``(high − low)/2``) and from ``floor``, what its estimator reads when the true quantity is 0
    (0 by default; for a CMI bound, ``bounds.cmi.selector_blind_floor``; docs/THEORY.md §2.4, §2.7).

    Parameters
    ----------
    value, low, high : float, the estimate and its interval; floor : float.

    Returns
    -------
    bool
    """
    return bool(value > floor and value >= high - low)


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
    resolved: bool | None = None,
) -> dict[str, Any]:
    r"""The record of one bound against the measured gap of the same loss.

    ``held = bound_high >= gap_low``: the bound is not below the gap beyond both intervals;
    ``informative = held and vacuous is False and resolved is not False``.

    Parameters
    ----------
    where : the configuration, e.g. ``{"variant": "lora", "n": 64}`` (JSON-serialisable values).
    bound : name of the bound, e.g. ``"Lemma 4.5"``.
    bound_value, bound_low, bound_high : the bound and its interval, in the loss's units; the
        ends default to ``bound_value`` (a closed form).
    loss : the loss both the bound and the gap are about, with its units.
    gap, gap_low, gap_high : the measured expected gap and its interval, in the same units.
    gap_interval : which interval ``gap_low``/``gap_high`` are (e.g. ``T_INTERVAL``).
    vacuous : whether the bound reaches the trivial bound of the loss (its range); ``None`` if unknown.
    resolved : for an estimated bound, whether it is resolved (:func:`is_resolved`, which is the
        default when ``bound_low < bound_high``); ``None`` for a closed form.

    Returns
    -------
    dict with keys ``where, bound, bound_value, bound_low, bound_high, loss, gap, gap_low,
    gap_high, gap_interval, held, vacuous, resolved, informative``.
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
    if resolved is None and low < high:
        resolved = is_resolved(value, low, high)
    held, vacuous = high >= g_low, None if vacuous is None else bool(vacuous)
    resolved = None if resolved is None else bool(resolved)
    return {
        "where": {str(k): v for k, v in where.items()},
        "bound": bound, "bound_value": value, "bound_low": low, "bound_high": high,
        "loss": loss, "gap": g, "gap_low": g_low, "gap_high": g_high, "gap_interval": gap_interval,
        "held": held, "vacuous": vacuous, "resolved": resolved,
        "informative": held and vacuous is False and resolved is not False,
    }


def resolved_flags(values, lows, highs, floors=None) -> np.ndarray:  # (k,) each -> (k,) of 0.0 / 1.0
    """:func:`is_resolved` entry by entry (``floors`` default 0); 0 where a value is not finite (docs/THEORY.md §2.7).

    Parameters
    ----------
    values, lows, highs : sequences of float, (k,) estimates and their intervals.
    floors : sequence of float, optional, (k,) their estimators' floors.

    Returns
    -------
    ndarray, (k,) of 1.0 (resolved) and 0.0.
    """
    floors = np.zeros(len(values)) if floors is None else floors
    return np.array([float(np.isfinite(v) and is_resolved(v, lo, hi, f))
                     for v, lo, hi, f in zip(values, lows, highs, floors)])


def array_checks(
    data: Mapping[str, Any], rows: Iterable[str], pairs: Iterable[tuple[str, str]], names: Mapping[str, str],
    losses: Mapping[str, str], intervals: Mapping[str, str], row_key: str = "variant",
) -> list[dict[str, Any]]:
    """One record per (row, ``n``, (bound, gap) in ``pairs``) from a figure's arrays.

    ``data`` maps ``"n"`` to the sizes and each of ``rows`` (variants, say) to arrays over them:
    ``key``, ``key_low``, ``key_high`` for every bound and gap, ``bound_vacuous`` and, for an
    estimated bound, ``bound_resolved`` (0/1). ``names``, ``losses`` and ``intervals`` give each
    bound's name, each gap's loss and its interval. A bound that is NaN (not estimated) is no check.
    Each record is :func:`bound_check`'s (docs/THEORY.md §2.7).

    Parameters
    ----------
    data, rows, pairs, names, losses, intervals
        As above; ``pairs`` holds (bound key, gap key) pairs.
    row_key : str, the name of a row in each record's ``where``.

    Returns
    -------
    list of dict
    """
    checks = []
    for r in rows:
        d = data[r]
        for bound, gap in pairs:
            for i, n in enumerate(data["n"]):
                if not np.isfinite(d[bound][i]):
                    continue
                checks.append(bound_check(
                    {row_key: r, "n": int(n)}, names[bound], d[bound][i], bound_low=d[f"{bound}_low"][i],
                    bound_high=d[f"{bound}_high"][i], loss=losses[gap], gap=d[gap][i], gap_low=d[f"{gap}_low"][i],
                    gap_high=d[f"{gap}_high"][i], gap_interval=intervals[gap], vacuous=d[f"{bound}_vacuous"][i] > 0,
                    resolved=bool(d[f"{bound}_resolved"][i]) if f"{bound}_resolved" in d else None,
                ))
    return checks


def violations(checks: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The checks whose bound fell below its measured gap beyond both intervals (``held`` false; docs/THEORY.md §2.7).

    Parameters
    ----------
    checks : iterable of :func:`bound_check` records.

    Returns
    -------
    list of dict
    """
    return [c for c in checks if not c["held"]]


def _number(x: float) -> str:
    """Three decimals, or three significant digits for magnitudes below 0.01."""
    return f"{x:.3f}" if x == 0 or abs(x) >= 0.01 else f"{x:.3g}"


def where_text(where: Mapping[str, Any]) -> str:
    """A record's configuration in words, ``"variant = lora, n = 64"`` (as captions name checks, docs/THEORY.md §2.7).

    Parameters
    ----------
    where : mapping, a record's ``where``.

    Returns
    -------
    str
    """
    return ", ".join(f"{k} = {v}" for k, v in where.items())


def violation_line(figure: str, check: Mapping[str, Any]) -> str:
    """``VIOLATION fig: bound below measured loss gap at where: bound ≤ x < gap ≥ y`` (docs/THEORY.md §2.7).

    Parameters
    ----------
    figure : str, the figure's name; check : mapping, a violated :func:`bound_check` record.

    Returns
    -------
    str
    """
    return (
        f"VIOLATION {figure}: {check['bound']} below measured {check['loss']} gap at {where_text(check['where'])}: "
        f"bound ≤ {_number(check['bound_high'])} < gap ≥ {_number(check['gap_low'])}"
    )


def informative(checks: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The checks that held, are not vacuous and, where estimated, are resolved (docs/THEORY.md §2.7).

    Parameters
    ----------
    checks : iterable of :func:`bound_check` records.

    Returns
    -------
    list of dict
    """
    return [c for c in checks if c["held"] and c["vacuous"] is False and c.get("resolved") is not False]


def report_lines(figure: str, checks: list[Mapping[str, Any]]) -> list[str]:
    """What ``lora-asym figures`` prints after a figure: one line per violation, else
    ``bounds held: k of k checks (j informative)``; nothing when the figure has no checks (docs/THEORY.md §2.7).

    Parameters
    ----------
    figure : str, the figure's name; checks : list of :func:`bound_check` records.

    Returns
    -------
    list of str
    """
    bad = violations(checks)
    if bad:
        return [violation_line(figure, c) for c in bad]
    if not checks:
        return []
    return [f"bounds held: {len(checks)} of {len(checks)} checks ({len(informative(checks))} informative)"]


def where_groups(listed: list[Mapping[str, Any]], checks: list[Mapping[str, Any]]) -> str:
    """The ``listed`` checks by bound, each bound's configurations grouped on their last key:
    ``"Lemma 4.5 (variant = lora, n = 16, 64; variant = full, n = 16)"``. Keys with one value
    across all ``checks`` of the figure are left out (the caption states them; docs/THEORY.md §2.7).

    Parameters
    ----------
    listed : the records to name; checks : all records of the figure.

    Returns
    -------
    str
    """
    varying = [k for k in (checks[0]["where"] if checks else {}) if len({repr(c["where"].get(k)) for c in checks}) > 1]
    groups: dict[str, dict[tuple[str, ...], list[str]]] = {}
    for c in listed:
        shown = [(k, c["where"][k]) for k in varying if k in c["where"]] or list(c["where"].items())
        fixed = tuple(f"{k} = {v}" for k, v in shown[:-1])
        last_key, last_value = shown[-1] if shown else ("", "")
        groups.setdefault(c["bound"], {}).setdefault((*fixed, last_key), []).append(str(last_value))
    texts = []
    for bound, places in groups.items():
        text = "; ".join(
            ", ".join([*key[:-1], f"{key[-1]} = {', '.join(values)}"]) for key, values in places.items() if key[-1]
        )
        texts.append(f"{bound} ({text})" if text else bound)
    return "; ".join(texts)


def caption_sentence(checks: list[Mapping[str, Any]]) -> str:
    """A caption's sentence on the checks: every bound held (how many of them informative, which
    were vacuous, which estimates unresolved), or which fell below their gap (docs/THEORY.md §2.7).

    Parameters
    ----------
    checks : list of :func:`bound_check` records.

    Returns
    -------
    str
    """
    if not checks:
        return "No bound is compared with a measured gap."
    bad = violations(checks)
    good = informative(checks)
    held = len(checks) - len(bad)
    lists = {
        "vacuous (at or above the loss's range)": [c for c in checks if c["held"] and c["vacuous"] is True],
        "vacuity not known": [c for c in checks if c["held"] and c["vacuous"] is None],
        "unresolved estimates (interval wider than the estimate, or not above the estimator's floor)": [
            c for c in checks if c["held"] and c["vacuous"] is False and c.get("resolved") is False
        ],
    }
    notes = "".join(f"; {name}: {where_groups(listed, checks)}" for name, listed in lists.items() if listed)
    count = f"all {held} informative" if len(good) == held else f"{len(good)} of them informative"
    if not bad:
        return (f"Every bound held against the measured gap of its loss ({held} of {held} checks: "
                f"bound ≥ gap beyond the intervals), {count}{notes}.")
    listed = "; ".join(
        f"{c['bound']} at {where_text(c['where'])} ({_number(c['bound_high'])} < {_number(c['gap_low'])})" for c in bad
    )
    return (f"VIOLATION, bound below its measured gap beyond both intervals in {len(bad)} of {len(checks)} checks: "
            f"{listed}. Of the {held} that held, {len(good)} informative{notes}.")


def warned(category: type[Warning], call):
    """``(call(), whether it warned with category)``: the warning becomes a flag for a figure's JSON and
    caption instead of a line on stderr; every other warning is passed on unchanged. Figures 4 and 5
    flag a Gaussian-channel estimate that may be low this way (``bounds.EstimateMayBeLowWarning``,
    docs/THEORY.md §2.5, §2.7).

    Parameters
    ----------
    category : Warning subclass; call : callable of no argument.

    Returns
    -------
    tuple, ``(call's result, bool)``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        result = call()
    flagged = False
    for w in caught:
        if issubclass(w.category, category):
            flagged = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, flagged
