"""measure_gap: records, summary, intervals, reproducibility, CSV/JSON and dispatch."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from synthetic.linear.engine import LinearTask
from synthetic.montecarlo import GapResult, mean_interval, measure_gap
from tests.tolerances import tol

TASK = replace(LinearTask.quick(), n_test=500)


def test_mean_interval_is_the_student_t_interval():
    """mean ± t_{0.975, m−1} s/√m: for (1, 3), mean 2, stderr 1, t_{0.975,1} = 12.7062."""
    mean, stderr, low, high = mean_interval([1.0, 3.0])
    assert (mean, stderr) == (2.0, 1.0)
    assert_allclose([low, high], [2 - 12.706204736, 2 + 12.706204736], rtol=1e-9)
    values = np.random.default_rng(0).standard_normal(50)
    _, se, low, high = mean_interval(values)
    assert_allclose(high - low, 2 * stats.t.ppf(0.975, 49) * values.std(ddof=1) / np.sqrt(50), **tol())


def test_records_and_summary_agree():
    """One record per trial with gap = test − train, the call and task fields; the summary's mean
    gap is the mean of the records' gaps and its interval contains it."""
    result = measure_gap(TASK, "lora", 2, 24, 6, loss="clipped", q_bits=5, seed=3)
    assert isinstance(result, GapResult)
    assert [r["trial"] for r in result.records] == list(range(6))
    row = result.records[0]
    assert row["variant"] == "lora" and row["rank"] == 2 and row["n"] == 24 and row["q_bits"] == 5 and row["seed"] == 3
    assert row["task_d_in"] == TASK.d_in and row["task_clip"] == TASK.clip
    assert row["storage_bits"] == 5 * 2 * (TASK.d_in + TASK.d_out) + 64
    gaps = np.array([r["gap"] for r in result.records])
    assert_allclose(gaps, [r["test_loss"] - r["train_loss"] for r in result.records], **tol())
    s = result.summary
    assert s.trials == 6
    assert_allclose(s.mean_gap, gaps.mean(), **tol())
    assert s.ci95_gap[0] < s.mean_gap < s.ci95_gap[1]
    assert_allclose(s.mean_test_loss, np.mean([r["test_loss"] for r in result.records]), **tol())


def test_same_seed_same_result_and_params_on_request():
    """The same seed gives identical records; return_params keeps (trials, N) parameters."""
    one = measure_gap(TASK, "b_only", 3, 20, 4, loss="population", seed=9, return_params=True)
    two = measure_gap(TASK, "b_only", 3, 20, 4, loss="population", seed=9)
    assert one.records == two.records
    assert one.arrays["params"].shape == (4, 3 * TASK.d_out)
    assert one.arrays["frozen"].shape == (4, 3, TASK.d_in)
    assert two.arrays == {}


def test_csv_and_json_round_trip(tmp_path):
    """CSV has one row per trial with the record's numbers; JSON carries the task config, the
    call with its seed, the summary and the records."""
    result = measure_gap(TASK, "a_only", 2, 16, 3, loss="population", seed=4)
    with result.to_csv(tmp_path / "gap.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert [float(r["gap"]) for r in rows] == [r["gap"] for r in result.records]
    doc = json.loads(result.to_json(tmp_path / "gap.json").read_text())
    assert doc["task"]["type"] == "LinearTask" and doc["task"]["spectrum"] == TASK.spectrum
    assert doc["call"]["seed"] == 4 and doc["call"]["variant"] == "a_only"
    assert doc["summary"]["mean_gap"] == result.summary.mean_gap
    assert doc["records"] == json.loads(json.dumps(result.records))


@pytest.mark.parametrize(
    ("task", "kwargs", "message"),
    [
        (TASK, {"trials": 1}, "trials must be >= 2"),
        (object(), {}, "task must be a LinearTask or an MLPTask"),
        (TASK, {"loss": "zero_one"}, "loss 'zero_one'"),
        (TASK, {"variant": "ab"}, "variant 'ab'"),
        (TASK, {"n": 0}, "n must be >= 1"),
        (TASK, {"rank": 17}, "rank 17 exceeds min"),
    ],
)
def test_invalid_calls_raise_naming_the_argument(task, kwargs, message):
    """measure_gap rejects bad trials, task types, losses, variants, n and ranks by name."""
    call = {"variant": "b_only", "rank": 2, "n": 8, "trials": 3, "loss": "population", "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        measure_gap(task, call.pop("variant"), call.pop("rank"), call.pop("n"), call.pop("trials"), **call)


def test_dispatches_an_mlp_task_to_the_mlp_engine():
    """An MLPTask goes to synthetic.mlp.mlp_trial_losses and comes back as the same tidy records."""
    mlp = pytest.importorskip("synthetic.mlp")
    task = mlp.MLPTask(widths=(4, 6, 3), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2, test_size=64, steps=3)
    result = measure_gap(task, "b_only", 2, 10, 2, loss="zero_one", seed=0)
    assert len(result.records) == 2 and result.records[0]["task_widths"] == [4, 6, 3]
    assert all(0.0 <= r["test_loss"] <= 1.0 for r in result.records)
