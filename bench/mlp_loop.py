r"""The per-run baseline: one plain PyTorch model and one ``torch.optim.Adam`` per trial.

This is how a researcher would measure a generalization gap without the toolkit: a LoRA
module (``h W0^T + s (h A^T) B^T``, the update ``W0 + s B A`` of Hu et al., "LoRA: Low-Rank
Adaptation of Large Language Models", ICLR 2022, studied by Zhu et al., "Asymmetry in Low-Rank
Adapters of Foundation Models", ICML 2024; ``s = MLPTask.scaling(r)``, ``alpha / r`` as in common
LoRA code, 1 when ``alpha`` is None; docs/THEORY.md §0 and §5), Adam, and a Python loop over
seeds. It trains the same maths on the same trials as ``synthetic.mlp.mlp_trial_losses``: each
trial's data, frozen factor and test samples come from the same streams
(``synthetic.mlp.trial_streams``), so the two engines can be compared trial for trial.
Full-batch training only (the reference configuration of the benchmark).

``loop_step_flops`` counts the floating-point operations of one Adam step of this loop (the
matrix products of the forward and backward pass; elementwise work is not counted) and
``loop_trial_flops`` those of a whole trial: the numerators of every "achieved GFLOP/s" the
benchmark prints. The README (section "Performance") reports the loop's times and these GFLOP/s.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from synthetic.mlp.engine import TEST_CHUNK, MLPTask, sample_data, trial_streams
from synthetic.mlp.train import LOSSES, factor_names, init_adapters
from theory.validation import as_int


class LoRALinear(torch.nn.Module):
    r"""``h -> h W0^T + s (h A^T) B^T``; W0 is a buffer, A and B are parameters (frozen or not).

    A LoRA layer as written in plain PyTorch (Hu et al., "LoRA: Low-Rank Adaptation of Large
    Language Models", ICLR 2022; docs/THEORY.md §0), bias-free as the MLPs of docs/THEORY.md §5:

    .. math:: z = W_0 h + s\, B A h, \qquad A \in \mathbb R^{r \times d_{in}},\
              B \in \mathbb R^{d_{out} \times r}.

    Parameters
    ----------
    w0 : torch.Tensor (d_out, d_in), the pretrained weight (never trained).
    a : torch.Tensor (r, d_in); b : torch.Tensor (d_out, r), the initial factors.
    scaling : float, ``s``.
    train_a, train_b : bool, whether ``A`` and ``B`` require a gradient (``lora``: both;
        ``b_only``: ``B``; ``a_only``: ``A``).
    """

    def __init__(self, w0: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scaling: float,
                 train_a: bool, train_b: bool) -> None:
        super().__init__()
        self.register_buffer("w0", w0)
        self.a = torch.nn.Parameter(a, requires_grad=train_a)
        self.b = torch.nn.Parameter(b, requires_grad=train_b)
        self.scaling = scaling

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (m, d_in) -> (m, d_out)
        """``h W0ᵀ + s (h Aᵀ) Bᵀ`` for rows ``h`` (m, d_in) (docs/THEORY.md §0): (m, d_out).

        ``h Aᵀ`` is formed first, so the adapter costs ``2 m r (d_in + d_out)`` FLOPs
        (:func:`forward_flops`)."""
        return h @ self.w0.T + self.scaling * ((h @ self.a.T) @ self.b.T)


class FrozenLinear(torch.nn.Module):
    """``h -> h W^T`` with W a buffer (a layer without adapter) or a parameter (``full``).

    The layers of the bias-free MLP of docs/THEORY.md §5 that carry no LoRA adapter: frozen at
    ``W0``, or trained whole for the ``full`` variant (docs/THEORY.md §0).

    Parameters
    ----------
    w : torch.Tensor (d_out, d_in)
    trained : bool, a parameter (trained) rather than a buffer.
    """

    def __init__(self, w: torch.Tensor, trained: bool) -> None:
        super().__init__()
        if trained:
            self.w = torch.nn.Parameter(w)
        else:
            self.register_buffer("w", w)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h Wᵀ`` for rows ``h`` (m, d_in) (docs/THEORY.md §5): (m, d_out), ``2 m d_in d_out``
        FLOPs."""
        return h @ self.w.T


class AdaptedMLP(torch.nn.Module):
    """The bias-free MLP of ``synthetic.mlp`` with one module per layer.

    docs/THEORY.md §5, "Adapted network": ``h_{l+1} = φ(layer_l(h_l))`` with ``φ`` = tanh when
    ``activation == "tanh"`` and ReLU otherwise, and no activation after the last layer (its
    output is the logits or the regression values).

    Parameters
    ----------
    layers : list of torch.nn.Module, one per weight matrix (:class:`LoRALinear` or
        :class:`FrozenLinear`), input layer first.
    activation : str, ``"tanh"`` or ``"relu"``.
    """

    def __init__(self, layers: list[torch.nn.Module], activation: str) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.act = torch.tanh if activation == "tanh" else torch.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network output for inputs ``x`` (m, d_0): (m, d_L) (docs/THEORY.md §5)."""
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.act(h)
        return h


def build_model(task: MLPTask, variant: str, rank: int, init: dict[str, np.ndarray]) -> AdaptedMLP:
    """One trial's model from its initial adapters (``synthetic.mlp.train.init_adapters``).

    Per layer ``l`` of ``task.base_weights()``: a :class:`LoRALinear` when ``init`` has
    ``layer{l}.A`` (with ``W0_l``, the initial ``A`` and ``B``, ``s = task.scaling(rank)``, and
    the factors trained that ``synthetic.mlp.train.factor_names`` names for ``variant``); a
    trained :class:`FrozenLinear` from ``layer{l}.W`` (``full``); else a frozen one at ``W0_l``.
    Tensors are cast to float32. The variants and their starts are those of docs/THEORY.md §0
    and §5 (every variant starts at the pretrained model).

    Parameters
    ----------
    task : MLPTask
    variant : {"lora", "b_only", "a_only", "full"}
    rank : int, the LoRA rank ``r``.
    init : dict {tensor name: numpy.ndarray}, from ``init_adapters``.

    Returns
    -------
    AdaptedMLP
    """
    trained, _ = factor_names(variant, task.adapted_layers)
    f32 = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    layers: list[torch.nn.Module] = []
    for l, w0 in enumerate(task.base_weights()):
        if f"layer{l}.A" in init:
            layers.append(LoRALinear(f32(w0), f32(init[f"layer{l}.A"]), f32(init[f"layer{l}.B"]),
                                     task.scaling(rank), f"layer{l}.A" in trained, f"layer{l}.B" in trained))
        elif f"layer{l}.W" in init:
            layers.append(FrozenLinear(f32(init[f"layer{l}.W"]), trained=True))
        else:
            layers.append(FrozenLinear(f32(w0), trained=False))
    return AdaptedMLP(layers, task.activation)


def _losses(out: torch.Tensor, y: torch.Tensor, kind: str, clip: float) -> dict[str, torch.Tensor]:
    """Per-sample losses of ``kind`` (docs/THEORY.md §5, "Losses"), by name."""
    if kind == "regression":
        sq = ((out - y) ** 2).sum(dim=1)
        return {"squared": sq, "clipped": torch.clamp(sq, max=clip)}
    ce = torch.nn.functional.cross_entropy(out, y, reduction="none")
    return {"cross_entropy": ce, "zero_one": (out.argmax(dim=1) != y).to(out.dtype)}


def _as_target(y: np.ndarray, kind: str) -> torch.Tensor:
    """Targets as int64 class labels (classification) or float32 values (regression)."""
    return torch.as_tensor(y, dtype=torch.int64 if kind == "classification" else torch.float32)


def loop_trial_losses(task: MLPTask, variant: str, rank: int, n: int, trials: int, *, loss: str,
                      seed: int) -> dict[str, np.ndarray]:
    r"""Train trial after trial with a fresh model and optimizer; the per-run baseline.

    Trial ``t`` sees exactly the data, initial adapters and test samples that
    ``mlp_trial_losses(task, variant, rank, n, trials, loss=loss, seed=seed)`` gives trial ``t``
    (streams ``synthetic.mlp.trial_streams(seed, t)``). Per trial: a fresh :func:`build_model`
    and ``torch.optim.Adam`` (``task.lr``) over the tensors that require a gradient, then
    ``task.steps`` full-batch steps on the training objective of docs/THEORY.md §5 (squared error
    summed over outputs and averaged over samples for regression, mean cross-entropy for
    classification); then the requested ``loss`` (``synthetic.mlp.train.LOSSES``: ``squared``,
    ``clipped`` at ``task.clip``, ``cross_entropy`` or ``zero_one``) averaged over the training set
    and over ``task.test_size`` fresh test samples, drawn in chunks of ``TEST_CHUNK``. This is
    the "per-run PyTorch loop (one model and one ``torch.optim.Adam`` per trial)" of the README,
    section "Performance".

    Parameters
    ----------
    task : MLPTask, full-batch (``batch_size`` None).
    variant : {"lora", "b_only", "a_only", "full"}
    rank : int >= 1
    n : int >= 1, training samples per trial.
    trials : int >= 1
    loss : str, one of ``LOSSES[task.kind]``.
    seed : int, root of the trial streams.

    Returns
    -------
    dict of (trials,) float64 arrays: ``train_loss``, ``test_loss``, ``gap`` (the requested loss),
    and ``train_seconds``, the wall time of each trial's Adam steps alone.
    """
    if not isinstance(task, MLPTask):
        raise ValueError(f"task must be an MLPTask, got {type(task).__name__}")
    if task.batch_size is not None:
        raise ValueError(f"the per-run loop trains full-batch only, got batch_size={task.batch_size}")
    if loss not in LOSSES[task.kind]:
        raise ValueError(f"loss must be one of {LOSSES[task.kind]} for a {task.kind} task, got {loss!r}")
    n = as_int(n, "n", minimum=1)
    trials = as_int(trials, "trials", minimum=1)
    rank = as_int(rank, "rank", minimum=1)
    target = task.target_weights()
    train, test, seconds = np.empty(trials), np.empty(trials), np.empty(trials)
    for t in range(trials):
        streams = trial_streams(seed, t)
        x_np, y_np = sample_data(task, n, streams["data"], target=target)
        init = init_adapters(variant, task.init, task.base_weights(), task.adapted_layers, rank, streams["init"])
        model = build_model(task, variant, rank, init)
        x, y = torch.as_tensor(x_np, dtype=torch.float32), _as_target(y_np, task.kind)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=task.lr)
        start = time.perf_counter()
        for _ in range(task.steps):
            opt.zero_grad()
            out = model(x)
            objective = ((out - y) ** 2).sum(dim=1).mean() if task.kind == "regression" else \
                torch.nn.functional.cross_entropy(out, y)
            objective.backward()
            opt.step()
        seconds[t] = time.perf_counter() - start
        with torch.no_grad():
            train[t] = float(_losses(model(x), y, task.kind, task.clip)[loss].double().mean())
            total = 0.0
            for start in range(0, task.test_size, TEST_CHUNK):
                m = min(TEST_CHUNK, task.test_size - start)
                xt, yt = sample_data(task, m, streams["test"], target=target)
                out = model(torch.as_tensor(xt, dtype=torch.float32))
                total += float(_losses(out, _as_target(yt, task.kind), task.kind, task.clip)[loss].double().sum())
            test[t] = total / task.test_size
    return {"train_loss": train, "test_loss": test, "gap": test - train, "train_seconds": seconds}


def forward_flops(task: MLPTask, variant: str, rank: int, m: int) -> int:
    r"""Matmul FLOPs of one forward pass of the loop's model on ``m`` samples (2 per multiply-add).

    Counted from the matrix products of :class:`LoRALinear` and :class:`FrozenLinear` (a product
    of ``(m, k)`` and ``(k, d)`` costs ``2 m k d``; activations and additions are not counted):

    .. math:: \text{FLOPs} = \sum_l 2 m\, d_{in,l} d_{out,l}
              + [\text{variant} \ne \text{full}] \sum_{l \text{ adapted}} 2 m\, r (d_{in,l} + d_{out,l}).

    Tested, through :func:`loop_step_flops`, against ``torch.utils.flop_counter.FlopCounterMode``;
    the forward part of every FLOP count behind the GFLOP/s of the README (section
    "Performance").

    Parameters
    ----------
    task : MLPTask; variant : str; rank : int, ``r``; m : int, samples.

    Returns
    -------
    int
    """
    total = 0
    for l, (d_out, d_in) in enumerate(task.layer_shapes):
        total += 2 * m * d_in * d_out
        if variant != "full" and l in task.adapted_layers:
            total += 2 * m * rank * (d_in + d_out)
    return total


def loop_step_flops(task: MLPTask, variant: str, rank: int, m: int) -> int:
    r"""Matmul FLOPs of one Adam step of the loop on ``m`` samples: forward plus backward.

    Backward, per layer ``l`` with upstream gradient ``G`` (m, d_out), autograd computes only
    what a trained tensor needs: the input gradient ``G W0 (+ s (G B) A)`` for every layer
    above the lowest trained one, and ``dB = s G^T (h A^T)`` and ``dA = (G B)^T h`` (or
    ``dW = G^T h``) for the trained tensors of the layer, with ``G B`` computed once.
    Tested against ``torch.utils.flop_counter.FlopCounterMode``. The training FLOPs per trial,
    ``task.steps`` times this count, are the numerator of the "Adam steps alone" GFLOP/s of
    ``python -m bench`` (README, section "Performance").

    Parameters
    ----------
    task : MLPTask; variant : str; rank : int, ``r``; m : int, samples per step (``n``).

    Returns
    -------
    int
    """
    trained, _ = factor_names(variant, task.adapted_layers)
    lowest = min(task.adapted_layers)
    total = forward_flops(task, variant, rank, m)
    for l, (d_out, d_in) in enumerate(task.layer_shapes):
        lora = variant != "full" and l in task.adapted_layers
        if l > lowest:  # gradient wrt the layer's input
            total += 2 * m * d_in * d_out + (2 * m * rank * (d_in + d_out) if lora else 0)
        if variant == "full" and l in task.adapted_layers:
            total += 2 * m * d_in * d_out
        elif lora:
            if f"layer{l}.B" in trained:
                total += 2 * m * d_out * rank  # dB
            if f"layer{l}.A" in trained:
                total += 2 * m * rank * d_in  # dA = (G B)^T h
                if l == lowest:  # above it, G B is already part of the input gradient
                    total += 2 * m * d_out * rank
    return total


def loop_trial_flops(task: MLPTask, variant: str, rank: int, n: int) -> int:
    """FLOPs of one trial of the loop: ``steps`` Adam steps, then forward passes on train and test sets.

    ``task.steps · loop_step_flops(n) + forward_flops(n + task.test_size)``: the matrix products
    of training and of evaluating the training and test losses (data generation costs no
    counted FLOPs). Both engines' whole-trial GFLOP/s divide this count by their time per trial
    ("toolkit GFLOP/s (loop's FLOPs)" in the README, section "Performance").

    Returns
    -------
    int
    """
    return task.steps * loop_step_flops(task, variant, rank, n) + forward_flops(task, variant, rank,
                                                                                  n + task.test_size)
