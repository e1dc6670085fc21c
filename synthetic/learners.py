r"""Batched learners for the bound experiments: shared random inits and supersamples.

Two needs of the generalization bounds of docs/THEORY.md §2 that the Monte Carlo engines
(``synthetic.linear``, ``synthetic.mlp``) do not cover:

- **A shared random init.** The Gaussian-channel bound estimates ``Cov(W)`` across independent
  datasets *conditionally on the algorithm's random init* (the frozen factor of ``b_only`` /
  ``a_only``, the random ``A`` that ``lora`` starts from). For the linear task that is
  ``LinearTask(frozen="shared")``; the MLP engine draws one init per trial, so
  :func:`mlp_fit` trains every trial from one init drawn from the seed (``_mlp_shared_init``).
- **The supersample experiment in one batched call.** ``bounds.run_supersample`` trains one
  model per call; here all ``k_z k_u`` trainings of the experiment of Steinke & Zakynthinou
  ("Reasoning about generalization via conditional mutual information", COLT 2020) run as one
  batch, and the result is the same ``bounds.Supersample`` (losses ``(k_z, k_u, m, 2)``,
  selectors ``(k_z, k_u, m)``), which every CMI bound of ``bounds.cmi`` takes.

Evaluated points. The CMI bounds and the supersample gap are averages over the points ``i`` of
per-point terms (``(1/n) sum_i sqrt(2 I(Delta L_i; U_i))``, ``(1/n) sum_i E[(-1)^{U_i} Delta L_i]``).
With i.i.d. data, fair i.i.d. selectors and a learner that is invariant to the order of its
training samples (both least squares and full-batch Adam are), every point's pair
``(L~_i, U_i)`` has the same law, so the average over the first ``eval_points`` points has the
same expectation as the average over all ``n``. Evaluating fewer points costs nothing in
validity, only precision, and makes the plug-in MI estimates (one per point, each from all
``k_z k_u`` runs) affordable at large ``n``.

Random streams (all from the integer ``seed`` of the entry point):
linear supersample ``j`` draws its ``2n`` points from the training-set streams of trial
``SUPERSAMPLE_TRIAL_OFFSET + j`` of ``synthetic.linear`` (disjoint from the trials
``0 .. trials - 1`` of any Monte Carlo run with the same seed); MLP supersample ``j`` from
``_mlp_stream(seed, STREAM_SUPERSAMPLE, j)``; selectors from a stream of their own.
"""

from __future__ import annotations

import numpy as np
import torch

from bounds.supersample import Supersample
from synthetic.fit import check_variant, fit_variant, update_from
from synthetic.learner_checks import (
    check_eval_points,
    check_levels,
    check_mlp_call,
    check_mlp_data,
    check_order_rngs,
    check_q_bits,
)
from synthetic.linear import (
    LinearTask,
    as_linear_task,
    frozen_factors,
    sample_training_sets,
    stream_rng,
)
from synthetic.mlp import MLPTask, sample_trials
from synthetic.mlp_train import (
    EVAL_CHUNK,
    factor_names,
    forward,
    init_adapters,
    sample_losses,
    train_adapters,
)
from synthetic.quantize import quantize
from theory.validation import Array, as_array, as_int, as_rank, as_real

#: Trial ids from which the linear supersamples take their data streams (``synthetic.linear``).
SUPERSAMPLE_TRIAL_OFFSET = 1 << 40
#: Stream ids of the selector bits, the MLP supersample data and their minibatch orders.
STREAM_SELECTOR, STREAM_SUPERSAMPLE, STREAM_ORDER = 11, 12, 13
#: First ``spawn_key`` entry of every MLP stream defined here; ``synthetic.mlp.trial_streams``
#: uses ``(trial, k)`` with ``trial < MLP_KEY_BASE``, so the two never meet.
MLP_KEY_BASE = 1 << 32
#: ``spawn_key`` of the MLP's shared init.
SHARED_INIT_KEY = (MLP_KEY_BASE, 0)


# --- linear least squares ---------------------------------------------------------------------


def _clipped_sample_losses(x: Array, y: Array, m: Array, clip: float) -> Array:
    r"""Per-sample clipped squared loss ``min(‖y − M x‖², c)`` of each trial's update ``M``.

    ``y`` is the target minus ``W0 x`` (``synthetic.linear`` convention), so ``y − M x`` is the
    residual of the adapted weight ``W0 + M``; the squared error is summed over the ``d_out``
    outputs as in docs/THEORY.md eq. (1). Range ``[0, c]``: ``c/2``-sub-Gaussian (docs/THEORY.md §2).

    Shapes: x (T, k, d_in), y (T, k, d_out), m (T, d_out, d_in) -> (T, k); leading axes broadcast
    (x (Z, 1, k, d_in) and m (Z, U, d_out, d_in) give (Z, U, k)).
    """
    sq = np.sum((np.asarray(y) - np.asarray(x) @ np.swapaxes(np.asarray(m), -1, -2)) ** 2, axis=-1)
    return np.minimum(sq, clip)


def discretize(loss: Array, clip: float, levels: int) -> Array:  # (...) -> (...)
    r"""A loss in ``[0, c]`` mapped to ``[0, 1]`` and rounded *up* to the grid ``{0, 1/L, ..., 1}``.

    ``ceil(L · loss / c) / L``: at most ``L + 1`` distinct values, as the plug-in MI of the CMI
    bounds needs (``bounds.supersample.MAX_LOSS_LEVELS``). A CMI bound on this loss is compared
    with the gap of this same discretized loss, never with the gap of the raw loss.

    Parameters
    ----------
    loss : array of any shape (at least one axis), finite, every entry in ``[0, clip]``
        (``_clipped_sample_losses``).
    clip : float ``> 0``, the level ``c`` at which the loss was clipped.
    levels : int in ``[1, 31]``, the ``L`` of the grid.

    Returns
    -------
    ndarray, the shape of ``loss``, float64 values on the grid.
    """
    levels = check_levels(levels)
    clip = as_real(clip, "clip", positive=True)
    loss = as_array(loss, "loss")
    low, high = float(loss.min()), float(loss.max())
    if low < 0 or high > clip:
        raise ValueError(f"loss must lie in [0, clip] = [0, {clip}], got values in [{low:g}, {high:g}]")
    return np.ceil(levels * loss / clip) / levels


def linear_supersample(
    task: LinearTask,
    variant: str,
    rank: int | None,
    n: int,
    k_z: int,
    k_u: int,
    *,
    q_bits: int | None = None,
    levels: int = 16,
    eval_points: int | None = None,
    selector_blind: bool = False,
    seed: int,
) -> Supersample:
    r"""The supersample experiment for the closed-form linear fit, all ``k_z k_u`` fits batched.

    Supersample ``j`` holds ``2n`` i.i.d. points of the task; ``Z~_{i,b}`` is point ``2i + b``.
    Each of its ``k_u`` fair selectors ``U`` trains ``variant`` (``synthetic.fit``, quantized to
    ``q_bits`` as in ``synthetic.linear.linear_trial_losses``) on ``Z~_{i, U_i}``. The recorded
    loss is the clipped squared loss in units of ``task.clip``, discretized by
    :func:`discretize` with ``levels`` steps, on the first ``eval_points`` pairs (module
    docstring: same expectations as all ``n``). Frozen factors follow ``task.frozen``: one for
    every run (``"shared"``) or one per run.

    With ``selector_blind`` every run fits all ``2n`` points of its supersample instead, so the
    fit ignores ``U`` and ``I(W; U | Z~) = I(L~_i; U_i) = 0`` exactly: the CMI bounds of this
    learner estimate 0, and what they report is the floor of the estimator at these sizes
    (docs/THEORY.md §2.4). The selectors are drawn and recorded as usual.

    Parameters
    ----------
    task : LinearTask with ``clip``.
    variant : {"b_only", "a_only", "lora", "full"}
    rank : int (None allowed for ``full``).
    n : int, training-set size, ``>= 1``.
    k_z : int, supersamples, ``>= 2``; k_u : int, selectors per supersample, ``>= 1``.
    q_bits : int or None; levels : int in [1, 31]; eval_points : int in [1, n] or None (all n).
    selector_blind : bool, fit the union of each supersample instead of the selected half.
    seed : int ``>= 0``.

    Returns
    -------
    bounds.Supersample
        losses (k_z, k_u, eval_points, 2) in ``[0, 1]``; selectors (k_z, k_u, eval_points).
    """
    task = as_linear_task(task)
    variant = check_variant(variant)
    if variant != "full" or rank is not None:
        rank = as_rank(rank, task.d_in, task.d_out)
    n = as_int(n, "n", minimum=1)
    k_z = as_int(k_z, "k_z", minimum=2)
    k_u = as_int(k_u, "k_u", minimum=1)
    m = check_eval_points(eval_points, n)
    levels = check_levels(levels)
    seed = as_int(seed, "seed", minimum=0)
    if task.clip is None:
        raise ValueError("task.clip must be set: the supersample loss is the clipped squared loss")
    if not isinstance(selector_blind, (bool, np.bool_)):
        raise ValueError(f"selector_blind must be True or False, got {selector_blind!r}")
    q_bits = check_q_bits(q_bits)
    ids = SUPERSAMPLE_TRIAL_OFFSET + np.arange(k_z)
    x, y = sample_training_sets(task, 2 * n, ids, seed=seed)  # (k_z, 2n, .)
    u = np.stack([stream_rng(seed, STREAM_SELECTOR, int(j)).integers(0, 2, size=(k_u, n)) for j in ids])
    rows = 2 * np.arange(n) + u  # (k_z, k_u, n) indices of the training points
    if selector_blind:
        rows = np.broadcast_to(np.arange(2 * n), (k_z, k_u, 2 * n))
    pick = np.arange(k_z)[:, None, None]
    x_train = x[pick, rows].reshape(k_z * k_u, rows.shape[-1], task.d_in)
    y_train = y[pick, rows].reshape(k_z * k_u, rows.shape[-1], task.d_out)
    runs = SUPERSAMPLE_TRIAL_OFFSET + np.arange(k_z * k_u)
    frozen = frozen_factors(task, variant, rank, runs, seed=seed)
    tensors = fit_variant(variant, rank, x_train, y_train, frozen, ridge=task.ridge)
    if q_bits is not None:
        tensors = {name: quantize(t, q_bits).values for name, t in tensors.items()}
    update = update_from(variant, tensors, frozen).reshape(k_z, k_u, task.d_out, task.d_in)
    raw = _clipped_sample_losses(x[:, None, : 2 * m], y[:, None, : 2 * m], update, task.clip)  # (k_z, k_u, 2m)
    losses = discretize(raw, task.clip, levels).reshape(k_z, k_u, m, 2)
    return Supersample(losses=losses, selectors=u[:, :, :m])


# --- the small MLP, trained from one shared init -----------------------------------------------


def _mlp_shared_init(task: MLPTask, variant: str, rank: int | None, *, seed: int) -> dict[str, Array]:
    """The one init every trial of :func:`mlp_fit` starts from (``init_adapters`` of one draw).

    Drawn from ``SeedSequence(seed, spawn_key=SHARED_INIT_KEY)``; name -> (r, d_in), (d_out, r)
    or (d_out, d_in) arrays without a trial axis.
    """
    rank = check_mlp_call(task, variant, rank)
    seed = as_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=SHARED_INIT_KEY))
    return init_adapters(variant, task.init, task.base_weights(), task.adapted_layers, rank, rng)


def _quantize_trained(
    state: dict[str, Array], variant: str, task: MLPTask, q_bits: int
) -> tuple[dict[str, Array], int]:
    """Quantize each trained tensor per trial (one float32 scale each); for ``full`` the stored
    tensor is ``W − W0``. Returns the new state and ``storage_bits`` = ``q N + 32 · tensors``.

    The convention of ``synthetic.mlp.mlp_trial_losses``, so Lemma 4.5 counts the same bits.
    """
    trained, _ = factor_names(variant, task.adapted_layers)
    weights = task.base_weights()
    out = dict(state)
    bits = 0
    for name in trained:
        offset = weights[int(name.split(".")[0][len("layer"):])] if name.endswith(".W") else 0.0
        q = quantize(state[name] - offset, q_bits)
        out[name] = q.values + offset
        bits += q.bits_per_trial
    return out, bits


def mlp_fit(
    task: MLPTask,
    variant: str,
    rank: int | None,
    x: Array,
    y: np.ndarray,
    *,
    q_bits: int | None = None,
    seed: int,
    order_rngs: list[np.random.Generator] | None = None,
) -> tuple[dict[str, Array], int | None]:
    r"""Train ``variant`` on each of the ``T`` training sets, every trial from the shared init.

    The init (:func:`_mlp_shared_init`, from ``seed``) is the algorithm's only randomness with
    full-batch training, so trials differ only through their data: a covariance of the trained
    parameters across trials is then ``Cov(W | init)``, as the Gaussian-channel bound needs
    (docs/THEORY.md §2). Training is ``synthetic.mlp_train.train_adapters`` with the task's steps,
    lr, batch size and scaling; with ``q_bits`` the trained tensors are quantized
    (:func:`_quantize_trained`).

    Parameters
    ----------
    task : MLPTask; variant : str; rank : int (None allowed for ``full``).
    x : (T, n, d_0) inputs; y : (T, n) integer class labels in ``[0, d_L)`` or (T, n, d_L)
        regression targets.
    q_bits : int in [2, 32] or None; seed : int ``>= 0``.
    order_rngs : None, or a list of one Generator per trial (the minibatch orders); required
        when ``task.batch_size < n``.

    Returns
    -------
    (state, storage_bits) : name -> (T, ...) float64 tensors (trained and frozen), and the
    storage of one trial's trained tensors in bits (None without ``q_bits``).
    """
    rank = check_mlp_call(task, variant, rank)
    q_bits = check_q_bits(q_bits)
    x, y = check_mlp_data(task, x, y)
    trials = x.shape[0]
    order_rngs = check_order_rngs(order_rngs, trials)
    init = _mlp_shared_init(task, variant, rank, seed=seed)
    state = {k: np.repeat(v[None], trials, axis=0) for k, v in init.items()}
    trained, _ = factor_names(variant, task.adapted_layers)
    state, _ = train_adapters(
        task.base_weights(), state, trained, x, y, kind=task.kind, steps=task.steps, lr=task.lr,
        scaling=task.scaling(rank), batch_size=task.batch_size, order_rngs=order_rngs,
        activation=task.activation,
    )
    if q_bits is None:
        return state, None
    return _quantize_trained(state, variant, task, q_bits)


def _mlp_sample_losses(
    task: MLPTask, rank: int | None, state: dict[str, Array], x: Array, y: np.ndarray
) -> dict[str, Array]:  # (T, m, d_0), (T, m) -> name -> (T, m)
    """Per-sample evaluation losses (``synthetic.mlp_train.sample_losses``) of each trial's
    adapted network on its own ``m`` points, in chunks of samples; float32 as the engine."""
    x, y = check_mlp_data(task, x, y)
    scaling = task.scaling(1 if rank is None else rank)
    w = [torch.tensor(np.array(m), dtype=torch.float32) for m in task.base_weights()]
    params = {k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in state.items()}
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, np.asarray(x).shape[1], EVAL_CHUNK):
            xs = torch.as_tensor(np.asarray(x[:, start : start + EVAL_CHUNK]), dtype=torch.float32)
            chunk = y[:, start : start + EVAL_CHUNK]
            ys = torch.as_tensor(chunk, dtype=torch.int64 if task.kind == "classification" else torch.float32)
            out = sample_losses(forward(w, params, xs, scaling, task.activation), ys, task.kind, float(task.clip))
            for k, v in out.items():
                parts.setdefault(k, []).append(v.to(torch.float64).numpy())
    return {k: np.concatenate(v, axis=1) for k, v in parts.items()}


def mlp_supersample(
    task: MLPTask,
    variant: str,
    rank: int | None,
    n: int,
    k_z: int,
    k_u: int,
    *,
    q_bits: int | None = None,
    eval_points: int | None = None,
    seed: int,
) -> Supersample:
    r"""The supersample experiment for the MLP classifier (0-1 loss), all ``k_z k_u`` runs batched.

    Supersample ``j`` holds ``2n`` i.i.d. samples of the task; each of ``k_u`` fair selectors
    trains ``variant`` on ``Z~_{i, U_i}`` with :func:`mlp_fit` (shared init, optional
    quantization), and the 0-1 loss of the trained (quantized) network is recorded on the
    first ``eval_points`` pairs (module docstring).

    Parameters
    ----------
    task : MLPTask of kind ``"classification"``; variant, rank, n, k_z, k_u, q_bits, eval_points,
    seed : as :func:`linear_supersample`.

    Returns
    -------
    bounds.Supersample
        losses (k_z, k_u, eval_points, 2) in ``{0, 1}``; selectors (k_z, k_u, eval_points).
    """
    rank = check_mlp_call(task, variant, rank)
    if task.kind != "classification":
        raise ValueError(f"task.kind must be 'classification' (0-1 loss) for mlp_supersample, got {task.kind!r}")
    n = as_int(n, "n", minimum=1)
    k_z = as_int(k_z, "k_z", minimum=2)
    k_u = as_int(k_u, "k_u", minimum=1)
    m = check_eval_points(eval_points, n)
    seed = as_int(seed, "seed", minimum=0)
    if task.batch_size is not None and task.batch_size > n:
        raise ValueError(f"batch_size {task.batch_size} exceeds n = {n}")
    target = task.target_weights()
    supersamples = [_mlp_stream(seed, STREAM_SUPERSAMPLE, j) for j in range(k_z)]
    x, y = sample_trials(task, 2 * n, supersamples, target=target)  # (k_z, 2n, d_0), (k_z, 2n)
    u = np.stack([_mlp_stream(seed, STREAM_SELECTOR, j).integers(0, 2, size=(k_u, n)) for j in range(k_z)])
    rows = 2 * np.arange(n) + u
    pick = np.arange(k_z)[:, None, None]
    runs = k_z * k_u
    orders = [_mlp_stream(seed, STREAM_ORDER, r) for r in range(runs)]
    state, _ = mlp_fit(
        task, variant, rank, x[pick, rows].reshape(runs, n, -1), y[pick, rows].reshape(runs, n),
        q_bits=q_bits, seed=seed, order_rngs=orders,
    )
    x_eval = np.repeat(x[:, None, : 2 * m], k_u, axis=1).reshape(runs, 2 * m, -1)
    y_eval = np.repeat(y[:, None, : 2 * m], k_u, axis=1).reshape(runs, 2 * m)
    zero_one = _mlp_sample_losses(task, rank, state, x_eval, y_eval)["zero_one"]
    return Supersample(losses=zero_one.reshape(k_z, k_u, m, 2), selectors=u[:, :, :m])


def _mlp_stream(seed: int, stream: int, index: int) -> np.random.Generator:
    """Generator of one MLP stream defined here: ``SeedSequence(seed, spawn_key=(MLP_KEY_BASE, stream, index))``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(MLP_KEY_BASE, stream, index)))

