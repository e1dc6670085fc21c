"""Σ and G of PEFT LoRA modules through hooks (peft_bridge.layer_geometry, predict_asymmetry) against
exact computations: the toolkit's own MLP geometry, per-sample Jacobians, and the linear closed form
(docs/THEORY.md §1b, derived, not in the paper)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from torch import nn

import theory
from synthetic.mlp.geometry import layer_geometry as mlp_layer_geometry
from synthetic.mlp.task import MLPTask, sample_data
from tests.tolerances import MC_SIGMAS, tol

peft = pytest.importorskip("peft")
import peft_bridge  # noqa: E402  (after the skip: needs the [peft] extra)

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

#: Largest difference of f(Ĝ, r) from f(G, r) (same Haar draws) for the wide linear read-out, whose Ĝ
#: averages 4096 Gaussian draws in 40 output dimensions (0.002 at most over 12 seeds tried).
FRACTION_SLACK = 0.01


def _peft_from_weights(weights: list[np.ndarray], target: str, rank: int, *, tanh: bool = True) -> nn.Module:
    """A float64 bias-free MLP with the given weights, LoRA on ``target``: tanh between the layers
    (Linear layers "0", "2", …) or, with ``tanh=False``, none (a linear network, layers "0", "1", …)."""
    layers: list[nn.Module] = []
    for k, w in enumerate(weights):
        linear = nn.Linear(w.shape[1], w.shape[0], bias=False).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.array(w)))
        layers += [linear] + ([nn.Tanh()] if tanh and k < len(weights) - 1 else [])
    lora = peft.LoraConfig(r=rank, lora_alpha=rank, target_modules=[target])
    return peft.get_peft_model(nn.Sequential(*layers), lora)


def _exact_metric_and_stderr(z: torch.Tensor, head, kind: str, draws: int) -> tuple[np.ndarray, np.ndarray]:
    """G = ½ E[Jᵀ H_ℓ J] from per-sample Jacobians of ``head`` at ``z`` (n, d), and the standard error of
    the sampled-output estimator averaged over n rows and ``draws`` draws per row."""
    jac = torch.func.vmap(torch.func.jacrev(head))(z).numpy()  # (n, k, d)
    if kind == "regression":  # ĝ ~ N(0, C), C = JᵀJ: Var(ĝ_a ĝ_b) = C_aa C_bb + C_ab²
        c = np.einsum("nka,nkb->nab", jac, jac)
        diag = np.einsum("naa->na", c)
        var = diag[:, :, None] * diag[:, None, :] + c**2
        mean = c
    else:  # ½ ĝ ĝᵀ with ĝ = Jᵀ(p − e_y), y ~ p: enumerate the classes
        p = torch.softmax(head(z), dim=1).numpy()  # (n, k)
        v = np.einsum("nka,nyk->nya", jac, p[:, None, :] - np.eye(p.shape[1])[None])  # (n, y, d)
        outer = 0.5 * v[:, :, :, None] * v[:, :, None, :]
        mean = np.einsum("ny,nyab->nab", p, outer)
        var = np.einsum("ny,nyab->nab", p, outer**2) - mean**2
    n = z.shape[0]
    return mean.mean(axis=0), np.sqrt(var.sum(axis=0) / (n**2 * draws))


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_hooks_reproduce_the_mlp_geometry(kind):
    """On the toolkit's own MLP (tanh, hidden layer adapted), Σ through the hook is synthetic.layer_geometry's
    Σ exactly, and the sampled-output Ĝ is unbiased for its G = ½ E[Jᵀ H_ℓ J]: every entry within
    MC_SIGMAS standard errors, the standard error computed exactly from per-sample Jacobians."""
    task = MLPTask(widths=(5, 7, 6, 4), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2,
                   kind=kind, test_size=64)
    samples, draws = 256, 16
    weights = list(task.base_weights())
    sigma_ref, metric_ref = mlp_layer_geometry(task, 1, samples=samples, seed=3)
    x, _ = sample_data(task, samples, np.random.default_rng(np.random.SeedSequence(3, spawn_key=(0,))))
    model = _peft_from_weights(weights, "2", rank=2)
    batches = [torch.from_numpy(x[:100]), torch.from_numpy(x[100:])]
    loss = "cross_entropy" if kind == "classification" else "squared"
    (sigma, metric), = peft_bridge.layer_geometry(model, batches, loss, seed=0, label_samples=draws).values()
    assert_allclose(sigma, sigma_ref, **tol())
    w1, w2 = (torch.from_numpy(np.array(w)) for w in weights[1:])
    z = torch.from_numpy(np.tanh(x @ weights[0].T)) @ w1.T
    exact, stderr = _exact_metric_and_stderr(z, lambda zz: torch.tanh(zz) @ w2.T, kind, draws)
    assert_allclose(exact, metric_ref, **tol())  # the reference is the house definition, ½ included
    assert np.all(np.abs(metric - exact) <= MC_SIGMAS * stderr + 1e-12), np.max(np.abs(metric - exact) / stderr)


def _linear_readout(c: int, kind: str, seed: int) -> tuple[nn.Module, torch.Tensor, np.ndarray, np.ndarray]:
    """x (n, 24) → W (16 × 24, adapted) → R (c × 16), linear; the exact Σ and G of the adapted layer."""
    rng = np.random.default_rng(seed)
    d_in, d, n = 24, 16, 512
    x = rng.standard_normal((n, d_in)) * np.arange(1, d_in + 1) ** -1.0
    w, r = rng.standard_normal((d, d_in)) / np.sqrt(d_in), rng.standard_normal((c, d)) / np.sqrt(d)
    model = _peft_from_weights([w, r], "0", rank=3, tanh=False)
    sigma = x.T @ x / n
    if kind == "squared":  # J = R, ½ H_ℓ = I
        metric = r.T @ r
    else:
        logits = x @ w.T @ r.T
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        metric = 0.5 * r.T @ (np.diag(p.mean(axis=0)) - p.T @ p / n) @ r
    return model, torch.from_numpy(x), sigma, metric


@pytest.mark.parametrize(("c", "kind", "winner"), [(3, "cross_entropy", "a_only"), (40, "squared", "b_only")])
def test_predict_asymmetry_matches_the_linear_closed_form(c, kind, winner):
    """docs/THEORY.md §1b.5: where the network is linear after the layer (F = R z), G is known in closed
    form; predict_asymmetry gives eq. (5)'s f(Σ, r) exactly and f(G, r) within FRACTION_SLACK (the same
    Haar draws), hence the same winner: a narrow 3-class head (rank G <= 2 <= r, f(G, r) = 1) reverses
    the asymmetry to a_only; a wide 40-output regression head leaves b_only ahead."""
    model, x, sigma, metric = _linear_readout(c, kind, seed=0)
    batches = [x[:256], x[256:]]
    pred = peft_bridge.predict_asymmetry(model, batches, kind, 3, seed=5, draws=64, label_samples=8)["0"]
    rng = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(1, 0)))
    b_only, _ = theory.captured_fraction(sigma, 3, draws=64, rng=rng)
    a_only, _ = theory.captured_fraction(metric, 3, draws=64, rng=rng)
    assert_allclose(pred.b_only_fraction, b_only, **tol())
    assert abs(pred.a_only_fraction - a_only) <= FRACTION_SLACK
    if c == 3:
        assert pred.a_only_fraction == a_only == 1.0
    assert pred.prefers == winner and pred.layers == (0,)


def test_geometry_on_a_transformer_leaves_the_model_as_it_was():
    """On a BERT classifier (dict batches, .logits output, positions as rows) every LoRA module gets a
    symmetric PSD Σ (d_in × d_in) and G (d_out × d_out); no parameter gradient and no train/eval mode changes."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=8, num_labels=3)
    model = peft.get_peft_model(transformers.BertForSequenceClassification(config),
                                peft.LoraConfig(r=2, lora_alpha=2, target_modules=["query", "value"]))
    model.train()
    batches = [{"input_ids": torch.randint(0, 20, (4, 8)), "labels": torch.zeros(4, dtype=torch.long)}]
    geometry = peft_bridge.layer_geometry(model, batches, "cross_entropy", seed=0)
    assert list(geometry) == ["bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.0.attention.self.value"]
    for sigma, metric in geometry.values():
        for mat in (sigma, metric):
            assert mat.shape == (16, 16) and np.allclose(mat, mat.T)
            assert np.linalg.eigvalsh(mat)[0] >= -1e-10 * np.abs(mat).max() and np.any(mat)
    assert all(p.grad is None for p in model.parameters())
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize(("call", "fragment"), [
    (lambda m, b: peft_bridge.layer_geometry(m, b, "hinge", seed=0), "loss_fn must be one of"),
    (lambda m, b: peft_bridge.layer_geometry(m, [], "squared", seed=0), "batches is empty"),
    (lambda m, b: peft_bridge.layer_geometry(m, b[0], "squared", seed=0), "batches must be an iterable"),
    (lambda m, b: peft_bridge.layer_geometry(m, b, "squared", seed=0, label_samples=0), "label_samples must be >= 1"),
    (lambda m, b: peft_bridge.layer_geometry(m, b, "cross_entropy", seed=0), "at least 2 classes"),
    (lambda m, b: peft_bridge.layer_geometry(m, [torch.zeros(2, 3, 3)[0]], "squared", seed=-2), "seed must be >= 0"),
    (lambda m, b: peft_bridge.predict_asymmetry(m, b, "squared", 4, seed=0), "rank 4 exceeds min"),
    (lambda m, b: peft_bridge.layer_geometry(m, [torch.full((2, 3), float("nan"), dtype=torch.float64)], "squared",
                                             seed=0), "NaN or infinite"),
])
def test_geometry_refuses_bad_arguments(call, fragment):
    """An unknown loss, no batches, a tensor for the batch list, zero draws, one output for the
    cross-entropy, a negative seed, a rank above the layer's width or a NaN output: ValueError naming it."""
    model = _peft_from_weights([np.eye(3), np.ones((1, 3))], "0", rank=1)
    with pytest.raises(ValueError, match=fragment):
        call(model, [torch.ones(2, 3, dtype=torch.float64)])
