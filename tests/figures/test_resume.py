"""A run killed with SIGKILL loses nothing it finished: the rerun completes and reuses its entries,
and no worker process outlives the run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from figures import asymmetry_map

#: Cache entries that must exist before the run is killed (the figure has 84 in quick mode).
ENTRIES_BEFORE_KILL = 10
STARTUP_TIMEOUT_S = 120
#: Seconds the killed run's worker processes may take to notice and exit (they poll every second).
WORKER_EXIT_S = 15


def _cli(out):
    return [sys.executable, "-m", "figures.cli", "figures", "--quick", "--only", "asymmetry_map", "--out", str(out),
            "--jobs", "2"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigkill_then_rerun_completes_and_reuses_finished_work(tmp_path):
    """Kill `lora-asym figures --quick --jobs 2` partway; its two worker processes exit, the rerun finishes,
    keeps every finished entry, all files parse."""
    out = tmp_path / "out"
    cache = out / ".cache"
    proc = subprocess.Popen(_cli(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while len(list(cache.glob("*.npz"))) < ENTRIES_BEFORE_KILL:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no cache entries appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + WORKER_EXIT_S
    while _group_alive(proc.pid):  # the workers are in the killed run's process group
        assert time.monotonic() < deadline, "a worker process outlived the killed run"
        time.sleep(0.1)
    finished = {p: p.stat().st_mtime_ns for p in cache.glob("*.npz")}
    assert len(finished) >= ENTRIES_BEFORE_KILL
    assert not (out / "asymmetry_map.json").exists()
    for entry in finished:  # whatever was on disk at the kill is whole
        np.load(entry, allow_pickle=False).close()

    rerun = subprocess.run(_cli(out), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items()), "a finished entry was recomputed"
    config = asymmetry_map.Config.quick()  # one entry per (α, alignment) cell and per α of the random-orientation row
    assert len(list(cache.glob("*.npz"))) == len(config.alphas) * (len(config.alignments) + 1)
    data = json.loads((out / "asymmetry_map.json").read_text())
    assert np.isfinite(np.array(data["data"]["gap"])).all()
    for path in out.glob("*.json"):
        json.loads(path.read_text())
