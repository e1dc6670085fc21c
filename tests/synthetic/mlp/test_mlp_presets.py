"""The named MLPTask presets ``paper_regime`` and ``narrow_readout`` (synthetic.mlp.task), and the call of
the predictor of docs/THEORY.md §1b on each."""

from __future__ import annotations

import numpy as np

from synthetic import predict_asymmetry
from synthetic.mlp.engine import MLPTask
from tests.tolerances import MC_SIGMAS


def test_paper_regime_fields():
    """paper_regime: 64-64-64-64, the square layer 0 adapted and perturbed, inputs Σ_j ∝ j^-2, a shift of
    rank 64 = min(d_in, d_out) of the 64x64 layer, trained as quick(); overrides are applied."""
    task = MLPTask.paper_regime()
    assert task.widths == (64, 64, 64, 64)
    assert task.adapted_layers == task.perturbed_layers == (0,)
    assert task.input_dist == "powerlaw:2"
    assert task.perturbation_rank == 64 == min(task.layer_shapes[0])
    assert (task.test_size, task.steps, task.lr, task.kind) == (10_000, 300, MLPTask.quick().lr, "classification")
    assert MLPTask.paper_regime(steps=7).steps == 7
    delta = task.target_weights()[0] - task.base_weights()[0]
    assert np.linalg.matrix_rank(delta) == 64


def test_narrow_readout_is_the_quick_configuration():
    """narrow_readout is quick() under its own name (quick() stays the benchmark's task); overrides apply."""
    assert MLPTask.narrow_readout() == MLPTask.quick()
    assert MLPTask.narrow_readout().widths == (32, 64, 64, 10)
    assert MLPTask.narrow_readout().adapted_layers == (1,)
    assert MLPTask.narrow_readout(steps=7) == MLPTask.quick(steps=7)


def test_predictor_prefers_b_only_on_paper_regime_and_a_only_on_narrow_readout():
    """docs/THEORY.md §1b, eq. (5): at rank 4, f(Σ, 4) > f(G, 4) on paper_regime (inputs of effective rank
    about 2.4, a wide read-out) and f(G, 4) > f(Σ, 4) on narrow_readout (a 10-class head right after the
    layer's tanh concentrates G), each by more than MC_SIGMAS standard errors of the Haar Monte Carlo.
    This is the predictor's call as measured (4096 samples, 500 draws), not a theorem."""
    paper = predict_asymmetry(MLPTask.paper_regime(), 4, samples=4096, draws=500, seed=0)
    narrow = predict_asymmetry(MLPTask.narrow_readout(), 4, samples=4096, draws=500, seed=0)
    assert paper.prefers == "b_only" and narrow.prefers == "a_only"
    for pred in (paper, narrow):
        assert abs(pred.advantage) > MC_SIGMAS * pred.advantage_stderr
    assert paper.effective_rank_sigma < 3.0 < paper.effective_rank_metric
