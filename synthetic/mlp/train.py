r"""Batched LoRA training of a small MLP (tanh or ReLU): all trials in one torch program.

A trial is one independent training run (its own dataset, frozen factor and minibatch order).
Every tensor carries a leading trial axis ``T``; the frozen pretrained weights ``W0_l`` are
shared. Layer ``l`` of the adapted network computes (Zhu et al., ICML 2024, Section 2, with the
``alpha / r`` scaling of common LoRA code)

.. math:: h_{l+1} = \phi\big(W0_l h_l + \tfrac{\alpha}{r} B_l A_l h_l\big),
          \qquad \phi = \tanh \text{ or relu on hidden layers, identity on the last},

or ``h_{l+1} = phi(W_l h_l)`` with the whole ``W_l`` trained (variant ``full``). The network has
no biases: docs/THEORY.md §0 fixes the bias, so no variant may train one.

Variants and initial values (docs/THEORY.md §0):

========  ====================  =====================  =======================
variant   trained               A starts at            B starts at
========  ====================  =====================  =======================
lora      A and B               ``init``               0
b_only    B                     ``init`` (frozen)      0
a_only    A                     0                      ``init`` (frozen)
full      W                     --                     -- (W starts at W0)
========  ====================  =====================  =======================

``a_only`` starts A at zero so that, like every other variant, training starts exactly at the
pretrained model; its gradient ``B^T G h^T`` is non-zero there because B is not.

One Adam over the stacked tensors (``FlatAdam``, ``torch.optim.Adam``'s update) equals one
Adam per trial exactly: the objective is the *sum* over trials of each trial's mean loss, so each
trial's gradient is its own, and Adam's update is elementwise. All randomness (frozen factors,
minibatch order) comes from ``numpy.random.Generator`` objects passed in, one per trial; no
global torch seed is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from synthetic.mlp.backprop import ACTIVATIONS, AdapterNet, FlatAdam, _activate_, _output_gradient, trial_slices
from synthetic.mlp import kernel as mlp_kernel
from synthetic.mlp.kernel import FusedTrainer
from theory.random import _haar_stiefel
from theory.validation import Array, as_int, as_real

KINDS = ("classification", "regression")
#: Evaluation losses per task kind; ``zero_one`` has range [0, 1], ``clipped`` [0, clip].
LOSSES = {"classification": ("cross_entropy", "zero_one"), "regression": ("squared", "clipped")}
#: Samples per chunk when a large evaluation set is pushed through the network.
EVAL_CHUNK = 4096


def factor_names(variant: str, layers: Sequence[int]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names of the (trained, frozen) tensors of ``variant``, e.g. ``"layer1.A"``, in storage order.

    Per adapted layer ``l`` (docs/THEORY.md §0, the variants' table): ``lora`` trains
    ``layer{l}.A`` and ``layer{l}.B``; ``b_only`` trains ``B`` and freezes ``A``; ``a_only`` trains
    ``A`` and freezes ``B``; any other variant (``full``) trains ``layer{l}.W``. The trained
    names, in this order, are the layout of the flattened ``params`` (trials, N).
    """
    trained: list[str] = []
    frozen: list[str] = []
    for l in layers:
        a, b, w = f"layer{l}.A", f"layer{l}.B", f"layer{l}.W"
        if variant == "lora":
            trained += [a, b]
        elif variant == "b_only":
            trained.append(b)
            frozen.append(a)
        elif variant == "a_only":
            trained.append(a)
            frozen.append(b)
        else:
            trained.append(w)
    return tuple(trained), tuple(frozen)


def _init_factor(init: str, side: str, w0: Array, rank: int, rng: np.random.Generator) -> Array:
    r"""A random (or W0-derived) initial factor: ``side="A"`` gives (r, d_in), ``"B"`` (d_out, r); arguments checked by the caller.

    ``haar``: ``A = Q^T``, ``B = U`` with Q, U Haar on their Stiefel manifolds (docs/THEORY.md §0).
    ``kaiming_uniform``: PyTorch's ``kaiming_uniform_(a=sqrt(5))`` as LoRA code uses it, i.e.
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with fan_in = d_in for A and r for B.
    ``gaussian``: ``N(0, 1/d_in)`` for A, ``N(0, 1/d_out)`` for B, so rows of A (columns of B)
    have unit expected norm like the Haar factor (PEFT's "gaussian" uses std 1/r instead).
    ``w0_top_singular``: the top-r singular vectors of W0 (``V_r^T`` for A, ``U_r`` for B),
    deterministic.

    Parameters
    ----------
    init : one of ``INITS``
    side : ``"A"`` or ``"B"``
    w0 : (d_out, d_in) pretrained weight of the layer
    rank : int, ``1 <= rank <= min(d_in, d_out)`` (checked by the caller)
    rng : numpy.random.Generator
    """
    d_out, d_in = w0.shape
    if init == "haar":
        return _haar_stiefel(d_in, rank, rng, None).T if side == "A" else _haar_stiefel(d_out, rank, rng, None)
    if init == "kaiming_uniform":
        bound = 1.0 / np.sqrt(d_in if side == "A" else rank)
        shape = (rank, d_in) if side == "A" else (d_out, rank)
        return rng.uniform(-bound, bound, size=shape)
    if init == "gaussian":
        if side == "A":
            return rng.standard_normal((rank, d_in)) / np.sqrt(d_in)
        return rng.standard_normal((d_out, rank)) / np.sqrt(d_out)
    u, _, vt = np.linalg.svd(w0, full_matrices=False)
    return vt[:rank].copy() if side == "A" else u[:, :rank].copy()


def init_adapters(
    variant: str,
    init: str,
    weights: Sequence[Array],
    layers: Sequence[int],
    rank: int,
    rng: np.random.Generator,
) -> dict[str, Array]:
    """Initial adapter tensors of one trial, keyed by ``factor_names`` (table in the module doc).

    ``weights`` are the pretrained (d_out, d_in) matrices of every layer; ``layers`` the adapted
    ones. Returns A (r, d_in), B (d_out, r) or W (d_out, d_in) per adapted layer, float64.
    The starts of docs/THEORY.md §5, "Adapted network": ``lora`` and ``b_only`` draw ``A`` from
    ``init`` with ``B = 0``; ``a_only`` has ``A = 0`` and draws ``B``; ``full`` starts at ``W0``;
    so every variant starts at the pretrained model (LoRA's ``B = 0``; Hu et al., ICLR 2022).
    """
    factor_names(variant, layers)  # validates variant
    out: dict[str, Array] = {}
    for l in layers:
        w0 = weights[l]
        d_out, d_in = w0.shape
        if variant == "full":
            out[f"layer{l}.W"] = w0.copy()
        elif variant == "a_only":
            out[f"layer{l}.A"] = np.zeros((rank, d_in))
            out[f"layer{l}.B"] = _init_factor(init, "B", w0, rank, rng)
        else:
            out[f"layer{l}.A"] = _init_factor(init, "A", w0, rank, rng)
            out[f"layer{l}.B"] = np.zeros((d_out, rank))
    return out


def _apply_layer(
    l: int, h: torch.Tensor, w0: torch.Tensor, state: Mapping[str, torch.Tensor], scaling: float, last: bool,
    activation: str = "tanh",
) -> torch.Tensor:  # (T, m, d_in) -> (T, m, d_out)
    r"""One layer of the adapted network for all trials; base layer where ``state`` has no adapter.

    An adapted layer uses its merged weight ``W = W0 + s B A`` (T, d_out, d_in): one batched
    product per layer, and no (T, m, d_out) temporaries beyond the output, on which the
    activation is applied in place. The same function as ``h W0^T + s (h A^T) B^T`` up to
    rounding.
    """
    if f"layer{l}.W" in state:
        z = torch.bmm(h, state[f"layer{l}.W"].transpose(1, 2))
    elif f"layer{l}.A" in state:
        a, b = state[f"layer{l}.A"], state[f"layer{l}.B"]
        merged = torch.baddbmm(w0.expand(a.shape[0], -1, -1), b, a, alpha=scaling)
        z = torch.bmm(h, merged.transpose(1, 2))
    else:
        z = torch.matmul(h, w0.T)
    return z if last else _activate_(z, activation)


def forward(
    weights: Sequence[torch.Tensor], state: Mapping[str, torch.Tensor], x: torch.Tensor, scaling: float,
    activation: str = "tanh",
) -> torch.Tensor:  # (T, m, d_0) -> (T, m, d_L)
    """Outputs (logits or regression values) of the adapted network for all trials.

    ``h_{l+1} = φ(W0_l h_l + s B_l A_l h_l)`` (or ``φ(W_l h_l)`` for a trained ``W``), with ``φ``
    the hidden activation and the identity on the last layer: docs/THEORY.md §5, "Adapted
    network". ``weights`` (d_out, d_in) per layer; ``state`` name -> (T, ...) adapters; ``x``
    (T, m, d_0); ``scaling`` ``s = alpha / r``.
    """
    h = x
    for l, w0 in enumerate(weights):
        h = _apply_layer(l, h, w0, state, scaling, last=l == len(weights) - 1, activation=activation)
    return h


def sample_losses(out: torch.Tensor, target: torch.Tensor, kind: str, clip: float) -> dict[str, torch.Tensor]:
    r"""Per-sample losses (T, m) of every evaluation loss of ``kind``.

    Classification (``target`` (T, m) int64 labels): ``cross_entropy`` (nats, unbounded) and
    ``zero_one`` (argmax error, range [0, 1]). Regression (``target`` (T, m, d_L)): ``squared``
    :math:`\|f(x) - y\|^2` summed over outputs as in docs/THEORY.md eq. (1), and ``clipped``
    :math:`\min(\ell, c)` with range [0, clip] (sub-Gaussian with parameter c/2, Lemma 4.4).
    """
    if kind == "classification":
        ce = torch.nn.functional.cross_entropy(out.transpose(1, 2), target, reduction="none")
        return {"cross_entropy": ce, "zero_one": (out.argmax(dim=-1) != target).to(out.dtype)}
    sq = ((out - target) ** 2).sum(dim=-1)
    return {"squared": sq, "clipped": torch.clamp(sq, max=clip)}


def objective(out: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:  # (T,)
    """Training objective per trial: mean cross-entropy, or mean squared loss for regression.

    ``(1/m) Σ_i ℓ(f(x_i), y_i)`` with ``ℓ`` the cross-entropy in nats or ``‖f(x) − y‖²`` summed
    over outputs (as in docs/THEORY.md eq. (1)); the training losses of §5, "Losses".
    ``out`` (T, m, d_L); ``target`` (T, m) labels or (T, m, d_L); returns (T,).
    """
    if kind == "classification":
        ce = torch.nn.functional.cross_entropy(out.transpose(1, 2), target, reduction="none")
        return ce.mean(dim=1)
    return ((out - target) ** 2).sum(dim=-1).mean(dim=1)


def _to_torch(arrays: Mapping[str, Array], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(v), dtype=dtype) for k, v in arrays.items()}


def _target_tensor(target: np.ndarray, kind: str, dtype: torch.dtype) -> torch.Tensor:
    if kind == "classification":
        return torch.as_tensor(np.asarray(target), dtype=torch.int64)
    return torch.as_tensor(np.asarray(target), dtype=dtype)


def _pick_rows(t: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """Rows ``idx`` (T, m) of each trial of ``t`` (T, n, ...); all of ``t`` when ``idx`` is None."""
    if idx is None:
        return t
    index = idx if t.ndim == 2 else idx[..., None].expand(-1, -1, t.shape[2])
    return torch.gather(t, 1, index)


def train_adapters(
    weights: Sequence[Array],
    state: Mapping[str, Array],
    trained: Sequence[str],
    x: np.ndarray,
    target: np.ndarray,
    *,
    kind: str,
    steps: int,
    lr: float,
    scaling: float,
    batch_size: int | None = None,
    order_rngs: Sequence[np.random.Generator] | None = None,
    dtype: torch.dtype = torch.float32,
    activation: str = "tanh",
    fused: bool | None = None,
) -> tuple[dict[str, Array], Array]:
    r"""Train the tensors named in ``trained`` with Adam for ``steps`` steps, all trials at once.

    The network is frozen below the first adapted layer, so its activations there, and that
    layer's base pre-activation ``W0 h``, are computed once. For ``b_only`` the projected
    features ``A h`` of the frozen A at that layer are constant too and are also computed once.
    The gradients are hand-written (``synthetic.mlp.backprop``, tested against autograd) and
    every step reuses buffers allocated once; Adam is ``synthetic.mlp.backprop.FlatAdam``,
    ``torch.optim.Adam``'s update on one flat buffer. Full-batch float32 training of adapters
    runs in the fused kernel (``synthetic.mlp.kernel``) where it is available: the same
    gradients and Adam update to float32 rounding, in 0.5 to 0.7 of the time. Rounding
    differences stay at that level except where a gradient entry is as small as Adam's
    ``eps`` (1e-8), whose step then depends on it (for example the logit of a class that a
    saturated softmax already rules out).
    Minibatches (``batch_size`` < n) follow a fresh permutation of each trial's samples every
    epoch, drawn from that trial's ``order_rngs`` entry; the last batch of an epoch may be
    smaller. Source: docs/THEORY.md §5, "Adapted network" (Adam over all trials at once) and
    README, "Performance", "The fused kernel".

    Parameters
    ----------
    weights : pretrained (d_out, d_in) matrices, one per layer
    state : initial adapters, name -> (T, ...) arrays (``init_adapters`` stacked over trials)
    trained : names in ``state`` that Adam updates; the rest stay frozen
    x : (T, n, d_0) inputs; target : (T, n) int labels or (T, n, d_L) regression targets
    kind, steps, lr, scaling : task kind, Adam steps, Adam step size, LoRA scaling alpha / r
    batch_size : minibatch size, or None for full-batch training
    order_rngs : one numpy Generator per trial; required when ``batch_size`` < n
    dtype : torch dtype of the computation (float32 for speed, float64 for reference checks)
    activation : hidden-layer activation, ``"tanh"`` or ``"relu"``
    fused : train with the fused kernel (True), with torch (False), or (None) with the kernel
        when it is available and the training is full-batch float32 of adapters; a fully
        trained layer's larger products run faster in torch's matrix library

    Returns
    -------
    (state, train_objective) : trained adapters, name -> (T, ...) float64 arrays, and the final
    full-training-set objective per trial (T,). Raises ``ValueError`` if training diverged.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    steps = as_int(steps, "steps", minimum=1)
    lr = as_real(lr, "lr", positive=True)
    scaling = as_real(scaling, "scaling", positive=True)
    if not trained or any(k not in state for k in trained):
        raise ValueError(f"trained must name tensors of state {sorted(state)}, got {list(trained)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    w = [torch.tensor(np.array(m), dtype=dtype) for m in weights]
    xs = torch.as_tensor(np.asarray(x), dtype=dtype)
    ys = _target_tensor(target, kind, dtype)
    minibatch = batch_size is not None and batch_size < xs.shape[1]
    if fused not in (None, True, False):
        raise ValueError(f"fused must be True, False or None, got {fused!r}")
    if fused is None:
        fused = (not minibatch and dtype == torch.float32 and not any(k.endswith(".W") for k in trained)
                 and mlp_kernel.available())
    elif fused and (minibatch or dtype != torch.float32 or not mlp_kernel.available()):
        raise ValueError(f"fused=True needs full-batch float32 training and the compiled kernel; got "
                         f"batch_size={batch_size}, dtype={dtype}, kernel available: {mlp_kernel.available()}")
    params = _to_torch(state, dtype)
    # One Adam over the stacked tensors; the update is elementwise, so it is one Adam per trial.
    opt = FlatAdam({k: params[k] for k in trained}, lr=lr)
    params.update(opt.params)
    n_trials, n = xs.shape[0], xs.shape[1]
    if minibatch and (order_rngs is None or len(order_rngs) != n_trials):
        raise ValueError("order_rngs must hold one Generator per trial for minibatch training")
    net = AdapterNet(w, params, opt.grads, xs, scaling, activation)
    order: list[torch.Tensor] = []
    with torch.no_grad():
        if fused:
            FusedTrainer(net, opt, ys, kind=kind).train(steps)
        else:
            for _ in range(steps):
                idx = None
                if minibatch:
                    if not order:
                        perms = np.stack([rng.permutation(n) for rng in order_rngs])  # (T, n)
                        order = [b.contiguous() for b in torch.as_tensor(perms).split(batch_size, dim=1)]
                    idx = order.pop(0)
                out = net.forward(idx)
                net.backward(_output_gradient(out, _pick_rows(ys, idx), kind))
                opt.step()
        names = list(params)
        final = torch.cat([objective(forward(w, dict(zip(names, ps)), xt, scaling, activation), yt, kind)
                           for xt, yt, *ps in trial_slices(xs, ys, *params.values())])
    out_state = {k: np.array(state[k], dtype=np.float64) for k in params}  # frozen: exactly as given
    out_state.update({k: params[k].detach().to(torch.float64).numpy().copy() for k in trained})
    if not torch.all(torch.isfinite(final)) or not all(np.all(np.isfinite(v)) for v in out_state.values()):
        raise ValueError(
            f"training diverged (non-finite loss or parameters) with lr={lr}, steps={steps}, "
            f"scaling={scaling}, batch_size={batch_size}, trained={list(trained)}; lower lr"
        )
    return out_state, final.to(torch.float64).numpy().copy()


def evaluate(
    weights: Sequence[Array],
    state: Mapping[str, Array],
    x: np.ndarray,
    target: np.ndarray,
    *,
    kind: str,
    scaling: float,
    clip: float,
    dtype: torch.dtype = torch.float32,
    activation: str = "tanh",
) -> dict[str, Array]:
    """Mean evaluation losses (T,) of the adapted networks on (T, m, d_0) inputs, in chunks of samples.

    Every loss of ``kind`` (``sample_losses``; docs/THEORY.md §5, "Losses"), averaged over the
    ``m`` samples in float64 after a forward pass in ``dtype``. Each trial is evaluated on its own
    (``trial_slices``), so its losses do not depend on the other trials evaluated with it.

    Returns
    -------
    dict
        loss name -> (T,) float64; ``ValueError`` if a loss is not finite (the model diverged).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    w = [torch.tensor(np.array(m), dtype=dtype) for m in weights]
    params = _to_torch(state, dtype)
    m = np.asarray(x).shape[1]
    names = list(params)
    sums: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for start in range(0, m, EVAL_CHUNK):
            xs = torch.as_tensor(np.asarray(x[:, start : start + EVAL_CHUNK]), dtype=dtype)
            ys = _target_tensor(target[:, start : start + EVAL_CHUNK], kind, dtype)
            per_trial = [sample_losses(forward(w, dict(zip(names, ps)), xt, scaling, activation), yt, kind, clip)
                         for xt, yt, *ps in trial_slices(xs, ys, *params.values())]
            for k in per_trial[0]:
                chunk = torch.cat([losses[k].to(torch.float64).sum(dim=1) for losses in per_trial])
                sums[k] = sums.get(k, 0) + chunk
    out = {k: (v / m).numpy().copy() for k, v in sums.items()}
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise ValueError("evaluation produced non-finite losses; the trained model diverged")
    return out
