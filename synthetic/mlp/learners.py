r"""The MLP learners of the bound experiments: one shared random init, and the supersample experiment.

- **A shared random init.** The Gaussian-channel bound estimates ``Cov(W)`` across independent
  datasets *conditionally on the algorithm's random init* (the frozen factor of ``b_only`` /
  ``a_only``, the random ``A`` that ``lora`` starts from; docs/THEORY.md §2.5). The MLP engine
  draws one init per trial, so :func:`mlp_fit` trains every trial from one init drawn from the
  seed (``_mlp_shared_init``). For the linear task the same is ``LinearTask(frozen="shared")``.
- **The supersample experiment in one batched call** (``synthetic.supersample``): all
  ``k_z k_u`` trainings run as one batch; the recorded loss is the 0-1 loss.

Random streams (``synthetic.streams``): supersample ``j`` draws its data from
``mlp_stream(seed, STREAM_SUPERSAMPLE, j)``, its selectors from ``STREAM_SELECTOR`` and each
run's minibatch order from ``STREAM_ORDER``; the shared init from ``SHARED_INIT_KEY``.
"""

from __future__ import annotations

import numpy as np
import torch

from synthetic.learner_checks import check_eval_points
from theory.variants import check_q_bits
from synthetic.mlp.checks import check_mlp_data, check_order_rngs
from synthetic.mlp.engine import _quantize_state
from synthetic.mlp.task import _sample_trials
from synthetic.mlp.task import MLPTask, check_mlp_call
from synthetic.mlp.train import EVAL_CHUNK, factor_names, forward, init_adapters, sample_losses, train_adapters
from synthetic.streams import SHARED_INIT_KEY, STREAM_ORDER, STREAM_SELECTOR, STREAM_SUPERSAMPLE, keyed_rng, mlp_stream
from synthetic.supersample import Supersample
from theory.validation import Array, as_int


def _mlp_shared_init(task: MLPTask, variant: str, rank: int | None, *, seed: int) -> dict[str, Array]:
    """The one init every trial of :func:`mlp_fit` starts from (``init_adapters`` of one draw).

    Drawn from ``SeedSequence(seed, spawn_key=SHARED_INIT_KEY)``; name -> (r, d_in), (d_out, r)
    or (d_out, d_in) arrays without a trial axis.
    """
    rng = keyed_rng(seed, SHARED_INIT_KEY)
    return init_adapters(variant, task.init, task.base_weights(), task.adapted_layers, rank, rng)


def _quantize_trained(
    state: dict[str, Array], variant: str, task: MLPTask, q_bits: int
) -> tuple[dict[str, Array], int]:
    """Quantize each trained tensor per trial (one float32 scale each); for ``full`` the stored
    tensor is ``W − W0``. Returns the new state and ``storage_bits`` = ``q N + 32 · tensors``.

    The convention of ``synthetic.mlp.mlp_trial_losses`` (the same function), so Lemma 4.5 counts
    the same bits.
    """
    trained, _ = factor_names(variant, task.adapted_layers)
    return _quantize_state(state, trained, task.base_weights(), q_bits)


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
    (docs/THEORY.md §2.5). Training is ``synthetic.mlp.train.train_adapters`` with the task's steps,
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
    order_rngs = check_order_rngs(order_rngs, x.shape[0])
    return _fit_from_shared_init(task, variant, rank, x, y, q_bits, as_int(seed, "seed", minimum=0), order_rngs)


def _fit_from_shared_init(
    task: MLPTask, variant: str, rank: int, x: Array, y: np.ndarray, q_bits: int | None, seed: int,
    order_rngs: list[np.random.Generator] | None,
) -> tuple[dict[str, Array], int | None]:
    """:func:`mlp_fit` on checked arguments (``y`` int64 labels or float targets)."""
    trials = x.shape[0]
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
    """Per-sample evaluation losses (``synthetic.mlp.train.sample_losses``) of each trial's
    adapted network on its own ``m`` points, in chunks of samples; float32 as the engine."""
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
    first ``eval_points`` pairs (valid because, for i.i.d. data and a learner invariant to the
    order of its samples, every point's ``(L~_i, U_i)`` has the same law: docs/THEORY.md §2.6).
    The experiment of Steinke & Zakynthinou, "Reasoning about generalization via conditional
    mutual information", COLT 2020 (docs/THEORY.md §2.4); the 0-1 loss needs no discretization.

    Parameters
    ----------
    task : MLPTask of kind ``"classification"``; variant, rank, n, k_z, k_u, q_bits, eval_points,
    seed : as :func:`linear_supersample`.

    Returns
    -------
    synthetic.Supersample
        losses (k_z, k_u, eval_points, 2) in ``{0, 1}``; selectors (k_z, k_u, eval_points).
    """
    rank = check_mlp_call(task, variant, rank)
    if task.kind != "classification":
        raise ValueError(f"task.kind must be 'classification' (0-1 loss) for mlp_supersample, got {task.kind!r}")
    n = as_int(n, "n", minimum=1)
    k_z = as_int(k_z, "k_z", minimum=2)
    k_u = as_int(k_u, "k_u", minimum=1)
    m = check_eval_points(eval_points, n)
    q_bits = check_q_bits(q_bits)
    seed = as_int(seed, "seed", minimum=0)
    if task.batch_size is not None and task.batch_size > n:
        raise ValueError(f"batch_size {task.batch_size} exceeds n = {n}")
    target = task.target_weights()
    supersamples = [mlp_stream(seed, STREAM_SUPERSAMPLE, j) for j in range(k_z)]
    x, y = _sample_trials(task, 2 * n, supersamples, target)  # (k_z, 2n, d_0), (k_z, 2n)
    u = np.stack([mlp_stream(seed, STREAM_SELECTOR, j).integers(0, 2, size=(k_u, n)) for j in range(k_z)])
    rows = 2 * np.arange(n) + u
    pick = np.arange(k_z)[:, None, None]
    runs = k_z * k_u
    orders = [mlp_stream(seed, STREAM_ORDER, r) for r in range(runs)]
    state, _ = _fit_from_shared_init(
        task, variant, rank, x[pick, rows].reshape(runs, n, -1), y[pick, rows].reshape(runs, n), q_bits, seed, orders,
    )
    x_eval = np.repeat(x[:, None, : 2 * m], k_u, axis=1).reshape(runs, 2 * m, -1)
    y_eval = np.repeat(y[:, None, : 2 * m], k_u, axis=1).reshape(runs, 2 * m)
    zero_one = _mlp_sample_losses(task, rank, state, x_eval, y_eval)["zero_one"]
    return Supersample(losses=zero_one.reshape(k_z, k_u, m, 2), selectors=u[:, :, :m])
