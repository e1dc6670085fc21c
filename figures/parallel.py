"""The figures' units of work, run in this process, on local worker processes or on a Dask cluster.

A figure's numbers come from a list of independent units (``Unit``): a top-level function, its
arguments, and the cache kind and parameters that name its result (``figures.cache``). Each
figure's ``units(config, seed)`` lists them and its ``compute`` assembles their results
(``run_units``); ``make_figures`` runs the units of many figures on one pool and draws each
figure as soon as its last unit is done.

Reproducibility (README.md, "Reproducibility"): every unit runs under one torch and BLAS thread
(``synthetic.workers.limit_threads``) whichever backend runs it, its seeds come from its
parameters, and its result is the same function of its arguments in any process of one machine;
so the numbers, and the figures' JSON, are bit-identical whatever the backend and the number of
jobs. Each result is written to the cache by this process as soon as it arrives, so an
interrupted or distributed run loses only the units still running, and a rerun resumes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from figures.cache import Arrays, code_fingerprint, entry_path, load_entry, store_entry
from synthetic.workers import dask_client, exit_with_parent, limit_threads

BACKENDS = ("serial", "processes", "dask")
#: Torch and BLAS threads of every unit, on every backend.
UNIT_THREADS = 1


@dataclass(frozen=True)
class Unit:
    """One independent piece of a figure's computation.

    ``fn(*args)`` returns a mapping of names to arrays; ``kind`` and ``params`` (JSON-serialisable,
    seed included) name its cache entry (``figures.cache.cache_key``). ``fn`` is a module-level
    function and ``args`` plain data, so that a worker process or a Dask worker can run it.
    ``waits``: the unit needs what another unit makes first (the foundation figures' fine-tuning
    waits for the pretrained model, under a file lock); ``make_figures`` submits it after every unit
    that does not wait, so that no worker idles on the lock while others have work.
    """

    kind: str
    params: Mapping[str, Any]
    fn: Callable[..., Mapping[str, Any]]
    args: tuple = field(default=())
    waits: bool = False


def run_unit(fn: Callable[..., Mapping[str, Any]], args: tuple) -> tuple[Arrays, float]:
    """``fn(*args)`` as arrays, under ``UNIT_THREADS`` threads, and the seconds it took: what every
    worker runs (module docstring)."""
    start = time.perf_counter()
    with limit_threads(UNIT_THREADS):
        result = {k: np.asarray(v) for k, v in fn(*args).items()}
    return result, time.perf_counter() - start


def run_units(units: Sequence[Unit], cache_dir: Path | None, *, force: bool = False,
              desc: str = "units") -> list[Arrays]:
    """The results of ``units`` in order, computed in this process where ``cache_dir`` has none.

    Each result is written to ``cache_dir`` as soon as it is computed (``figures.cache``); with
    ``force`` every unit is recomputed. A progress bar on stderr counts the units computed.

    Parameters
    ----------
    units : the units of one figure; cache_dir : folder of the entries, or None (no caching).
    force : recompute even cached units; desc : the progress bar's label.

    Returns
    -------
    list of dict of ndarray, one per unit.
    """
    results: list[Arrays | None] = [None] * len(units)
    paths = [None if cache_dir is None else entry_path(cache_dir, u.kind, u.params) for u in units]
    if not force:
        results = [None if p is None else load_entry(p) for p in paths]
    todo = [i for i, r in enumerate(results) if r is None]
    for i in tqdm(todo, desc=desc, leave=False, disable=not todo):
        result, _ = run_unit(units[i].fn, units[i].args)
        results[i] = result if paths[i] is None else store_entry(paths[i], result)
    return results  # type: ignore[return-value]


@dataclass(frozen=True)
class Backend:
    """Where units run: ``serial`` (this process), ``processes`` (``jobs`` spawned worker processes)
    or ``dask`` (the scheduler at ``scheduler``, else a local cluster of ``jobs`` worker threads;
    ``timeout`` seconds to wait for the scheduler). Infrastructure of ``lora-asym figures``."""

    name: str = "serial"
    jobs: int = 1
    scheduler: str | None = None
    timeout: float = 10.0


@contextlib.contextmanager
def _pool(backend: Backend) -> Iterator[Any]:
    """An executor with ``submit(fn, *args)`` returning futures (``None`` for ``serial``); a Dask
    client checks first that its workers run this toolkit's code."""
    if backend.name == "serial":
        yield None
    elif backend.name == "processes":
        ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pools is unsafe
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=backend.jobs, mp_context=ctx,
                                                      initializer=exit_with_parent, initargs=(os.getpid(),))
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        with dask_client(backend.scheduler, backend.jobs, backend.timeout) as client:
            theirs = set(client.run(code_fingerprint).values())
            if theirs - {code_fingerprint()}:
                raise ValueError(f"the Dask workers at {backend.scheduler} run other toolkit code than this "
                                 "process; install the same checkout on every worker")
            yield client


def _wait_any(backend: Backend, pending: set) -> set:
    """The futures of ``pending`` that are done, waiting for at least one."""
    if backend.name == "dask":
        from dask.distributed import wait

        return set(wait(list(pending), return_when="FIRST_COMPLETED").done)
    done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
    return set(done)


@dataclass
class _Figure:
    name: str
    units: list[Unit]
    paths: list[Path]
    left: int = 0
    seconds: float = 0.0
    leading: int = 0  # its missing units that do not wait


class _Queue:
    """The missing units of every figure, handed out in order: a unit that waits (``Unit.waits``) only
    once every unit of its figures that does not wait is done, and then before the others; units that
    several figures list (one cache entry) once."""

    def __init__(self, figures: list[_Figure], force: bool) -> None:
        entries: dict[Path, list[tuple[_Figure, int]]] = {}
        for fig in figures:
            # An entry that exists is read once, when the figure is drawn (its compute's ``run_units``,
            # which recomputes one that is corrupt); here only its presence counts.
            missing = [i for i, p in enumerate(fig.paths) if force or not p.exists()]
            fig.left = len(missing)
            fig.leading = sum(not fig.units[i].waits for i in missing)
            for i in missing:
                entries.setdefault(fig.paths[i], []).append((fig, i))
        self.first = [n for n in entries.values() if not self.waits(n)]
        self.held = [n for n in entries.values() if self.waits(n)]
        self.size = len(entries)

    @staticmethod
    def waits(needers: list[tuple[_Figure, int]]) -> bool:
        fig, i = needers[0]
        return fig.units[i].waits

    def next(self) -> list[tuple[_Figure, int]] | None:
        """The next unit to run (its needers), or None when none is ready."""
        for k, needers in enumerate(self.held):
            if all(fig.leading == 0 for fig, _ in needers):
                return self.held.pop(k)
        return self.first.pop(0) if self.first else None

    def done(self, needers: list[tuple[_Figure, int]]) -> None:
        if not self.waits(needers):
            for fig, _ in needers:
                fig.leading -= 1


def make_figures(
    plans: Sequence[tuple[str, Sequence[Unit]]],
    cache_dir: Path,
    draw: Callable[[str, float], None],
    *,
    backend: Backend = Backend(),
    force: bool = False,
    progress: bool | None = None,
) -> None:
    """Run the units of every figure on ``backend`` and call ``draw(name, seconds)`` for each figure
    as soon as its units are all in the cache (``seconds``: the time its units took to compute).

    Units already cached are not run again (all are with ``force``); results are written to
    ``cache_dir`` in this process as they arrive. A unit that several figures list (the same cache
    entry) runs once. A unit that waits (``Unit.waits``) is submitted once its figures' other units
    are done, ahead of the units still queued (``_Queue``). Figures are
    drawn in this process, in the order their units finish. One progress bar on stderr counts the
    units and figures done.

    Parameters
    ----------
    plans : (figure name, its units) pairs; cache_dir : folder of the cache entries.
    draw : called once per figure, in this process, after its units are cached.
    backend : where the units run; force : recompute cached units.
    progress : show the bar (None: when stderr is a terminal).
    """
    figures = [_Figure(name, list(units), [entry_path(cache_dir, u.kind, u.params) for u in units])
               for name, units in plans]
    queue = _Queue(figures, force)
    bar = tqdm(total=queue.size + len(figures), desc="figures", unit="step", leave=False, file=sys.stderr,
               disable=None if progress is None else not progress)
    with bar, _pool(backend) as pool:
        for fig in figures:
            if not fig.left:
                _drawn(fig, draw, bar)
        if pool is None:
            while (needers := queue.next()) is not None:
                fig, i = needers[0]
                _arrived(needers, run_unit(fig.units[i].fn, fig.units[i].args), draw, bar)
                queue.done(needers)
            return
        # At most ``jobs`` units in flight (Dask: every ready unit), so that a unit that becomes ready
        # (the fine-tuning, once the pretraining is done) runs next rather than behind the whole queue.
        capacity = backend.jobs if backend.name == "processes" else queue.size
        futures: dict[Any, list[tuple[_Figure, int]]] = {}
        while True:
            while len(futures) < capacity and (needers := queue.next()) is not None:
                fig, i = needers[0]
                futures[_submit(pool, backend, fig.units[i])] = needers
            if not futures:
                return
            for future in _wait_any(backend, set(futures)):
                needers = futures.pop(future)
                _arrived(needers, future.result(), draw, bar)
                queue.done(needers)


def _submit(pool: Any, backend: Backend, unit: Unit) -> Any:
    if backend.name == "dask":
        return pool.submit(run_unit, unit.fn, unit.args, pure=False)
    return pool.submit(run_unit, unit.fn, unit.args)


def _arrived(needers: list[tuple[_Figure, int]], outcome: tuple[Arrays, float],
             draw: Callable[[str, float], None], bar: tqdm) -> None:
    """Store a unit's result once and count it for every figure that needs it."""
    result, seconds = outcome
    store_entry(needers[0][0].paths[needers[0][1]], result)
    bar.update()
    for fig, _ in needers:
        fig.seconds += seconds
        fig.left -= 1
        if not fig.left:
            _drawn(fig, draw, bar)


def _drawn(fig: _Figure, draw: Callable[[str, float], None], bar: tqdm) -> None:
    with limit_threads(UNIT_THREADS):
        draw(fig.name, fig.seconds)
    bar.update()
