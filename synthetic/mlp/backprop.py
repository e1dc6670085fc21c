r"""Hand-written forward and backward passes of the batched adapted MLP, in torch.

``synthetic.mlp.train.train_adapters`` runs Adam steps through this module for minibatch and
float64 training, for fully trained layers, and wherever the fused C kernel
(``synthetic.mlp.kernel``, the same gradients computed row block by row block) is unavailable;
the kernel is tested against it. It computes what autograd would, but for a CPU it matters
*how*: the per-trial problems are small
(a 256 x 128 activation is 128 KiB), so the cost of a step is memory traffic, allocation and
per-operation overhead, not arithmetic. Hence:

* every intermediate lives in a buffer allocated once per training run (``out=`` and in-place
  operations; a fresh 1 MiB tensor per operation costs page faults on every step);
* a pass is a list of torch calls bound once per batch size, with their operands, transposed
  views and buffers (``AdapterNet``), and Adam's constants are 0-d tensors: each call costs a
  few microseconds of dispatch, and a step makes about 25 of them;
* products are ordered so that the wide dimension is the output's (``B^T (G^T)`` rather than
  ``G B``), which the CPU matmul kernels run several times faster;
* work that frozen tensors make constant is done once, not every step: the activations below
  the first adapted layer, that layer's base pre-activation ``h W0^T`` (its input is the fixed
  data), and, for ``b_only``, its projected features ``A h`` (Zhu et al., "Asymmetry in
  Low-Rank Adapters of Foundation Models", ICML 2024, Section 4.1: freezing A makes B-only
  training a regression on the fixed features ``A x``);
* a layer above the first adapted one uses its merged weight ``W = W0 + s B A`` (one product
  per pass instead of three).

Gradients, per trial (the objective is the sum over trials of each trial's mean loss, so trial
``t``'s gradient is its own), for ``m`` rows, outputs ``f``, scaling ``s = alpha / r``:

.. math::
    G_L = \tfrac{2}{m}(f - y) \;\text{(squared)}, \qquad
    G_L = \tfrac{1}{m}(\mathrm{softmax}(f) - e_y) \;\text{(cross-entropy)},

    G_z = G_h \odot \phi'(z), \qquad \phi' = 1 - h^2 \;(\tanh), \quad \mathbb 1[h > 0] \;(\mathrm{relu}),

    \partial W = G_z^T h, \quad \partial B = s\, \partial W A^T, \quad \partial A = s\, B^T \partial W,
    \quad G_{h,\mathrm{in}} = G_z W \qquad \text{(merged layer, } W = W0 + sBA),

    \partial B = s\, G_z^T (h A^T), \quad \partial A = s\, (B^T G_z^T) h \qquad \text{(first adapted layer)}.

They are tested against autograd with one ``torch.optim.Adam`` per trial
(``tests/synthetic/mlp/test_mlp_train.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import torch

ACTIVATIONS = ("tanh", "relu")


def _activate_(z: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply the hidden-layer activation in place and return ``z``."""
    return z.tanh_() if activation == "tanh" else z.relu_()


#: One step of a pass: a torch call with its operands and ``out=`` buffers already bound.
def trial_slices(*stacked: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
    """Each trial's slices ``(s[t:t+1] for s in stacked)``, as fresh copies, for ``t`` in order.

    Reproducibility by construction (README, "Reproducibility"): a computation run on each trial's
    slices alone sees operands of the same shapes and the same alignment (a fresh allocation)
    whatever the number of trials computed together, so a trial's numbers do not depend on the
    chunk it falls in. A product over a whole (T, ...) stack need not: the matrix library may
    choose its kernel by the stack's shape.
    """
    for t in range(stacked[0].shape[0]):
        yield tuple(s[t : t + 1].clone() for s in stacked)


Op = Callable[[], object]


@dataclass
class _Plan:
    """The forward and backward ops for ``m`` rows per trial, and the buffers they write."""

    forward: list[Op]
    backward: list[Op]
    buffers: dict[str, torch.Tensor]
    out: torch.Tensor  # (T, m, d_L): outputs after forward, output gradient during backward


class AdapterNet:
    r"""The adapted network of ``T`` trials with preallocated buffers and manual gradients.

    A pass is a fixed list of torch calls whose operands, transposed views and ``out=``
    buffers are bound once per batch size (``functools.partial``): parameters are updated in
    place, so the views stay valid, and a step spends its time in torch, not in Python. The
    network is the adapted MLP of docs/THEORY.md §5, ``h_{l+1} = φ(W0_l h_l + s B_l A_l h_l)``;
    the gradients are the module docstring's (README, "Performance", "The fused kernel").

    Parameters
    ----------
    weights : pretrained (d_out, d_in) tensors, one per layer
    params : name -> (T, ...) tensor of every adapter (``layer{l}.A``, ``.B`` or ``.W``); they
        must be updated in place (as ``FlatAdam`` does)
    grads : name -> tensor shaped like ``params[name]`` for every trained name; ``backward``
        writes the gradients there
    x : (T, n, d_0) inputs, in the computation dtype
    scaling : LoRA scaling ``s = alpha / r``
    activation : ``"tanh"`` or ``"relu"`` on hidden layers
    """

    def __init__(self, weights: Sequence[torch.Tensor], params: Mapping[str, torch.Tensor],
                 grads: Mapping[str, torch.Tensor], x: torch.Tensor, scaling: float, activation: str) -> None:
        self.w = list(weights)
        self.p = dict(params)
        self.g = dict(grads)
        self.trained = set(grads)
        self.s = float(scaling)
        self.act = activation
        self.T, self.n = x.shape[0], x.shape[1]
        self.first = min(int(k.split(".")[0][5:]) for k in self.p)
        self.last = len(self.w) - 1
        self.kind = {l: self._layer_kind(l) for l in range(self.first, self.last + 1)}
        self.w_t = {l: self.w[l].T.contiguous() for l in self.kind if self.kind[l] == "base"}
        with torch.no_grad():  # the fixed parts, trial by trial (``trial_slices``)
            first = self.first
            prefix, base = [], []
            for (h,) in trial_slices(x):
                for l in range(first):
                    h = _activate_(h @ self.w[l].T, activation)
                prefix.append(h)
                base.append(None if self.kind[first] == "full" else h @ self.w[first].T)
            self.h0 = torch.cat(prefix)  # (T, n, d_first), fixed
            self.base = None if self.kind[first] == "full" else torch.cat(base)
            a = f"layer{first}.A"
            self.feats_t = None  # (T, r, n): A h of a frozen first-layer A (b_only)
            if self.kind[first] == "factor" and a not in self.trained:
                self.feats_t = torch.cat([torch.bmm(a_t, h_t.transpose(1, 2))
                                          for a_t, h_t in trial_slices(self.p[a], self.h0)])
        self._plans: dict[tuple[int, bool], _Plan] = {}
        self._current: _Plan | None = None

    def layer_tensors(self) -> list[tuple[str, torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
        """Per layer from the first adapted one: ``(kind, pretrained weight, params, grads)``.

        ``params`` and ``grads`` are keyed by short name (``A``, ``B``, ``W``); the first
        layer's params also hold its fixed ``base`` pre-activation (T, n, d_out) and, for a
        frozen A, its fixed features ``feats`` = A h (T, r, n). What ``synthetic.mlp.kernel.FusedTrainer``
        reads. ``kind`` is ``"factor"`` (the first adapted layer), ``"merged"`` (a factored layer
        above it, ``W = W0 + s B A``), ``"full"`` (a trained ``W``) or ``"base"`` (not adapted).
        Infrastructure of the fused kernel (README, "Performance").
        """
        out = []
        for l, kind in self.kind.items():
            params = {k: self.p[f"layer{l}.{k}"] for k in ("A", "B", "W") if f"layer{l}.{k}" in self.p}
            grads = {k: self.g[f"layer{l}.{k}"] for k in ("A", "B", "W") if f"layer{l}.{k}" in self.g}
            if l == self.first and self.base is not None:
                params["base"] = self.base
            if l == self.first and self.feats_t is not None:
                params["feats"] = self.feats_t
            out.append((kind, self.w[l], params, grads))
        return out

    def _layer_kind(self, l: int) -> str:
        if f"layer{l}.W" in self.p:
            return "full"
        if f"layer{l}.A" not in self.p:
            return "base"
        return "factor" if l == self.first else "merged"

    def _plan(self, m: int, rows: bool) -> _Plan:
        """The plan for ``m`` rows per trial, from the fixed inputs or (``rows``) from row buffers."""
        key = (m, rows)
        if key not in self._plans:
            self._plans[key] = self._build(m, rows)
        return self._plans[key]

    def _build(self, m: int, rows: bool) -> _Plan:
        T = self.T
        new = lambda *shape: torch.empty(shape, dtype=self.h0.dtype)  # noqa: E731
        b: dict[str, torch.Tensor] = {}
        h0, base, feats = self.h0, self.base, self.feats_t
        if rows:
            h0 = b["h0"] = new(T, m, self.h0.shape[2])
            if base is not None:
                base = b["base"] = new(T, m, base.shape[2])
            if feats is not None:
                feats = b["feats"] = new(T, feats.shape[1], m)
        z = {l: new(T, m, self.w[l].shape[0]) for l in self.kind}  # each layer's output
        forward, low = self._forward_ops(m, h0, base, feats, z, b)
        return _Plan(forward, self._backward_ops(m, h0, low, z, b), b, z[self.last])

    def _forward_ops(self, m: int, h0: torch.Tensor, base: torch.Tensor | None, feats: torch.Tensor | None,
                     z: dict[int, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[list[Op], torch.Tensor | None]:
        """Ops writing every layer's output ``z[l]``; also the first layer's ``A h`` (T, r, m), if factored."""
        T, s = self.T, self.s
        ops: list[Op] = []
        low = None
        for l, kind in self.kind.items():
            h, out = (h0 if l == self.first else z[l - 1]), z[l]
            a, bb, w = (self.p.get(f"layer{l}.{k}") for k in ("A", "B", "W"))
            if kind == "factor":
                if feats is None:
                    low = torch.empty((T, a.shape[1], m), dtype=h.dtype)
                    ops.append(partial(torch.bmm, a, h.transpose(1, 2), out=low))
                else:
                    low = feats
                ops.append(partial(torch.baddbmm, base, low.transpose(1, 2), bb.transpose(1, 2), alpha=s, out=out))
            elif kind == "merged":
                d_out, d_in = self.w[l].shape
                b[f"weff{l}"] = weff = torch.empty((T, d_out, d_in), dtype=h.dtype)
                ops.append(partial(torch.baddbmm, self.w[l].expand(T, -1, -1), bb, a, alpha=s, out=weff))
                ops.append(partial(torch.bmm, h, weff.transpose(1, 2), out=out))
            elif kind == "full":
                ops.append(partial(torch.bmm, h, w.transpose(1, 2), out=out))
            else:
                ops.append(partial(torch.matmul, h, self.w_t[l], out=out))
            if l < self.last:
                ops.append(out.tanh_ if self.act == "tanh" else out.relu_)
        return ops, low

    def _backward_ops(self, m: int, h0: torch.Tensor, low: torch.Tensor | None, z: dict[int, torch.Tensor],
                      b: dict[str, torch.Tensor]) -> list[Op]:
        """Ops from the output gradient (written over ``z[last]``) down to the gradients ``grads``."""
        T, s = self.T, self.s
        new = lambda *shape: torch.empty(shape, dtype=h0.dtype)  # noqa: E731
        ops: list[Op] = []
        g = z[self.last]
        for l in range(self.last, self.first - 1, -1):
            kind = self.kind[l]
            if l < self.last:  # G_z = G_h * phi'(z), from the layer's output h, in place
                if self.act == "relu":
                    ops.append(partial(torch.ops.aten.threshold_backward.grad_input, g, z[l], 0.0, grad_input=g))
                else:
                    ops.append(partial(torch.ops.aten.tanh_backward.grad_input, g, z[l], grad_input=g))
            h_in = h0 if l == self.first else z[l - 1]
            a, bb, w = (self.p.get(f"layer{l}.{k}") for k in ("A", "B", "W"))
            ga, gb, gw_full = (self.g.get(f"layer{l}.{k}") for k in ("A", "B", "W"))
            scaled: list[torch.Tensor] = []
            weight = None
            if kind == "factor":
                if gb is not None:
                    gbt = new(T, low.shape[1], g.shape[2])
                    ops.append(partial(torch.bmm, low, g, out=gbt))  # (T, r, d_out)
                    ops.append(partial(gb.copy_, gbt.transpose(1, 2)))
                    scaled.append(gb)
                if ga is not None:
                    # B^T must be contiguous: with both operands transposed views bmm is ~8x slower.
                    bt, glow = bb.transpose(1, 2).contiguous(), new(T, bb.shape[2], m)
                    if gb is not None:  # B is trained: refresh its transpose every step
                        ops.append(partial(bt.copy_, bb.transpose(1, 2)))
                    ops.append(partial(torch.bmm, bt, g.transpose(1, 2), out=glow))
                    ops.append(partial(torch.bmm, glow, h_in, out=ga))
                    scaled.append(ga)
            elif kind == "merged":
                gw = new(T, bb.shape[1], a.shape[2])  # (T, d_out, d_in)
                ops.append(partial(torch.bmm, g.transpose(1, 2), h_in, out=gw))
                if gb is not None:
                    ops.append(partial(torch.bmm, gw, a.transpose(1, 2), out=gb))
                    scaled.append(gb)
                if ga is not None:
                    ops.append(partial(torch.bmm, bb.transpose(1, 2), gw, out=ga))
                    scaled.append(ga)
                weight = b[f"weff{l}"]
            elif kind == "full":
                ops.append(partial(torch.bmm, g.transpose(1, 2), h_in, out=gw_full))
                weight = w
            if s != 1.0:
                ops.extend(partial(t.mul_, s) for t in scaled)
            if l > self.first:
                gh = new(T, m, self.w[l].shape[1])  # gradient wrt the layer's input
                if weight is None:
                    ops.append(partial(torch.matmul, g, self.w[l], out=gh))
                else:
                    ops.append(partial(torch.bmm, g, weight, out=gh))
                g = gh
        return ops

    def _gather(self, idx: torch.Tensor, b: dict[str, torch.Tensor]) -> None:
        """Copy the rows ``idx`` (T, m) of each trial's fixed inputs into the row buffers ``b``."""
        T, n, m = self.T, self.n, idx.shape[1]
        flat = (idx + n * torch.arange(T)[:, None]).reshape(-1)
        torch.index_select(self.h0.reshape(T * n, -1), 0, flat, out=b["h0"].view(T * m, -1))
        if "base" in b:
            torch.index_select(self.base.reshape(T * n, -1), 0, flat, out=b["base"].view(T * m, -1))
        if "feats" in b:
            torch.gather(self.feats_t, 2, idx[:, None, :].expand(-1, self.feats_t.shape[1], -1), out=b["feats"])

    def forward(self, idx: torch.Tensor | None = None) -> torch.Tensor:  # -> (T, m, d_L)
        """Outputs on the rows ``idx`` (T, m) of each trial (all rows when None); keeps what backward needs.

        The returned tensor is a buffer of the network, overwritten by the next pass. The forward
        pass of docs/THEORY.md §5, ``h_{l+1} = φ(W0_l h_l + s B_l A_l h_l)`` with ``s = alpha / r``
        and no activation on the last layer (its outputs are logits or regression values).
        """
        plan = self._plan(self.n if idx is None else idx.shape[1], idx is not None)
        if idx is not None:
            self._gather(idx, plan.buffers)
        for op in plan.forward:
            op()
        self._current = plan
        return plan.out

    def backward(self, g: torch.Tensor) -> None:
        """Write the gradients of ``sum_t objective_t`` into the ``grads`` tensors.

        ``g`` (T, m, d_L) is the gradient wrt the outputs of the last ``forward``; the
        output buffer that ``forward`` returned may be passed after being overwritten in place.
        The gradients are those of the module docstring (tested against autograd), of the training
        objective of docs/THEORY.md §5; ``ValueError`` without a forward pass first.
        """
        plan = self._current
        if plan is None:
            raise ValueError("backward needs a forward pass first")
        if g.data_ptr() != plan.out.data_ptr():
            plan.out.copy_(g)
        for op in plan.backward:
            op()


def _output_gradient(out: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:  # (T, m, d_L)
    r"""Gradient of each trial's mean training loss wrt the outputs; overwrites ``out``.

    Squared loss :math:`\frac1m\sum_i \|f_i - y_i\|^2`: :math:`\frac2m (f - y)`. Cross-entropy
    (``target`` (T, m) labels): :math:`\frac1m(\mathrm{softmax}(f) - e_y)`.
    """
    m = out.shape[1]
    if kind == "regression":
        return out.sub_(target).mul_(2.0 / m)
    out.copy_(torch.softmax(out, dim=-1))
    index = target[..., None]
    out.scatter_add_(2, index, torch.full(index.shape, -1.0, dtype=out.dtype))
    return out.mul_(1.0 / m)


class FlatAdam:
    r"""Adam over named tensors kept in one flat buffer: a handful of operations per step in all.

    The update is ``torch.optim.Adam``'s (Kingma and Ba, "Adam: a method for stochastic
    optimization", 2015; no weight decay, no amsgrad), operation for operation: with step ``t``,

    .. math:: m \leftarrow \mathrm{lerp}(m, g, 1 - \beta_1), \quad
              v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
              \theta \leftarrow \theta - \frac{lr}{1 - \beta_1^t}\,
              \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon}.

    It is elementwise, so one FlatAdam over stacked trials is one Adam per trial. Keeping every
    tensor in one buffer saves the optimizer's per-tensor Python work, which at these sizes
    costs more than the arithmetic. The optimiser of the MLP tasks (docs/THEORY.md §5, "Adapted
    network"); ``ValueError`` if ``lr / (1 − β₁)`` overflows the buffer's dtype.

    Attributes
    ----------
    params, grads : name -> view of the flat parameter / gradient buffer, shaped as given
    moments : name -> views of the first and second moment buffers, shaped as given
    t : steps taken
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps, self.t = float(lr), betas, float(eps), 0
        self.flat = torch.cat([t.reshape(-1) for t in tensors.values()])
        largest = self.lr / (1.0 - betas[0])  # the step size lr / (1 - beta1^t) at t = 1
        if not largest <= torch.finfo(self.flat.dtype).max:
            raise ValueError(f"training diverged before it started: lr={lr} makes Adam's step size "
                             f"lr / (1 - beta1) = {largest:.3g} overflow {self.flat.dtype}; lower lr")
        self.grad = torch.zeros_like(self.flat)
        self.m, self.v, self.denom = (torch.zeros_like(self.flat) for _ in range(3))
        # Constants as 0-d tensors of the buffer's dtype: a Python float operand would be
        # converted to a tensor on every call, which costs more than the arithmetic here.
        scalar = lambda value: torch.tensor(value, dtype=self.flat.dtype)  # noqa: E731
        self._beta2, self._eps, self._correction2 = scalar(betas[1]), scalar(self.eps), scalar(1.0)
        self.params: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        self.moments: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        offset = 0
        for name, t in tensors.items():
            size = t.numel()
            part = lambda flat: flat[offset : offset + size].view(t.shape)  # noqa: E731
            self.params[name], self.grads[name] = part(self.flat), part(self.grad)
            self.moments[name] = (part(self.m), part(self.v))
            offset += size

    def step(self) -> None:
        """One Adam step with the gradients currently in ``grads``; ``t`` advances by one.

        The update of the class docstring (Kingma & Ba, ICLR 2015; ``torch.optim.Adam``'s
        operations), applied in place to the flat parameter buffer (docs/THEORY.md §5).
        """
        self.t += 1
        beta1, beta2 = self.betas
        self.m.lerp_(self.grad, 1.0 - beta1)
        self.v.mul_(self._beta2).addcmul_(self.grad, self.grad, value=1.0 - beta2)
        self._correction2.fill_(math.sqrt(1.0 - beta2**self.t))
        torch.sqrt(self.v, out=self.denom).div_(self._correction2).add_(self._eps)
        self.flat.addcdiv_(self.m, self.denom, value=-self.lr / (1.0 - beta1**self.t))
