r"""How the batched MLP engine scales: time and peak memory vs trials, n and width.

Each point runs ``synthetic.mlp.mlp_trial_losses`` (variant ``lora``) in a fresh Python process,
so that its peak resident memory (``ru_maxrss``) is its own; the time excludes the process start
and one 2-trial warm-up. Around the reference MLP configuration (``bench.compare``) one knob
varies at a time: trials (64 ... 4096), n (64 ... 4096) or the hidden width (32 ... 512). The
fitted exponent ``k`` of ``time ~ x^k`` is the least-squares slope in log-log coordinates; the
local exponents between neighbouring points show where the scaling departs from linear. The
README (section "Performance") reports the table of ``python -m bench --scaling``.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np

from bench.compare import MLPBenchConfig

#: The knobs and their values (the reference value is part of each sweep).
GRID = {
    "trials": (64, 256, 1024, 4096),
    "n": (64, 256, 1024, 4096),
    "width": (32, 64, 128, 256, 512),
}
QUICK_GRID = {"trials": (4, 8, 16), "n": (16, 32, 64), "width": (8, 16, 32)}


def _point_config(base: MLPBenchConfig, knob: str, value: int) -> tuple[MLPBenchConfig, int]:
    """(config, trials) of one point: ``base`` with one knob changed."""
    if knob == "trials":
        return base, value
    if knob == "n":
        return replace(base, n=value), base.trials
    widths = base.task.widths
    task = replace(base.task, widths=(widths[0], value, *widths[2:]))
    return replace(base, task=task), base.trials


def measure_point(quick: bool, knob: str, value: int, threads: int) -> dict[str, float]:
    """Time and peak memory of one point, measured in this process (call it in a fresh one).

    The point is the reference MLP configuration of ``bench.compare`` (``MLPBenchConfig.full()``,
    or ``quick()``) with one knob set to ``value``: the number of trials, ``n``, or the hidden
    width ``widths[1]``. Under ``synthetic.sweep.limit_threads(threads)``: one untimed 2-trial
    warm-up of ``synthetic.mlp.mlp_trial_losses`` (variant ``lora``), then one call on all trials
    timed with ``time.perf_counter``. Memory is ``ru_maxrss`` (the process's peak resident set,
    read as KiB, as Linux reports it) after the warm-up and after the timed call. The README
    (section "Performance") reports these points in its scaling table.

    Parameters
    ----------
    quick : bool, start from the quick configuration.
    knob : {"trials", "n", "width"}
    value : int, the knob's value.
    threads : int, torch and BLAS threads.

    Returns
    -------
    dict
        ``knob``, ``value``, ``trials``, ``n``, ``width``, ``seconds``, ``peak_rss_mib`` (peak
        RSS at the end), ``rss_before_mib`` (peak RSS after the warm-up) and ``torch_threads``.
    """
    import torch

    from synthetic.mlp.engine import mlp_trial_losses
    from synthetic.sweep import limit_threads

    base = MLPBenchConfig.quick() if quick else MLPBenchConfig.full()
    config, trials = _point_config(base, knob, value)
    with limit_threads(threads):
        mlp_trial_losses(config.task, "lora", config.rank, config.n, 2, loss=config.loss, seed=config.seed)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        start = time.perf_counter()
        mlp_trial_losses(config.task, "lora", config.rank, config.n, trials, loss=config.loss, seed=config.seed)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {"knob": knob, "value": value, "trials": trials, "n": config.n, "width": config.task.widths[1],
            "seconds": seconds, "peak_rss_mib": peak, "rss_before_mib": before,
            "torch_threads": torch.get_num_threads()}


def _run_child(quick: bool, knob: str, value: int, threads: int) -> dict[str, float]:
    """:func:`measure_point` in a fresh ``python -m bench.scaling`` process; its JSON line."""
    spec = json.dumps({"quick": quick, "knob": knob, "value": value, "threads": threads})
    proc = subprocess.run([sys.executable, "-m", "bench.scaling", spec], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"scaling point {knob}={value} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fit_exponent(x: object, t: object) -> float:
    r"""Least-squares slope of ``log t`` against ``log x``.

    The exponent ``k`` of a power law ``t ≈ c x^k``: ``numpy.polyfit(log x, log t, 1)[0]``,

    .. math:: k = \frac{\sum_i (\ell_i - \bar\ell)(\tau_i - \bar\tau)}{\sum_i (\ell_i - \bar\ell)^2},
              \qquad \ell_i = \log x_i,\ \tau_i = \log t_i,

    the "fitted exponents" of the README's scaling table (section "Performance").

    Parameters
    ----------
    x, t : array_like (m,), positive, ``m >= 2`` with at least two distinct ``x``.

    Returns
    -------
    float
    """
    lx, lt = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(t, dtype=float))
    return float(np.polyfit(lx, lt, 1)[0])


def run_scaling(*, quick: bool = False, threads: int = 2, progress=None) -> dict[str, dict]:
    """Every point of ``GRID`` (``QUICK_GRID`` with ``quick``), each in its own process.

    Each point is :func:`measure_point` in a fresh Python process, so that its peak memory is its
    own; ``progress``, if given, is called with each point's dict as it arrives. Per knob, the
    time exponent is :func:`fit_exponent` of seconds against the knob's values, the local
    exponents are ``log(t_{i+1}/t_i) / log(x_{i+1}/x_i)`` between neighbouring points, and the
    memory exponent fits the increase of the peak RSS over the peak RSS after imports and the
    warm-up (floored at 1e-3 MiB). The README (section "Performance") reports this table and its
    exponents.

    Returns
    -------
    dict
        ``{knob: {"points": [...], "exponent": k, "local": [k_12, k_23, ...], "memory_exponent": ...}}``.
    """
    out: dict[str, dict] = {}
    for knob, values in (QUICK_GRID if quick else GRID).items():
        points = []
        for value in values:
            points.append(_run_child(quick, knob, value, threads))
            if progress is not None:
                progress(points[-1])
        x = [p["value"] for p in points]
        t = [p["seconds"] for p in points]
        extra = [max(p["peak_rss_mib"] - p["rss_before_mib"], 1e-3) for p in points]
        local = [math.log(t[i + 1] / t[i]) / math.log(x[i + 1] / x[i]) for i in range(len(x) - 1)]
        out[knob] = {"points": points, "exponent": fit_exponent(x, t), "local": local,
                     "memory_exponent": fit_exponent(x, extra)}
    return out


def format_table(result: dict[str, dict]) -> str:
    """A Markdown table of the scaling points and the fitted exponents.

    One row per point (knob, value, trials, n, width, seconds, seconds per trial, peak RSS and
    its increase over the post-warm-up peak, MiB), then one line per knob with the time exponent,
    the local exponents and the memory exponent: the form of the scaling table in the README
    (section "Performance").
    """
    lines = ["| knob | value | trials | n | width | time (s) | s per trial | peak RSS (MiB) | over baseline (MiB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for knob, res in result.items():
        for p in res["points"]:
            lines.append(f"| {knob} | {p['value']} | {p['trials']} | {p['n']} | {p['width']} | {p['seconds']:.2f} | "
                         f"{p['seconds'] / p['trials']:.4f} | {p['peak_rss_mib']:.0f} | "
                         f"{p['peak_rss_mib'] - p['rss_before_mib']:.0f} |")
    lines.append("")
    for knob, res in result.items():
        local = ", ".join(f"{k:.2f}" for k in res["local"])
        lines.append(f"- {knob}: time ~ {knob}^{res['exponent']:.2f} (local exponents {local}); "
                     f"memory over baseline ~ {knob}^{res['memory_exponent']:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(json.dumps(measure_point(spec["quick"], spec["knob"], int(spec["value"]), int(spec["threads"]))))
