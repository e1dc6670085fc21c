r"""The released predictor ``W + N`` of the Gaussian-channel bound, and its losses.

docs/THEORY.md §2.5 (derived): release the trained parameters through a Gaussian channel,
``W + N`` with ``N ~ N(0, tau^2 I_p)`` drawn independently of the training set ``S``; then

.. math:: I(W + N; S) \le I(W + N; W) \le \tfrac12 \log\det\!\big(I_p + \mathrm{Cov}(W)/\tau^2\big)

(``bounds.gaussian_channel_mi`` estimates the right side from trained parameters). The bound
is about the *perturbed* predictor, so its gap must be measured on ``W + N``: this module
trains ``trials`` models on independent datasets, perturbs each one's trained tensors, and
returns the per-trial train and test losses of the perturbed predictor, those of the trained
predictor ``W`` itself, and ``W`` (for ``Cov(W)``).

Conditioning. The covariance should be taken with the algorithm's random init held fixed
(``Cov(W | init)``, which gives the tighter bound ``I(W + N; S) <= I(W + N; S | init)``):
use ``LinearTask(frozen="shared")`` for the linear task; the MLP path always trains every trial
from one shared init (``synthetic.mlp.learners.mlp_fit``). With a per-trial init the covariance
across trials is the marginal ``Cov(W)``, which still gives a valid, looser, bound (the first
inequality above holds for any ``W``).

What ``W`` is: the trained tensors of the variant (``b_only``: B; ``a_only``: A; ``lora``: A and
B; ``full``: the update ``M = W − W0``, which for the MLP is stored as ``W`` itself), flattened
in the engines' order and quantized first when ``q_bits`` is given (the channel then perturbs
the quantized model). ``N`` of trial ``t`` comes from a stream of its own, so ``tau = 0`` gives
exactly the unperturbed model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthetic.linear.fit import fit_variant, update_from
from synthetic.linear.task import check_linear_call
from theory.variants import check_q_bits
from synthetic.mlp.task import check_mlp_call
from synthetic.mlp.learners import _fit_from_shared_init
from synthetic.streams import STREAM_CHANNEL, mlp_stream
from synthetic.linear.engine import (
    LOSSES as LINEAR_LOSSES,
    LinearTask,
    _frozen_factors,
    _sample_training_sets,
    _joined_result,
    stream_rng,
    trial_chunk,
    _update_losses,
)
from synthetic.mlp.engine import TEST_CHUNK, MLPTask, trial_streams
from synthetic.mlp.task import _sample_trials
from synthetic.mlp.train import LOSSES as MLP_LOSSES
from synthetic.mlp.train import evaluate, factor_names
from synthetic.quantize import quantize
from theory.validation import Array, as_int, as_real


def adapted_shift_rms(task: LinearTask | MLPTask) -> float:
    r"""Root-mean-square entry of the shift the adapter must learn, ``‖Δ‖_F / sqrt(d_in d_out)``.

    A scale of the trained parameters fixed by the task alone (not by any training set), for
    choosing the channel's ``tau`` before seeing data (docs/THEORY.md §2.5). Linear task:
    ``Δ = W_t − W0`` (docs/THEORY.md §1.1). MLP: ``Δ_l = W_{t,l} − W0_l`` over the adapted layers
    (zero on an adapted layer the task does not perturb), pooled:
    ``sqrt(Σ_l ‖Δ_l‖_F² / Σ_l d_in,l d_out,l)``. ``ValueError`` for any other task.
    """
    if isinstance(task, LinearTask):
        return float(np.sqrt(np.mean(task.delta**2)))
    if isinstance(task, MLPTask):
        base, target = task.base_weights(), task.target_weights()
        sq = sum(float(np.sum((target[l] - base[l]) ** 2)) for l in task.adapted_layers)
        size = sum(base[l].size for l in task.adapted_layers)
        return float(np.sqrt(sq / size))
    raise ValueError(f"task must be a LinearTask or an MLPTask, got {type(task).__name__}")


def perturbed_trial_losses(
    task: LinearTask | MLPTask,
    variant: str,
    rank: int | None,
    n: int,
    trials: int,
    *,
    tau: float,
    loss: str,
    q_bits: int | None = None,
    seed: int,
) -> dict[str, np.ndarray]:
    r"""Train on ``trials`` independent datasets; losses of ``W + N`` and of ``W``, and ``W``.

    Each trial draws its training set (and, for the linear task, its frozen factor and fresh
    test sample) from the streams of the engine (``synthetic.linear`` or ``synthetic.mlp``
    with the same ``seed``), fits ``variant`` (linear: the closed forms of ``synthetic.linear.fit``;
    MLP: ``synthetic.mlp.learners.mlp_fit`` from the shared init), quantizes when ``q_bits`` is
    given, adds ``N ~ N(0, tau^2 I_p)`` to the ``p`` trained parameters, and evaluates both
    models on the training set and on the test distribution with ``loss``. The bound of
    docs/THEORY.md §2.5 is about ``W + N``, so its gap is measured on ``W + N`` here.

    Parameters
    ----------
    task : LinearTask or MLPTask
    variant : {"b_only", "a_only", "lora", "full"}
    rank : int (None allowed for ``full``).
    n : int, ``>= 1``; trials : int, ``>= 1``.
    tau : float, ``>= 0``, the channel's noise standard deviation, in the parameters' units.
    loss : str
        ``LinearTask``: ``"population"`` (eq. (1), exact) or ``"clipped"`` (``min(ℓ, task.clip)``,
        fresh test sample of ``task.n_test``); ``MLPTask``: one of ``synthetic.mlp.train.LOSSES``
        of its kind, e.g. ``"zero_one"`` (test on ``task.test_size`` fresh samples).
    q_bits : int in [2, 32] or None.
    seed : int ``>= 0``; the same seed gives identical numbers.

    Returns
    -------
    dict
        ``train_loss``, ``test_loss`` (trials,): the perturbed predictor ``W + N``;
        ``train_loss_unperturbed``, ``test_loss_unperturbed`` (trials,): ``W``;
        ``params`` (trials, p): ``W`` (quantized if ``q_bits``), whose covariance across trials
        enters ``bounds.gaussian_channel_mi``; ``n_params`` (trials,); with ``q_bits``,
        ``storage_bits`` (trials,) = ``q p + 32 · tensors``.
    """
    tau = as_real(tau, "tau", minimum=0.0)
    if isinstance(task, LinearTask):
        return _linear(task, variant, rank, n, trials, tau, loss, q_bits, seed)
    if isinstance(task, MLPTask):
        return _mlp(task, variant, rank, n, trials, tau, loss, q_bits, seed)
    raise ValueError(f"task must be a LinearTask or an MLPTask, got {type(task).__name__}")


def _common(n: Any, trials: Any, q_bits: Any, seed: Any) -> tuple[int, int, int | None, int]:
    n = as_int(n, "n", minimum=1)
    trials = as_int(trials, "trials", minimum=1)
    return n, trials, check_q_bits(q_bits), as_int(seed, "seed", minimum=0)


def _linear(task: LinearTask, variant: str, rank: int | None, n: int, trials: int, tau: float,
            loss: str, q_bits: int | None, seed: int) -> dict[str, np.ndarray]:
    task, variant, rank = check_linear_call(task, variant, rank)
    n, trials, q_bits, seed = _common(n, trials, q_bits, seed)
    if loss not in LINEAR_LOSSES:
        raise ValueError(f"loss {loss!r} is not one of 'population', 'clipped' for a LinearTask")
    if loss == "clipped" and task.clip is None:
        raise ValueError("loss 'clipped' needs task.clip (the level c of min(loss, c)), got None")
    chunk = trial_chunk(task, n)
    parts: dict[str, list[Array]] = {}
    for start in range(0, trials, chunk):
        ids = np.arange(start, min(trials, start + chunk))
        x, y = _sample_training_sets(task, n, ids, seed)
        frozen = _frozen_factors(task, variant, rank, ids, seed)
        tensors = fit_variant(variant, rank, x, y, frozen, ridge=task.ridge)
        if q_bits is not None:
            tensors = {name: quantize(t, q_bits).values for name, t in tensors.items()}
        names = sorted(tensors)  # "a" before "b": the order of linear_trial_losses' params
        params = np.concatenate([tensors[k].reshape(ids.size, -1) for k in names], axis=1)
        noise = np.stack([stream_rng(seed, STREAM_CHANNEL, int(t)).standard_normal(params.shape[1]) for t in ids])
        released = params + tau * noise
        split = np.cumsum([tensors[k][0].size for k in names])[:-1]
        noisy = {k: v.reshape(tensors[k].shape) for k, v in zip(names, np.split(released, split, axis=1))}
        out: dict[str, Array] = {"params": params}
        for suffix, ts in (("", noisy), ("_unperturbed", tensors)):
            m = update_from(variant, ts, frozen)
            train, test = _update_losses(task, x, y, m, ids, loss=loss, seed=seed)
            out[f"train_loss{suffix}"], out[f"test_loss{suffix}"] = train, test
        for key, value in out.items():
            parts.setdefault(key, []).append(value)
    return _joined_result(parts, task, variant, rank, q_bits)


def _mlp(task: MLPTask, variant: str, rank: int | None, n: int, trials: int, tau: float,
         loss: str, q_bits: int | None, seed: int) -> dict[str, np.ndarray]:
    rank = check_mlp_call(task, variant, rank)
    n, trials, q_bits, seed = _common(n, trials, q_bits, seed)
    if loss not in MLP_LOSSES[task.kind]:
        raise ValueError(f"loss must be one of {MLP_LOSSES[task.kind]} for a {task.kind} task, got {loss!r}")
    if task.batch_size is not None and task.batch_size > n:
        raise ValueError(f"batch_size {task.batch_size} exceeds n = {n}")
    target = task.target_weights()
    streams = [trial_streams(seed, t) for t in range(trials)]
    x, y = _sample_trials(task, n, [s["data"] for s in streams], target)
    state, bits = _fit_from_shared_init(task, variant, rank, x, y, q_bits, seed, [s["order"] for s in streams])
    trained, _ = factor_names(variant, task.adapted_layers)
    params = np.concatenate([state[k].reshape(trials, -1) for k in trained], axis=1)
    noise = np.stack([mlp_stream(seed, STREAM_CHANNEL, t).standard_normal(params.shape[1]) for t in range(trials)])
    noisy = dict(state)
    offset = 0
    for k in trained:
        size = state[k][0].size
        noisy[k] = state[k] + tau * noise[:, offset : offset + size].reshape(state[k].shape)
        offset += size
    kw = {"kind": task.kind, "scaling": task.scaling(rank), "clip": float(task.clip), "activation": task.activation}
    weights = task.base_weights()
    totals = {"": np.zeros(trials), "_unperturbed": np.zeros(trials)}
    for start in range(0, task.test_size, TEST_CHUNK):
        m = min(TEST_CHUNK, task.test_size - start)
        xt, yt = _sample_trials(task, m, [s["test"] for s in streams], target)
        for suffix, st in (("", noisy), ("_unperturbed", state)):
            totals[suffix] += evaluate(weights, st, xt, yt, **kw)[loss] * m
    out = {"params": params, "n_params": np.full(trials, float(params.shape[1]))}
    for suffix, st in (("", noisy), ("_unperturbed", state)):
        out[f"train_loss{suffix}"] = evaluate(weights, st, x, y, **kw)[loss]
        out[f"test_loss{suffix}"] = totals[suffix] / task.test_size
    if bits is not None:
        out["storage_bits"] = np.full(trials, float(bits))
    return out

