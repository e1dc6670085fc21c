r"""The input second moment and output metric of a layer of the pretrained MLP, and the asymmetry
they predict.

docs/THEORY.md §1b (derived; not in the paper, Zhu et al., "Asymmetry in Low-Rank Adapters of
Foundation Models", ICML 2024). Inside a network, the output ``z = W h`` of the adapted layer is
read by the rest of the network, and to second order (Gauss–Newton, with the curvature factored
into an input factor and an output factor) the loss of ``W0 + M`` is

.. math:: L_G(M) = s^2 \operatorname{Tr} G + \operatorname{Tr}[G (\Delta - M) \Sigma (\Delta - M)^T],
          \qquad \Sigma = E[h h^T], \quad G = \tfrac12 E[J^T H_\ell J],                  (1G)

with ``J = ∂f/∂z`` the Jacobian of the network output ``f`` (logits or regression values) in
``z`` and ``H_ℓ`` the Hessian of the per-sample training loss in ``f``. Gauss–Newton drops the
curvature of ``f`` in ``z``, and averaging ``h hᵀ`` and ``Jᵀ H_ℓ J`` separately replaces
``E[hᵀ δᵀ Jᵀ H_ℓ J δ h]`` by ``2 Tr[G δ Σ δᵀ]``; both are exact for the last layer of a regression
network (``J = I``, ``H_ℓ = 2 I``), and the second on a single sample (tested). For a shift ``Δ`` of
uniformly random orientation, ``b_only`` (frozen Haar A) removes the fraction ``f(Σ, r)`` of the
shift's loss and ``a_only`` (frozen Haar B) the fraction ``f(G, r)`` (eq. (5),
``theory.captured_fraction``): train B when the layer's inputs are more concentrated than its
output metric, train A otherwise.

``layer_geometry`` estimates ``Σ`` and ``G`` of one layer at the pretrained weights;
``predict_asymmetry`` turns them into that prediction for every adapted layer of a task.

Random streams (``synthetic.streams``): ``(GEOMETRY_INPUT_KEY,)`` draws the inputs
(``sample_data``, ``INPUT_CHUNK`` samples per call); ``(GEOMETRY_DRAWS_KEY, l)`` draws the Haar
matrices of layer ``l`` (those of ``Σ``, then those of ``G``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import numpy as np

from synthetic.mlp.task import MLPTask, check_mlp_call, sample_data
from synthetic.streams import GEOMETRY_DRAWS_KEY, GEOMETRY_INPUT_KEY, keyed_rng
from theory.captured import captured_fraction, effective_rank
from theory.validation import Array, as_int

#: Samples drawn per ``sample_data`` call; part of the definition of the input stream.
INPUT_CHUNK = 8192
#: Floats of Jacobians and activations held at once (the rows of a chunk are processed in blocks).
JACOBIAN_FLOATS = 1 << 22
# Stream keys (first entry of the ``SeedSequence`` spawn key) of the inputs and of the Haar draws:
# ``GEOMETRY_INPUT_KEY`` and ``GEOMETRY_DRAWS_KEY``, listed with every other key in synthetic.streams.


@dataclass(frozen=True)
class AsymmetryPrediction:
    r"""The fractions of a random-orientation shift's loss that ``b_only`` and ``a_only`` remove.

    docs/THEORY.md §1b (derived; not in the paper). For one layer, ``b_only_fraction`` is
    ``f(Σ, r)`` and ``a_only_fraction`` is ``f(G, r)`` (eq. (5)). For a task with several adapted
    layers, every top-level number is the unweighted mean of the per-layer numbers (a standard
    error: the root of the summed squares over the number of layers; the layers' Haar draws are
    independent). The standard errors are those of the Monte Carlo over the Haar matrix only,
    not of the estimates of ``Σ`` and ``G`` from finitely many samples; they are 0 where eq. (5)
    is exact (``X ∝ I`` or ``rank X <= r``).

    Attributes
    ----------
    rank : the LoRA rank ``r``.
    layers : the adapted layers the numbers are about.
    b_only_fraction, b_only_stderr : ``f(Σ, r)`` and its standard error.
    a_only_fraction, a_only_stderr : ``f(G, r)`` and its standard error.
    effective_rank_sigma, effective_rank_metric : ``(Tr X)² / Tr X²`` of ``Σ`` and of ``G``.
    per_layer : one prediction per adapted layer, in the order of ``layers`` (each with an
        empty ``per_layer``).
    """

    rank: int
    layers: tuple[int, ...]
    b_only_fraction: float
    b_only_stderr: float
    a_only_fraction: float
    a_only_stderr: float
    effective_rank_sigma: float
    effective_rank_metric: float
    per_layer: tuple[AsymmetryPrediction, ...] = ()

    @property
    def advantage(self) -> float:
        """``f(Σ, r) − f(G, r)``: positive when training B (freezing a random A) is predicted to win.

        The predicted advantage of docs/THEORY.md §1b.5 (eq. (5)), drawn against the measured
        ``AdvantageMeasurement.advantage`` in Figure 9, ``asymmetry_predictor`` (§1b.6).
        """
        return self.b_only_fraction - self.a_only_fraction

    @property
    def advantage_stderr(self) -> float:
        """Standard error of ``advantage`` (the two Monte Carlo estimates are independent).

        ``sqrt(b_only_stderr² + a_only_stderr²)``: Monte Carlo over the Haar draws of eq. (5)
        only, not the estimation of ``Σ`` and ``G`` (docs/THEORY.md §1b.6).
        """
        return float(np.hypot(self.b_only_stderr, self.a_only_stderr))

    @property
    def prefers(self) -> str:
        """``"b_only"`` if ``advantage > 0``, else ``"a_only"``.

        The prediction rule of docs/THEORY.md §1b.5: train ``B`` (freeze a random ``A``) when
        ``f(Σ, r) > f(G, r)``, train ``A`` otherwise (ties go to ``a_only``).
        """
        return "b_only" if self.advantage > 0 else "a_only"


def _check_task(task: object) -> MLPTask:
    if not isinstance(task, MLPTask):
        raise ValueError(f"task must be an MLPTask, got {type(task).__name__}")
    return task


def layer_geometry(task: MLPTask, layer: int, *, samples: int, seed: int) -> tuple[Array, Array]:
    r"""Input second moment ``Σ`` and output metric ``G`` of one layer at the pretrained weights.

    docs/THEORY.md §1b.1 and §1b.6 (derived; not in the paper). With ``h`` the layer's input (the raw input
    ``x`` for layer 0, the activation after layer ``l − 1``'s nonlinearity otherwise),
    ``z = W0_l h`` its output, ``f`` the network output (logits or regression values) and
    ``J = ∂f/∂z`` (``J = I`` for the last layer), averaged over ``samples`` inputs:

    .. math:: \Sigma = E[h h^T], \qquad G = \tfrac12 E[J^T H_\ell J],
              \qquad H_\ell = 2 I \text{ (squared loss)}, \quad
              H_\ell = \operatorname{diag} p - p p^T \text{ (cross-entropy)},

    ``p = softmax(f)``: ``G = E[JᵀJ]`` for regression and ``G = ½ E[Jᵀ(diag p − ppᵀ)J]`` for
    classification. ``H_ℓ`` is the Hessian in ``f`` of the per-sample training loss of
    ``synthetic.mlp.train.objective``: ``‖f − y‖²`` summed over outputs, or cross-entropy; it
    does not depend on the label. The constant ½ makes eq. (1G) the second-order expansion of
    that loss, so that ``G = I`` for the last layer of a regression network, where (1G) is
    eq. (1). A constant factor on ``G`` cancels in ``f(G, r)``.

    The inputs are ``sample_data(task, m, rng)`` in calls of ``m = INPUT_CHUNK`` samples (the last
    one smaller), with ``rng = default_rng(SeedSequence(seed, spawn_key=(0,)))``; the labels are
    not used. Everything is computed in float64, ``JACOBIAN_FLOATS`` floats at a time, so memory
    does not grow with ``samples``.

    Parameters
    ----------
    task : MLPTask; its pretrained weights ``task.base_weights()`` are used.
    layer : int in ``0 .. L − 1``; any layer of the network, adapted or not.
    samples : int >= 1, the number of inputs averaged over.
    seed : int >= 0.

    Returns
    -------
    (sigma, metric) : float64 arrays (d_in, d_in) and (d_out, d_out), symmetric PSD, with
    ``(d_out, d_in) = task.layer_shapes[layer]``.
    """
    task = _check_task(task)
    n_layers = len(task.widths) - 1
    layer = as_int(layer, "layer", minimum=0)
    if layer >= n_layers:
        raise ValueError(f"layer {layer} is out of range: the MLP has layers 0..{n_layers - 1}")
    samples = as_int(samples, "samples", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    return _geometry(task, layer, samples, seed)


def _inputs(task: MLPTask, samples: int, seed: int) -> Iterator[Array]:
    """The input stream of ``layer_geometry``: chunks (m, d_0) of ``samples`` inputs in all."""
    rng = keyed_rng(seed, (GEOMETRY_INPUT_KEY,))
    for start in range(0, samples, INPUT_CHUNK):
        x, _ = sample_data(task, min(INPUT_CHUNK, samples - start), rng)
        yield x


def _geometry(task: MLPTask, layer: int, samples: int, seed: int) -> tuple[Array, Array]:
    """``layer_geometry`` with validated arguments."""
    weights = task.base_weights()
    d_out, d_in = weights[layer].shape
    widest = max(task.widths[layer:])
    block = max(1, JACOBIAN_FLOATS // (task.widths[-1] * widest + sum(task.widths)))
    sigma, metric = np.zeros((d_in, d_in)), np.zeros((d_out, d_out))
    for x in _inputs(task, samples, seed):
        for start in range(0, x.shape[0], block):
            s, g = _block_moments(weights, x[start : start + block], layer, task.kind, task.activation)
            sigma += s
            metric += g
    sigma, metric = sigma / samples, metric / samples
    return (sigma + sigma.T) / 2, (metric + metric.T) / 2


def _activate(z: Array, activation: str) -> tuple[Array, Array]:
    """The activation ``φ(z)`` and its derivative ``φ'(z)`` (relu: 0 at z <= 0)."""
    if activation == "tanh":
        h = np.tanh(z)
        return h, 1.0 - h * h
    return np.maximum(z, 0.0), (z > 0).astype(np.float64)


def _block_moments(weights: tuple[Array, ...], x: Array, layer: int, kind: str,
                   activation: str) -> tuple[Array, Array]:
    """Sums over the rows of ``x`` (m, d_0) of ``h hᵀ`` (d_in, d_in) and of ``½ Jᵀ H_ℓ J`` (d_out, d_out)."""
    last = len(weights) - 1
    h = x
    for k in range(layer):
        h, _ = _activate(h @ weights[k].T, activation)
    sigma = h.T @ h
    derivs = []  # φ'(z_k) (m, d_{k+1}) for the hidden layers k >= layer
    out = h
    for k in range(layer, last + 1):
        out = out @ weights[k].T
        if k < last:
            out, d = _activate(out, activation)
            derivs.append(d)
    m, d_last = out.shape
    if layer == last:
        jac = np.broadcast_to(np.eye(d_last), (m, d_last, d_last))
    else:
        jac = weights[last] * derivs[-1][:, None, :]  # ∂f/∂z_{L-2} (m, d_L, d_{L-1})
        for k in range(last - 1, layer, -1):  # ∂f/∂z_{k-1} = ∂f/∂z_k · W_k · diag φ'(z_{k-1})
            jac = (jac.reshape(-1, jac.shape[2]) @ weights[k]).reshape(m, d_last, -1)
            jac = jac * derivs[k - 1 - layer][:, None, :]
    if kind == "regression":  # ½ H_ℓ = I
        if layer == last:
            return sigma, m * np.eye(d_last)
        flat = jac.reshape(-1, jac.shape[2])
        return sigma, flat.T @ flat
    # ½ (diag p − p pᵀ) = Kᵀ K row by row, with K = diag(√(p/2)) (J − 1 pᵀ J)
    p = np.exp(out - out.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    mean_row = np.einsum("ni,nij->nj", p, jac)
    root = np.sqrt(p / 2.0)[:, :, None] * (jac - mean_row[:, None, :])
    flat = root.reshape(-1, root.shape[2])
    return sigma, flat.T @ flat


def predict_asymmetry(task: MLPTask, rank: int, *, samples: int, draws: int, seed: int) -> AsymmetryPrediction:
    r"""Predict whether ``b_only`` or ``a_only`` removes more of a random-orientation shift's loss.

    docs/THEORY.md §1b.3–§1b.6 (derived; not in the paper). For each adapted layer ``l`` of ``task``,
    ``Σ_l`` and ``G_l`` come from ``layer_geometry(task, l, samples=samples, seed=seed)`` (the
    same inputs for every layer), and

    .. math:: \text{b\_only: } f(\Sigma_l, r), \qquad \text{a\_only: } f(G_l, r),

    eq. (5), estimated by ``theory.captured_fraction`` with ``draws`` Haar draws from
    ``default_rng(SeedSequence(seed, spawn_key=(1, l)))`` (those of ``Σ_l``, then those of
    ``G_l``), so a layer's numbers do not depend on which other layers are adapted. Theorem 4.3
    of the paper is the case ``G = I``, where ``f(G, r) = r / d_out``. With several adapted
    layers the top-level numbers are the unweighted means over the layers
    (``AsymmetryPrediction``).

    Parameters
    ----------
    task : MLPTask
    rank : int, ``1 <= rank <= min(d_in, d_out)`` of every adapted layer.
    samples : int >= 1, inputs averaged over for ``Σ`` and ``G``.
    draws : int >= 2, Haar draws per Monte Carlo estimate.
    seed : int >= 0.

    Returns
    -------
    AsymmetryPrediction; ``ValueError`` if ``Σ`` or ``G`` of an adapted layer is zero (e.g. a
    softmax saturated on every sample makes ``diag p − ppᵀ = 0``), where eq. (5) is undefined.
    """
    task = _check_task(task)
    rank = check_mlp_call(task, "b_only", rank)  # a rank that fits every adapted layer
    samples = as_int(samples, "samples", minimum=1)
    draws = as_int(draws, "draws", minimum=2)
    seed = as_int(seed, "seed", minimum=0)
    records = tuple(_layer_prediction(task, l, rank, samples, draws, seed) for l in task.adapted_layers)
    return _combine(records)


def _combine(records: tuple[AsymmetryPrediction, ...]) -> AsymmetryPrediction:
    """The unweighted mean over the per-layer ``records`` (one record: itself), with ``per_layer = records``."""
    if len(records) == 1:
        return replace(records[0], per_layer=records)
    values = {f.name: np.array([getattr(r, f.name) for r in records]) for f in fields(AsymmetryPrediction)
              if f.name.endswith(("_fraction", "_stderr")) or f.name.startswith("effective_rank")}
    combined = {name: float(np.sqrt(np.sum(v**2)) / v.size if name.endswith("_stderr") else np.mean(v))
                for name, v in values.items()}
    layers = tuple(r.layers[0] for r in records)
    return AsymmetryPrediction(rank=records[0].rank, layers=layers, per_layer=records, **combined)


def _layer_prediction(task: MLPTask, layer: int, rank: int, samples: int, draws: int,
                      seed: int) -> AsymmetryPrediction:
    """The prediction of one adapted layer (arguments validated), with an empty ``per_layer``."""
    sigma, metric = _geometry(task, layer, samples, seed)
    for name, value in (("input second moment Sigma", sigma), ("output metric G", metric)):
        if not np.any(value):
            raise ValueError(f"task has a zero {name} at layer {layer} on {samples} samples (a softmax "
                             f"saturated or ReLU units dead on every sample): f(X, r) of eq. (5) is undefined")
    rng = keyed_rng(seed, (GEOMETRY_DRAWS_KEY, layer))
    return prediction_from_geometry(sigma, metric, rank, draws=draws, rng=rng, layer=layer)


def prediction_from_geometry(sigma: Array, metric: Array, rank: int, *, draws: int, rng: np.random.Generator,
                             layer: int) -> AsymmetryPrediction:  # (d_in, d_in), (d_out, d_out)
    r"""``f(Σ, r)`` and ``f(G, r)`` (eq. (5), ``theory.captured_fraction``) of one layer, from its input
    second moment and output metric (both non-zero), drawing the Haar matrices of ``Σ``, then ``G``, from
    ``rng``; ``layer`` is the index recorded in the result. docs/THEORY.md §1b.3 (eq. (5)) and §1b.5.

    Returns
    -------
    AsymmetryPrediction
        For the one layer, with an empty ``per_layer``.
    """
    b_only, b_err = captured_fraction(sigma, rank, draws=draws, rng=rng)
    a_only, a_err = captured_fraction(metric, rank, draws=draws, rng=rng)
    return AsymmetryPrediction(
        rank=rank, layers=(layer,), b_only_fraction=b_only, b_only_stderr=b_err, a_only_fraction=a_only,
        a_only_stderr=a_err, effective_rank_sigma=effective_rank(sigma), effective_rank_metric=effective_rank(metric),
    )
