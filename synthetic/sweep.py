r"""Sweeps: a grid of ``measure_gap`` calls run serially, on local processes, or on a Dask cluster.

A sweep point is one ``synthetic.montecarlo.measure_gap`` call (task, variant, rank, n, trials,
loss, q_bits, seed). Every backend runs the same function on the same points, each under the
same thread setting (``limit_threads``), so every backend gives bit-identical numbers: the seed
of a point derives from its configuration (``derive_seed``), never from the worker that runs it.

The seed depends on the base seed, the task and ``n`` and the loss only, not on the variant,
rank, q_bits or trial count: points that differ in those see the same training sets (common
random numbers, so differences between variants are measured with less noise), and more
trials extend a point's trials rather than redrawing them.

Backends: ``serial`` (this process), ``processes`` (``concurrent.futures.ProcessPoolExecutor``,
spawned workers) and ``dask`` (``dask.distributed``: ``Client(scheduler)`` for a running
cluster, otherwise a ``LocalCluster`` of ``workers`` worker threads in this process, which
starts in a fraction of a second where worker processes take seconds each to import torch;
the engines spend their time in torch and NumPy kernels, which release the GIL).

Command line (``lora-asym sweep``, or ``python -m synthetic.sweep``)::

    lora-asym sweep --task linear --variants b_only a_only --ranks 2 4 --n 64 256 --trials 200
    lora-asym sweep --grid grid.json --backend dask --scheduler tcp://10.0.0.5:8786 --out rows.csv

A grid file is a JSON object with the same keys as the flags: ``task`` (``"linear"`` or
``"mlp"``), ``preset`` (``"quick"`` or ``"full"``), ``task_fields`` (overrides of the task's
fields), ``variants``, ``ranks``, ``n``, ``trials``, ``loss``, ``q_bits``, ``seed``; flags
given on the command line override the file. The grid is the product of variants x ranks x n.
``--out PATH`` writes the rows with the toolkit and library versions and the configuration, atomically
(``synthetic.sweep_files.write_rows``: one JSON document, or CSV rows plus ``PATH.meta.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import itertools
import json
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from synthetic.linear import LinearTask
from synthetic.montecarlo import measure_gap
from synthetic.sweep_files import check_out, meta_path, write_rows
from theory.validation import as_int

BACKENDS = ("serial", "processes", "dask")
TASK_TYPES = {"linear": "LinearTask", "mlp": "MLPTask"}
EXIT_USAGE = 2


# --- threads ---------------------------------------------------------------------------------

def blas_threads() -> int | None:
    """Threads of the first loaded OpenBLAS, NumPy's or SciPy's (None if there is none)."""
    for info in threadpool_info():
        if info.get("internal_api") == "openblas":
            return int(info["num_threads"])
    return None


_LOCK = threading.Lock()
_ACTIVE: dict[str, Any] = {"depth": 0, "threads": None, "restore": None}


def _set_threads(threads: int) -> Callable[[], None]:
    """Set torch and BLAS threads; return a function that restores the previous settings."""
    import torch

    previous_torch = torch.get_num_threads()
    blas = threadpool_limits(limits=threads, user_api="blas")
    torch.set_num_threads(threads)

    def restore() -> None:
        torch.set_num_threads(previous_torch)
        blas.restore_original_limits()

    return restore


@contextlib.contextmanager
def limit_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads and OpenBLAS threads; restore after.

    Results of BLAS-backed products can depend on the thread count in the last bits, so a sweep
    fixes it for every point; it also keeps workers from oversubscribing a shared machine.
    BLAS libraries are set through ``threadpoolctl``. The settings are global to the process,
    so concurrent blocks (worker threads) share one setting: the first sets it, the last
    restores it, and a block that asks for a different count meanwhile is an error.
    """
    threads = as_int(threads, "threads", minimum=1)
    with _LOCK:
        if _ACTIVE["depth"] and _ACTIVE["threads"] != threads:
            raise ValueError(f"threads {threads} conflicts with {_ACTIVE['threads']} set by a running block")
        if not _ACTIVE["depth"]:
            _ACTIVE["restore"], _ACTIVE["threads"] = _set_threads(threads), threads
        _ACTIVE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE["depth"] -= 1
            if not _ACTIVE["depth"]:
                _ACTIVE["restore"]()
                _ACTIVE["restore"] = _ACTIVE["threads"] = None


# --- points ----------------------------------------------------------------------------------


def _task_class(name: str):
    if name == "LinearTask":
        return LinearTask
    if name == "MLPTask":
        from synthetic.mlp import MLPTask

        return MLPTask
    raise ValueError(f"task type must be 'LinearTask' or 'MLPTask', got {name!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class SweepPoint:
    """One ``measure_gap`` call of a sweep; ``seed`` is the base seed, an integer >= 0 (``derive_seed``
    makes the point's)."""

    task: Any
    variant: str
    rank: int | None
    n: int
    trials: int
    loss: str
    q_bits: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        as_int(self.seed, "seed", minimum=0)

    def spec(self) -> dict[str, Any]:
        """A plain-JSON description from which any process rebuilds the point."""
        fields_ = {f.name: _plain(getattr(self.task, f.name)) for f in dataclasses.fields(self.task)}
        return {"task_type": type(self.task).__name__, "task": fields_, "variant": self.variant,
                "rank": self.rank, "n": self.n, "trials": self.trials, "loss": self.loss,
                "q_bits": self.q_bits, "base_seed": self.seed}


def derive_seed(spec: dict[str, Any]) -> int:
    """The point's seed: a hash of (base seed, task type and fields, n, loss), as an int in [0, 2^32).

    The base seed ``spec["base_seed"]`` must be an integer >= 0 (``ValueError`` naming ``seed``).
    """
    as_int(spec["base_seed"], "seed", minimum=0)
    key = json.dumps([spec["base_seed"], spec["task_type"], spec["task"], spec["n"], spec["loss"]], sort_keys=True)
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return int(np.random.SeedSequence([int(spec["base_seed"]), digest]).generate_state(1)[0])


def _task_from(spec: dict[str, Any]) -> Any:
    cls = _task_class(spec["task_type"])
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in spec["task"]:
            v = spec["task"][f.name]
            values[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**values)


def run_point(spec: dict[str, Any], threads: int = 1) -> dict[str, Any]:
    """Run one point (a ``SweepPoint.spec()``) and return its tidy row; the function every worker runs."""
    task = _task_from(spec)
    seed = derive_seed(spec)
    with limit_threads(threads):
        result = measure_gap(task, spec["variant"], spec["rank"], spec["n"], spec["trials"], loss=spec["loss"],
                             q_bits=spec["q_bits"], seed=seed)
    s = result.summary
    row: dict[str, Any] = {"task_type": spec["task_type"]}
    row.update({f"task_{k}": json.dumps(v) if isinstance(v, list) else v for k, v in spec["task"].items()})
    row.update({k: spec[k] for k in ("variant", "rank", "n", "trials", "loss", "q_bits", "base_seed")})
    row["seed"] = seed
    for name in ("gap", "train_loss", "test_loss"):
        row[f"mean_{name}"] = getattr(s, f"mean_{name}")
        row[f"stderr_{name}"] = getattr(s, f"stderr_{name}")
        low, high = getattr(s, f"ci95_{name}")
        row[f"ci95_{name}_low"], row[f"ci95_{name}_high"] = low, high
    return row


def run_sweep(points: Sequence[SweepPoint], *, backend: str = "serial", scheduler: str | None = None,
              workers: int = 2, threads: int = 1) -> list[dict[str, Any]]:
    """Run every point on ``backend``; one tidy row per point, in the order of ``points``.

    Parameters
    ----------
    points : SweepPoint sequence (``grid_points`` builds a product grid)
    backend : ``"serial"``, ``"processes"`` or ``"dask"``
    scheduler : address of a running Dask scheduler (``tcp://host:8786``); ``dask`` only. Without
        it a ``LocalCluster`` of ``workers`` worker threads is started and closed.
    workers : worker processes of ``processes``, worker threads of the local Dask cluster
    threads : torch and BLAS threads per point (the same on every backend)
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler {scheduler!r} needs backend 'dask', got {backend!r}")
    workers = as_int(workers, "workers", minimum=1)
    threads = as_int(threads, "threads", minimum=1)
    points = list(points)
    for i, p in enumerate(points):
        if not isinstance(p, SweepPoint):
            raise ValueError(f"points[{i}] must be a SweepPoint, got {type(p).__name__}")
        _task_class(type(p.task).__name__)
    specs = [p.spec() for p in points]
    if not specs:
        return []
    if backend == "serial":
        return [run_point(s, threads) for s in specs]
    if backend == "processes":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pools is unsafe
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            return list(pool.map(run_point, specs, [threads] * len(specs)))
    return _run_dask(specs, scheduler, workers, threads)


def _run_dask(specs: list[dict[str, Any]], scheduler: str | None, workers: int, threads: int) -> list[dict]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ValueError("backend 'dask' needs dask[distributed] (pip install 'lora-asymmetry[dask]')") from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = client.map(run_point, specs, threads=threads, pure=False)
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --- grids and the command line ----------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A product grid of sweep points (the grid-file format of the module docstring)."""

    task: str = "linear"
    preset: str = "quick"
    task_fields: dict[str, Any] = field(default_factory=dict)
    variants: tuple[str, ...] = ("b_only", "a_only")
    ranks: tuple[int, ...] = (2, 4)
    n: tuple[int, ...] = (64,)
    trials: int = 100
    loss: str | None = None
    q_bits: int | None = None
    seed: int = 0

    def points(self) -> list[SweepPoint]:
        """The points of the grid, variants x ranks x n, in that nesting order."""
        if self.task not in TASK_TYPES:
            raise ValueError(f"task must be one of {sorted(TASK_TYPES)}, got {self.task!r}")
        if self.preset not in ("quick", "full"):
            raise ValueError(f"preset must be 'quick' or 'full', got {self.preset!r}")
        cls = _task_class(TASK_TYPES[self.task])
        base = getattr(cls, self.preset)()
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(self.task_fields) - names)
        if unknown:
            raise ValueError(f"task_fields has unknown field {unknown[0]!r} for {cls.__name__}")
        fields_ = {k: tuple(v) if isinstance(v, list) else v for k, v in self.task_fields.items()}
        task = dataclasses.replace(base, **fields_)
        loss = self.loss or ("population" if self.task == "linear" else ("squared" if task.kind == "regression"
                                                                          else "zero_one"))
        return [SweepPoint(task, v, r, n, self.trials, loss, self.q_bits, self.seed)
                for v, r, n in itertools.product(self.variants, self.ranks, self.n)]


def _grid_from(args: argparse.Namespace) -> Grid:
    values: dict[str, Any] = {}
    if args.grid is not None:
        try:
            values = json.loads(Path(args.grid).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--grid {args.grid!r} is not a readable JSON file ({exc})") from None
        if not isinstance(values, dict):
            raise ValueError(f"--grid {args.grid!r} must hold a JSON object")
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(Grid)})
        if unknown:
            raise ValueError(f"--grid has unknown key {unknown[0]!r}")
    for name in ("task", "preset", "variants", "ranks", "n", "trials", "loss", "q_bits", "seed"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    for key in ("variants", "ranks", "n"):
        if key in values:
            v = values[key]
            values[key] = tuple(v) if isinstance(v, (list, tuple)) else (v,)
    return Grid(**values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``lora-asym sweep`` (see the module docstring)."""
    parser.add_argument("--grid", metavar="FILE", help="JSON grid file (keys as the flags below)")
    parser.add_argument("--task", choices=sorted(TASK_TYPES), help="task family (default: linear)")
    parser.add_argument("--preset", choices=("quick", "full"), help="task preset (default: quick)")
    parser.add_argument("--variants", nargs="+", metavar="V", help="tuning variants (default: b_only a_only)")
    parser.add_argument("--ranks", nargs="+", type=int, metavar="R", help="adapter ranks (default: 2 4)")
    parser.add_argument("--n", nargs="+", type=int, metavar="N", help="training-set sizes (default: 64)")
    parser.add_argument("--trials", type=int, help="trials per point (default: 100)")
    parser.add_argument("--loss", help="loss (default: population / squared / zero_one)")
    parser.add_argument("--q-bits", dest="q_bits", type=int, help="quantize trained parameters to q bits")
    parser.add_argument("--seed", type=int, help="base seed (default: 0)")
    parser.add_argument("--backend", choices=BACKENDS, default="serial", help="where points run (default: serial)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="running Dask scheduler, e.g. tcp://host:8786")
    parser.add_argument("--workers", type=int, default=2, help="local workers (default: 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per point (default: 1)")
    parser.add_argument("--out", metavar="PATH",
                        help="write the rows to PATH (default: print a table). PATH.json: one document with the "
                             "rows, the toolkit and library versions and the configuration (grid, backend); each "
                             "row has its seed. PATH.csv: plain CSV rows, the versions and configuration in "
                             "PATH.csv.meta.json. Written atomically")


def main(args: argparse.Namespace) -> int:
    """Run the sweep the flags describe; a bad value prints one error line and returns 2."""
    try:
        if args.scheduler is not None and args.backend != "dask":
            raise ValueError(f"--scheduler needs --backend dask, got --backend {args.backend}")
        if args.out:
            check_out(args.out)
        grid = _grid_from(args)
        as_int(grid.seed, "seed", minimum=0)
        rows = run_sweep(grid.points(), backend=args.backend, scheduler=args.scheduler, workers=args.workers,
                         threads=args.threads)
    except (ValueError, TypeError) as exc:
        print(f"lora-asym sweep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.out:
        config = {"grid": dataclasses.asdict(grid), "backend": args.backend, "scheduler": args.scheduler,
                  "workers": args.workers, "threads": args.threads}
        try:
            path = write_rows(rows, args.out, config=config)
        except OSError as exc:
            print(f"lora-asym sweep: error: --out {args.out!r}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        sidecar = f" (versions and configuration: {meta_path(path)})" if path.suffix == ".csv" else ""
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
