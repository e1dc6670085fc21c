"""synthetic.channel: the released predictor W + N of the Gaussian-channel bound and its losses."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import theory
from synthetic.channel import adapted_shift_rms, perturbed_trial_losses
from synthetic.streams import STREAM_CHANNEL
from synthetic.linear.fit import fit_variant, update_from
from synthetic.mlp.learners import _mlp_shared_init
from synthetic.streams import mlp_stream as _mlp_stream
from synthetic.linear.engine import (
    LinearTask,
    clipped_test_losses,
    frozen_factors,
    linear_trial_losses,
    sample_training_sets,
    stream_rng,
)
from synthetic.mlp.engine import MLPTask, mlp_trial_losses, sample_data, trial_streams
from synthetic.mlp.train import evaluate, factor_names
from synthetic.quantize import quantize
from tests.strategies import linear_tasks, seeds
from tests.tolerances import tol

TASK = replace(LinearTask.quick(), d_in=6, d_out=5, delta_rank=3, frozen="shared", n_test=300)
MLP = MLPTask(widths=(5, 6, 6, 3), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2,
              test_size=200, steps=10, lr=1e-2)
from theory.variants import VARIANTS  # noqa: E402 - the paper's vocabulary


@given(
    linear_tasks(max_dim=6),
    st.sampled_from(VARIANTS),
    st.sampled_from(("population", "clipped")),
    st.sampled_from((None, 6)),
    seeds,
)
def test_tau_zero_is_the_unperturbed_linear_fit(task, variant, loss, q_bits, seed):
    """With tau = 0 the released predictor is W itself: its losses and parameters are exactly those
    of ``linear_trial_losses`` on the same seed (an independent code path)."""
    rank = min(2, task.d_in, task.d_out)
    out = perturbed_trial_losses(task, variant, rank, 9, 3, tau=0.0, loss=loss, q_bits=q_bits, seed=seed % 1000)
    ref = linear_trial_losses(task, variant, rank, 9, 3, loss=loss, q_bits=q_bits, seed=seed % 1000, return_params=True)
    for key in ("train_loss", "test_loss"):
        assert_array_equal(out[key], ref[key])
        assert_array_equal(out[f"{key}_unperturbed"], ref[key])
    assert_array_equal(out["params"], ref["params"])
    assert_array_equal(out["n_params"], ref["n_params"])
    if q_bits is not None:
        assert_array_equal(out["storage_bits"], ref["storage_bits"])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("loss", ["population", "clipped"])
def test_linear_perturbed_losses_equal_a_direct_per_trial_computation(variant, loss):
    """Each trial, recomputed alone: fit, quantize, add tau times its own noise stream, then the mean
    squared (or clipped) training error and the test loss, eq. (1) through ``theory.population_loss``
    (or the clipped test sample). The batched result must agree trial by trial."""
    tau, n, trials, seed = 0.3, 12, 4, 5
    out = perturbed_trial_losses(TASK, variant, 2, n, trials, tau=tau, loss=loss, q_bits=8, seed=seed)
    for t in range(trials):
        ids = np.array([t])
        x, y = sample_training_sets(TASK, n, ids, seed=seed)
        frozen = frozen_factors(TASK, variant, 2, ids, seed=seed)
        tensors = {k: quantize(v, 8).values for k, v in fit_variant(variant, 2, x, y, frozen).items()}
        noisy = {}
        noise = stream_rng(seed, STREAM_CHANNEL, t).standard_normal(sum(v.size for v in tensors.values()))
        start = 0
        for name in sorted(tensors):
            size = tensors[name].size
            noisy[name] = tensors[name] + tau * noise[start : start + size].reshape(tensors[name].shape)
            start += size
        m = update_from(variant, noisy, frozen)
        errors = np.sum((y[0] - x[0] @ m[0].T) ** 2, axis=1)
        if loss == "population":
            train = errors.mean()
            test = theory.population_loss(TASK.delta, m[0], TASK.sigma, TASK.noise_var)
        else:
            train = np.minimum(errors, TASK.clip).mean()
            test = clipped_test_losses(TASK, m, ids, seed=seed, clip=TASK.clip)[0]
        assert_allclose(out["train_loss"][t], train, **tol())
        assert_allclose(out["test_loss"][t], test, **tol())
    assert not np.allclose(out["train_loss"], out["train_loss_unperturbed"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_tau_zero_mlp_with_a_deterministic_init_is_the_engine(variant):
    """With a deterministic init (``w0_top_singular``; ``full`` starts at W0) sharing the init
    changes nothing, so tau = 0 reproduces ``mlp_trial_losses`` exactly, train and test."""
    task = replace(MLP, init="w0_top_singular")
    out = perturbed_trial_losses(task, variant, 2, 16, 3, tau=0.0, loss="zero_one", q_bits=6, seed=2)
    ref = mlp_trial_losses(task, variant, 2, 16, 3, loss="zero_one", q_bits=6, seed=2, return_params=True)
    for key in ("train_loss", "test_loss"):
        assert_array_equal(out[key], ref[key])
        assert_array_equal(out[f"{key}_unperturbed"], ref[key])
    assert_array_equal(out["params"], ref["params"])
    assert_array_equal(out["storage_bits"], ref["storage_bits"])


def test_mlp_perturbed_losses_equal_a_direct_per_trial_computation():
    """Rebuild each trial's released network from its trained parameters, the shared frozen factor
    and its own noise stream, and evaluate it on its training set and its test stream."""
    tau, n, trials, seed, variant = 0.2, 16, 3, 4, "b_only"
    out = perturbed_trial_losses(MLP, variant, 2, n, trials, tau=tau, loss="cross_entropy", seed=seed)
    trained, frozen = factor_names(variant, MLP.adapted_layers)
    init = _mlp_shared_init(MLP, variant, 2, seed=seed)
    target = MLP.target_weights()
    for t in range(trials):
        noise = _mlp_stream(seed, STREAM_CHANNEL, t).standard_normal(out["params"].shape[1])
        state = {name: init[name][None] for name in frozen}
        state[trained[0]] = (out["params"][t] + tau * noise).reshape(1, *init[trained[0]].shape)
        streams = trial_streams(seed, t)
        kw = {"kind": MLP.kind, "scaling": MLP.scaling(2), "clip": MLP.clip}
        x, y = sample_data(MLP, n, streams["data"], target=target)
        xt, yt = sample_data(MLP, MLP.test_size, streams["test"], target=target)
        train = evaluate(MLP.base_weights(), state, x[None], y[None], **kw)["cross_entropy"][0]
        test = evaluate(MLP.base_weights(), state, xt[None], yt[None], **kw)["cross_entropy"][0]
        assert_allclose(out["train_loss"][t], train, **tol(np.float32))
        assert_allclose(out["test_loss"][t], test, **tol(np.float32))


def test_mlp_trials_share_one_init():
    """The frozen factor is the same for every trial, so two trials on the same data would agree:
    the parameters differ across trials only through the data."""
    out = perturbed_trial_losses(MLP, "a_only", 2, 16, 3, tau=0.0, loss="zero_one", seed=1)
    assert out["params"].shape == (3, 2 * MLP.widths[1])
    assert not np.allclose(out["params"][0], out["params"][1])


@pytest.mark.parametrize("task", [TASK, MLP], ids=["linear", "mlp"])
def test_same_seed_same_numbers(task):
    """The same seed gives identical numbers; another seed different ones."""
    loss = "clipped" if task is TASK else "zero_one"
    one = perturbed_trial_losses(task, "lora", 2, 16, 3, tau=0.1, loss=loss, q_bits=8, seed=7)
    two = perturbed_trial_losses(task, "lora", 2, 16, 3, tau=0.1, loss=loss, q_bits=8, seed=7)
    other = perturbed_trial_losses(task, "lora", 2, 16, 3, tau=0.1, loss=loss, q_bits=8, seed=8)
    for key in one:
        assert_array_equal(one[key], two[key])
    assert not np.array_equal(one["params"], other["params"])


def test_adapted_shift_rms_is_the_rms_entry_of_delta():
    """Linear: ``‖Δ‖_F / sqrt(d_in d_out)``; MLP: the same for the adapted layer's ``W_t − W0``."""
    assert_allclose(adapted_shift_rms(TASK), np.linalg.norm(TASK.delta) / np.sqrt(TASK.d_in * TASK.d_out), **tol())
    shift = MLP.target_weights()[1] - MLP.base_weights()[1]
    assert_allclose(adapted_shift_rms(MLP), np.sqrt(np.mean(shift**2)), **tol())


@pytest.mark.parametrize(
    "task,kwargs,fragment",
    [
        (TASK, {"tau": -0.1}, "tau must be >= 0.0, got -0.1"),
        (TASK, {"tau": float("nan")}, "tau must be finite"),
        (TASK, {"tau": "big"}, "tau must be a real number"),
        (TASK, {"loss": "zero_one"}, "loss 'zero_one' is not one of"),
        (replace(TASK, clip=None), {}, "needs task.clip"),
        (TASK, {"q_bits": 1}, "q_bits must be >= 2"),
        (TASK, {"rank": 9}, "rank 9 exceeds min(d_in, d_out) = 5"),
        (TASK, {"n": 0}, "n must be >= 1, got 0"),
        (TASK, {"trials": 0}, "trials must be >= 1, got 0"),
        (TASK, {"variant": "bonly"}, "variant 'bonly' is not one of"),
        (TASK, {"seed": -1}, "seed must be >= 0"),
        (MLP, {"loss": "clipped"}, "loss must be one of ('cross_entropy', 'zero_one')"),
        (MLP, {"rank": 7}, "rank 7 exceeds min(d_in, d_out) = 6 of adapted layer 1"),
        (MLP, {"tau": -1.0}, "tau must be >= 0.0"),
        ("task", {}, "task must be a LinearTask or an MLPTask, got str"),
    ],
)
def test_invalid_inputs_raise_value_errors_naming_the_argument(task, kwargs, fragment):
    """Bad arguments: a ValueError at the boundary that names the argument and its value."""
    args = {"variant": "b_only", "rank": 2, "n": 8, "trials": 2, "tau": 0.1,
            "loss": "clipped" if task is not MLP else "zero_one", "seed": 0, **kwargs}
    with pytest.raises(ValueError) as info:
        perturbed_trial_losses(task, **args)
    assert fragment in str(info.value)
