"""Sweeps (synthetic.sweep): seeds from the configuration, identical numbers on every backend."""

from __future__ import annotations

import csv
import dataclasses
import json
import socket
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given

from synthetic.linear.engine import LinearTask
from synthetic.montecarlo import measure_gap
from synthetic.provenance import environment, toolkit_version
import synthetic.sweep
import synthetic.sweep_files
from synthetic.sweep import (
    GRID_KEYS,
    Grid,
    SweepPoint,
    _Parser,
    add_arguments,
    blas_threads,
    check_point,
    derive_seed,
    limit_threads,
    main,
    meta_path,
    read_grid,
    run_point,
    run_sweep,
)
from synthetic.sweep_files import write_rows
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


# --- bad grids, unreachable schedulers, huge counts: one line, exit status 2 ---------------------

def _status_and_err(argv, capsys):
    try:
        status = main(_parse(argv))
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.err, captured.out


@pytest.mark.parametrize(("key", "value"), [("task_fields", 5), ("task_fields", (6, 5)), ("variants", 2),
                                            ("ranks", ("2",)), ("trials", 2.0), ("task", None)])
def test_grid_refuses_a_wrong_type_naming_the_key(key, value):
    """``Grid`` checks each key's type on construction: a ValueError that names the key, never a
    TypeError such as "'int' object is not iterable"."""
    with pytest.raises(ValueError, match=key):
        Grid(**{key: value})


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_is_one_line_after_the_timeout(capsys):
    """A Dask scheduler address where nothing listens (a freed loopback port): after ``--timeout``
    seconds, one error line naming the scheduler and the timeout, exit status 2 (no traceback)."""
    pytest.importorskip("dask.distributed")
    address = f"tcp://127.0.0.1:{_free_loopback_port()}"
    start = time.perf_counter()
    status, err, out = _status_and_err(["--backend", "dask", "--scheduler", address, "--timeout", "0.5",
                                        "--trials", "2", "--n", "4"], capsys)
    assert time.perf_counter() - start < 5
    assert status == 2 and err.count("\n") == 1 and out == "", err
    assert f"scheduler {address!r} did not answer within timeout = 0.5 s" in err
    with pytest.raises(ValueError, match="scheduler"):
        run_sweep(POINTS[:1], backend="dask", scheduler=address, timeout=0.3)


@pytest.mark.parametrize("timeout", ["0", "-2", "nan", "inf", "1e400"])
def test_timeout_must_be_positive_and_finite(timeout, capsys):
    """``--timeout`` is a positive, finite number of seconds: anything else is one line naming it."""
    status, err, _ = _status_and_err(["--timeout", timeout], capsys)
    assert status == 2 and err.count("\n") == 1 and "--timeout" in err, err
    with pytest.raises(ValueError, match="timeout"):
        run_sweep(POINTS, timeout=float(timeout))


@pytest.mark.parametrize(("grid", "names", "flags"), [
    ({"n": [8, 10**13]}, "n = 10000000000000 needs", ["--n", "8", str(10**13)]),
    ({"ranks": [1, 2, 7]}, "rank 7 exceeds", ["--ranks", "1", "2", "99"]),
    ({"variants": ["b_only", "a_only", "lora", "al"]}, "variant 'al'", ["--variants", "b_only", "al"]),
    ({"trials": 10**12}, "trials = 1000000000000 needs", ["--trials", str(10**12)]),
    ({"trials": 2**60}, "trials must be <= 9007199254740992", ["--trials", str(2**60)]),
    ({"loss": "clipped", "task_fields": {"clip": None}}, "loss 'clipped' needs", ["--loss", "cross_entropy"]),
])
def test_every_point_is_checked_before_any_runs(grid, names, flags, monkeypatch, capsys):
    """A grid with a bad point, late or everywhere (a count too large for memory or float64, a rank
    too wide, an unknown variant, a loss the task cannot give), fails before its first point runs: no
    ``measure_gap`` call, a ValueError naming the argument and the point; on the command line one
    error line and status 2."""
    calls = []
    monkeypatch.setattr(synthetic.sweep, "measure_gap", lambda *a, **k: calls.append(a))
    grid = Grid(**{"task_fields": {"d_in": 6, "d_out": 5}, "ranks": (1,), "n": (8,), "trials": 3, **grid})
    with pytest.raises(ValueError, match=f"{names}.*points\\[\\d+\\] of"):
        run_sweep(grid.points())
    status, err, _ = _status_and_err(["--ranks", "1", "--trials", "3", "--n", "8", *flags], capsys)
    assert status == 2 and err.count("\n") == 1 and "points[" in err, err
    assert calls == []


@pytest.mark.parametrize("point", [
    SweepPoint(TASK, "b_only", 2, 8, 10**12, "population"),
    SweepPoint(TASK, "b_only", 2, 10**12, 3, "population"),
    SweepPoint(TASK, "a_only", 9, 8, 3, "population"),
    SweepPoint(TASK, "b_only", 2, 8, 3, "zero_one"),
    SweepPoint(TASK, "b_only", 2, 8, 3, "population", q_bits=40),
    SweepPoint(TASK, "c_only", 2, 8, 3, "population"),
])
def test_check_point_refuses_what_measure_gap_refuses(point):
    """``check_point`` (the sweep's check before running) refuses the points that ``measure_gap``
    itself refuses, with the same argument named first."""
    with pytest.raises(ValueError) as ours:
        check_point(point)
    with pytest.raises(ValueError) as theirs:
        measure_gap(point.task, point.variant, point.rank, point.n, point.trials, loss=point.loss,
                    q_bits=point.q_bits, seed=0)
    assert str(ours.value).split()[0].strip("=") == str(theirs.value).split()[0].strip("="), (ours, theirs)


@given(sweep_points())
def test_check_point_accepts_every_valid_point(point):
    """Every valid point (drawn by ``tests.strategies.sweep_points``) passes ``check_point``."""
    check_point(point)


def test_progress_bar_goes_to_stderr_and_leaves_nothing(capsys, tmp_path):
    """With ``progress=True`` a tqdm bar counts the points on stderr and leaves no line behind
    (``leave=False``); the rows are those without it. Off a terminal (``progress=None``, the CLI's
    setting) stderr stays empty, and ``--out`` writes the same JSON as ever."""
    rows = run_sweep(POINTS, progress=True)
    err = capsys.readouterr().err
    assert "sweep:" in err and f"0/{len(POINTS)}" in err and "\n" not in err
    assert rows == run_sweep(POINTS, progress=False) == run_sweep(POINTS)
    assert capsys.readouterr().err == ""
    assert main(_parse(["--variants", "b_only", "--ranks", "1", "--n", "8", "--trials", "3",
                        "--out", str(tmp_path / "rows.json")])) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.count("\n") == 1
    assert len(json.loads((tmp_path / "rows.json").read_text())["rows"]) == 1


# --- the newcomer's items ---------------------------------------------------------------------

EXAMPLE_GRID = Path(__file__).resolve().parents[2] / "docs" / "sweep_grid_example.json"


def test_example_grid_uses_every_key_and_runs(capsys):
    """``docs/sweep_grid_example.json`` sets every grid key, and ``lora-asym sweep --grid`` runs it (at 2
    trials of n = 8): one table line per point of variants x ranks x n."""
    values = read_grid(EXAMPLE_GRID)
    assert list(values) == list(GRID_KEYS)
    grid = Grid(**values)
    assert main(_parse(["--grid", str(EXAMPLE_GRID), "--trials", "2", "--n", "8"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(grid.variants) * len(grid.ranks)


@pytest.mark.parametrize("name", ["rows.txt", "rows", "rows.csv.bak", "rows.jsonl", "rows.tsv"])
def test_out_with_another_suffix_is_refused(name, tmp_path, capsys):
    """``--out`` must end in .json or .csv: another suffix (or none) is one error line and status 2, and
    nothing is written; ``write_rows`` raises ValueError naming the path."""
    status, err, _ = _status_and_err(["--trials", "2", "--out", str(tmp_path / name)], capsys)
    assert status == 2 and err.count("\n") == 1 and "must end in .json or .csv" in err, err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="path"):
        write_rows([], tmp_path / name, config={})


def test_csv_sidecar_is_named_the_same_in_docs_and_code():
    """The sidecar of ``rows.csv`` is ``rows.csv.meta.json``, and no docstring or help calls it
    ``PATH.meta.json``."""
    assert meta_path("out/rows.csv") == Path("out/rows.csv.meta.json")
    parser = _Parser(prog="lora-asym sweep")
    add_arguments(parser)
    texts = [synthetic.sweep.__doc__, synthetic.sweep_files.__doc__, write_rows.__doc__, meta_path.__doc__,
             parser.format_help()]
    assert all("PATH.meta.json" not in t for t in texts)
    assert "rows.csv.meta.json" in synthetic.sweep.__doc__ and "rows.csv.meta.json" in write_rows.__doc__
    assert "PATH.csv.meta.json" in parser.format_help()


def test_columns_are_unique_and_never_double_the_task_prefix():
    """A row has one column per task field, call argument and statistic, none repeated (so none
    overwrites another) and none named ``task_task_*``: the task's ``task_seed`` is ``task_seed``,
    the point's derived seed ``seed``, the sweep's ``base_seed``."""
    mlp = Grid(task="mlp", task_fields={"widths": [4, 5, 3], "adapted_layers": [1], "perturbed_layers": [1],
                                       "perturbation_rank": 1, "test_size": 16, "steps": 2, "task_seed": 7},
               variants=("b_only",), ranks=(1,), n=(8,), trials=2).points()[0]
    for point in (replace(POINTS[0], task=replace(TASK, task_seed=5)), mlp):
        row = run_point(point.spec())
        fields = [f.name for f in dataclasses.fields(point.task)]
        assert len(row) == 1 + len(fields) + 8 + 12
        assert not [c for c in row if c.startswith("task_task_")]
        assert row["task_seed"] == point.task.task_seed and row["seed"] == derive_seed(point.spec())
        assert row["base_seed"] == point.seed


def test_dask_runs_record_the_dask_versions(tmp_path, capsys):
    """Rows a Dask cluster computed record the ``dask`` and ``distributed`` versions in the metadata's
    environment; rows computed without Dask do not claim them."""
    pytest.importorskip("dask.distributed")
    argv = ["--variants", "b_only", "--ranks", "1", "--n", "8", "--trials", "3"]
    assert main(_parse([*argv, "--backend", "dask", "--workers", "1", "--out", str(tmp_path / "d.csv")])) == 0
    env = json.loads(meta_path(tmp_path / "d.csv").read_text())["environment"]
    assert (env["dask"], env["distributed"]) == (version("dask"), version("distributed"))
    assert main(_parse([*argv, "--out", str(tmp_path / "s.json")])) == 0
    assert "dask" not in json.loads((tmp_path / "s.json").read_text())["environment"]
