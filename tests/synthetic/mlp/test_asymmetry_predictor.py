"""Figure 9 and the measurement behind it: the predictor f(Σ, r) − f(G, r) of docs/THEORY.md §1b
against the measured advantage of b_only over a_only on MLPs (``synthetic.measure_advantage``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import synthetic
from figures import asymmetry_predictor as fig
from synthetic.mlp.task import network_outputs, sample_trials, trial_streams

TASK = synthetic.MLPTask(widths=(5, 8, 4), adapted_layers=(0,), perturbed_layers=(0,), perturbation_rank=5,
                         perturbation_scale=1.0, test_size=300, steps=40, lr=3e-2)


def test_grid_spans_every_factor_the_figure_claims():
    """The fixed grid has at least 24 configurations and every level of every factor: read-outs of 4 to
    128 classes and 8 to 128 regression outputs, three input spectra, three layer positions, both
    activations, ranks 1 to 8; each rank fits its adapted layer."""
    grid = fig.GRID
    assert len(grid) >= 24
    assert {(r["kind"], r["readout"]) for r in grid} == set(fig.READOUTS)
    assert {r["inputs"] for r in grid} == set(fig.INPUTS)
    assert {r["position"] for r in grid} == set(fig.POSITIONS)
    assert {r["activation"] for r in grid} == set(fig.ACTIVATIONS)
    assert {r["rank"] for r in grid} == set(fig.RANKS)
    for row in grid:
        task = fig.task(fig.Config.tiny(), row)
        d_out, d_in = task.layer_shapes[task.adapted_layers[0]]
        assert row["rank"] >= 1 and row["rank"] <= min(d_in, d_out)
        assert task.perturbation_rank == min(d_in, d_out)  # the shift's rank is above every rank compared


def test_measured_advantage_is_the_normalised_difference_of_test_losses():
    """advantage = mean(L_a − L_b) / mean(L_pre − L_full) of the returned per-trial losses, and the
    pretrained loss is the base model's cross-entropy on each trial's own test samples (computed here
    independently from the teacher's outputs)."""
    m = synthetic.measure_advantage(TASK, 2, 64, 3, seed=4)
    losses = m.losses
    expected = (losses["a_only"] - losses["b_only"]).mean() / (losses["pretrained"] - losses["full"]).mean()
    assert m.advantage == pytest.approx(expected, rel=1e-12)
    assert m.advantage_stderr > 0
    for t in range(3):
        x, y = sample_trials(TASK, TASK.test_size, [trial_streams(4, t)["test"]])
        logits = network_outputs(TASK.base_weights(), x[0], TASK.activation)
        ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y[0])).item()
        assert losses["pretrained"][t] == pytest.approx(ce, rel=1e-5)
    assert losses["full"].mean() < losses["pretrained"].mean()


def test_agreement_counts_only_resolved_points_and_names_the_misses():
    """Sign agreement is counted among points measured beyond 2 s.e. of zero; a resolved point of the
    opposite sign is a miss; Spearman's correlation is over all points."""
    rows = [(0.3, 0.2, 0.05), (-0.2, -0.3, 0.1), (0.1, -0.2, 0.05), (0.05, 0.01, 0.05), (-0.1, 0.0, 0.2)]
    points = [{"predicted_advantage": p, "measured_advantage": m, "measured_stderr": s} for p, m, s in rows]
    out = fig.agreement(points)
    assert out["sign_agreement"] == {"agree": 2, "resolved": 3, "total": 5, "misses": [2]}
    expected = spearmanr([r[0] for r in rows], [r[1] for r in rows]).statistic
    assert out["spearman"] == pytest.approx(expected)


def test_tiny_figure_records_every_point_and_states_the_agreement(tmp_path):
    """The JSON has one point per configuration with its config, predicted and measured advantage and
    standard error; the caption states the sign agreement and the Spearman correlation as measured."""
    import json

    config = fig.Config.tiny()
    paths = fig.make(tmp_path, config=config)
    data = json.loads(paths["json"].read_text())["data"]
    assert len(data["points"]) == len(config.points)
    for point, i in zip(data["points"], config.points):
        assert point["config"] == fig.GRID[i]
        for key in ("predicted_advantage", "measured_advantage", "measured_stderr"):
            assert np.isfinite(point[key])
    caption = paths["txt"].read_text()
    sign = data["sign_agreement"]
    assert f"agrees with the measured one in {sign['agree']} of the {sign['resolved']} points" in caption
    assert f"{data['spearman']:.2f}" in caption
