r"""The supersample experiment for the closed-form linear fit (docs/THEORY.md §2.4).

All ``k_z k_u`` fits of the experiment of ``synthetic.supersample`` run as one batch of exact
solves (``synthetic.linear.fit``). Supersample ``j`` draws its ``2n`` points from the
training-set streams of trial ``SUPERSAMPLE_TRIAL_OFFSET + j`` (``synthetic.streams``), disjoint
from the trials ``0 .. trials - 1`` of any Monte Carlo run with the same seed; the selectors
come from a stream of their own.
"""

from __future__ import annotations

import numpy as np

from synthetic.learner_checks import check_eval_points, check_levels
from theory.variants import check_q_bits
from synthetic.linear.engine import _frozen_factors, _sample_training_sets
from synthetic.linear.fit import fit_variant, update_from
from synthetic.linear.task import LinearTask, check_linear_call
from synthetic.quantize import quantize
from synthetic.streams import STREAM_SELECTOR, SUPERSAMPLE_TRIAL_OFFSET, stream_rng
from synthetic.supersample import Supersample, discretize
from theory.validation import Array, as_int, check_memory


def _clipped_sample_losses(x: Array, y: Array, m: Array, clip: float) -> Array:
    r"""Per-sample clipped squared loss ``min(‖y − M x‖², c)`` of each trial's update ``M``.

    ``y`` is the target minus ``W0 x`` (``synthetic.linear`` convention), so ``y − M x`` is the
    residual of the adapted weight ``W0 + M``; the squared error is summed over the ``d_out``
    outputs as in docs/THEORY.md eq. (1). Range ``[0, c]``: ``c/2``-sub-Gaussian (docs/THEORY.md §2.1).

    Shapes: x (T, k, d_in), y (T, k, d_out), m (T, d_out, d_in) -> (T, k); leading axes broadcast
    (x (Z, 1, k, d_in) and m (Z, U, d_out, d_in) give (Z, U, k)).
    """
    sq = np.sum((np.asarray(y) - np.asarray(x) @ np.swapaxes(np.asarray(m), -1, -2)) ** 2, axis=-1)
    return np.minimum(sq, clip)


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
    Each of its ``k_u`` fair selectors ``U`` trains ``variant`` (``synthetic.linear.fit``, quantized to
    ``q_bits`` as in ``synthetic.linear.linear_trial_losses``) on ``Z~_{i, U_i}``. The recorded
    loss is the clipped squared loss in units of ``task.clip``, discretized by
    :func:`discretize` with ``levels`` steps, on the first ``eval_points`` pairs (valid because,
    for i.i.d. data and a fit invariant to the order of its samples, every point's
    ``(L~_i, U_i)`` has the same law: docs/THEORY.md §2.6). Frozen factors follow
    ``task.frozen``: one for every run (``"shared"``) or one per run.

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
    synthetic.Supersample
        losses (k_z, k_u, eval_points, 2) in ``[0, 1]``; selectors (k_z, k_u, eval_points).
    """
    task, variant, rank = check_linear_call(task, variant, rank)
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
    check_memory(k_z * 2 * n * (task.d_in + task.d_out), "n", 2 * n, f"{k_z} training sets of n samples")
    x, y = _sample_training_sets(task, 2 * n, ids, seed)  # (k_z, 2n, .)
    u = np.stack([stream_rng(seed, STREAM_SELECTOR, int(j)).integers(0, 2, size=(k_u, n)) for j in ids])
    rows = 2 * np.arange(n) + u  # (k_z, k_u, n) indices of the training points
    if selector_blind:
        rows = np.broadcast_to(np.arange(2 * n), (k_z, k_u, 2 * n))
    pick = np.arange(k_z)[:, None, None]
    x_train = x[pick, rows].reshape(k_z * k_u, rows.shape[-1], task.d_in)
    y_train = y[pick, rows].reshape(k_z * k_u, rows.shape[-1], task.d_out)
    runs = SUPERSAMPLE_TRIAL_OFFSET + np.arange(k_z * k_u)
    frozen = _frozen_factors(task, variant, rank, runs, seed)
    tensors = fit_variant(variant, rank, x_train, y_train, frozen, ridge=task.ridge)
    if q_bits is not None:
        tensors = {name: quantize(t, q_bits).values for name, t in tensors.items()}
    update = update_from(variant, tensors, frozen).reshape(k_z, k_u, task.d_out, task.d_in)
    raw = _clipped_sample_losses(x[:, None, : 2 * m], y[:, None, : 2 * m], update, task.clip)  # (k_z, k_u, 2m)
    losses = discretize(raw, task.clip, levels).reshape(k_z, k_u, m, 2)
    return Supersample(losses=losses, selectors=u[:, :, :m])
