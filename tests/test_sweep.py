"""Sweeps (synthetic.sweep): seeds from the configuration, identical numbers on every backend."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given

from synthetic.linear import LinearTask
from synthetic.montecarlo import measure_gap
from synthetic.provenance import environment, toolkit_version
from synthetic.sweep import (
    Grid,
    SweepPoint,
    _Parser,
    add_arguments,
    blas_threads,
    derive_seed,
    limit_threads,
    main,
    meta_path,
    run_point,
    run_sweep,
)
from tests.strategies import sweep_points

TASK = LinearTask(d_in=6, d_out=5, delta_rank=2, noise_var=0.5, clip=4.0, n_test=128)
POINTS = [SweepPoint(TASK, v, 2, n, 12, "population", seed=3) for v in ("b_only", "a_only") for n in (8, 16)]


@given(sweep_points())
def test_seed_derives_from_configuration_only(point):
    """The seed is a function of (base seed, task, n, loss): not of variant, rank, q_bits or trials."""
    seed = derive_seed(point.spec())
    assert 0 <= seed < 2**32
    other = replace(point, variant="full" if point.variant != "full" else "lora", rank=1, trials=point.trials + 3)
    assert derive_seed(other.spec()) == seed
    assert derive_seed(replace(point, n=point.n + 1).spec()) != seed
    assert derive_seed(replace(point, seed=point.seed + 1).spec()) != seed


def test_negative_or_fractional_base_seed_is_a_value_error_naming_seed():
    """A base seed must be an integer >= 0: ``SweepPoint`` and ``derive_seed`` refuse -1 and 1.5 with
    a ValueError naming ``seed``, instead of passing them on to NumPy's SeedSequence."""
    for seed, message in ((-1, r"^seed must be >= 0, got -1$"), (1.5, r"^seed must be an integer, got 1\.5$")):
        with pytest.raises(ValueError, match=message):
            SweepPoint(TASK, "b_only", 2, 8, 12, "population", seed=seed)
        with pytest.raises(ValueError, match=message):
            derive_seed({**POINTS[0].spec(), "base_seed": seed})


@given(sweep_points())
def test_a_point_is_measure_gap_at_its_derived_seed(point):
    """``run_point`` reports exactly the summary of ``measure_gap`` called with the derived seed."""
    row = run_point(point.spec())
    want = measure_gap(point.task, point.variant, point.rank, point.n, point.trials, loss=point.loss,
                       seed=derive_seed(point.spec())).summary
    assert row["seed"] == derive_seed(point.spec())
    assert row["mean_gap"] == want.mean_gap and row["stderr_gap"] == want.stderr_gap
    assert (row["ci95_gap_low"], row["ci95_gap_high"]) == want.ci95_gap


@pytest.mark.slow  # two spawned workers import torch: 5-15 s on 2 shared cores
def test_processes_backend_equals_serial_bit_for_bit():
    """Two spawned worker processes give the serial numbers exactly, in the order of the points."""
    serial = run_sweep(POINTS)
    assert run_sweep(POINTS, backend="processes", workers=2) == serial
    assert [r["variant"] for r in serial] == [p.variant for p in POINTS]


def test_dask_local_cluster_equals_serial_bit_for_bit():
    """A 2-worker Dask LocalCluster (worker threads) gives the serial numbers exactly; the cluster is closed."""
    pytest.importorskip("dask.distributed")
    serial = run_sweep(POINTS)
    assert run_sweep(POINTS, backend="dask", workers=2) == serial


def test_limit_threads_sets_and_restores():
    """Inside ``limit_threads(1)`` torch (and OpenBLAS, when loaded) use one thread; outside, as before."""
    before_torch, before_blas = torch.get_num_threads(), blas_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        assert blas_threads() in (None, 1)
    assert torch.get_num_threads() == before_torch and blas_threads() == before_blas
    with limit_threads(1), limit_threads(1):  # nested (or concurrent) blocks share the setting
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before_torch
    with limit_threads(1), pytest.raises(ValueError, match="conflicts"):
        with limit_threads(2):
            pass


def test_grid_is_the_product_and_mlp_grids_work():
    """A grid is variants x ranks x n; MLP grids default to the task kind's loss and run."""
    points = Grid(variants=("b_only", "lora"), ranks=(1, 2, 3), n=(10, 20)).points()
    assert len(points) == 12 and {p.loss for p in points} == {"population"}
    mlp = Grid(task="mlp", task_fields={"widths": [4, 5, 3], "adapted_layers": [1], "perturbed_layers": [1],
                                       "perturbation_rank": 1, "test_size": 32, "steps": 3},
               variants=("b_only",), ranks=(1,), n=(8,), trials=2).points()
    assert mlp[0].loss == "zero_one"
    row = run_sweep(mlp)[0]
    assert row["task_type"] == "MLPTask" and np.isfinite(row["mean_gap"])


def _parse(argv):
    parser = _Parser(prog="lora-asym sweep")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_grid_file_and_flags(tmp_path, capsys):
    """A grid file gives the points, flags override it, and ``--out`` writes CSV or JSON rows."""
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"task": "linear", "task_fields": {"d_in": 6, "d_out": 5}, "variants": ["b_only"],
                                "ranks": [1, 2], "n": [8], "trials": 5, "seed": 1}))
    assert main(_parse(["--grid", str(grid), "--trials", "4", "--out", str(tmp_path / "rows.json")])) == 0
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert [(r["rank"], r["trials"], r["base_seed"]) for r in rows] == [(1, 4, 1), (2, 4, 1)]
    assert main(_parse(["--grid", str(grid), "--out", str(tmp_path / "rows.csv")])) == 0
    assert (tmp_path / "rows.csv").read_text().count("\n") == 3
    assert main(_parse(["--variants", "b_only", "--ranks", "1", "--trials", "3"])) == 0
    assert "b_only" in capsys.readouterr().out


def test_results_files_record_versions_config_and_seeds(tmp_path, capsys):
    """``--out rows.json`` is one document with the toolkit and library versions, the grid and backend,
    and rows that carry their seeds; ``--out rows.csv`` is plain CSV (read back by ``csv.DictReader``
    with the same values) beside ``rows.csv.meta.json`` with the same provenance. No temporary file
    is left behind (the writes are atomic)."""
    argv = ["--variants", "b_only", "lora", "--ranks", "1", "--n", "8", "--trials", "3", "--seed", "5"]
    assert main(_parse([*argv, "--out", str(tmp_path / "rows.json")])) == 0
    doc = json.loads((tmp_path / "rows.json").read_text())
    assert doc["toolkit"] == {"name": "lora-asymmetry", "version": toolkit_version()}
    assert doc["environment"] == environment() and {"numpy", "torch", "python"} <= set(doc["environment"])
    assert doc["config"]["backend"] == "serial" and doc["config"]["threads"] == 1
    grid = Grid(variants=("b_only", "lora"), ranks=(1,), n=(8,), trials=3, seed=5)
    assert Grid(**{k: tuple(v) if isinstance(v, list) else v for k, v in doc["config"]["grid"].items()}) == grid
    assert [r["seed"] for r in doc["rows"]] == [derive_seed(p.spec()) for p in grid.points()]
    assert {r["base_seed"] for r in doc["rows"]} == {5}

    assert main(_parse([*argv, "--out", str(tmp_path / "rows.csv")])) == 0
    assert "rows.csv.meta.json" in capsys.readouterr().out
    with (tmp_path / "rows.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [int(r["seed"]) for r in table] == [r["seed"] for r in doc["rows"]]
    assert [float(r["mean_gap"]) for r in table] == [r["mean_gap"] for r in doc["rows"]]
    meta = json.loads(meta_path(tmp_path / "rows.csv").read_text())
    provenance = ("toolkit", "environment", "config")
    assert {k: meta[k] for k in provenance} == {k: doc[k] for k in provenance}
    assert meta["rows_file"] == "rows.csv" and meta["columns"] == list(table[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "rows.csv.meta.json", "rows.json"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "cloud"], "invalid choice"),
        (["--ranks", "two"], "invalid int value"),
        (["--variants", "c_only"], "variant"),
        (["--ranks", "99"], "rank 99 exceeds"),
        (["--trials", "1"], "trials must be >= 2"),
        (["--scheduler", "tcp://nowhere:1"], "--scheduler needs --backend dask"),
        (["--grid", "/no/such/grid.json"], "--grid"),
        (["--out", "/no/such/folder/rows.csv"], "--out '/no/such/folder/rows.csv'"),
        (["--out", "/proc/rows.json"], "--out '/proc/rows.json'"),
    ],
)
def test_bad_flags_print_one_line_and_exit_2(argv, message, capsys):
    """Every bad flag or value is one error line on stderr and exit status 2, never a traceback."""
    try:
        status = main(_parse(argv))
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1, err


def test_run_sweep_validates_its_arguments():
    """Unknown backends, a scheduler without Dask, and non-points raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="backend"):
        run_sweep(POINTS, backend="mpi")
    with pytest.raises(ValueError, match="scheduler"):
        run_sweep(POINTS, backend="serial", scheduler="tcp://x:1")
    with pytest.raises(ValueError, match=r"points\[0\]"):
        run_sweep([("b_only", 2)])
    with pytest.raises(ValueError, match="workers"):
        run_sweep(POINTS, workers=0)
    assert run_sweep([]) == []
