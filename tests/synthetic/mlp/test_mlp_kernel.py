"""The fused training kernel (synthetic.mlp.kernel) against the torch path it replaces.

The kernel computes the gradients of ``synthetic.mlp.backprop.AdapterNet`` and the update of
``FlatAdam`` in another order (row blocks, padded vectors), so its float32 results are compared
with float64 references and with the float32 torch path to float32 accuracy.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from synthetic.mlp import kernel as mlp_kernel
from synthetic.mlp.engine import MLPTask, sample_data, trial_streams
from synthetic.mlp.backprop import AdapterNet, FlatAdam, _output_gradient
from synthetic.mlp.kernel import FusedTrainer
from theory.variants import VARIANTS
from synthetic.mlp.train import factor_names, init_adapters, train_adapters
from tests.strategies import mlp_tasks, relu_mlp_tasks
from tests.tolerances import tol

pytestmark = pytest.mark.skipif(not mlp_kernel.available(),
                                reason="the fused kernel is unavailable (no C compiler, or LORA_ASYM_KERNEL=0)")


def _setup(task: MLPTask, variant: str, rank: int, n: int, trials: int, seed: int = 4, shift: float = 0.3):
    """Data, weights and adapters moved off their initial values (so that every gradient is non-zero)."""
    streams = [trial_streams(seed, t) for t in range(trials)]
    weights = task.base_weights()
    data = [sample_data(task, n, s["data"]) for s in streams]
    x, y = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])
    inits = [init_adapters(variant, task.init, weights, task.adapted_layers, rank, s["init"]) for s in streams]
    noise = np.random.default_rng(seed)
    state = {k: np.stack([i[k] for i in inits]) for k in inits[0]}
    state = {k: v + shift * noise.standard_normal(v.shape) for k, v in state.items()}
    return weights, x, y, state


def _gradients(task, variant, weights, x, y, state, dtype, scaling, fused):
    """Gradients of every trial's mean training loss by the torch path or the kernel."""
    trained, _ = factor_names(variant, task.adapted_layers)
    w = [torch.tensor(np.array(m), dtype=dtype) for m in weights]
    ys = torch.tensor(y) if task.kind == "classification" else torch.tensor(y, dtype=dtype)
    params = {k: torch.tensor(v, dtype=dtype) for k, v in state.items()}
    opt = FlatAdam({k: params[k] for k in trained}, lr=1e-3)
    params.update(opt.params)
    net = AdapterNet(w, params, opt.grads, torch.tensor(x, dtype=dtype), scaling, task.activation)
    if fused:
        FusedTrainer(net, opt, ys, kind=task.kind).gradients()
    else:
        net.backward(_output_gradient(net.forward(None), ys, task.kind))
    return {k: g.numpy().astype(np.float64) for k, g in opt.grads.items()}


def _close_in_norm(got: np.ndarray, want: np.ndarray, name: str) -> None:
    """``max|got - want| <= rtol max|want| + atol`` with float32's tolerances: an error relative to the
    gradient's scale (a sum of many float32 terms is accurate relative to its terms, not to itself)."""
    t = tol(np.float32)
    err, scale = float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))
    assert err <= t["rtol"] * scale + t["atol"], f"{name}: error {err:.3g} at scale {scale:.3g}"


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=25, deadline=None)
@given(task=st.one_of(mlp_tasks(max_width=40), relu_mlp_tasks(max_width=40)), n=st.integers(1, 30),
       rank=st.integers(1, 5), scaling=st.floats(0.2, 2.0))
def test_fused_gradients_equal_float64_gradients(variant, task, n, rank, scaling):
    """The kernel's float32 gradients equal the float64 gradients of the torch path (tested against
    autograd in tests/test_mlp_train.py) to float32 accuracy, for any widths (padded to 16-float
    vectors), row count (blocks of 8 rows), rank, activation, task kind and scaling."""
    rank = min([rank] + [min(task.widths[l], task.widths[l + 1]) for l in task.adapted_layers])
    weights, x, y, state = _setup(task, variant, rank, n, 2)
    want = _gradients(task, variant, weights, x, y, state, torch.float64, scaling, fused=False)
    got = _gradients(task, variant, weights, x, y, state, torch.float32, scaling, fused=True)
    for k in want:
        _close_in_norm(got[k], want[k], k)


REGRESSION = MLPTask(widths=(20, 24, 5), adapted_layers=(0, 1), perturbed_layers=(0, 1), perturbation_rank=2,
                     kind="regression", activation="relu", logit_scale=1.0, test_size=64, steps=30, lr=1e-2)
CLASSIFICATION = MLPTask(widths=(6, 8, 8, 3), adapted_layers=(0, 1), perturbed_layers=(1,), perturbation_rank=2,
                         test_size=64, steps=12, lr=1e-2)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("task", [REGRESSION, CLASSIFICATION], ids=["relu-regression", "tanh-classification"])
def test_fused_training_equals_torch_training(variant, task):
    """``train_adapters`` with the kernel (Adam steps in C) ends where the torch path ends, to float32
    tolerance, and leaves frozen tensors untouched; the final objectives agree as well."""
    weights, x, y, state = _setup(task, variant, 2, 21, 3, shift=0.0)
    trained, _ = factor_names(variant, task.adapted_layers)
    kw = {"kind": task.kind, "steps": task.steps, "lr": task.lr, "scaling": 0.7, "activation": task.activation}
    got, got_objective = train_adapters(weights, state, trained, x, y, **kw, fused=True)
    want, want_objective = train_adapters(weights, state, trained, x, y, **kw, fused=False)
    for k in state:
        np.testing.assert_allclose(got[k], want[k], **tol(np.float32), err_msg=k)
    for k in set(state) - set(trained):
        np.testing.assert_array_equal(got[k], state[k], err_msg=f"frozen {k} moved")
    np.testing.assert_allclose(got_objective, want_objective, **tol(np.float32))


def test_fused_training_is_the_same_on_one_or_two_threads():
    """Trials are split between threads, each trial computed alone: the results are bit-identical."""
    weights, x, y, state = _setup(REGRESSION, "lora", 2, 21, 5, shift=0.0)
    trained, _ = factor_names("lora", REGRESSION.adapted_layers)
    kw = {"kind": "regression", "steps": 10, "lr": 1e-2, "scaling": 1.0, "activation": "relu", "fused": True}
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(train_adapters(weights, state, trained, x, y, **kw))
    finally:
        torch.set_num_threads(previous)
    for k in trained:
        np.testing.assert_array_equal(results[0][0][k], results[1][0][k], err_msg=k)


def test_kernel_adam_is_flat_adam():
    """``FusedTrainer.train(k)`` equals k times (kernel gradients, then ``FlatAdam.step``): the C update
    is torch.optim.Adam's, operation for operation, to float32 rounding."""
    weights, x, y, state = _setup(REGRESSION, "lora", 2, 17, 2)
    trained, _ = factor_names("lora", REGRESSION.adapted_layers)
    w = [torch.tensor(np.array(m), dtype=torch.float32) for m in weights]
    ys = torch.tensor(y, dtype=torch.float32)
    finals = []
    for mode in ("train", "step"):
        params = {k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()}
        opt = FlatAdam({k: params[k] for k in trained}, lr=3e-2)
        params.update(opt.params)
        net = AdapterNet(w, params, opt.grads, torch.tensor(x, dtype=torch.float32), 1.0, "relu")
        trainer = FusedTrainer(net, opt, ys, kind="regression")
        if mode == "train":
            trainer.train(7)
        else:
            for _ in range(7):
                trainer.gradients()
                opt.step()
        assert opt.t == 7
        finals.append(opt.flat.clone())
        with pytest.raises(ValueError, match="first step"):
            trainer.train(1)
    np.testing.assert_allclose(finals[0].numpy(), finals[1].numpy(), **tol(np.float32))


def test_fused_true_needs_full_batch_float32():
    """``fused=True`` with minibatches or float64 is a ValueError naming ``fused``; a non-bool is refused."""
    weights, x, y, state = _setup(REGRESSION, "lora", 2, 9, 2)
    trained, _ = factor_names("lora", REGRESSION.adapted_layers)
    kw = {"kind": "regression", "steps": 2, "lr": 1e-2, "scaling": 1.0, "activation": "relu"}
    with pytest.raises(ValueError, match="fused"):
        train_adapters(weights, state, trained, x, y, **kw, fused=True, batch_size=4,
                       order_rngs=[np.random.default_rng(0), np.random.default_rng(1)])
    with pytest.raises(ValueError, match="fused"):
        train_adapters(weights, state, trained, x, y, **kw, fused=True, dtype=torch.float64)
    with pytest.raises(ValueError, match="fused"):
        train_adapters(weights, state, trained, x, y, **kw, fused="yes")


def test_without_the_kernel_training_falls_back_to_torch(monkeypatch, tmp_path):
    """``LORA_ASYM_KERNEL=0`` or a compiler that fails: ``available()`` is False (the failure with a
    warning naming it), ``train_adapters`` trains with torch, and ``fused=True`` is a ValueError."""
    weights, x, y, state = _setup(REGRESSION, "b_only", 2, 9, 2)
    trained, _ = factor_names("b_only", REGRESSION.adapted_layers)
    kw = {"kind": "regression", "steps": 3, "lr": 1e-2, "scaling": 1.0, "activation": "relu"}
    want, _ = train_adapters(weights, state, trained, x, y, **kw, fused=False)
    monkeypatch.setenv("LORA_ASYM_CACHE", str(tmp_path))
    for env, value in (("LORA_ASYM_KERNEL", "0"), ("CC", str(tmp_path / "no-such-compiler"))):
        with monkeypatch.context() as m:
            m.setenv(env, value)
            mlp_kernel._library.cache_clear()
            if env == "CC":
                with pytest.warns(UserWarning, match="unavailable"):
                    assert not mlp_kernel.available()
            else:
                assert not mlp_kernel.available()
            got, _ = train_adapters(weights, state, trained, x, y, **kw)
            for k in trained:
                np.testing.assert_array_equal(got[k], want[k])
            with pytest.raises(ValueError, match="fused"):
                train_adapters(weights, state, trained, x, y, **kw, fused=True)
    mlp_kernel._library.cache_clear()
    assert not list(tmp_path.glob("*.so")), "a failed build must leave no library behind"
    assert mlp_kernel.available()


def test_the_kernel_is_built_once_per_source_and_processor(monkeypatch, tmp_path):
    """A fresh cache folder gets one library, named by the hash of source, flags and processor; loading
    again reuses it (no rebuild)."""
    monkeypatch.setenv("LORA_ASYM_CACHE", str(tmp_path))
    mlp_kernel._library.cache_clear()
    try:
        assert mlp_kernel.available()
        (built,) = tmp_path.glob("mlp_kernel-*.so")
        stamp = built.stat().st_mtime_ns
        mlp_kernel._library.cache_clear()
        assert mlp_kernel.available()
        assert [p.name for p in tmp_path.iterdir()] == [built.name]
        assert built.stat().st_mtime_ns == stamp
    finally:
        monkeypatch.undo()
        mlp_kernel._library.cache_clear()
    assert os.environ.get("LORA_ASYM_CACHE") != str(tmp_path)


def test_kernel_tanh_is_within_three_ulps():
    """The kernel's vectorised tanh (expm1 by Taylor polynomials, mlp_kernel.c) is within 3 units in the
    last place of float64's tanh rounded to float32, over [-12, 12] and magnitudes 1e-40 .. 16; it maps
    ±inf to ±1, keeps NaN and the sign of zero."""
    lib = mlp_kernel._library()
    grid = [np.linspace(-12, 12, 400_001), np.logspace(-40, 1.2, 40_001), -np.logspace(-40, 1.2, 40_001)]
    x = np.concatenate(grid + [[0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(np.float32)
    out = np.empty_like(x)
    lib.mlp_tanh(x.ctypes.data, out.ctypes.data, x.size)
    finite = np.isfinite(x)
    want = np.tanh(x[finite].astype(np.float64))
    ulps = np.abs(out[finite] - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 3.0, f"{ulps.max():.2f} ulps at x = {x[finite][ulps.argmax()]!r}"
    np.testing.assert_array_equal(out[-5:-1], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(out[-4]) and not np.signbit(out[-5]) and np.isnan(out[-1])
