"""synthetic.linear.learners and synthetic.mlp.learners: batched supersample experiments and MLP training from a shared init."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from synthetic.supersample import Supersample
from synthetic.linear.fit import fit_variant, update_from
from synthetic.linear.learners import _clipped_sample_losses, linear_supersample
from synthetic.mlp.learners import _mlp_sample_losses, _mlp_shared_init, mlp_fit, mlp_supersample
from synthetic.streams import STREAM_SELECTOR, STREAM_SUPERSAMPLE, SUPERSAMPLE_TRIAL_OFFSET
from synthetic.streams import mlp_stream as _mlp_stream
from synthetic.supersample import discretize
from synthetic.linear.engine import LinearTask, frozen_factors, sample_training_sets, stream_rng
from synthetic.mlp.engine import MLPTask, sample_data
from synthetic.quantize import quantize
from tests.strategies import seeds
from tests.tolerances import MC_SIGMAS, tol

TASK = replace(LinearTask.quick(), d_in=6, d_out=5, delta_rank=3, frozen="shared", clip=3.0)
MLP = MLPTask(widths=(5, 6, 6, 3), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2,
              test_size=200, steps=10, lr=1e-2)
from theory.variants import VARIANTS  # noqa: E402 - the paper's vocabulary


@given(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=20), st.floats(0.5, 10.0), st.integers(1, 31))
def test_discretize_rounds_up_onto_the_grid(losses, clip, levels):
    """``ceil(L loss / c) / L``: on the grid {0, 1/L, ..., 1}, never below loss / c, less than 1/L above."""
    loss = np.minimum(np.array(losses), clip)
    out = discretize(loss, clip, levels)
    assert_allclose(out * levels, np.round(out * levels), atol=1e-12)
    assert np.all(out >= loss / clip - 1e-12) and np.all(out < loss / clip + 1.0 / levels + 1e-12)
    assert np.all((0 <= out) & (out <= 1)) and np.unique(out).size <= levels + 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_linear_supersample_runs_equal_direct_single_fits(variant):
    """Run (j, k) recomputed alone: the supersample's 2n points, the selected training set, one fit
    (quantized), and the discretized clipped loss on the evaluated pairs."""
    n, k_z, k_u, m, seed = 10, 3, 2, 4, 6
    ss = linear_supersample(TASK, variant, 2, n, k_z, k_u, q_bits=8, levels=8, eval_points=m, seed=seed)
    assert isinstance(ss, Supersample)
    assert ss.losses.shape == (k_z, k_u, m, 2) and ss.selectors.shape == (k_z, k_u, m)
    for j in range(k_z):
        ids = np.array([SUPERSAMPLE_TRIAL_OFFSET + j])
        x, y = sample_training_sets(TASK, 2 * n, ids, seed=seed)
        u = stream_rng(seed, STREAM_SELECTOR, int(ids[0])).integers(0, 2, size=(k_u, n))
        for k in range(k_u):
            rows = 2 * np.arange(n) + u[k]
            run = np.array([SUPERSAMPLE_TRIAL_OFFSET + j * k_u + k])
            frozen = frozen_factors(TASK, variant, 2, run, seed=seed)
            fitted = fit_variant(variant, 2, x[:, rows], y[:, rows], frozen)
            tensors = {name: quantize(t, 8).values for name, t in fitted.items()}
            m_update = update_from(variant, tensors, frozen)[0]
            errors = np.sum((y[0, : 2 * m] - x[0, : 2 * m] @ m_update.T) ** 2, axis=1)
            expected = np.ceil(8 * np.minimum(errors, TASK.clip) / TASK.clip) / 8
            assert_allclose(ss.losses[j, k].ravel(), expected, **tol())
            assert_array_equal(ss.selectors[j, k], u[k, :m])


def test_linear_supersample_gap_is_the_generalization_gap():
    """Steinke & Zakynthinou: the supersample gap estimates gen = E[L_mu(W) − L_S(W)] of the same
    (discretized) loss. Against a Monte Carlo over independent training sets, each fit evaluated on
    its training set and on a fresh sample, within MC_SIGMAS standard errors of the difference."""
    n, levels, seed = 12, 8, 3
    ss = linear_supersample(TASK, "full", None, n, 300, 2, levels=levels, seed=seed)
    per_z = (ss.test_losses - ss.train_losses).mean(axis=(1, 2))
    trials = 600
    x, y = sample_training_sets(TASK, 2 * n, np.arange(trials), seed=seed + 1)
    m = update_from("full", fit_variant("full", None, x[:, :n], y[:, :n], None), None)
    losses = discretize(_clipped_sample_losses(x, y, m, TASK.clip), TASK.clip, levels)
    mc = losses[:, n:].mean(axis=1) - losses[:, :n].mean(axis=1)
    se = np.sqrt(per_z.var(ddof=1) / per_z.size + mc.var(ddof=1) / mc.size)
    assert mc.mean() > 5 * se  # the gap is there to be measured
    assert abs(per_z.mean() - mc.mean()) <= MC_SIGMAS * se


def test_mlp_fit_starts_every_trial_from_the_shared_init():
    """The frozen factor of every trial is the shared init; identical data give identical trials."""
    rng = np.random.default_rng(0)
    x, y = sample_data(MLP, 12, rng)
    xs, ys = np.stack([x, x, x]), np.stack([y, y, y])
    state, bits = mlp_fit(MLP, "b_only", 2, xs, ys, q_bits=8, seed=5)
    init = _mlp_shared_init(MLP, "b_only", 2, seed=5)
    for t in range(3):
        assert_array_equal(state["layer1.A"][t], init["layer1.A"])
        assert_array_equal(state["layer1.B"][t], state["layer1.B"][0])
    assert bits == 8 * 2 * MLP.widths[2] + 32
    assert not np.array_equal(_mlp_shared_init(MLP, "b_only", 2, seed=6)["layer1.A"], init["layer1.A"])


def test_mlp_supersample_runs_equal_direct_single_trainings():
    """Run (j, k) recomputed alone with ``mlp_fit`` on its selected points: the same 0-1 losses."""
    n, k_z, k_u, m, seed = 8, 2, 2, 3, 1
    ss = mlp_supersample(MLP, "lora", 2, n, k_z, k_u, q_bits=8, eval_points=m, seed=seed)
    assert ss.losses.shape == (k_z, k_u, m, 2) and set(np.unique(ss.losses)) <= {0.0, 1.0}
    target = MLP.target_weights()
    for j in range(k_z):
        x, y = sample_data(MLP, 2 * n, _mlp_stream(seed, STREAM_SUPERSAMPLE, j), target=target)
        u = _mlp_stream(seed, STREAM_SELECTOR, j).integers(0, 2, size=(k_u, n))
        for k in range(k_u):
            rows = 2 * np.arange(n) + u[k]
            state, _ = mlp_fit(MLP, "lora", 2, x[None, rows], y[None, rows], q_bits=8, seed=seed)
            zero_one = _mlp_sample_losses(MLP, 2, state, x[None, : 2 * m], y[None, : 2 * m])["zero_one"][0]
            assert_array_equal(ss.losses[j, k].ravel(), zero_one)
            assert_array_equal(ss.selectors[j, k], u[k, :m])


@pytest.mark.parametrize("make", [
    lambda s: linear_supersample(TASK, "b_only", 2, 10, 3, 2, q_bits=8, eval_points=5, seed=s),
    lambda s: mlp_supersample(MLP, "a_only", 2, 8, 2, 2, eval_points=4, seed=s),
], ids=["linear", "mlp"])
@given(seed=seeds)
def test_same_seed_same_supersample(make, seed):
    """The same seed gives the identical supersample."""
    one, two = make(seed % 1000), make(seed % 1000)
    assert_array_equal(one.losses, two.losses)
    assert_array_equal(one.selectors, two.selectors)


@pytest.mark.parametrize(
    "call,fragment",
    [
        (lambda: discretize(np.ones(3), 1.0, 0), "levels must be >= 1, got 0"),
        (lambda: discretize(np.ones(3), 1.0, 32), "levels must be <= 31"),
        (lambda: linear_supersample(TASK, "b_only", 2, 8, 1, 2, seed=0), "k_z must be >= 2, got 1"),
        (lambda: linear_supersample(TASK, "b_only", 2, 8, 2, 0, seed=0), "k_u must be >= 1, got 0"),
        (lambda: linear_supersample(TASK, "b_only", 2, 8, 2, 2, eval_points=9, seed=0), "eval_points 9 exceeds n = 8"),
        (lambda: linear_supersample(TASK, "b_only", 2, 8, 2, 2, levels=40, seed=0), "levels must be <= 31"),
        (lambda: linear_supersample(replace(TASK, clip=None), "b_only", 2, 8, 2, 2, seed=0), "task.clip must be set"),
        (lambda: linear_supersample(TASK, "b_only", 6, 8, 2, 2, seed=0), "rank 6 exceeds min(d_in, d_out) = 5"),
        (lambda: linear_supersample(MLP, "b_only", 2, 8, 2, 2, seed=0), "task must be a LinearTask"),
        (lambda: mlp_supersample(replace(MLP, kind="regression"), "b_only", 2, 8, 2, 2, seed=0),
         "task.kind must be 'classification'"),
        (lambda: mlp_supersample(MLP, "b_only", 2, 8, 2, 2, q_bits=40, seed=0), "q_bits must be <= 32"),
        (lambda: mlp_supersample(MLP, "c_only", 2, 8, 2, 2, seed=0), "variant 'c_only' is not one of"),
        (lambda: mlp_fit(MLP, "b_only", 2, np.ones((2, 4, 3)), np.zeros((2, 4)), seed=0),
         "x must be a finite array of shape (T, n, 5)"),
        (lambda: mlp_fit(MLP, "b_only", 2, np.ones((2, 4, 5)), np.zeros((2, 3)), seed=0),
         "y must have shape (2, 4) to match x"),
        (lambda: mlp_fit(MLP, "b_only", 2, np.ones((2, 4, 5)), np.zeros((2, 4)), seed=-3), "seed must be >= 0, got -3"),
    ],
)
def test_invalid_inputs_raise_value_errors_naming_the_argument(call, fragment):
    """Bad arguments: a ValueError at the boundary that names the argument and its value."""
    with pytest.raises(ValueError) as info:
        call()
    assert fragment in str(info.value)
