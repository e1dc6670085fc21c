r"""The input second moment ``Σ`` and output metric ``G`` of each LoRA module of a PEFT model, and
the asymmetry they predict.

docs/THEORY.md §1b (derived; not in Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation
Models", ICML 2024), with the definitions of ``synthetic.mlp.geometry`` for the toolkit's MLPs:
for the layer ``z = W0 h`` that a LoRA module adapts,

.. math:: \Sigma = E[h h^T], \qquad G = \tfrac12 E[J^T H_\ell J], \qquad J = \partial F / \partial z,

``F`` the network output (logits or regression values), ``H_ℓ`` the Hessian in ``F`` of the
per-sample training loss: ``2 I`` for the squared loss ``‖F − y‖²`` summed over outputs (so
``G = E[JᵀJ]``), ``diag p − ppᵀ`` for the cross-entropy, ``p = softmax(F)``. The expectations
run over the rows the layer sees: one per sample for an MLP, one per sample and position for a
sequence model. ``b_only`` is predicted to win where ``f(Σ, r) > f(G, r)`` (eq. (5)).

**Estimator of G** (Monte Carlo over sampled outputs; the Gauss–Newton matrix is the Fisher for
these losses). Draw a pseudo-label for every output row, independent of the data's labels:
``ŷ ~ softmax(F)`` for the cross-entropy, whose gradient ``g = ∂ℓ(F, ŷ)/∂F = p − e_ŷ`` has
``E_ŷ[g gᵀ] = diag p − ppᵀ = H_ℓ``; ``ε ~ N(0, I)`` for the squared loss, with ``g = ε`` and
``E[g gᵀ] = I = H_ℓ / 2``. Backpropagating ``g`` gives ``ĝ = Σ_i J_iᵀ g_i`` at every row of ``z``
(``i`` over the outputs the row reaches); the draws are independent and centred across ``i``,
so ``E[ĝ ĝᵀ] = Σ_i J_iᵀ E[g_i g_iᵀ] J_i``: the Gauss–Newton block of ``z``, unbiased. Hence
``Ĝ = c · mean over rows and draws of ĝ ĝᵀ`` with ``c = ½`` (cross-entropy) or 1 (squared).
Variance: for one row and one draw of the squared loss, ``ĝ ~ N(0, C)`` with ``C = JᵀJ``, and
``E‖ĝĝᵀ − C‖_F² = (Tr C)² + ‖C‖_F²``, a relative mean squared error of ``erank(C) + 1``
(``erank`` as in ``theory.effective_rank``); ``m`` draws on ``N`` independent rows divide it by
``m N``. For the cross-entropy ``ĝ = Jᵀ(p − e_ŷ)`` is bounded, ``‖ĝ‖ ≤ √2 ‖J‖₂``, and lies in a
space of dimension ``c − 1`` for a linear ``c``-class head. Rows of one sequence are not
independent, so the effective ``N`` is smaller for sequence models. The standard errors of
:func:`predict_asymmetry` cover the Haar draws of eq. (5) only, not this estimation.

Random streams, from ``numpy.random.SeedSequence(seed, spawn_key=key)``: ``key = (0,)`` seeds the
``torch.Generator`` of the pseudo-labels (drawn on the CPU); ``key = (1, k)`` draws the Haar
matrices of the ``k``-th LoRA module (those of ``Σ``, then those of ``G``), as in
``synthetic.mlp.geometry``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from peft_bridge.layers import lora_modules
from synthetic.mlp.geometry import AsymmetryPrediction, prediction_from_geometry
from theory.validation import Array, as_int

#: The training losses whose Gauss–Newton curvature is estimated: name -> the factor ``c`` of ``Ĝ``.
LOSSES = {"cross_entropy": 0.5, "squared": 1.0}
#: Stream keys (first entry of the ``SeedSequence`` spawn key): pseudo-labels, Haar draws.
LABEL_KEY, DRAWS_KEY = 0, 1


def _check_loss(loss_fn: object) -> str:
    """``loss_fn`` if it is a name of ``LOSSES``, else ``ValueError``."""
    if not isinstance(loss_fn, str) or loss_fn not in LOSSES:
        raise ValueError(f"loss_fn must be one of {tuple(LOSSES)} (the loss fixes the curvature H_ℓ), "
                         f"got {loss_fn!r}")
    return loss_fn


def _run(model: nn.Module, batch: object) -> torch.Tensor:
    """The network output ``F`` of ``model`` on ``batch``, as rows (N, k)."""
    if isinstance(batch, dict):
        out = model(**{k: v for k, v in batch.items() if k != "labels"})
    elif isinstance(batch, (tuple, list)):
        out = model(*batch)
    elif isinstance(batch, torch.Tensor):
        out = model(batch)
    else:
        raise ValueError(f"each batch must be a dict of model keyword arguments, a tuple of positional "
                         f"arguments or a tensor, got {type(batch).__name__}")
    logits = getattr(out, "logits", None)
    if logits is None:
        logits = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.ndim == 0:
        raise ValueError(f"the model's output must be a float tensor, a tuple starting with one, or have "
                         f".logits; got {type(out).__name__}")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("the model's output has NaN or infinite entries on a batch")
    return logits.reshape(-1, 1) if logits.ndim == 1 else logits.reshape(-1, logits.shape[-1])


def _pseudo_gradient(rows: torch.Tensor, loss_fn: str, gen: torch.Generator) -> torch.Tensor:
    """A scalar whose gradient in the output ``rows`` (N, k) is one draw of ``g`` per row."""
    if loss_fn == "squared":
        eps = torch.randn(rows.shape, generator=gen, dtype=torch.float64)
        return (rows * eps.to(rows.dtype).to(rows.device)).sum()
    if rows.shape[1] < 2:
        raise ValueError(f"loss_fn 'cross_entropy' needs at least 2 classes, the model outputs {rows.shape[1]}")
    probs = torch.softmax(rows.detach().to(torch.float64), dim=1).cpu()
    labels = torch.multinomial(probs, 1, generator=gen).squeeze(1).to(rows.device)
    return nn.functional.cross_entropy(rows, labels, reduction="sum")


class _Moments:
    """Running sums of ``h hᵀ`` and ``ĝ ĝᵀ`` (float64, CPU) of one LoRA module's base layer."""

    def __init__(self) -> None:
        self.sigma: torch.Tensor | None = None
        self.metric: torch.Tensor | None = None
        self.rows = 0
        self.outputs: list[torch.Tensor] = []

    def forward_hook(self, layer: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        """Add ``h hᵀ`` of the layer's input rows; return the output ``z`` joined to the graph."""
        h = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).to(torch.float64).cpu()
        self.sigma = h.T @ h if self.sigma is None else self.sigma + h.T @ h
        self.rows += h.shape[0]
        # A zero leaf that requires grad: z joins the graph even when nothing below it is trained.
        probe = torch.zeros((), dtype=output.dtype, device=output.device, requires_grad=True)
        z = output + probe
        self.outputs.append(z)
        return z

    def add_gradient(self, grad: torch.Tensor | None, like: torch.Tensor) -> None:
        """Add ``ĝ ĝᵀ`` of the rows of ``grad`` (zero when the output did not reach the loss)."""
        g = torch.zeros_like(like) if grad is None else grad
        g = g.detach().reshape(-1, g.shape[-1]).to(torch.float64).cpu()
        self.metric = g.T @ g if self.metric is None else self.metric + g.T @ g


def layer_geometry(model: nn.Module, batches: Iterable[object], loss_fn: str, *, seed: int,
                   label_samples: int = 1, adapter: str = "default") -> dict[str, tuple[Array, Array]]:
    r"""Input second moment ``Σ`` and output metric ``G`` of every LoRA module, estimated on ``batches``.

    docs/THEORY.md §1b; the definitions of ``synthetic.layer_geometry`` (module docstring):
    ``Σ = E[h hᵀ]`` over the rows ``h`` entering the module's base layer, exactly (the sample
    mean), and ``G = ½ E[Jᵀ H_ℓ J]`` (cross-entropy) or ``E[JᵀJ]`` (squared loss), by the
    unbiased sampled-output estimator of the module docstring with ``label_samples`` draws per
    batch. A forward hook on each base layer records ``h`` and the output ``z``;
    ``torch.autograd.grad`` of the pseudo-loss gives ``ĝ = ∂ℓ/∂z``. The labels of the batches are
    not used (a ``"labels"`` entry of a dict batch is dropped). The model runs in eval mode (no
    dropout) at its current weights: the pretrained ones when the LoRA update is zero, as after
    PEFT's default init or :func:`peft_bridge.freeze_factor`; no parameter's ``.grad`` changes.

    Parameters
    ----------
    model : torch.nn.Module with PEFT LoRA layers (:func:`peft_bridge.lora_modules`).
    batches : iterable of batches, each a dict (``model(**batch)``), a tuple (``model(*batch)``)
        or a tensor (``model(batch)``); the output is a tensor (…, k), a tuple starting with one,
        or has ``.logits`` (transformers); all leading axes are rows.
    loss_fn : {"cross_entropy", "squared"}, the training loss (fixes ``H_ℓ``).
    seed : int >= 0, seeds the pseudo-labels.
    label_samples : int >= 1, pseudo-label draws per batch.
    adapter : str.

    Returns
    -------
    dict {module name: (sigma (d_in, d_in), metric (d_out, d_out))}, float64, symmetric PSD.
    """
    loss_fn = _check_loss(loss_fn)
    seed = as_int(seed, "seed", minimum=0)
    label_samples = as_int(label_samples, "label_samples", minimum=1)
    modules = lora_modules(model, adapter)
    if isinstance(batches, (str, bytes, dict, torch.Tensor)) or not isinstance(batches, Iterable):
        raise ValueError(f"batches must be an iterable of batches, got {type(batches).__name__}")
    return _geometry(model, modules, batches, loss_fn, label_samples, keyed_torch_generator(seed, LABEL_KEY))


def keyed_torch_generator(seed: int, key: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from stream ``(key,)`` of ``numpy.random.SeedSequence(seed)``:
    the pseudo-labels here (``LABEL_KEY``), a fine-tuning run's minibatch order in
    ``peft_bridge.foundation``."""
    state = np.random.SeedSequence(seed, spawn_key=(key,)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def _geometry(model: nn.Module, modules: dict[str, nn.Module], batches: Iterable[object], loss_fn: str,
              label_samples: int, gen: torch.Generator) -> dict[str, tuple[Array, Array]]:
    """``layer_geometry`` with validated arguments."""
    moments = {name: _Moments() for name in modules}
    handles = [m.get_base_layer().register_forward_hook(moments[name].forward_hook) for name, m in modules.items()]
    modes = {m: m.training for m in model.modules()}
    model.eval()
    seen = 0
    try:
        with torch.enable_grad():
            for batch in batches:
                seen += 1
                rows = _run(model, batch)
                outputs = [(mom, z) for mom in moments.values() for z in mom.outputs]
                for draw in range(label_samples):
                    loss = _pseudo_gradient(rows, loss_fn, gen)
                    grads = torch.autograd.grad(loss, [z for _, z in outputs], allow_unused=True,
                                                retain_graph=draw < label_samples - 1)
                    for (mom, z), grad in zip(outputs, grads):
                        mom.add_gradient(grad, z)
                for mom in moments.values():
                    mom.outputs.clear()
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes.items():
            module.training = mode
    if seen == 0:
        raise ValueError("batches is empty: Σ and G need at least one batch")
    return {name: _averages(name, mom, LOSSES[loss_fn] / label_samples) for name, mom in moments.items()}


def _averages(name: str, mom: _Moments, metric_factor: float) -> tuple[Array, Array]:
    """``(Σ, G)`` from the running sums of one module."""
    if mom.rows == 0 or mom.metric is None:
        raise ValueError(f"LoRA module {name!r} was not called by the model on these batches")
    sigma = mom.sigma.numpy() / mom.rows
    metric = mom.metric.numpy() * (metric_factor / mom.rows)
    return (sigma + sigma.T) / 2, (metric + metric.T) / 2


def predict_asymmetry(model: nn.Module, batches: Iterable[object], loss_fn: str, rank: int, *, seed: int,
                      draws: int = 256, label_samples: int = 1,
                      adapter: str = "default") -> dict[str, AsymmetryPrediction]:
    r"""Predict, for each LoRA module, whether ``b_only`` or ``a_only`` removes more of a shift's loss.

    docs/THEORY.md §1b, eq. (5) (derived; not in the paper): with ``Σ`` and ``G`` of the module
    from :func:`layer_geometry`, a shift of random orientation loses the fraction

    .. math:: \text{b\_only: } f(\Sigma, r), \qquad \text{a\_only: } f(G, r),
              \qquad f(X, r) = E_Q \|P_Q X^{1/2}\|_F^2 / \operatorname{Tr} X,

    ``theory.captured_fraction`` with ``draws`` Haar draws (stream ``(1, k)`` for the ``k``-th
    module); ``b_only`` is predicted where ``f(Σ, r) > f(G, r)`` (``AsymmetryPrediction.prefers``).
    Theorem 4.3 of Zhu et al. (ICML 2024) is the case ``G = I``, ``f(I, r) = r / d_out``.

    Parameters
    ----------
    model, batches, loss_fn, seed, label_samples, adapter : as in :func:`layer_geometry`.
    rank : int, ``1 <= rank <= min(d_in, d_out)`` of every LoRA module.
    draws : int >= 2, Haar draws per Monte Carlo estimate.

    Returns
    -------
    dict {module name: AsymmetryPrediction}, in module order; each record's ``layers`` is
    ``(k,)``, the module's index. ``ValueError`` when ``Σ`` or ``G`` of a module is zero.
    """
    loss_fn = _check_loss(loss_fn)
    rank = as_int(rank, "rank", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    draws = as_int(draws, "draws", minimum=2)
    label_samples = as_int(label_samples, "label_samples", minimum=1)
    modules = lora_modules(model, adapter)
    for name, module in modules.items():
        d_out, d_in = module.lora_B[adapter].out_features, module.lora_A[adapter].in_features
        if rank > min(d_in, d_out):
            raise ValueError(f"rank {rank} exceeds min(d_in, d_out) = {min(d_in, d_out)} of LoRA module {name!r}")
    geometry = layer_geometry(model, batches, loss_fn, seed=seed, label_samples=label_samples, adapter=adapter)
    return predictions_from_geometry(geometry, rank, seed=seed, draws=draws)


def predictions_from_geometry(geometry: dict[str, tuple[Array, Array]], rank: int, *, seed: int,
                              draws: int) -> dict[str, AsymmetryPrediction]:
    """:func:`predict_asymmetry` from ``Σ`` and ``G`` already estimated by :func:`layer_geometry` (in its
    module order; the ``k``-th module's Haar draws from stream ``(1, k)`` of ``seed``), for a caller
    that also needs the matrices."""
    return {name: _module_prediction(name, k, sigma, metric, rank, draws, seed)
            for k, (name, (sigma, metric)) in enumerate(geometry.items())}


def _module_prediction(name: str, k: int, sigma: Array, metric: Array, rank: int, draws: int,
                       seed: int) -> AsymmetryPrediction:
    """The prediction of the ``k``-th module from its ``Σ`` and ``G``."""
    for what, value in (("input second moment Sigma", sigma), ("output metric G", metric)):
        if not np.any(value):
            raise ValueError(f"LoRA module {name!r} has a zero {what} on these batches: f(X, r) of eq. (5) "
                             f"is undefined")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(DRAWS_KEY, k)))
    return prediction_from_geometry(sigma, metric, rank, draws=draws, rng=rng, layer=k)
