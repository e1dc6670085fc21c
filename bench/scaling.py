r"""How the batched MLP engine scales: time and peak memory vs trials, n and width.

Each point runs ``synthetic.mlp.mlp_trial_losses`` (variant ``lora``) in a fresh Python process,
so that its peak resident memory (``ru_maxrss``) is its own; the time excludes the process start
and one 2-trial warm-up. Around the reference MLP configuration (``bench.compare``) one knob
varies at a time: trials (64 ... 4096), n (64 ... 4096) or the hidden width (32 ... 512). The
fitted exponent ``k`` of ``time ~ x^k`` is the least-squares slope in log-log coordinates; the
local exponents between neighbouring points show where the scaling departs from linear.
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
    """Time and peak memory of one point, measured in this process (call it in a fresh one)."""
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
    spec = json.dumps({"quick": quick, "knob": knob, "value": value, "threads": threads})
    proc = subprocess.run([sys.executable, "-m", "bench.scaling", spec], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"scaling point {knob}={value} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fit_exponent(x: object, t: object) -> float:
    """Least-squares slope of ``log t`` against ``log x``."""
    lx, lt = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(t, dtype=float))
    return float(np.polyfit(lx, lt, 1)[0])


def run_scaling(*, quick: bool = False, threads: int = 2, progress=None) -> dict[str, dict]:
    """Every point of ``GRID`` (``QUICK_GRID`` with ``quick``), each in its own process.

    Returns ``{knob: {"points": [...], "exponent": k, "local": [k_12, k_23, ...],
    "memory_exponent": ...}}``; the memory exponent fits the increase of the peak RSS over the
    process's RSS after imports and warm-up.
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
    """A Markdown table of the scaling points and the fitted exponents."""
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
