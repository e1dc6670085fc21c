"""The small-MLP task (synthetic.mlp): its teacher, target, data and per-trial losses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given

from synthetic.mlp.engine import MLPTask, mlp_trial_losses, network_outputs, sample_data, sample_trials, trial_streams
from synthetic.quantize import SCALE_BITS
from tests.strategies import mlp_tasks
from tests.tolerances import MC_SIGMAS, tol

TINY = MLPTask(widths=(6, 8, 8, 3), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2,
               test_size=300, steps=15, lr=1e-2)
TINY_REG = MLPTask(widths=(5, 7, 4), adapted_layers=(0, 1), perturbed_layers=(0,), perturbation_rank=2,
                   kind="regression", test_size=300, steps=15, lr=1e-2, clip=2.0)


@given(mlp_tasks())
def test_strategy_builds_valid_tasks(task):
    """``mlp_tasks`` draws valid tasks whose target differs from the base only on perturbed layers."""
    base, target = task.base_weights(), task.target_weights()
    assert len(base) == len(task.widths) - 1
    for l, (w, wt) in enumerate(zip(base, target)):
        assert w.shape == task.layer_shapes[l] == wt.shape
        if l not in task.perturbed_layers:
            np.testing.assert_array_equal(w, wt)


@given(mlp_tasks())
def test_perturbation_rank_and_relative_size(task):
    """Delta_l = W_t,l - W0_l has rank k and ||Delta_l||_F = rho ||W0_l||_F (module docstring)."""
    for l in task.perturbed_layers:
        delta = task.target_weights()[l] - task.base_weights()[l]
        s = np.linalg.svd(delta, compute_uv=False)
        norm0 = np.linalg.norm(task.base_weights()[l])
        np.testing.assert_allclose(np.sqrt(np.sum(s**2)), task.perturbation_scale * norm0, **tol(np.float64))
        if task.perturbation_scale > 0:
            k = task.perturbation_rank
            assert np.all(s[:k] > 1e-8 * s[0]) and np.all(s[k:] <= 1e-8 * s[0])


def test_labels_are_target_argmax_and_noise_rate():
    """Without label noise y = argmax f_t(x); with noise p, P(y = argmax) = 1 - p + p/K (within MC_SIGMAS)."""
    x, y = sample_data(TINY, 500, np.random.default_rng(0))
    np.testing.assert_array_equal(y, network_outputs(TINY.target_weights(), x).argmax(axis=1))
    p, n, classes = 0.6, 20_000, TINY.widths[-1]
    noisy = MLPTask(**{**TINY.__dict__, "label_noise": p})
    x, y = sample_data(noisy, n, np.random.default_rng(1))
    agree = (y == network_outputs(noisy.target_weights(), x).argmax(axis=1)).astype(float)
    want = 1 - p + p / classes
    assert abs(agree.mean() - want) < MC_SIGMAS * np.sqrt(want * (1 - want) / n)


@pytest.mark.parametrize("task", [TINY, replace(TINY, label_noise=0.4),
                                  replace(TINY_REG, input_dist="powerlaw:1.5", noise_std=0.3)])
@pytest.mark.parametrize("threads", [1, 2])
def test_sample_trials_is_sample_data_per_trial(task, threads):
    """``sample_trials`` stacks exactly what ``sample_data`` draws from each generator, on any thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x, y = sample_trials(task, 9, [np.random.default_rng(s) for s in range(5)])
    finally:
        torch.set_num_threads(before)
    assert x.shape == (5, 9, task.widths[0]) and y.shape[:2] == (5, 9)
    for s in range(5):
        want_x, want_y = sample_data(task, 9, np.random.default_rng(s))
        np.testing.assert_array_equal(x[s], want_x)
        np.testing.assert_array_equal(y[s], want_y)
        assert y.dtype == want_y.dtype


def test_sample_trials_draws_a_repeated_generator_in_order():
    """A generator given twice is drawn from trial after trial, as two ``sample_data`` calls would be."""
    x, y = sample_trials(TINY, 7, [np.random.default_rng(4)] * 3)
    rng = np.random.default_rng(4)
    for t in range(3):
        want_x, want_y = sample_data(TINY, 7, rng)
        np.testing.assert_array_equal(x[t], want_x)
        np.testing.assert_array_equal(y[t], want_y)


def test_sample_trials_rejects_bad_input():
    """A non-generator in ``rngs`` or a bad ``n`` is a ValueError naming it."""
    with pytest.raises(ValueError, match="rngs"):
        sample_trials(TINY, 3, [np.random.default_rng(0), 7])
    with pytest.raises(ValueError, match="n"):
        sample_trials(TINY, 0, [np.random.default_rng(0)])
    with pytest.raises(ValueError, match="rngs"):
        sample_trials(TINY, 3, 5)


def test_regression_noise_and_powerlaw_inputs():
    """Regression: y - f_t(x) ~ N(0, noise_std^2); powerlaw:alpha inputs: Var x_j ∝ j^-alpha, Tr = d_0."""
    task = MLPTask(**{**TINY_REG.__dict__, "noise_std": 0.3, "input_dist": "powerlaw:2.0"})
    n = 20_000
    x, y = sample_data(task, n, np.random.default_rng(2))
    resid = y - network_outputs(task.target_weights(), x)
    var_hat = resid.var()
    assert abs(var_hat - 0.09) < MC_SIGMAS * 0.09 * np.sqrt(2 / resid.size)
    want = np.arange(1, 6, dtype=float) ** -2.0
    want *= 5 / want.sum()
    got = x.var(axis=0)
    assert np.all(np.abs(got - want) < MC_SIGMAS * want * np.sqrt(2 / n))


@pytest.mark.parametrize("variant", ["lora", "b_only", "a_only", "full"])
def test_trial_losses_schema_and_ranges(variant):
    """Per-trial float64 arrays; the bounded losses stay in their stated ranges; gap = test - train."""
    out = mlp_trial_losses(TINY, variant, 2, 20, 3, loss="zero_one", seed=1, return_params=True)
    for key in ("train_loss", "test_loss", "gap", "train_cross_entropy", "test_zero_one", "n_params"):
        assert out[key].shape == (3,) and out[key].dtype == np.float64
    assert np.all((out["train_zero_one"] >= 0) & (out["train_zero_one"] <= 1))
    assert np.all((out["test_zero_one"] >= 0) & (out["test_zero_one"] <= 1))
    np.testing.assert_array_equal(out["gap"], out["test_loss"] - out["train_loss"])
    assert out["params"].shape == (3, int(out["n_params"][0]))
    reg = mlp_trial_losses(TINY_REG, variant, 2, 20, 2, loss="clipped", seed=1)
    assert np.all((reg["test_clipped"] >= 0) & (reg["test_clipped"] <= TINY_REG.clip))
    assert np.all(reg["test_clipped"] <= reg["test_squared"])


def test_trained_parameter_counts():
    """N per variant (Lemma 4.5): lora r(d_in+d_out), b_only r d_out, a_only r d_in, full d_in d_out."""
    task = MLPTask(**{**TINY.__dict__, "widths": (6, 8, 5, 3), "adapted_layers": (0, 1)})
    r = 2
    d = [(6, 8), (8, 5)]  # (d_in, d_out) of the adapted layers
    want = {
        "lora": r * sum(a + b for a, b in d),
        "b_only": r * sum(b for _, b in d),
        "a_only": r * sum(a for a, _ in d),
        "full": sum(a * b for a, b in d),
    }
    for variant, n_params in want.items():
        out = mlp_trial_losses(task, variant, r, 10, 1, loss="zero_one", seed=0)
        assert out["n_params"][0] == n_params, variant


@pytest.mark.parametrize("variant", ["lora", "b_only", "full"])
def test_quantized_model_is_evaluated(variant):
    """With q_bits, each trained tensor (W - W0 for full) lies on its own grid of 2^q - 1 levels.

    storage_bits = q N + 32 per trained tensor (the float32 scale of ``synthetic.quantize``).
    """
    q = 3
    task = MLPTask(**{**TINY.__dict__, "adapted_layers": (0, 1)})
    out = mlp_trial_losses(task, variant, 2, 20, 2, loss="zero_one", q_bits=q, seed=4, return_params=True)
    names = [k for k in out if k.startswith("layer") and (k.endswith(".B") or variant != "b_only")]
    base = task.base_weights()
    for name in names:
        layer = int(name.split(".")[0][5:])
        values = out[name] - (base[layer] if name.endswith(".W") else 0.0)
        for t in range(2):
            levels = np.unique(np.round(values[t] / np.max(np.abs(values[t])) * (2 ** (q - 1) - 1), 6))
            assert levels.size <= 2**q - 1
            np.testing.assert_allclose(levels, np.round(levels), atol=1e-5)
    n_tensors = len(names)
    assert out["storage_bits"][0] == q * out["n_params"][0] + SCALE_BITS * n_tensors
    float_out = mlp_trial_losses(task, variant, 2, 20, 2, loss="zero_one", seed=4, return_params=True)
    assert not np.allclose(float_out["params"], out["params"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("widths", (4,)),
        ("widths", (4, 0, 3)),
        ("adapted_layers", (5,)),
        ("adapted_layers", ()),
        ("perturbed_layers", (1, 1)),
        ("perturbation_rank", 9),
        ("perturbation_scale", -0.1),
        ("logit_scale", 0.0),
        ("kind", "ranking"),
        ("label_noise", 1.5),
        ("noise_std", -1.0),
        ("input_dist", "cauchy"),
        ("input_dist", "powerlaw:-1"),
        ("test_size", 0),
        ("steps", 0),
        ("lr", 0.0),
        ("batch_size", 0),
        ("alpha", -2.0),
        ("init", "xavier"),
        ("clip", 0.0),
        ("teacher_seed", -1),
    ],
)
def test_invalid_task_fields_raise(field, value):
    """Every invalid field raises ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        MLPTask(**{**TINY.__dict__, field: value})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rank": 9}, "rank 9 exceeds min\\(d_in, d_out\\) = 8 of adapted layer 1"),
        ({"rank": 0}, "rank must be >= 1"),
        ({"n": 0}, "n must be >= 1, got 0"),
        ({"trials": 0}, "trials must be >= 1"),
        ({"variant": "c_only"}, "variant 'c_only' is not one of"),
        ({"loss": "squared"}, "loss must be one of"),
        ({"q_bits": 1}, "q_bits must be >= 2"),
        ({"q_bits": 40}, "q_bits must be <= 32"),
        ({"seed": -3}, "seed must be >= 0"),
        ({"n": 4, "task": MLPTask(**{**TINY.__dict__, "batch_size": 8})}, "batch_size 8 exceeds n = 4"),
        ({"task": "not a task"}, "task must be an MLPTask"),
    ],
)
def test_invalid_calls_raise(kwargs, message):
    """Invalid arguments of mlp_trial_losses raise ValueError naming the argument and its value."""
    call = {"task": TINY, "variant": "lora", "rank": 2, "n": 10, "trials": 1, "loss": "zero_one", "seed": 0}
    call.update(kwargs)
    with pytest.raises(ValueError, match=message):
        mlp_trial_losses(call.pop("task"), call.pop("variant"), call.pop("rank"), call.pop("n"),
                         call.pop("trials"), **call)


def test_presets():
    """quick() and full() build valid tasks; overrides are applied."""
    assert MLPTask.quick().widths == (32, 64, 64, 10)
    assert MLPTask.full().adapted_layers == (0, 1)
    assert MLPTask.quick(steps=7).steps == 7
    out = mlp_trial_losses(MLPTask.quick(steps=2, test_size=50), "full", None, 8, 1, loss="zero_one", seed=0)
    assert out["n_params"][0] == 64 * 64


@pytest.mark.slow
def test_fine_tuning_beats_pretrained_at_large_n():
    """With n = 4096 and 1000 Adam steps, lora at r = k lowers the test error below the pretrained model's.

    The target differs from the teacher base by a rank-k change of the adapted layer, so lora at
    r = k can represent it exactly; with enough data the fine-tuned model must be closer to the
    target than the pretrained one (0-1 error measured on 20k fresh samples per trial).
    """
    task = MLPTask.quick(steps=1000, test_size=20_000)
    x, y = sample_data(task, 50_000, np.random.default_rng(123))
    pretrained = np.mean(network_outputs(task.base_weights(), x).argmax(axis=1) != y)
    out = mlp_trial_losses(task, "lora", 4, 4096, 2, loss="zero_one", seed=0)
    assert np.all(out["test_loss"] < pretrained), (out["test_loss"], pretrained)


def test_activation_field_makes_a_relu_network():
    """``activation="relu"``: teacher outputs are ``W1 max(W0 x, 0)`` (no noise); tanh is the default.

    The adapted network uses the same activation: at the pretrained start (no training step
    can be skipped, so one step at a negligible learning rate) the relu model's training loss
    is the squared distance between the relu base and the relu target, not the tanh one.
    """
    assert MLPTask().activation == "tanh"
    task = MLPTask(**{**TINY_REG.__dict__, "activation": "relu", "noise_std": 0.0})
    x, y = sample_data(task, 40, np.random.default_rng(5))
    w0, w1 = task.target_weights()
    np.testing.assert_allclose(y, np.maximum(x @ w0.T, 0.0) @ w1.T, **tol(np.float32))  # float32 teacher
    assert not np.allclose(y, network_outputs(task.target_weights(), x))  # the tanh network differs
    start = replace(task, steps=1, lr=1e-12)
    out = mlp_trial_losses(start, "b_only", 2, 40, 1, loss="squared", seed=0)
    x, y = sample_data(start, 40, trial_streams(0, 0)["data"])
    want = np.mean(np.sum((network_outputs(start.base_weights(), x, "relu") - y) ** 2, axis=1))
    np.testing.assert_allclose(out["train_loss"][0], want, **tol(np.float32))
    with pytest.raises(ValueError, match="activation"):
        MLPTask(activation="gelu")
    with pytest.raises(ValueError, match="activation"):
        network_outputs(task.base_weights(), x, "gelu")


def test_trial_chunks_do_not_change_the_numbers(monkeypatch):
    """Trials are trained and evaluated in chunks (flat memory); a trial's numbers do not depend on its chunk."""
    whole = mlp_trial_losses(TINY_REG, "lora", 2, 12, 5, loss="clipped", seed=4, return_params=True)
    monkeypatch.setattr("synthetic.mlp.engine.MAX_TRIAL_CHUNK", 2)
    monkeypatch.setattr("synthetic.mlp.engine.TRAIN_FLOATS", 1)  # evaluation blocks of one trial
    chunked = mlp_trial_losses(TINY_REG, "lora", 2, 12, 5, loss="clipped", seed=4, return_params=True)
    for k in ("params", "train_loss", "test_loss", "train_objective"):
        np.testing.assert_allclose(chunked[k], whole[k], **tol(np.float32), err_msg=k)
