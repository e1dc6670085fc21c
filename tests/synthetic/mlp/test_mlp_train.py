"""Batched LoRA training of the small MLP (synthetic.mlp.train) against an independent reference.

The reference below trains one trial at a time with the *merged* weight ``W0 + s B A`` (the
batched code never forms it), its own ``torch.optim.Adam`` and its own minibatch loop.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hypothesis import given
from hypothesis import strategies as st

from synthetic.mlp.engine import MLPTask, mlp_trial_losses, network_outputs, sample_data, trial_streams
from synthetic.mlp.backprop import AdapterNet, FlatAdam, _output_gradient
from theory.variants import INITS, VARIANTS
from synthetic.mlp.train import (
    evaluate,
    factor_names,
    forward,
    init_adapters,
    _init_factor,
    objective,
    train_adapters,
)
from tests.strategies import mlp_tasks, relu_mlp_tasks
from tests.tolerances import MC_SIGMAS, tol

TINY = MLPTask(widths=(6, 8, 8, 3), adapted_layers=(0, 1), perturbed_layers=(1,), perturbation_rank=2,
               test_size=256, steps=12, lr=1e-2)


def _setup(task: MLPTask, variant: str, rank: int, n: int, trials: int, seed: int = 3):
    streams = [trial_streams(seed, t) for t in range(trials)]
    weights = task.base_weights()
    data = [sample_data(task, n, s["data"]) for s in streams]
    x, y = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])
    inits = [init_adapters(variant, task.init, weights, task.adapted_layers, rank, s["init"])
             for s in streams]
    state = {k: np.stack([i[k] for i in inits]) for k in inits[0]}
    return weights, x, y, state


def _reference_train(weights, state, trained, x, y, *, kind, steps, lr, scaling, batch_size, order_seeds,
                     activation="tanh"):
    """One trial at a time: merged weights, a fresh Adam per trial, explicit epochs."""
    trials, n = x.shape[0], x.shape[1]
    out = {k: np.empty_like(v) for k, v in state.items()}
    for t in range(trials):
        p = {k: torch.tensor(v[t], dtype=torch.float32, requires_grad=k in trained) for k, v in state.items()}
        w0 = [torch.tensor(np.array(w), dtype=torch.float32) for w in weights]
        xt = torch.tensor(x[t], dtype=torch.float32)
        yt = torch.tensor(y[t]) if kind == "classification" else torch.tensor(y[t], dtype=torch.float32)

        def loss_on(idx):
            h = xt[idx]
            for l in range(len(w0)):
                if f"layer{l}.W" in p:
                    w = p[f"layer{l}.W"]
                elif f"layer{l}.A" in p:
                    w = w0[l] + scaling * p[f"layer{l}.B"] @ p[f"layer{l}.A"]
                else:
                    w = w0[l]
                h = h @ w.T
                if l < len(w0) - 1:
                    h = torch.tanh(h) if activation == "tanh" else torch.relu(h)
            if kind == "classification":
                return torch.nn.functional.cross_entropy(h, yt[idx])
            return ((h - yt[idx]) ** 2).sum(dim=1).mean()

        opt = torch.optim.Adam([p[k] for k in trained], lr=lr)
        rng = np.random.default_rng(order_seeds[t])
        batches: list[np.ndarray] = []
        for _ in range(steps):
            if batch_size is None:
                idx = np.arange(n)
            else:
                if not batches:
                    perm = rng.permutation(n)
                    batches = [perm[i:i + batch_size] for i in range(0, n, batch_size)]
                idx = batches.pop(0)
            opt.zero_grad()
            loss_on(torch.as_tensor(idx)).backward()
            opt.step()
        for k in p:
            out[k][t] = p[k].detach().double().numpy()
    return out


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("batch_size", [None, 5])
def test_batched_training_equals_per_trial_reference(variant, batch_size):
    """Batched Adam over stacked trials equals one Adam per trial (elementwise update, summed objective)."""
    task, rank, n, trials = TINY, 2, 13, 3
    weights, x, y, state = _setup(task, variant, rank, n, trials)
    trained, _ = factor_names(variant, task.adapted_layers)
    order_seeds = [100 + t for t in range(trials)]
    got, _ = train_adapters(
        weights, state, trained, x, y, kind=task.kind, steps=task.steps, lr=task.lr, scaling=0.7,
        batch_size=batch_size, order_rngs=[np.random.default_rng(s) for s in order_seeds],
    )
    want = _reference_train(weights, state, trained, x, y, kind=task.kind, steps=task.steps, lr=task.lr,
                            scaling=0.7, batch_size=batch_size, order_seeds=order_seeds)
    for k in state:
        np.testing.assert_allclose(got[k], want[k], **tol(np.float32), err_msg=k)
    for k in set(state) - set(trained):
        np.testing.assert_array_equal(got[k], state[k], err_msg=f"frozen {k} moved")


def test_batched_regression_equals_reference():
    """The same equality for the squared-loss objective, adapting the last layer."""
    task = MLPTask(widths=(5, 7, 4), adapted_layers=(1,), perturbed_layers=(0,), perturbation_rank=2,
                   kind="regression", test_size=64, steps=10, lr=1e-2)
    weights, x, y, state = _setup(task, "lora", 2, 9, 2)
    trained, _ = factor_names("lora", task.adapted_layers)
    got, _ = train_adapters(weights, state, trained, x, y, kind="regression", steps=10, lr=1e-2, scaling=1.0)
    want = _reference_train(weights, state, trained, x, y, kind="regression", steps=10, lr=1e-2,
                            scaling=1.0, batch_size=None, order_seeds=[0, 0])
    for k in state:
        np.testing.assert_allclose(got[k], want[k], **tol(np.float32), err_msg=k)


@pytest.mark.parametrize("variant", VARIANTS)
def test_initial_model_is_pretrained(variant):
    """Every variant starts at the pretrained model: B = 0 (lora, b_only), A = 0 (a_only), W = W0 (full)."""
    weights, x, y, state = _setup(TINY, variant, 3, 17, 2)
    kw = {"kind": "classification", "scaling": 2.0, "clip": 1.0, "dtype": torch.float64}
    adapted = evaluate(weights, state, x, y, **kw)
    base = evaluate(weights, {}, x, y, **kw)
    np.testing.assert_allclose(adapted["cross_entropy"], base["cross_entropy"], **tol(np.float64))
    want = np.array([np.mean(network_outputs(weights, x[t]).argmax(1) != y[t]) for t in range(2)])
    np.testing.assert_allclose(base["zero_one"], want, **tol(np.float64))


@pytest.mark.parametrize("variant", VARIANTS)
def test_training_reduces_train_loss(variant):
    """Adam on the training objective lowers it below the pretrained model's on the same samples."""
    task = MLPTask(widths=(6, 8, 8, 3), adapted_layers=(1,), test_size=64, perturbation_rank=2,
                   steps=60, lr=1e-2)
    weights, x, y, state = _setup(task, variant, 2, 40, 3)
    trained, _ = factor_names(variant, task.adapted_layers)
    _, final = train_adapters(weights, state, trained, x, y, kind=task.kind, steps=task.steps, lr=task.lr,
                              scaling=1.0)
    start = evaluate(weights, {}, x, y, kind=task.kind, scaling=1.0, clip=1.0)["cross_entropy"]
    assert np.all(final < start), (final, start)


def test_divergence_raises():
    """A learning rate that overflows float32 is reported as a ValueError, not a NaN result."""
    task = MLPTask(widths=(4, 3), adapted_layers=(0,), perturbed_layers=(0,), perturbation_rank=1,
                   kind="regression", test_size=8, steps=5, lr=1e36)
    weights, x, y, state = _setup(task, "full", 1, 6, 1)
    with pytest.raises(ValueError, match="diverged"):
        train_adapters(weights, state, ("layer0.W",), x * 1e3, y, kind="regression", steps=5, lr=1e36,
                       scaling=1.0)


def test_haar_and_top_singular_inits():
    """Haar A has orthonormal rows, Haar B orthonormal columns; w0_top_singular is the SVD's top-r."""
    w0 = np.random.default_rng(0).standard_normal((7, 5))
    rng = np.random.default_rng(1)
    a, b = _init_factor("haar", "A", w0, 3, rng), _init_factor("haar", "B", w0, 3, rng)
    np.testing.assert_allclose(a @ a.T, np.eye(3), **tol(np.float64))
    np.testing.assert_allclose(b.T @ b, np.eye(3), **tol(np.float64))
    u, s, vt = np.linalg.svd(w0)
    a_top = _init_factor("w0_top_singular", "A", w0, 2, rng)
    b_top = _init_factor("w0_top_singular", "B", w0, 2, rng)
    np.testing.assert_allclose(b_top.T @ w0 @ a_top.T, np.diag(s[:2]), **tol(np.float64))


@pytest.mark.parametrize("init", ["kaiming_uniform", "gaussian"])
def test_random_init_scales(init):
    """Rows of A (columns of B) have the documented expected squared norm, within MC_SIGMAS.

    kaiming_uniform: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so E||A_i||^2 = d_in / (3 d_in) = 1/3
    and E||B_:j||^2 = d_out / (3 r); gaussian: 1 for both.
    """
    d_out, d_in, r, draws = 9, 6, 2, 400
    w0 = np.zeros((d_out, d_in))
    rng = np.random.default_rng(2)
    rows = np.concatenate([np.sum(_init_factor(init, "A", w0, r, rng) ** 2, axis=1) for _ in range(draws)])
    cols = np.concatenate([np.sum(_init_factor(init, "B", w0, r, rng) ** 2, axis=0) for _ in range(draws)])
    want_a, want_b = (1 / 3, d_out / (3 * r)) if init == "kaiming_uniform" else (1.0, 1.0)
    for got, want in ((rows, want_a), (cols, want_b)):
        assert abs(got.mean() - want) < MC_SIGMAS * got.std(ddof=1) / np.sqrt(got.size)


def test_unknown_names_raise():
    """Unknown variants and inits raise ValueError naming the argument, at the door (the engine, the task)."""
    with pytest.raises(ValueError, match="variant 'c_only'"):
        mlp_trial_losses(MLPTask.quick(), "c_only", 2, 8, 2, loss="zero_one", seed=0)
    with pytest.raises(ValueError, match="init 'xavier'"):
        MLPTask(init="xavier")
    assert set(INITS) == {"haar", "kaiming_uniform", "gaussian", "w0_top_singular"}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("batch_size", [None, 5])
def test_relu_batched_training_equals_per_trial_reference(variant, batch_size):
    """With ReLU hidden layers, batched Adam (hand-written gradients) equals autograd, one Adam per trial.

    This is the torch path (``fused=False``), which orders its sums as autograd does. Here the
    softmax saturates, so some logit gradients are about 1e-8, as small as Adam's eps, where the
    step depends on their last digits: the fused kernel, whose sums run in another order, moves
    those entries by up to 2e-3 after 12 steps (its gradients are checked in
    tests/test_mlp_kernel.py, and its training on problems without such entries).
    """
    task = MLPTask(**{**TINY.__dict__, "activation": "relu"})
    weights, x, y, state = _setup(task, variant, 2, 13, 3)
    trained, _ = factor_names(variant, task.adapted_layers)
    order_seeds = [200 + t for t in range(3)]
    kw = {"kind": task.kind, "steps": task.steps, "lr": task.lr, "scaling": 0.7, "batch_size": batch_size}
    got, _ = train_adapters(weights, state, trained, x, y, **kw, activation="relu", fused=False,
                            order_rngs=[np.random.default_rng(s) for s in order_seeds])
    want = _reference_train(weights, state, trained, x, y, **kw, order_seeds=order_seeds, activation="relu")
    for k in state:
        np.testing.assert_allclose(got[k], want[k], **tol(np.float32), err_msg=k)


@pytest.mark.parametrize("variant", VARIANTS)
@given(task=st.one_of(mlp_tasks(), relu_mlp_tasks()))
def test_manual_gradients_equal_autograd(variant, task):
    """The hand-written gradients (synthetic.mlp.backprop) equal autograd's on any tiny task, in float64.

    Autograd differentiates ``forward`` (the factorized ``h W0^T + s (h A^T) B^T`` form), the manual
    pass uses precomputed features and merged weights, so the two are independent computations.
    """
    weights, x, y, state = _setup(task, variant, 1, 7, 2)
    trained, _ = factor_names(variant, task.adapted_layers)
    w = [torch.tensor(np.array(m), dtype=torch.float64) for m in weights]
    ys = torch.tensor(y) if task.kind == "classification" else torch.tensor(y, dtype=torch.float64)
    manual = {k: torch.tensor(v, dtype=torch.float64) for k, v in state.items()}
    grads = {k: torch.zeros_like(manual[k]) for k in trained}
    net = AdapterNet(w, manual, grads, torch.tensor(x, dtype=torch.float64), 1.3, task.activation)
    net.backward(_output_gradient(net.forward(None), ys, task.kind))
    auto = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in trained) for k, v in state.items()}
    out = forward(w, auto, torch.tensor(x, dtype=torch.float64), 1.3, task.activation)
    objective(out, ys, task.kind).sum().backward()
    for k in trained:
        np.testing.assert_allclose(grads[k].numpy(), auto[k].grad.numpy(), **tol(np.float64), err_msg=k)


def test_backward_takes_a_gradient_given_in_a_new_tensor():
    """``backward`` gives the same gradients whether it gets the output buffer overwritten in place or a copy;
    before any forward pass it is a ValueError."""
    weights, x, y, state = _setup(TINY, "lora", 2, 9, 2)
    trained, _ = factor_names("lora", TINY.adapted_layers)
    w = [torch.tensor(np.array(m), dtype=torch.float64) for m in weights]
    ys = torch.tensor(y)
    rng = np.random.default_rng(1)  # B away from its zero start, so that every gradient is non-zero
    params = {k: torch.tensor(v + 0.3 * rng.standard_normal(v.shape), dtype=torch.float64) for k, v in state.items()}
    grads = {}
    for mode in ("in_place", "copy"):
        grads[mode] = {k: torch.zeros_like(params[k]) for k in trained}
        net = AdapterNet(w, params, grads[mode], torch.tensor(x, dtype=torch.float64), 0.8, TINY.activation)
        if mode == "copy":
            with pytest.raises(ValueError, match="forward"):
                net.backward(torch.zeros(2, 9, 3, dtype=torch.float64))
        out = net.forward(None)
        g = _output_gradient(out if mode == "in_place" else out.clone(), ys, TINY.kind)
        assert (g.data_ptr() == out.data_ptr()) == (mode == "in_place")
        net.backward(g)
    for k in trained:
        assert torch.equal(grads["in_place"][k], grads["copy"][k]), k
        assert torch.any(grads["copy"][k] != 0), k


def test_unknown_activation_raises():
    """An activation other than tanh or relu is a ValueError naming the argument."""
    weights, x, y, state = _setup(TINY, "lora", 2, 5, 1)
    with pytest.raises(ValueError, match="activation"):
        train_adapters(weights, state, ("layer0.A",), x, y, kind="classification", steps=1, lr=1e-2, scaling=1.0,
                       activation="gelu")
    with pytest.raises(ValueError, match="activation"):
        evaluate(weights, state, x, y, kind="classification", scaling=1.0, clip=1.0, activation="gelu")


def test_flat_adam_equals_torch_adam():
    """``FlatAdam`` performs torch.optim.Adam's update exactly (float64), for tensors of several shapes."""
    rng = np.random.default_rng(0)
    shapes = {"a": (3, 2, 5), "b": (3, 4, 2)}
    start = {k: torch.tensor(rng.standard_normal(s)) for k, s in shapes.items()}
    flat = FlatAdam({k: v.clone() for k, v in start.items()}, lr=0.05)
    ref = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    opt = torch.optim.Adam(list(ref.values()), lr=0.05)
    for _ in range(7):
        grads = {k: torch.tensor(rng.standard_normal(s)) for k, s in shapes.items()}
        for k in shapes:
            flat.grads[k].copy_(grads[k])
            ref[k].grad = grads[k].clone()
        flat.step()
        opt.step()
    for k in shapes:
        np.testing.assert_array_equal(flat.params[k].numpy(), ref[k].detach().numpy(), err_msg=k)


def test_step_size_beyond_the_dtype_is_a_value_error_naming_lr():
    """lr = 1e38 is a valid float, but lr / (1 - beta1) overflows float32: ValueError naming lr, not a RuntimeError."""
    weights, x, y, state = _setup(TINY, "lora", 2, 5, 1)
    with pytest.raises(ValueError, match="lr=1e"):
        train_adapters(weights, state, ("layer0.A", "layer0.B"), x, y, kind="classification", steps=1, lr=1e38,
                       scaling=1.0)
