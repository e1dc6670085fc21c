"""``python -m bench`` (and ``lora-asym bench``): the toolkit's engines against per-run loops.

In one process: the fp32 matmul peak, the MLP comparison and the linear comparison of
``bench.compare`` (reference configurations) and the Gaussian-channel estimator of
``bench.channel``, all under one thread setting that the output states. The last line is a
one-line summary with the ratios. ``--json PATH`` also writes the figures; ``--scaling`` adds
the scaling table of ``bench.scaling``. The README (section "Performance") reports one run of
this command and describes how it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import torch

from bench.channel import BoundsBenchConfig, format_rows, summary_part, time_bounds
from bench.compare import LinearBenchConfig, MLPBenchConfig, time_linear, time_mlp
from bench.foundation import FoundationBenchConfig, time_foundation
from bench.peak import matmul_peak_gflops
from bench.scaling import format_table, run_scaling
from synthetic.mlp import kernel as mlp_kernel
from synthetic.provenance import environment, toolkit_version, write_atomic
from synthetic.sweep import blas_threads, limit_threads
from synthetic.sweep_files import check_out

EXIT_USAGE = 2
#: The performance targets on 2 cores: the batched MLP engine 15x faster per trial than the loop
#: at 40 % of the matmul peak, the exact linear solves 200x faster than Adam (printed next to the
#: measurements; never asserted in tests).
TARGETS = {"mlp_ratio": 15.0, "mlp_fraction_of_peak": 0.40, "linear_ratio": 200.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``python -m bench`` / ``lora-asym bench``.

    ``--threads N`` (default 2: torch and OpenBLAS threads of every measurement; the README's
    numbers in section "Performance" are at 2 threads), ``--only {mlp,linear,bounds,scaling}``,
    ``--json PATH``, ``--scaling`` (adds ``bench.scaling``, minutes) and ``--quick`` (the
    ``quick()`` presets, seconds).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Modified in place.
    """
    parser.add_argument("--threads", type=int, default=2,
                        help="torch and OpenBLAS threads for every measurement (default: 2)")
    parser.add_argument("--only", choices=("mlp", "linear", "bounds", "foundation", "scaling"),
                        help="run one comparison only (bounds: the Gaussian-channel estimator; foundation: batched "
                             "fine-tuning of the pretrained decoder against a per-run PEFT loop; "
                             "scaling: the peak and the scaling table only)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--scaling", action="store_true",
                        help="also measure time and peak memory vs trials, n and width (minutes)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for smoke tests (seconds)")


def _mlp_rows(res: dict[str, dict], peak: float) -> dict[str, Any]:
    """Per-variant and aggregate figures; GFLOP/s counts the loop's FLOPs for both engines."""
    rows: dict[str, Any] = {}
    total: dict[str, Any] = {}
    agg = {k: 0.0 for k in ("loop", "batched", "flops", "loop_training", "batched_training", "training_flops")}
    for variant, r in res.items():
        flops = r["loop_flops_per_trial"]
        train_flops = r["loop_training_flops_per_trial"]
        row: dict[str, Any] = {"flops_per_trial": flops, "training_flops_per_trial": train_flops, "check": r["check"]}
        for name in ("loop", "batched"):
            sec, train_sec = r[f"{name}_seconds_per_trial"], r[f"{name}_training_seconds_per_trial"]
            row[name] = {"seconds_per_trial": sec, "seconds_per_trial_runs": r[f"{name}_seconds_per_trial_runs"],
                         "trials": r[f"{name}_trials"], "gflops": flops / sec / 1e9,
                         "fraction_of_peak": flops / sec / 1e9 / peak, "training_seconds_per_trial": train_sec,
                         "training_gflops": train_flops / train_sec / 1e9,
                         "training_fraction_of_peak": train_flops / train_sec / 1e9 / peak}
            agg[name] += sec
            agg[f"{name}_training"] += train_sec
        row["batched"]["calls_per_run"] = r["batched_calls_per_run"]
        row["ratio"] = row["loop"]["seconds_per_trial"] / row["batched"]["seconds_per_trial"]
        row["training_ratio"] = row["loop"]["training_seconds_per_trial"] / row["batched"]["training_seconds_per_trial"]
        rows[variant] = row
        agg["flops"] += flops
        agg["training_flops"] += train_flops
    for name in ("loop", "batched"):
        gflops = agg["flops"] / agg[name] / 1e9
        train_gflops = agg["training_flops"] / agg[f"{name}_training"] / 1e9
        total[name] = {"seconds_per_trial": agg[name] / len(res), "gflops": gflops,
                             "fraction_of_peak": gflops / peak,
                             "training_seconds_per_trial": agg[f"{name}_training"] / len(res),
                             "training_gflops": train_gflops, "training_fraction_of_peak": train_gflops / peak}
    total["ratio"] = agg["loop"] / agg["batched"]
    total["training_ratio"] = agg["loop_training"] / agg["batched_training"]
    total["check_ok"] = all(r["check"]["ok"] for r in res.values())
    rows["all"] = total
    return rows


def _print_mlp(config: MLPBenchConfig, rows: dict[str, Any]) -> None:
    """Print the MLP configuration and its two tables (whole trial; Adam steps alone)."""
    t = config.task
    print(f"MLP: {' -> '.join(map(str, t.widths))} {t.activation}, LoRA rank {config.rank} on layers "
          f"{list(t.adapted_layers)} (scaling {t.scaling(config.rank):g}), {t.kind}, n = {config.n}, "
          f"{t.steps} full-batch Adam steps (lr {t.lr:g}), test on {t.test_size} samples; "
          f"batched: {config.trials} trials, loop: {config.loop_trials} trials per variant")
    print("  whole trial (data, training, evaluation); GFLOP/s count the loop's FLOPs for both engines")
    print(f"  {'variant':<8} {'loop s/trial':>12} {'batched s/trial':>15} {'ratio':>7} {'loop GFLOP/s':>12} "
          f"{'batched GFLOP/s':>15} {'% peak':>7}  {'mean gap loop':>13} {'batched':>9} {'2 se':>8}  check")
    for variant, r in rows.items():
        c = r.get("check")
        tail = (f"  {c['mean_loop']:>13.5f} {c['mean_engine']:>9.5f} {2 * c['stderr']:>8.5f}  "
                f"{'same' if c['ok'] else 'DIFFERENT'}") if c else f"  loop at {100 * r['loop']['fraction_of_peak']:.1f}% of peak"
        print(f"  {variant:<8} {r['loop']['seconds_per_trial']:>12.4f} {r['batched']['seconds_per_trial']:>15.5f} "
              f"{r['ratio']:>6.1f}x {r['loop']['gflops']:>12.2f} {r['batched']['gflops']:>15.2f} "
              f"{100 * r['batched']['fraction_of_peak']:>6.1f}%{tail}")
    print("  Adam steps alone")
    print(f"  {'variant':<8} {'loop s/trial':>12} {'batched s/trial':>15} {'ratio':>7} {'loop GFLOP/s':>12} "
          f"{'batched GFLOP/s':>15} {'% peak':>7}")
    for variant, r in rows.items():
        print(f"  {variant:<8} {r['loop']['training_seconds_per_trial']:>12.4f} "
              f"{r['batched']['training_seconds_per_trial']:>15.5f} {r['training_ratio']:>6.1f}x "
              f"{r['loop']['training_gflops']:>12.2f} {r['batched']['training_gflops']:>15.2f} "
              f"{100 * r['batched']['training_fraction_of_peak']:>6.1f}%")


def _linear_rows(res: dict[str, dict]) -> dict[str, Any]:
    """Per-variant and aggregate figures of ``time_linear``; ratios are Adam's time over each path's."""
    rows: dict[str, Any] = {}
    exact = suff = loop = data = 0.0
    for variant, r in res.items():
        rows[variant] = {"exact": {"seconds_per_trial": r["exact_seconds_per_trial"], "trials": r["exact_trials"]},
                         "sufficient": {"seconds_per_trial": r["sufficient_seconds_per_trial"],
                                        "trials": r["exact_trials"]},
                         "data": {"seconds_per_trial": r["data_seconds_per_trial"]},
                         "ceiling": r["loop_seconds_per_trial"] / r["data_seconds_per_trial"],
                         "loop": {"seconds_per_trial": r["loop_seconds_per_trial"], "trials": r["loop_trials"]},
                         "ratio": r["loop_seconds_per_trial"] / r["sufficient_seconds_per_trial"],
                         "ratio_drawing_data": r["loop_seconds_per_trial"] / r["exact_seconds_per_trial"],
                         **{k: r[k] for k in ("loop_steps_median", "loop_steps_max", "reached", "max_loss_diff",
                                              "min_loss_diff", "check")}}
        exact += r["exact_seconds_per_trial"]
        suff += r["sufficient_seconds_per_trial"]
        loop += r["loop_seconds_per_trial"]
        data += r["data_seconds_per_trial"]
    rows["all"] = {"exact": {"seconds_per_trial": exact / len(res)}, "sufficient": {"seconds_per_trial": suff / len(res)},
                   "loop": {"seconds_per_trial": loop / len(res)},
                   "data": {"seconds_per_trial": data / len(res)}, "ceiling": loop / data,
                   "ratio": loop / suff, "ratio_drawing_data": loop / exact,
                   "reached": sum(r["reached"] for r in res.values()),
                   "loop_trials": sum(r["loop_trials"] for r in res.values()),
                   "check_ok": all(r["check"]["ok"] for r in res.values())}
    return rows


def _print_linear(config: LinearBenchConfig, rows: dict[str, Any]) -> None:
    """Print the linear configuration and its table."""
    t = config.task
    print(f"Linear: d_in = {t.d_in}, d_out = {t.d_out}, {t.spectrum} inputs, rank {config.rank}, n = {config.n}; "
          f"exact solves on {config.trials} trials per variant; Adam (lr {config.lr:g}, float32) on "
          f"{config.loop_trials} trials per variant until its training loss is within {config.loss_tol:g} "
          f"of the exact one")
    print("  exact: sufficient statistics (XᵀX, XᵀY, ‖Y‖²) drawn from their exact law; drawing data: each "
          "training set drawn, as the Adam loop does (same trials, its targets). data: the drawing alone; "
          "ceiling = Adam / data. check: mean gaps of the two exact samplers within 2 s.e.")
    print(f"  {'variant':<8} {'exact s/trial':>13} {'Adam s/trial':>12} {'ratio':>8} {'drawing data':>12} "
          f"{'ratio':>7} {'data':>9} {'ceiling':>8} {'Adam steps':>10} {'reached':>8} "
          f"{'loss diff (Adam - exact)':>25}  check")
    for variant, r in rows.items():
        if variant == "all":
            continue
        print(f"  {variant:<8} {r['sufficient']['seconds_per_trial']:>13.6f} {r['loop']['seconds_per_trial']:>12.5f} "
              f"{r['ratio']:>7.1f}x {r['exact']['seconds_per_trial']:>12.6f} {r['ratio_drawing_data']:>6.1f}x "
              f"{r['data']['seconds_per_trial']:>9.6f} {r['ceiling']:>7.0f}x "
              f"{r['loop_steps_median']:>10.0f} {r['reached']:>4}/{r['loop']['trials']:<3} "
              f"{r['min_loss_diff']:>+12.2e} .. {r['max_loss_diff']:+.2e}  {'same' if r['check']['ok'] else 'DIFFERENT'}")
    a = rows["all"]
    print(f"  {'all':<8} {a['sufficient']['seconds_per_trial']:>13.6f} {a['loop']['seconds_per_trial']:>12.5f} "
          f"{a['ratio']:>7.1f}x {a['exact']['seconds_per_trial']:>12.6f} {a['ratio_drawing_data']:>6.1f}x "
          f"{a['data']['seconds_per_trial']:>9.6f} {a['ceiling']:>7.0f}x "
          f"{'':>10} {a['reached']:>4}/{a['loop_trials']:<3}")


def summary_line(report: dict[str, Any]) -> str:
    """One line with the ratios and whether each performance target (TARGETS) is met.

    From the aggregate rows (``"all"``): the MLP ratio ``Σ_v t_loop / Σ_v t_batched`` over the
    variants (seconds per trial; also for the Adam steps alone), the batched engine's fraction of
    the matmul peak (the loop's FLOPs over the batched time, divided by the peak) and the gap
    check; the linear ratio of Adam's time to the sufficient-statistics path's, to the path that
    draws the data, the ceiling ``Adam / data`` and the samplers' check; the Gaussian-channel
    part (``bench.channel.summary_part``); the scaling exponents. ``python -m bench`` prints it
    last; the README (section "Performance") quotes its figures.

    Parameters
    ----------
    report : dict, the report of :func:`run`.

    Returns
    -------
    str
        ``"summary: "`` and the parts joined by ``"; "``.
    """
    parts = []
    if "mlp" in report:
        a = report["mlp"]["rows"]["all"]
        ok = "met" if a["ratio"] >= TARGETS["mlp_ratio"] else "NOT met"
        parts.append(f"MLP batched vs loop {a['ratio']:.1f}x per trial (target >= {TARGETS['mlp_ratio']:g}x: {ok}; "
                     f"Adam steps alone {a['training_ratio']:.1f}x)")
        frac = a["batched"]["fraction_of_peak"]
        ok = "met" if frac >= TARGETS["mlp_fraction_of_peak"] else "NOT met"
        parts.append(f"{100 * frac:.0f}% of peak (target >= {100 * TARGETS['mlp_fraction_of_peak']:.0f}%: {ok}; "
                     f"Adam steps alone {100 * a['batched']['training_fraction_of_peak']:.0f}%)")
        parts.append(f"gap check {'PASS' if a['check_ok'] else 'FAIL'}")
    if "linear" in report:
        a = report["linear"]["rows"]["all"]
        ok = "met" if a["ratio"] >= TARGETS["linear_ratio"] else "NOT met"
        parts.append(f"linear exact vs Adam {a['ratio']:.0f}x (target >= {TARGETS['linear_ratio']:g}x: {ok}; "
                     f"{a['ratio_drawing_data']:.0f}x drawing the data, ceiling {a['ceiling']:.0f}x; "
                     f"sampler check {'PASS' if a['check_ok'] else 'FAIL'})")
    if "bounds" in report:
        parts.append(summary_part(report["bounds"]["rows"]))
    if "foundation" in report:
        f = report["foundation"]["rows"]
        parts.append(f"foundation batched vs per-run PEFT {f['ratio']:.1f}x (check {'PASS' if f['check'] else 'FAIL'})")
    if "scaling" in report:
        exps = ", ".join(f"{k} {v['exponent']:.2f}" for k, v in report["scaling"].items())
        parts.append(f"time exponents: {exps}")
    return "summary: " + "; ".join(parts)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything the flags ask for, print it, and return the report (the JSON document).

    Under ``synthetic.sweep.limit_threads(args.threads)``: the fp32 matmul peak
    (:func:`bench.matmul_peak_gflops`); unless ``--only`` excludes them, the MLP comparison
    (``time_mlp``, then the peak again, the larger of the two being the peak), the linear
    comparison (``time_linear``) and the Gaussian-channel timings (``time_bounds``), with the
    ``full()`` presets or, with ``--quick``, the ``quick()`` ones. With ``--scaling`` or
    ``--only scaling``, the scaling table (``bench.scaling.run_scaling``), one process per point.
    This is the procedure the README describes in section "Performance".

    Parameters
    ----------
    args : argparse.Namespace, the flags of :func:`add_arguments`.

    Returns
    -------
    dict
        ``machine`` (CPUs, torch version, threads, load average before, whether the fused MLP
        kernel is used), ``peak``, and ``mlp``, ``linear``, ``bounds``, ``scaling`` as measured,
        each with its configuration and rows, and ``summary`` (:func:`summary_line`).
    """
    threads = args.threads
    report: dict[str, Any] = {"machine": {
        "cpus": os.cpu_count(), "torch": torch.__version__, "threads": threads,
        "load_average_before": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }}
    with limit_threads(threads):
        report["machine"]["torch_threads"] = torch.get_num_threads()
        report["machine"]["blas_threads"] = blas_threads()
        report["machine"]["fused_mlp_kernel"] = mlp_kernel.available()
        training = "fused kernel" if mlp_kernel.available() else "torch (the fused kernel is unavailable)"
        peak = matmul_peak_gflops()
        report["peak"] = {"gflops": peak, "before": peak, "size": 2048, "dtype": "float32"}
        print(f"bench: torch {torch.__version__}, {os.cpu_count()} CPUs; every measurement with "
              f"torch.set_num_threads({torch.get_num_threads()}) and OpenBLAS threads {blas_threads()}; "
              f"load average before: {', '.join(f'{x:.2f}' for x in report['machine']['load_average_before'] or [])}; "
              f"MLP training: {training}")
        print(f"fp32 matmul peak (torch.matmul, 2048 x 2048, best of 8): {peak:.1f} GFLOP/s")
        if args.only in (None, "mlp"):
            config = MLPBenchConfig.quick() if args.quick else MLPBenchConfig.full()
            timings = time_mlp(config)
            # Measured again after the MLP timings: a burst of load during one measurement would
            # lower the peak and inflate every "% of peak"; the larger of the two is the peak.
            after = matmul_peak_gflops()
            peak = max(peak, after)
            report["peak"].update(gflops=peak, after_mlp=after)
            print(f"fp32 matmul peak again after the MLP timings: {after:.1f} GFLOP/s; the peak is the larger, "
                  f"{peak:.1f} GFLOP/s")
            rows = _mlp_rows(timings, peak)
            report["mlp"] = {"config": _describe(config), "rows": rows}
            _print_mlp(config, rows)
        if args.only in (None, "linear"):
            config_l = LinearBenchConfig.quick() if args.quick else LinearBenchConfig.full()
            rows_l = _linear_rows(time_linear(config_l))
            report["linear"] = {"config": _describe(config_l), "rows": rows_l}
            _print_linear(config_l, rows_l)
        if args.only in (None, "bounds"):
            config_b = BoundsBenchConfig.quick() if args.quick else BoundsBenchConfig.full()
            rows_b = time_bounds(config_b)
            report["bounds"] = {"config": _describe(config_b), "rows": rows_b}
            print("Gaussian channel (bounds.gaussian_channel_mi), Gaussian rows with Cov = I, tau = 1; time: best of "
                  f"{config_b.repeats}; peak: tracemalloc over one call")
            print(format_rows(rows_b))
        if args.only in (None, "foundation"):
            config_f = FoundationBenchConfig.quick() if args.quick else FoundationBenchConfig.full()
            rows_f = time_foundation(config_f)
            report["foundation"] = {"config": _describe(config_f), "rows": rows_f}
            print(f"foundation fine-tuning, {rows_f['runs']} runs: per-run PEFT loop {rows_f['loop_seconds_per_run']:.2f} "
                  f"s/run, batched {rows_f['batched_seconds_per_run']:.2f} s/run, {rows_f['ratio']:.1f}x; largest "
                  f"relative difference of a test loss {rows_f['max_rel_difference']:.1e}")
    if args.scaling or args.only == "scaling":
        print("scaling of the batched MLP engine (variant lora), one fresh process per point:")
        report["scaling"] = run_scaling(quick=args.quick, threads=threads)
        print(format_table(report["scaling"]))
    report["summary"] = summary_line(report)
    return report


def _describe(config: object) -> dict[str, Any]:
    """A benchmark config as a JSON-ready dict (non-JSON values as strings)."""
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(config), default=str))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench``; a bad flag prints one error line and returns 2.

    Parses ``argv`` (``sys.argv[1:]`` when None) with the flags of :func:`add_arguments` and
    calls :func:`run_args`; ``--help`` returns 0. The README (section "Performance") reports its
    output.

    Returns
    -------
    int
        The exit status.
    """
    parser = _Parser(prog="python -m bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return run_args(args)


def run_args(args: argparse.Namespace) -> int:
    """Run with parsed flags (``lora-asym bench`` calls this); returns the exit status.

    The ``--json`` document is the report with the toolkit version (``toolkit``) and the library
    versions (``environment``) on top, written atomically (``synthetic.provenance.write_atomic``).
    ``--threads`` below 1, or a ``--json`` path that cannot be created, is refused with one error
    line and status 2 before anything is measured; the summary line (:func:`summary_line`) is
    printed last. The README (section "Performance") reports the output of one such run.

    Returns
    -------
    int
        0, or 2 (``EXIT_USAGE``) after an error line.
    """
    if args.threads < 1:
        print(f"bench: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return EXIT_USAGE
    if args.json is not None:
        try:  # before the benchmark: a file can be created in the folder
            check_out(args.json, "--json", "a file name for the JSON report")
        except ValueError as exc:
            print(f"bench: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    report = {"toolkit": {"name": "lora-asymmetry", "version": toolkit_version()}, "environment": environment(),
              **run(args)}
    if args.json is not None:
        try:
            write_atomic(args.json, json.dumps(report, indent=1).encode())
        except OSError as exc:
            print(f"bench: error: --json {args.json!r}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"wrote {args.json}")
    print(report["summary"])
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error and exit status 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")
