"""Figures on several workers (``figures.parallel``, ``lora-asym figures --jobs/--backend``): the same
JSON whatever runs the units, each unit cached once, and a clear error for a wrong cluster."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from figures import cli, parallel, registry

#: A linear, an MLP and a bounds figure: their units cover every kind of engine.
NAMES = ("asymmetry_gap", "rank_doubling", "bounds_vs_n_mlp")


def _make(out: Path, backend: parallel.Backend, names=NAMES) -> dict[str, dict]:
    modules = {n: registry.load(n) for n in names}
    configs = {n: modules[n].Config.tiny() for n in names}
    drawn: list[str] = []

    def draw(name: str, seconds: float) -> None:
        assert seconds >= 0
        modules[name].make(out, seed=1, config=configs[name])
        drawn.append(name)

    plans = [(n, modules[n].units(configs[n], 1)) for n in names]
    parallel.make_figures(plans, out / ".cache", draw, backend=backend, progress=False)
    assert sorted(drawn) == sorted(names)
    return {n: _numbers(out / f"{n}.json") for n in names}


def _numbers(path: Path) -> dict:
    data = json.loads(path.read_text())
    data.pop("environment")  # library versions; everything else is the figure's
    return data


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("serial"), parallel.Backend("serial"))


def test_processes_give_the_serial_json_bit_for_bit(serial, tmp_path):
    """Two spawned worker processes: every figure's JSON (numbers and caption) equals the serial one."""
    assert _make(tmp_path, parallel.Backend("processes", jobs=2)) == serial


def test_dask_gives_the_serial_json_bit_for_bit(serial, tmp_path):
    """A local Dask cluster of three workers: the same JSON as the serial run."""
    pytest.importorskip("dask.distributed")
    assert _make(tmp_path, parallel.Backend("dask", jobs=3)) == serial


def test_make_and_the_unit_runner_agree(serial, tmp_path):
    """A figure's own ``make`` (its units run in this process, uncached) gives the scheduled JSON."""
    module = registry.load("asymmetry_gap")
    module.make(tmp_path, seed=1, config=module.Config.tiny())
    assert _numbers(tmp_path / "asymmetry_gap.json") == serial["asymmetry_gap"]


def test_each_unit_runs_once_and_a_rerun_runs_none(tmp_path, monkeypatch):
    """Every unit is cached as it arrives; a second run finds them all and runs no unit."""
    calls = []
    original = parallel.run_unit
    monkeypatch.setattr(parallel, "run_unit", lambda fn, args: calls.append(fn) or original(fn, args))
    _make(tmp_path, parallel.Backend("serial"), names=("asymmetry_gap",))
    units = registry.load("asymmetry_gap").units(registry.load("asymmetry_gap").Config.tiny(), 1)
    assert len(calls) == len(units) == len(list((tmp_path / ".cache").glob("*.npz")))
    calls.clear()
    _make(tmp_path, parallel.Backend("serial"), names=("asymmetry_gap",))
    assert calls == []


def test_every_figure_computes_from_the_cache_its_units_filled(tmp_path, monkeypatch):
    """Every registered figure lists distinct units; once they are cached, ``compute`` runs none."""
    for name in registry.FIGURES:
        module = registry.load(name)
        units = module.units(module.Config.tiny(), 0)
        assert units and all(isinstance(u, parallel.Unit) for u in units), name
        assert len({(u.kind, json.dumps(u.params, sort_keys=True, default=str)) for u in units}) == len(units), name
        parallel.run_units(units, tmp_path / name)
    monkeypatch.setattr(parallel, "run_unit", lambda fn, args: pytest.fail(f"{fn.__name__} ran again"))
    for name in registry.FIGURES:
        module = registry.load(name)
        assert module.compute(module.Config.tiny(), 0, tmp_path / name), name


def test_dask_workers_running_other_code_are_refused(monkeypatch, tmp_path):
    """A cluster whose workers run other toolkit code (another fingerprint) is a ValueError, before any unit runs."""
    pytest.importorskip("dask.distributed")
    real = parallel.code_fingerprint

    def fingerprint() -> str:  # the local cluster's workers are threads of this process
        return real() if threading.current_thread() is threading.main_thread() else "other code"

    monkeypatch.setattr(parallel, "code_fingerprint", fingerprint)
    with pytest.raises(ValueError, match="run other toolkit code"):
        _make(tmp_path, parallel.Backend("dask", jobs=1), names=("asymmetry_gap",))
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize(("argv", "fragment"), [
    (["figures", "--jobs", "0"], "--jobs: must be a positive integer, got 0"),
    (["figures", "--jobs", "two"], "--jobs: must be a positive integer, got 'two'"),
    (["figures", "--backend", "threads"], "invalid choice: 'threads'"),
    (["figures", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --backend dask"),
    (["figures", "--backend", "dask", "--timeout", "0"], "--timeout: must be a positive number of seconds"),
])
def test_bad_parallel_flags_give_one_error_line_and_status_2(capsys, argv, fragment):
    """A bad --jobs, --backend, --scheduler or --timeout: one error line naming the flag, status 2."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == cli.EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], lines


def test_unreachable_scheduler_is_one_error_line(capsys, tmp_path):
    """A scheduler that does not answer: one error line naming it, status 2, no figure written."""
    pytest.importorskip("dask.distributed")
    argv = ["figures", "--only", "asymmetry_gap", "--out", str(tmp_path), "--backend", "dask",
            "--scheduler", "tcp://127.0.0.1:9", "--timeout", "1"]
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == cli.EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "tcp://127.0.0.1:9" in lines[0], lines
    assert not list(tmp_path.glob("*.json"))


def test_units_shared_by_two_figures_run_once_and_waiting_units_run_when_ready(tmp_path, monkeypatch):
    """The foundation figures list the same pretraining and variant units: one run makes each once.
    A unit that waits for the pretrained model (``Unit.waits``) runs only after its figures' other
    units, so that no worker idles on the pretraining's lock, and then before the units still queued,
    another figure's included, since it is on the critical path."""
    calls = []
    original = parallel.run_unit
    monkeypatch.setattr(parallel, "run_unit", lambda fn, args: calls.append(fn.__name__) or original(fn, args))
    names = ("foundation_rule", "asymmetry_gap", "foundation_variants")
    _make(tmp_path, parallel.Backend("serial"), names=names)
    tasks = registry.load("foundation_rule").Config.tiny().tasks
    gap_units = len(registry.load("asymmetry_gap").units(registry.load("asymmetry_gap").Config.tiny(), 1))
    assert calls.count("pretraining_summary") == 1
    assert calls.count("variant_runs") == calls.count("rule_runs") == len(tasks)
    assert len(calls) == 1 + gap_units + 2 * len(tasks)
    assert calls[0] == "pretraining_summary"
    assert set(calls[1:1 + 2 * len(tasks)]) == {"variant_runs", "rule_runs"}


def test_waiting_units_wait_for_their_figure_on_worker_processes(tmp_path, monkeypatch):
    """On two worker processes the fine-tuning units are submitted only after the pretraining unit is
    done, and at most two units are in flight."""
    submitted = []
    original = parallel._submit

    def submit(pool, backend, unit):  # the unit's name, and how many results were cached when it left
        submitted.append((unit.fn.__name__, len(list((tmp_path / ".cache").glob("*.npz")))))
        return original(pool, backend, unit)

    monkeypatch.setattr(parallel, "_submit", submit)
    _make(tmp_path, parallel.Backend("processes", jobs=2), names=("foundation_variants",))
    assert submitted[0] == ("pretraining_summary", 0)
    assert all(name == "variant_runs" and cached >= 1 for name, cached in submitted[1:])
