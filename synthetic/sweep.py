r"""Sweeps: a grid of ``measure_gap`` calls run serially, on local processes, or on a Dask cluster.

A sweep point is one ``synthetic.montecarlo.measure_gap`` call (``synthetic.sweep_grid``: points,
grids and the grid-file format). Every backend runs the same function on the same points, each
under the same thread setting (``limit_threads``), so every backend gives bit-identical numbers:
the seed of a point derives from its configuration (``derive_seed``), never from the worker that
runs it. Every point is checked (``check_point``) before any runs.

Backends: ``serial`` (this process), ``processes`` (``concurrent.futures.ProcessPoolExecutor``,
spawned workers) and ``dask`` (``dask.distributed``: ``Client(scheduler)`` for a running
cluster, waiting at most ``timeout`` seconds for it to answer, otherwise a ``LocalCluster`` of
``workers`` worker threads in this process, which starts in a fraction of a second where worker
processes take seconds each to import torch; the engines spend their time in torch and NumPy
kernels, which release the GIL). A progress bar (tqdm) counts the points on stderr when it is a
terminal and is cleared at the end (``TQDM_DISABLE=1`` hides it).

Command line (``lora-asym sweep``, or ``python -m synthetic.sweep``)::

    lora-asym sweep --task linear --variants b_only a_only --ranks 2 4 --n 64 256 --trials 200
    lora-asym sweep --grid docs/sweep_grid_example.json --backend dask --scheduler tcp://10.0.0.5:8786 --out rows.csv

A grid file is a JSON object with the keys of ``synthetic.sweep_grid.GRID_KEYS`` (``task``,
``preset``, ``task_fields``, ``variants``, ``ranks``, ``n``, ``trials``, ``loss``, ``q_bits``,
``seed``; ``lora-asym sweep --help`` lists them with their meaning); flags given on the command
line override the file. The grid is the product of variants x ranks x n. ``--out PATH`` writes
the rows (columns: ``run_point``) with the toolkit and library versions and the configuration,
atomically (``synthetic.sweep_files.write_rows``): ``rows.json`` is one JSON document, ``rows.csv``
the CSV rows beside the sidecar ``rows.csv.meta.json``; any other suffix is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from synthetic.linear.engine import LOSSES as LINEAR_LOSSES
from synthetic.mlp.train import LOSSES as MLP_LOSSES
from synthetic.montecarlo import measure_gap
from synthetic.sweep_files import SUFFIXES, check_out, meta_path, write_rows
from synthetic.sweep_grid import (  # noqa: F401 - re-exported: synthetic.sweep's public names
    GRID_KEYS,
    PRESETS,
    TASK_TYPES,
    Grid,
    SweepPoint,
    check_point,
    check_points,
    derive_seed,
    grid_help,
    read_grid,
    task_from_spec,
)
from synthetic.workers import (  # noqa: F401 - blas_threads, limit_threads re-exported
    blas_threads,
    dask_client,
    exit_with_parent,
    limit_threads,
    one_line,
)
from theory.validation import as_int, as_real
from theory.variants import VARIANTS

BACKENDS = ("serial", "processes", "dask")
EXIT_USAGE = 2
#: Seconds ``run_sweep`` waits for a Dask scheduler to answer (``--timeout``).
TIMEOUT = 10.0
#: The example at the end of ``lora-asym sweep --help``.
EXAMPLE = ("Example: lora-asym sweep --grid docs/sweep_grid_example.json --trials 4 --out rows.csv\n"
           "         lora-asym sweep --variants b_only a_only --ranks 2 4 --n 64 256 --backend dask")


# --- rows and backends -----------------------------------------------------------------------


def _task_column(name: str) -> str:
    """The column of task field ``name``: ``task_<name>``, or ``name`` itself when it already starts
    with ``task_`` (the task's ``task_seed`` is the column ``task_seed``, never ``task_task_seed``)."""
    return name if name.startswith("task_") else f"task_{name}"


def run_point(spec: dict[str, Any], threads: int = 1) -> dict[str, Any]:
    """Run one point (a ``SweepPoint.spec()``) and return its tidy row; the function every worker runs.

    The row's columns, each once, in this order:

    - ``task_type``: ``"LinearTask"`` or ``"MLPTask"``;
    - one column per task field: ``task_<field>`` (``task_d_in``, ``task_widths``; a tuple as a JSON
      list), or the field's own name when it starts with ``task_`` (``task_seed``, the seed of the
      task's own matrices);
    - the call: ``variant``, ``rank``, ``n``, ``trials``, ``loss``, ``q_bits``;
    - ``base_seed`` (the sweep's seed) and ``seed`` (the point's, ``derive_seed``);
    - ``mean_X``, ``stderr_X``, ``ci95_X_low``, ``ci95_X_high`` for X in ``gap``, ``train_loss``,
      ``test_loss`` (``synthetic.montecarlo.GapSummary``).

    Infrastructure: the row format of ``lora-asym sweep`` (README, "Sweeps on a cluster"); the
    numbers are those of ``measure_gap`` with the point's seed (docs/THEORY.md §7.4).
    """
    task = task_from_spec(spec)
    seed = derive_seed(spec)
    with limit_threads(threads):
        result = measure_gap(task, spec["variant"], spec["rank"], spec["n"], spec["trials"], loss=spec["loss"],
                             q_bits=spec["q_bits"], seed=seed)
    s = result.summary
    row: dict[str, Any] = {"task_type": spec["task_type"]}
    for name, value in spec["task"].items():
        column = _task_column(name)
        if column in row:
            raise ValueError(f"task field {name!r} and another column are both named {column!r}")
        row[column] = json.dumps(value) if isinstance(value, list) else value
    row.update({k: spec[k] for k in ("variant", "rank", "n", "trials", "loss", "q_bits", "base_seed")})
    row["seed"] = seed
    for name in ("gap", "train_loss", "test_loss"):
        row[f"mean_{name}"] = getattr(s, f"mean_{name}")
        row[f"stderr_{name}"] = getattr(s, f"stderr_{name}")
        low, high = getattr(s, f"ci95_{name}")
        row[f"ci95_{name}_low"], row[f"ci95_{name}_high"] = low, high
    return row


def _bar(total: int, progress: bool | None) -> tqdm:
    """A progress bar of ``total`` points on stderr, cleared when done; ``None``: only on a terminal."""
    return tqdm(total=total, desc="sweep", unit="point", leave=False, file=sys.stderr,
                disable=None if progress is None else not progress)


def run_sweep(points: Sequence[SweepPoint], *, backend: str = "serial", scheduler: str | None = None,
              workers: int = 2, threads: int = 1, timeout: float = TIMEOUT,
              progress: bool | None = None) -> list[dict[str, Any]]:
    """Run every point on ``backend``; one tidy row per point (``run_point``), in the order of ``points``.

    Every point is checked (``check_point``: arguments and memory) before any runs, so a bad point
    late in a grid fails at once, with a ``ValueError`` that names the argument and the point.
    Infrastructure: the engine of ``lora-asym sweep`` (README, "Sweeps on a cluster"); the rows do
    not depend on the backend, the number of workers or the order in which points finish.

    Parameters
    ----------
    points : SweepPoint sequence (``Grid.points`` builds a product grid)
    backend : ``"serial"``, ``"processes"`` or ``"dask"``
    scheduler : address of a running Dask scheduler (``tcp://host:8786``); ``dask`` only. Without
        it a ``LocalCluster`` of ``workers`` worker threads is started and closed.
    workers : worker processes of ``processes``, worker threads of the local Dask cluster
    threads : torch and BLAS threads per point (the same on every backend)
    timeout : seconds to wait for ``scheduler`` to answer, > 0 and finite; then ``ValueError``
    progress : a progress bar on stderr (cleared at the end); ``None``: when stderr is a terminal

    Returns
    -------
    list of dict, one row per point (columns: ``run_point``)
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler {scheduler!r} needs backend 'dask', got {backend!r}")
    workers = as_int(workers, "workers", minimum=1)
    threads = as_int(threads, "threads", minimum=1)
    timeout = as_real(timeout, "timeout", positive=True)
    check_points(points)  # a list or tuple of SweepPoint, each as measure_gap would accept it
    points = list(points)
    specs = [p.spec() for p in points]
    if not specs:
        return []
    if backend == "dask":
        return _run_dask(specs, scheduler, workers, threads, timeout, progress)
    with _bar(len(specs), progress) as bar:
        if backend == "serial":
            return [_counted(run_point(s, threads), bar) for s in specs]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pools is unsafe
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=exit_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            return [_counted(row, bar) for row in pool.map(run_point, specs, [threads] * len(specs))]


def _counted(row: dict[str, Any], bar: tqdm) -> dict[str, Any]:
    bar.update()
    return row


def _run_dask(specs: list[dict[str, Any]], scheduler: str | None, workers: int, threads: int, timeout: float,
              progress: bool | None) -> list[dict]:
    from dask.distributed import as_completed

    with dask_client(scheduler, workers, timeout) as client:
        futures = client.map(run_point, specs, threads=threads, pure=False)
        with _bar(len(specs), progress) as bar:
            for _ in as_completed(futures):
                bar.update()
        return client.gather(futures)


# --- the command line --------------------------------------------------------------------------

#: Grid keys a flag of the same name (``--q-bits`` for ``q_bits``) overrides.
FLAG_KEYS = ("task", "preset", "variants", "ranks", "n", "trials", "loss", "q_bits", "seed")


def _loss_help() -> str:
    linear, mlp = ", ".join(LINEAR_LOSSES), MLP_LOSSES
    return (f"evaluated loss: {linear} (linear; default population); {', '.join(mlp['classification'])} "
            f"(mlp classification; default zero_one); {', '.join(mlp['regression'])} (mlp regression; "
            "default squared)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``lora-asym sweep`` to ``parser``, and its help epilog (``grid_help``).

    Infrastructure: the command line of README, "Sweeps on a cluster" (``lora-asym sweep --help``).
    """
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"{grid_help()}\n\n{EXAMPLE}"
    parser.add_argument("--grid", metavar="FILE", help="JSON grid file; its keys are listed below")
    parser.add_argument("--task", choices=sorted(TASK_TYPES), help="task family: linear or mlp (default: linear)")
    parser.add_argument("--preset", choices=PRESETS, help="task preset: quick or full (default: quick)")
    parser.add_argument("--variants", nargs="+", metavar="V",
                        help=f"tuned factors, any of {', '.join(VARIANTS)} (default: b_only a_only)")
    parser.add_argument("--ranks", nargs="+", type=int, metavar="R", help="adapter ranks (default: 2 4)")
    parser.add_argument("--n", nargs="+", type=int, metavar="N", help="training-set sizes (default: 64)")
    parser.add_argument("--trials", type=int, help="trials per point, >= 2 (default: 100)")
    parser.add_argument("--loss", help=_loss_help())
    parser.add_argument("--q-bits", dest="q_bits", type=int, help="quantize trained parameters to 2 .. 32 bits")
    parser.add_argument("--seed", type=int, help="base seed (default: 0)")
    parser.add_argument("--backend", choices=BACKENDS, default="serial",
                        help="where points run: serial, processes or dask (default: serial)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="running Dask scheduler, e.g. tcp://host:8786")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, metavar="SECONDS",
                        help=f"seconds to wait for --scheduler to answer (default: {TIMEOUT:g})")
    parser.add_argument("--workers", type=int, default=2, help="local workers (default: 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per point (default: 1)")
    parser.add_argument("--out", metavar="PATH",
                        help="write the rows to PATH (default: print a table). PATH.json: one document with the "
                             "rows, the toolkit and library versions and the configuration (grid, backend); each "
                             "row has its seed. PATH.csv: plain CSV rows, the versions and configuration in "
                             "PATH.csv.meta.json. Any other suffix is refused. Written atomically")


def _grid_points(args: argparse.Namespace) -> tuple[Grid, list[SweepPoint]]:
    """The grid of ``--grid`` and the flags over it, and its checked points; errors name the file."""
    flags = {k: getattr(args, k) for k in FLAG_KEYS if getattr(args, k) is not None}
    if args.grid is None:
        grid = Grid(**flags)
        points = grid.points()
        check_points(points)
        return grid, points
    values = read_grid(args.grid, "--grid")
    try:
        grid = Grid(**{**values, **flags})
        points = grid.points()
        check_points(points)
    except ValueError as exc:
        over = f" (with flags {', '.join('--' + k.replace('_', '-') for k in flags)})" if flags else ""
        raise ValueError(f"--grid {args.grid!r}{over}: {exc}") from None
    return grid, points


def _error(message: object) -> int:
    """Print ``message`` as one error line on stderr; the exit status of a usage error."""
    print(f"lora-asym sweep: error: {one_line(message) if isinstance(message, BaseException) else message}",
          file=sys.stderr)
    return EXIT_USAGE


def main(args: argparse.Namespace) -> int:
    """Run the sweep the flags describe; a bad value prints one error line and returns 2.

    Infrastructure: ``lora-asym sweep`` (README, "Sweeps on a cluster"). Without ``--out`` it
    prints one line per point (variant, rank, n, trials, mean gap, its standard error, seed); with
    it, writes the rows (``write_rows``). Returns the exit status: 0, or 2 for a bad flag, grid,
    unreachable scheduler or unwritable ``--out``.
    """
    try:
        if args.scheduler is not None and args.backend != "dask":
            raise ValueError(f"--scheduler needs --backend dask, got --backend {args.backend}")
        as_real(args.timeout, "--timeout", positive=True)
        if args.out:
            check_out(args.out, suffixes=SUFFIXES)
        grid, points = _grid_points(args)
        rows = run_sweep(points, backend=args.backend, scheduler=args.scheduler, workers=args.workers,
                         threads=args.threads, timeout=args.timeout)
    except (ValueError, TypeError) as exc:
        return _error(exc)
    if args.out:
        config = {"grid": dataclasses.asdict(grid), "backend": args.backend, "scheduler": args.scheduler,
                  "workers": args.workers, "threads": args.threads}
        libraries = ("dask", "distributed") if args.backend == "dask" else ()
        try:
            path = write_rows(rows, args.out, config=config, libraries=libraries)
        except OSError as exc:
            return _error(f"--out {args.out!r}: {exc.strerror or exc}")
        sidecar = f" (versions and configuration: {meta_path(path)})" if path.suffix.lower() == ".csv" else ""
        print(f"{len(rows)} points -> {path}{sidecar}")
        return 0
    print(f"{'variant':<8} {'rank':>4} {'n':>6} {'trials':>6}  {'mean gap':>11} {'stderr':>9}  seed")
    for r in rows:
        print(f"{r['variant']:<8} {r['rank']!s:>4} {r['n']:>6} {r['trials']:>6}  {r['mean_gap']:>11.5f} "
              f"{r['stderr_gap']:>9.5f}  {r['seed']}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error and exit status 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


if __name__ == "__main__":
    _parser = _Parser(prog="lora-asym sweep", description="Run a grid of Monte Carlo gap measurements.")
    add_arguments(_parser)
    raise SystemExit(main(_parser.parse_args()))
