r"""Hand-written forward and backward passes of the batched adapted MLP: the training hot loop.

``synthetic.mlp_train.train_adapters`` runs every trial's Adam steps through this module. It
computes what autograd would, but for a CPU it matters *how*: the per-trial problems are small
(a 256 x 128 activation is 128 KiB), so the cost of a step is memory traffic, allocation and
per-operation overhead, not arithmetic. Hence:

* every intermediate lives in a buffer allocated once per training run (``out=`` and in-place
  operations; a fresh 1 MiB tensor per operation costs page faults on every step);
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
(``tests/test_mlp_train.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

ACTIVATIONS = ("tanh", "relu")


def activate_(z: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply the hidden-layer activation in place and return ``z``."""
    return z.tanh_() if activation == "tanh" else z.relu_()


class AdapterNet:
    r"""The adapted network of ``T`` trials with preallocated buffers and manual gradients.

    Parameters
    ----------
    weights : pretrained (d_out, d_in) tensors, one per layer
    params : name -> (T, ...) tensor of every adapter (``layer{l}.A``, ``.B`` or ``.W``)
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
        with torch.no_grad():
            h = x
            for l in range(self.first):
                h = activate_(h @ self.w[l].T, activation)
            self.h0 = h.contiguous()  # (T, n, d_first), fixed
            first = self.first
            self.base = None if self.kind[first] == "full" else self.h0 @ self.w[first].T
            a = f"layer{first}.A"
            self.feats_t = None  # (T, r, n): A h of a frozen first-layer A (b_only)
            if self.kind[first] == "factor" and a not in self.trained:
                self.feats_t = torch.bmm(self.p[a], self.h0.transpose(1, 2))
        self._bufs: dict[int, dict[str, torch.Tensor]] = {}

    def _layer_kind(self, l: int) -> str:
        if f"layer{l}.W" in self.p:
            return "full"
        if f"layer{l}.A" not in self.p:
            return "base"
        return "factor" if l == self.first else "merged"

    def _buffers(self, m: int) -> dict[str, torch.Tensor]:
        """Buffers for ``m`` rows per trial, allocated on first use."""
        if m in self._bufs:
            return self._bufs[m]
        T, like = self.T, self.h0
        new = lambda *shape: torch.empty(shape, dtype=like.dtype)  # noqa: E731
        b: dict[str, torch.Tensor] = {}
        if m != self.n:
            b["h0"] = new(T, m, self.h0.shape[2])
            if self.base is not None:
                b["base"] = new(T, m, self.base.shape[2])
        for l, kind in self.kind.items():
            d_out, d_in = self.w[l].shape
            b[f"z{l}"] = new(T, m, d_out)
            if l > self.first:
                b[f"gh{l}"] = new(T, m, d_in)  # gradient wrt the layer's input
            if kind == "factor":
                r = self.p[f"layer{l}.A"].shape[1]
                b[f"low{l}"] = new(T, r, m)
                b[f"glow{l}"] = new(T, r, m)
                b[f"gbt{l}"] = new(T, r, d_out)
            if kind == "merged":
                b[f"weff{l}"] = new(T, d_out, d_in)
                b[f"gw{l}"] = new(T, d_out, d_in)
        self._bufs[m] = b
        return b

    def _rows(self, idx: torch.Tensor | None, b: dict[str, torch.Tensor]) -> tuple:
        """(h0, base, feats_t) restricted to the rows ``idx`` (T, m) of each trial."""
        if idx is None:
            return self.h0, self.base, self.feats_t
        T, n = self.T, self.n
        flat = (idx + n * torch.arange(T)[:, None]).reshape(-1)
        h0 = torch.index_select(self.h0.reshape(T * n, -1), 0, flat, out=b["h0"].view(T * idx.shape[1], -1))
        base = None
        if self.base is not None:
            base = torch.index_select(self.base.reshape(T * n, -1), 0, flat,
                                      out=b["base"].view(T * idx.shape[1], -1))
        feats = None
        if self.feats_t is not None:
            feats = torch.gather(self.feats_t, 2, idx[:, None, :].expand(-1, self.feats_t.shape[1], -1))
        return h0.view(T, idx.shape[1], -1), None if base is None else base.view(T, idx.shape[1], -1), feats

    def forward(self, idx: torch.Tensor | None = None) -> torch.Tensor:  # -> (T, m, d_L)
        """Outputs on the rows ``idx`` (T, m) of each trial (all rows when None); keeps what backward needs."""
        m = self.n if idx is None else idx.shape[1]
        b = self._buffers(m)
        h0, base, feats_t = self._rows(idx, b)
        self._m, self._b, self._h0 = m, b, h0
        h = h0
        s = self.s
        for l, kind in self.kind.items():
            z = b[f"z{l}"]
            if kind == "factor":
                low = feats_t if feats_t is not None else torch.bmm(self.p[f"layer{l}.A"], h.transpose(1, 2),
                                                                     out=b[f"low{l}"])
                self._low = low
                torch.baddbmm(base, low.transpose(1, 2), self.p[f"layer{l}.B"].transpose(1, 2), alpha=s, out=z)
            elif kind == "merged":
                weff = torch.baddbmm(self.w[l].expand(self.T, -1, -1), self.p[f"layer{l}.B"],
                                     self.p[f"layer{l}.A"], alpha=s, out=b[f"weff{l}"])
                torch.bmm(h, weff.transpose(1, 2), out=z)
            elif kind == "full":
                torch.bmm(h, self.p[f"layer{l}.W"].transpose(1, 2), out=z)
            else:
                torch.matmul(h, self.w_t[l], out=z)
            if l < self.last:
                activate_(z, self.act)
            h = z
        return h

    def backward(self, g: torch.Tensor) -> None:
        """Write the gradients of ``sum_t objective_t`` into the ``grads`` tensors.

        ``g`` (T, m, d_L) is the gradient wrt the outputs of the last ``forward``; it is
        overwritten.
        """
        b, s = self._b, self.s
        for l in range(self.last, self.first - 1, -1):
            kind = self.kind[l]
            if l < self.last:  # G_z = G_h * phi'(z), from the layer's output h, in place
                h_out = b[f"z{l}"]
                if self.act == "relu":
                    torch.ops.aten.threshold_backward.grad_input(g, h_out, 0.0, grad_input=g)
                else:
                    torch.ops.aten.tanh_backward.grad_input(g, h_out, grad_input=g)
            h_in = self._h0 if l == self.first else b[f"z{l - 1}"]
            a, bb, w = (self.p.get(f"layer{l}.{k}") for k in ("A", "B", "W"))
            ga, gb, gw_full = (self.g.get(f"layer{l}.{k}") for k in ("A", "B", "W"))
            if kind == "factor":
                if f"layer{l}.B" in self.trained:
                    gbt = torch.bmm(self._low, g, out=b[f"gbt{l}"])  # (T, r, d_out)
                    gb.copy_(gbt.transpose(1, 2))
                    if s != 1.0:
                        gb.mul_(s)
                if f"layer{l}.A" in self.trained:
                    # B^T must be contiguous: with both operands transposed views bmm is ~8x slower.
                    glow = torch.bmm(bb.transpose(1, 2).contiguous(), g.transpose(1, 2), out=b[f"glow{l}"])
                    torch.bmm(glow, h_in, out=ga)
                    if s != 1.0:
                        ga.mul_(s)
                continue
            if kind == "merged":
                gw = torch.bmm(g.transpose(1, 2), h_in, out=b[f"gw{l}"])
                if f"layer{l}.B" in self.trained:
                    torch.bmm(gw, a.transpose(1, 2), out=gb)
                    if s != 1.0:
                        gb.mul_(s)
                if f"layer{l}.A" in self.trained:
                    torch.bmm(bb.transpose(1, 2), gw, out=ga)
                    if s != 1.0:
                        ga.mul_(s)
                weight = b[f"weff{l}"]
            elif kind == "full":
                torch.bmm(g.transpose(1, 2), h_in, out=gw_full)
                weight = w
            else:
                weight = None
            if l > self.first:
                gh = b[f"gh{l}"]
                if weight is None:
                    torch.matmul(g, self.w[l], out=gh)
                else:
                    torch.bmm(g, weight, out=gh)
                g = gh


def output_gradient(out: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:  # (T, m, d_L)
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
    costs more than the arithmetic.

    Attributes
    ----------
    params, grads : name -> view of the flat parameter / gradient buffer, shaped as given
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
        self.params: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        offset = 0
        for name, t in tensors.items():
            size = t.numel()
            self.params[name] = self.flat[offset : offset + size].view(t.shape)
            self.grads[name] = self.grad[offset : offset + size].view(t.shape)
            offset += size

    def step(self) -> None:
        """One Adam step with the gradients currently in ``grads``."""
        self.t += 1
        beta1, beta2 = self.betas
        self.m.lerp_(self.grad, 1.0 - beta1)
        self.v.mul_(beta2).addcmul_(self.grad, self.grad, value=1.0 - beta2)
        torch.sqrt(self.v, out=self.denom).div_(math.sqrt(1.0 - beta2**self.t)).add_(self.eps)
        self.flat.addcdiv_(self.m, self.denom, value=-self.lr / (1.0 - beta1**self.t))
