"""The input second moment Σ and output metric G of an MLP layer, and the asymmetry they predict
(synthetic.mlp.geometry; docs/THEORY.md §1b, derived, not in the paper)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from synthetic.mlp import geometry as mlp_geometry
from synthetic.mlp.geometry import layer_geometry, predict_asymmetry
from synthetic.mlp.task import MLPTask, sample_data
from synthetic.mlp.train import objective
from tests.tolerances import MC_SIGMAS, tol
from theory.validation import numerical_rank

#: Slack of a central-difference Jacobian (step FD_STEP, float64) against the computed metric,
#: relative to the largest entry of the metric.
FD_RTOL, FD_STEP = 1e-6, 1e-5
#: Slack of a second central difference of the training objective (step TAYLOR_STEP).
TAYLOR_RTOL, TAYLOR_STEP = 1e-5, 1e-3

#: Three layers: 0 (first), 1 (hidden), 2 (last).
SMALL = MLPTask(widths=(5, 7, 6, 4), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2, test_size=64)
KINDS = [("tanh", "classification"), ("tanh", "regression"), ("relu", "classification"), ("relu", "regression")]


def _inputs(task: MLPTask, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The documented input stream of ``layer_geometry`` (one ``sample_data`` call: samples <= INPUT_CHUNK)."""
    assert samples <= mlp_geometry.INPUT_CHUNK
    return sample_data(task, samples, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))))


def _act(z: np.ndarray, activation: str) -> np.ndarray:
    return np.tanh(z) if activation == "tanh" else np.maximum(z, 0.0)


def _layer_input(weights, x, layer, activation):  # (n, d_0) -> (n, d_layer), float64
    h = x
    for k in range(layer):
        h = _act(h @ weights[k].T, activation)
    return h


def _output_from_z(weights, z, layer, activation):  # (n, d_{layer+1}) -> (n, d_L)
    h = z
    for k in range(layer + 1, len(weights)):
        h = _act(h, activation) @ weights[k].T
    return h


def _loss_hessian(f: np.ndarray, kind: str) -> np.ndarray:  # (d_L,) -> (d_L, d_L), by autograd
    def loss(out):
        if kind == "regression":
            return (out**2).sum()
        return torch.nn.functional.cross_entropy(out[None], torch.tensor([0]))
    return torch.autograd.functional.hessian(loss, torch.tensor(f, dtype=torch.float64)).numpy()


@pytest.mark.parametrize("layer", [0, 1, 2])
@pytest.mark.parametrize(("activation", "kind"), KINDS)
def test_metric_matches_finite_difference_gauss_newton(activation, kind, layer):
    """G = ½ E[Jᵀ H_ℓ J] with J = ∂f/∂z by central differences of the float64 network output in the
    layer's output z and H_ℓ the autograd Hessian of the per-sample loss (squared loss summed over
    outputs, or cross-entropy) in f: layer_geometry's G agrees to FD_RTOL, for the first, a hidden and
    the last layer, tanh and relu, classification and regression."""
    task, n = replace(SMALL, activation=activation, kind=kind), 48
    weights = task.base_weights()
    x, _ = _inputs(task, n, seed=3)
    z = _layer_input(weights, x, layer, activation) @ weights[layer].T
    jac = np.empty((n, task.widths[-1], z.shape[1]))
    for j in range(z.shape[1]):
        step = np.zeros(z.shape[1])
        step[j] = FD_STEP
        up, down = _output_from_z(weights, z + step, layer, activation), _output_from_z(weights, z - step, layer, activation)
        jac[:, :, j] = (up - down) / (2 * FD_STEP)
    out = _output_from_z(weights, z, layer, activation)
    want = np.mean([0.5 * jac[i].T @ _loss_hessian(out[i], kind) @ jac[i] for i in range(n)], axis=0)
    _, metric = layer_geometry(task, layer, samples=n, seed=3)
    np.testing.assert_allclose(metric, want, rtol=FD_RTOL, atol=FD_RTOL * np.abs(want).max())


@pytest.mark.parametrize("layer", [0, 1, 2])
@pytest.mark.parametrize(("activation", "kind"), KINDS)
def test_sigma_is_the_second_moment_of_the_layer_inputs(activation, kind, layer):
    """Σ = E[h hᵀ] over the documented input stream, h = x for layer 0 and φ(W0_{l-1} h_{l-1}) above;
    Σ and G are symmetric positive semi-definite with the layer's shapes."""
    task, n = replace(SMALL, activation=activation, kind=kind), 40
    x, _ = _inputs(task, n, seed=1)
    h = _layer_input(task.base_weights(), x, layer, activation)
    sigma, metric = layer_geometry(task, layer, samples=n, seed=1)
    np.testing.assert_allclose(sigma, h.T @ h / n, **tol(np.float64))
    d_out, d_in = task.layer_shapes[layer]
    assert sigma.shape == (d_in, d_in) and metric.shape == (d_out, d_out)
    for m in (sigma, metric):
        assert m.dtype == np.float64
        np.testing.assert_array_equal(m, m.T)
        assert np.linalg.eigvalsh(m)[0] >= -1e-12 * np.abs(m).max()


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_last_layer_metric_of_regression_is_identity(activation):
    """For the last layer of a regression network J = I and ½ H_ℓ = I (squared loss summed over outputs),
    so G = I exactly and eq. (1G) is eq. (1)."""
    task = replace(SMALL, activation=activation, kind="regression")
    _, metric = layer_geometry(task, 2, samples=17, seed=0)
    np.testing.assert_array_equal(metric, np.eye(task.widths[-1]))


@pytest.mark.parametrize(("kind", "samples"), [("regression", 32), ("classification", 1)])
def test_metric_constant_is_the_quadratic_term_of_the_training_objective(kind, samples):
    """At the last layer (no curvature of f in z) the quadratic term of the training objective of
    synthetic.mlp.train.objective along δ, (L(δ) + L(−δ) − 2 L(0)) / 2, equals Tr[G δ Σ δᵀ] of eq. (1G):
    for regression on any sample (the loss is quadratic), for cross-entropy on one sample (where the
    Kronecker factorisation of (1G) is exact), to TAYLOR_RTOL."""
    task = replace(SMALL, kind=kind)
    weights = task.base_weights()
    x, y = _inputs(task, samples, seed=5)
    h = _layer_input(weights, x, 2, task.activation)
    delta = np.random.default_rng(0).standard_normal(weights[2].shape) * TAYLOR_STEP
    target = torch.tensor(y)[None]
    obj = lambda w: float(objective(torch.tensor(h @ w.T)[None], target, kind)[0])  # noqa: E731
    quadratic = (obj(weights[2] + delta) + obj(weights[2] - delta) - 2 * obj(weights[2])) / 2
    sigma, metric = layer_geometry(task, 2, samples=samples, seed=5)
    np.testing.assert_allclose(quadratic, np.trace(metric @ delta @ sigma @ delta.T), rtol=TAYLOR_RTOL)


def test_blocks_and_input_chunks_do_not_change_the_result(monkeypatch):
    """Processing one row at a time (JACOBIAN_FLOATS = 1) gives the same Σ and G up to rounding; the
    inputs come in INPUT_CHUNK-sample calls of sample_data, so the result depends on the seed only."""
    task = replace(SMALL, activation="relu")
    want = layer_geometry(task, 1, samples=30, seed=2)
    monkeypatch.setattr(mlp_geometry, "JACOBIAN_FLOATS", 1)
    got = layer_geometry(task, 1, samples=30, seed=2)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **tol(np.float64))
    monkeypatch.setattr(mlp_geometry, "INPUT_CHUNK", 7)
    rng = np.random.default_rng(np.random.SeedSequence(2, spawn_key=(0,)))
    x = np.concatenate([sample_data(task, m, rng)[0] for m in (7, 7, 7, 7, 2)])
    h = _layer_input(task.base_weights(), x, 1, "relu")
    np.testing.assert_allclose(layer_geometry(task, 1, samples=30, seed=2)[0], h.T @ h / 30, **tol(np.float64))


@pytest.mark.parametrize("rank", [1, 2, 3, 5])
def test_single_linear_layer_a_only_fraction_is_r_over_d_out(rank):
    """A network of one linear layer with squared loss has G = I, so a_only removes exactly r/d_out of a
    random-orientation shift's loss (Theorem 4.3's setting; f(I, r) = r/d), with standard error 0."""
    task = MLPTask(widths=(6, 5), adapted_layers=(0,), perturbed_layers=(0,), perturbation_rank=2, kind="regression")
    pred = predict_asymmetry(task, rank, samples=64, draws=50, seed=0)
    assert pred.a_only_fraction == rank / 5 and pred.a_only_stderr == 0.0
    assert rank / 6 <= pred.b_only_fraction <= 1.0
    assert pred.advantage == pred.b_only_fraction - pred.a_only_fraction
    assert pred.prefers == ("b_only" if pred.advantage > 0 else "a_only")


def test_ten_class_softmax_head_has_metric_rank_nine():
    """At the 10-class head of MLPTask.quick() (layer 2, 64 -> 10) G = ½ E[diag p − ppᵀ] annihilates the
    all-ones vector, so rank G <= 9 and f(G, r) >= r/9 (eq. (5) on the range of G), within MC_SIGMAS."""
    task = MLPTask.quick()
    _, metric = layer_geometry(task, 2, samples=2048, seed=0)
    np.testing.assert_allclose(metric @ np.ones(10), 0.0, atol=1e-12 * np.abs(metric).max())
    assert numerical_rank(np.linalg.eigvalsh(metric)) <= 9
    pred = replace(task, adapted_layers=(2,), perturbed_layers=(2,))
    out = predict_asymmetry(pred, 4, samples=2048, draws=400, seed=0)
    assert out.a_only_fraction >= 4 / 9 - MC_SIGMAS * out.a_only_stderr


def test_hidden_layer_below_a_ten_class_head_has_a_concentrated_full_rank_metric():
    """Below the head of MLPTask.quick() (layer 1, 64 -> 64, then tanh, then 10 classes) J = W2 diag φ'(z)
    varies with the input, so G has full rank 64: the bound rank G <= 10 of docs/THEORY.md §1b needs a
    linear read-out right after the layer. G is still concentrated (its 9 largest eigenvalues carry more
    than 3/4 of Tr G) and f(G, 4) > 4/64; measured here, f(G, 4) < 4/10."""
    task = MLPTask.quick()
    _, metric = layer_geometry(task, 1, samples=2048, seed=0)
    evals = np.linalg.eigvalsh(metric)[::-1]
    assert numerical_rank(evals) == 64
    assert evals[:9].sum() > 0.75 * evals.sum()
    out = predict_asymmetry(task, 4, samples=2048, draws=400, seed=0)
    assert 4 / 64 < out.a_only_fraction < 4 / 10


def test_several_adapted_layers_average_the_per_layer_predictions():
    """With several adapted layers the top-level numbers are unweighted means over the layers, and a
    layer's prediction does not depend on which other layers are adapted (its own streams)."""
    task = replace(SMALL, adapted_layers=(0, 1, 2))
    pred = predict_asymmetry(task, 2, samples=64, draws=30, seed=4)
    assert pred.layers == (0, 1, 2) and len(pred.per_layer) == 3
    for name in ("b_only_fraction", "a_only_fraction", "effective_rank_sigma", "effective_rank_metric"):
        assert getattr(pred, name) == pytest.approx(np.mean([getattr(p, name) for p in pred.per_layer]))
    assert pred.b_only_stderr == pytest.approx(np.sqrt(sum(p.b_only_stderr**2 for p in pred.per_layer)) / 3)
    alone = predict_asymmetry(replace(SMALL, adapted_layers=(1,)), 2, samples=64, draws=30, seed=4)
    assert alone.per_layer[0] == pred.per_layer[1]
    assert (alone.b_only_fraction, alone.a_only_fraction) == (pred.per_layer[1].b_only_fraction,
                                                              pred.per_layer[1].a_only_fraction)


def test_saturated_softmax_metric_is_refused():
    """A softmax saturated on every sample has diag p − ppᵀ = 0, so G = 0 and f(G, r) is undefined:
    predict_asymmetry raises ValueError naming the task and the layer."""
    task = replace(SMALL, logit_scale=1e6)
    with pytest.raises(ValueError, match="task has a zero output metric G at layer 1"):
        predict_asymmetry(task, 2, samples=16, draws=10, seed=0)
