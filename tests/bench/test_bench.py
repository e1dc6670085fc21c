"""The benchmark (bench/): it runs, reports, and its equality check can fail. No timing is asserted."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import bench
from bench.channel import BoundsBenchConfig, time_bounds
from bench.compare import MLPBenchConfig, gap_check, reference_mlp_task, time_mlp
from bench.linear_loop import loop_trial
from bench.mlp_loop import build_model, loop_step_flops, loop_trial_losses
from bench.scaling import fit_exponent, format_table, measure_point
from synthetic.mlp import kernel as mlp_kernel
from synthetic.linear.engine import LinearTask, linear_trial_losses
from synthetic.mlp.engine import mlp_trial_losses
from synthetic.mlp.train import init_adapters
from synthetic.provenance import environment, toolkit_version
from synthetic.sweep import limit_threads
from tests.tolerances import tol

#: A flop count agrees with torch's FlopCounterMode exactly (both count 2 per multiply-add).
FLOP_SLACK = 0


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny per-run loops: a second intra-op thread only adds synchronisation on a shared CPU."""
    with limit_threads(1):
        yield


def test_bench_quick_prints_summary_last_and_writes_json(tmp_path, capsys):
    """``python -m bench --quick --json PATH``: status 0, last line the summary, JSON with every figure,
    the configurations, the toolkit and library versions; no temporary file left beside it."""
    path = tmp_path / "bench.json"
    assert bench.main(["--quick", "--threads", "1", "--json", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("summary: MLP batched vs loop") and "linear exact vs Adam" in lines[-1]
    assert any("torch.set_num_threads(1)" in line for line in lines)
    doc = json.loads(path.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]
    assert doc["toolkit"] == {"name": "lora-asymmetry", "version": toolkit_version()}
    assert doc["environment"] == environment() and {"numpy", "torch", "python"} <= set(doc["environment"])
    assert doc["mlp"]["config"]["n"] == MLPBenchConfig.quick().n and "task" in doc["linear"]["config"]
    assert doc["peak"]["gflops"] > 0 and doc["machine"]["torch_threads"] == 1
    kernel = mlp_kernel.available()
    assert doc["machine"]["fused_mlp_kernel"] is kernel
    assert any(("MLP training: fused kernel" if kernel else "MLP training: torch") in line for line in lines)
    for variant in ("lora", "b_only", "a_only"):
        row = doc["mlp"]["rows"][variant]
        for engine in ("loop", "batched"):
            assert row[engine]["seconds_per_trial"] > 0 and row[engine]["gflops"] > 0
        assert row["check"]["ok"]
    for variant in ("b_only", "a_only", "lora", "full"):
        row = doc["linear"]["rows"][variant]
        assert row["exact"]["seconds_per_trial"] > 0 and row["loop"]["seconds_per_trial"] > 0
        assert row["reached"] == row["loop"]["trials"]
    assert [(r["trials"], r["p"]) for r in doc["bounds"]["rows"]] == list(BoundsBenchConfig.quick().cases)
    assert "Gaussian channel T=40 p=4" in lines[-1]
    assert doc["summary"] == lines[-1]


def test_bench_only_bounds_times_the_gaussian_channel(tmp_path, capsys):
    """``--only bounds``: per case the time, the tracemalloc peak, the estimate beside its known value
    (``p/2 log 2`` nats for ``Cov = I``, ``tau = 1``) and which path ran; in the JSON and the summary."""
    path = tmp_path / "bench.json"
    assert bench.main(["--quick", "--only", "bounds", "--threads", "1", "--json", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    doc = json.loads(path.read_text())
    assert set(doc) >= {"bounds", "summary"} and not {"mlp", "linear"} & set(doc)
    assert doc["bounds"]["config"]["cases"] == [list(c) for c in BoundsBenchConfig.quick().cases]
    rows = doc["bounds"]["rows"]
    assert [r["path"] for r in rows] == ["corrected", "fallback"]
    for r in rows:
        assert r["seconds"] > 0 and r["peak_mib"] > 0 and len(r["seconds_runs"]) == 1
        assert r["truth"] == pytest.approx(r["p"] / 2 * np.log(2.0)) and r["low"] <= r["value"] <= r["high"]
    assert lines[-1].startswith("summary: Gaussian channel T=40 p=4") and "target < 2 s" in lines[-1]


def test_bounds_bench_peak_memory_counts_the_call():
    """The tracemalloc peak sees the estimator's own arrays: the fallback's Gram matrices grow as T^2."""
    small, large = time_bounds(BoundsBenchConfig(cases=((20, 30), (160, 200)), n_boot=2, repeats=1))
    assert large["peak_mib"] > 20 * small["peak_mib"]
    assert large["peak_mib"] >= 3 * 160**2 * 8 / 2**20


def test_bad_flags_exit_2_with_one_line(capsys, tmp_path, monkeypatch):
    """A bad flag or value is one error line and status 2, before the benchmark runs: ``--json`` in a
    missing folder, in a folder where no file can be created (``/proc``) or naming a folder."""
    def no_benchmark(args):
        raise AssertionError(f"the benchmark ran for a bad flag: {args}")

    monkeypatch.setattr(bench.cli, "run", no_benchmark)
    for argv, fragment in ((["--threads", "x"], "--threads"), (["--only", "gpu"], "--only"),
                           (["--threads", "0"], "--threads"),
                           (["--json", str(tmp_path / "missing" / "b.json")], "does not exist"),
                           (["--json", "/proc/x.json"], "--json '/proc/x.json': cannot write in folder '/proc'"),
                           (["--json", str(tmp_path)], "is a folder")):
        assert bench.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error" in err and fragment in err, err


def _small_config() -> MLPBenchConfig:
    task = replace(reference_mlp_task(), widths=(8, 16, 3), test_size=256, steps=100)
    return replace(MLPBenchConfig.quick(), task=task, n=12, trials=12, loop_trials=12, variants=("lora",))


def test_equality_check_passes_for_the_engine_and_fails_for_a_different_one():
    """The batched engine and the per-run loop agree; an engine that trains 1 step instead of 100 does not."""
    config = _small_config()
    looped = loop_trial_losses(config.task, "lora", config.rank, config.n, config.loop_trials, loss=config.loss,
                               seed=config.seed)

    def loop(*args, **kwargs):  # the loop's result, computed once for both comparisons
        return looped

    def undertrained(task, *args, **kwargs):
        return mlp_trial_losses(replace(task, steps=1), *args, **kwargs)

    assert time_mlp(config, loop=loop)["lora"]["check"]["ok"]
    check = time_mlp(config, engine=undertrained, loop=loop)["lora"]["check"]
    assert not check["ok"] and abs(check["diff"]) > 2 * check["stderr"]


def test_engine_is_timed_in_a_window_as_long_as_the_loops():
    """Each run times the engine, repeated on the same trials, for at least as long as the loop's run."""
    config = replace(_small_config(), repeats=2)
    gaps = np.random.default_rng(0).standard_normal(config.loop_trials)
    calls = []

    def slow_loop(*args, **kwargs):
        time.sleep(0.3)
        return {"gap": gaps, "train_seconds": np.full(config.loop_trials, 0.001)}

    def fast_engine(*args, **kwargs):
        calls.append(args[4])
        time.sleep(0.01)
        return {"gap": gaps}

    row = time_mlp(config, engine=fast_engine, loop=slow_loop)["lora"]
    assert calls[0] == 2 and set(calls[1:]) == {config.trials}  # warm-up, then the timed windows
    assert sum(row["batched_calls_per_run"]) == len(calls) - 1 and min(row["batched_calls_per_run"]) > 1
    for loop_s, batched_s, k in zip(row["loop_seconds_per_trial_runs"], row["batched_seconds_per_trial_runs"],
                                    row["batched_calls_per_run"]):
        assert batched_s * k * config.trials >= loop_s * config.loop_trials


def test_gap_check_statistic():
    """``|mean_1 - mean_2| <= 2 sqrt(se_1^2 + se_2^2)``: same sample passes, a shift by 3 s.e. fails."""
    gaps = np.random.default_rng(0).standard_normal(100)
    same = gap_check(gaps, gaps)
    assert same["ok"] and same["diff"] == 0.0
    se = same["stderr"]
    assert not gap_check(gaps, gaps + 3 * se)["ok"]
    assert gap_check(gaps, gaps + 1.5 * se)["ok"]
    with pytest.raises(ValueError, match="gaps"):
        gap_check(gaps[:1], gaps)


@pytest.mark.parametrize("variant", ["lora", "b_only", "a_only", "full"])
def test_loop_flop_count_matches_torch_flop_counter(variant):
    """``loop_step_flops`` equals what torch's FlopCounterMode counts for one Adam step of the loop."""
    task = replace(reference_mlp_task(), widths=(6, 9, 7, 3), adapted_layers=(1, 2), perturbed_layers=(1,))
    rank, m = 2, 11
    init = init_adapters(variant, task.init, task.base_weights(), task.adapted_layers, rank,
                         np.random.default_rng(0))
    model = build_model(task, variant, rank, init)
    x, y = torch.randn(m, 6), torch.randn(m, 3)
    with FlopCounterMode(display=False) as counter:
        ((model(x) - y) ** 2).sum(dim=1).mean().backward()
    assert abs(counter.get_total_flops() - loop_step_flops(task, variant, rank, m)) <= FLOP_SLACK


def test_reference_loop_step_is_7_4_mflop_as_torch_counts():
    """At the reference configuration one Adam step of the lora loop is 7.4 MFLOP, as counted by torch."""
    task = reference_mlp_task()
    init = init_adapters("lora", task.init, task.base_weights(), task.adapted_layers, 4, np.random.default_rng(0))
    model = build_model(task, "lora", 4, init)
    with FlopCounterMode(display=False) as counter:
        ((model(torch.randn(256, 64)) - torch.randn(256, 10)) ** 2).sum(dim=1).mean().backward()
    assert loop_step_flops(task, "lora", 4, 256) == counter.get_total_flops()
    assert round(counter.get_total_flops() / 1e6, 1) == 7.4


@pytest.mark.parametrize("variant", ["lora", "b_only", "a_only"])
def test_loop_and_engine_see_the_same_trials(variant):
    """Trial for trial, the per-run loop and the batched engine train the same model (float32)."""
    config = MLPBenchConfig.quick()
    args = (config.task, variant, config.rank, config.n, 3)
    loop = loop_trial_losses(*args, loss="squared", seed=2)
    batched = mlp_trial_losses(*args, loss="squared", seed=2)
    for key in ("train_loss", "test_loss"):
        np.testing.assert_allclose(loop[key], batched[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("variant", ["b_only", "a_only", "lora", "full"])
def test_linear_adam_loop_reaches_the_exact_loss(variant):
    """Adam per trial stops within ``loss_tol`` above the exact minimum (which it cannot beat)."""
    task = LinearTask(d_in=6, d_out=5, delta_rank=2)
    exact = linear_trial_losses(task, variant, 2, 30, 1, loss="population", seed=1)["train_loss"][0]
    loss, steps = loop_trial(task, variant, 2, 30, 0, exact, seed=1, lr=3e-2, loss_tol=1e-3, max_steps=20_000)
    assert steps < 20_000
    assert exact - tol(np.float32)["rtol"] * exact <= loss <= exact + 1e-3


def test_scaling_exponent_and_table():
    """The fitted exponent recovers a power law; one quick point measures time and memory."""
    x = np.array([64, 256, 1024, 4096])
    assert fit_exponent(x, 3e-4 * x**1.25) == pytest.approx(1.25)
    point = measure_point(True, "trials", 4, 1)
    assert point["seconds"] > 0 and point["peak_rss_mib"] >= point["rss_before_mib"] > 0
    table = format_table({"trials": {"points": [point, {**point, "value": 8, "trials": 8}], "exponent": 1.0,
                                     "local": [1.0], "memory_exponent": 0.0}})
    assert table.count("\n| trials |") == 2 and "time ~ trials^1.00" in table
