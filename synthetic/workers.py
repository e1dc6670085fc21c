"""Where work runs: the thread settings every unit of work runs under, and Dask clients.

``limit_threads`` fixes the torch and BLAS thread counts of a block, so that a computation gives
the same bits whichever process or backend runs it (README, "Reproducibility"); ``dask_client``
opens a client of a running scheduler, or of a local cluster, for ``lora-asym sweep`` and
``lora-asym figures``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from threadpoolctl import threadpool_info, threadpool_limits

from theory.validation import as_int


def blas_threads() -> int | None:
    """Threads of the first loaded OpenBLAS, NumPy's or SciPy's (None if there is none).

    Infrastructure: read through ``threadpoolctl``; the benchmark report records it (README, "Performance").
    """
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
    restores it, and a block that asks for a different count meanwhile is an error
    (``ValueError``). Infrastructure: what makes every backend give the same numbers bit for bit
    (README, "Sweeps on a cluster"); the benchmark runs under it too (README, "Performance").
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


def exit_with_parent(parent: int, poll_seconds: float = 1.0) -> None:
    """Initializer of a worker process: end it when its parent process ``parent`` is gone.

    A worker of ``concurrent.futures.ProcessPoolExecutor`` holds both ends of its task queue, so it
    never sees the queue close when the parent is killed (SIGKILL, an out-of-memory kill) and would
    wait forever; a daemon thread checks every ``poll_seconds`` that the parent is still its parent
    and exits the process otherwise. Infrastructure of ``lora-asym figures`` and ``lora-asym sweep``
    (README, "The command line": an interrupted run resumes).
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (its type's name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int, timeout: float) -> Iterator[Any]:
    """A ``dask.distributed.Client``: of the running scheduler at ``scheduler`` (waiting at most
    ``timeout`` seconds for it to answer), else of a ``LocalCluster`` of ``workers`` worker threads
    in this process; closed, with the local cluster, when the block ends.

    Infrastructure: the Dask backend of ``lora-asym sweep`` and ``lora-asym figures`` (README,
    "Sweeps on a cluster"). A scheduler that does not answer, or an address that is not one, is a
    ``ValueError`` naming it; without ``dask[distributed]`` installed, a ``ValueError`` saying so.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ValueError("backend 'dask' needs dask[distributed] (pip install 'lora-asymmetry[dask]')") from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=timeout)
        except OSError as exc:  # TimeoutError is an OSError
            raise ValueError(f"scheduler {scheduler!r} did not answer within timeout = {timeout:g} s; "
                             f"is `dask scheduler` running there? ({one_line(exc)})") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"scheduler {scheduler!r} is not a Dask scheduler address, e.g. tcp://host:8786 "
                             f"({one_line(exc)})") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
