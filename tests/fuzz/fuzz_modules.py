"""The bad-input fuzz of the public callables of ``synthetic.channel``, ``synthetic.linear.learners``, ``synthetic.mlp.learners`` and the
sweep modules that the packages do not export (the exported ones are in ``tests/fuzz/fuzz_synthetic.py``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import strategies as st

import synthetic
from synthetic import sweep, sweep_grid
from tests.fuzz.fuzz_specs import Arg, Spec
from tests.fuzz.fuzz_values import OK, RAISE, Bad, bad_ints, bad_names, bad_reals

TASK = synthetic.LinearTask(d_in=4, d_out=4, spectrum="powerlaw:1", delta_rank=2, n_test=16)
POINT = sweep.SweepPoint(task=TASK, variant="b_only", rank=2, n=6, trials=2, loss="population", seed=0)
_DIR = Path(tempfile.mkdtemp(prefix="lora-asym-fuzz-"))
GRID_FILE = _DIR / "grid.json"
GRID_FILE.write_text(json.dumps({"task": "linear", "variants": ["b_only"], "ranks": [2], "n": [6], "trials": 2}))
(_DIR / "binary.json").write_bytes(b"\xff\xfe\x00junk")
(_DIR / "list.json").write_text("[1, 2]")


def _inside_limit_threads(threads):
    """Enter and leave ``limit_threads(threads)`` (a context manager checks its argument on entry)."""
    with sweep.limit_threads(threads):
        return threads


def _bad_points():
    """Sequences of sweep points that must be refused, naming ``points`` or the point's field."""
    return st.sampled_from([
        Bad("None", None, RAISE), Bad("a point, not a list", POINT, RAISE), Bad("a string", "points", RAISE),
        Bad("list of ints", [1, 2], RAISE), Bad("bad variant", [sweep.SweepPoint(TASK, "c_only", 2, 6, 2, "population")], RAISE),
        Bad("rank too large", [sweep.SweepPoint(TASK, "b_only", 9, 6, 2, "population")], RAISE),
        Bad("huge n", [sweep.SweepPoint(TASK, "b_only", 2, 10**13, 2, "population")], RAISE),
        Bad("huge trials", [sweep.SweepPoint(TASK, "b_only", 2, 6, 10**13, "population")], RAISE),
        Bad("loss the task cannot give", [sweep.SweepPoint(TASK, "b_only", 2, 6, 2, "zero_one")], RAISE),
        Bad("empty list", [], OK),
    ])


def _bad_specs(rebuilds_task: bool = True, uses_seed: bool = True):
    """Point specs (``SweepPoint.spec()``) that are malformed; a spec whose task does not rebuild is
    refused only where the task is rebuilt (``derive_seed`` only hashes it)."""
    good = POINT.spec()
    task_expect = RAISE if rebuilds_task else OK
    return st.sampled_from([
        Bad("None", None, RAISE), Bad("a list", [good], RAISE), Bad("missing n", {k: v for k, v in good.items()
                                                                                   if k != "n"}, RAISE),
        Bad("n a string", {**good, "n": "6"}, RAISE), Bad("negative base seed", {**good, "base_seed": -1}, RAISE if uses_seed else OK),
        Bad("unknown task type", {**good, "task_type": "Nope"}, task_expect),
        Bad("bad task field", {**good, "task": {**good["task"], "d_in": "four"}}, task_expect),
    ])


SPECS = [
    Spec("limit_threads", _inside_limit_threads, lambda: dict(threads=1),
         {"threads": Arg(bad_ints(minimum=1, edges=(1,)))}),
    Spec("run_sweep", sweep.run_sweep, lambda: dict(points=[POINT], backend="serial", threads=1, timeout=5.0),
         {"points": Arg(_bad_points(), aliases=("variant", "rank", "n", "trials", "loss")),
          "backend": Arg(bad_names(sweep.BACKENDS)), "threads": Arg(bad_ints(minimum=1, edges=(1,))),
          "timeout": Arg(bad_reals(positive=True, edges=(0.5,)))}),
    Spec("check_points", sweep_grid.check_points, lambda: dict(points=[POINT]),
         {"points": Arg(_bad_points(), aliases=("variant", "rank", "n", "trials", "loss"))}),
    Spec("derive_seed", sweep_grid.derive_seed, lambda: dict(spec=POINT.spec()),
         {"spec": Arg(_bad_specs(rebuilds_task=False), aliases=("seed", "base_seed", "task_type", "task"))}),
    Spec("task_from_spec", sweep_grid.task_from_spec, lambda: dict(spec=POINT.spec()),
         {"spec": Arg(_bad_specs(uses_seed=False), aliases=("task_type", "task", "d_in"))}),
    Spec("run_point", sweep.run_point, lambda: dict(spec=POINT.spec(), threads=1),
         {"spec": Arg(_bad_specs(), aliases=("seed", "base_seed", "task_type", "task", "d_in")),
          "threads": Arg(bad_ints(minimum=1, edges=(1,)))}),
    Spec("read_grid", sweep_grid.read_grid, lambda: dict(path=GRID_FILE),
         {"path": Arg(st.sampled_from([
             Bad("missing", _DIR / "missing.json", RAISE), Bad("binary", _DIR / "binary.json", RAISE),
             Bad("a JSON list", _DIR / "list.json", RAISE), Bad("a folder", _DIR, RAISE), Bad("None", None, RAISE),
             Bad("an int", 3, RAISE)]), aliases=("grid file", "grid"))}),
]
