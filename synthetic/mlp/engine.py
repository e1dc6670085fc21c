r"""Per-trial losses of LoRA variants trained on the small-MLP teacher tasks, all trials batched.

The task (teacher base, low-rank target, data streams) is defined in ``synthetic.mlp.task`` and
re-exported here. ``mlp_trial_losses`` trains every trial of a chunk in one torch program
(``synthetic.mlp.train``) and evaluates the trained (optionally quantized) models on their
training sets and on fresh test samples. This is the small-MLP analogue of the linear setting of
Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.
"""

from __future__ import annotations

import numpy as np

from synthetic.mlp.task import (  # noqa: F401 - the task is part of this module's interface
    TEACHER_GAIN,
    MLPTask,
    _sample_trials,
    check_mlp_call,
    network_outputs,
    sample_data,
    sample_trials,
    trial_streams,
)
from synthetic.mlp.train import LOSSES, evaluate, factor_names, init_adapters, train_adapters
from synthetic.quantize import quantize
from theory.validation import Array, as_int, check_memory
from theory.variants import check_q_bits, param_count

#: Test samples generated and evaluated at a time per trial (bounds memory; part of the
#: definition of the test stream, so changing it changes which test samples are drawn).
TEST_CHUNK = 8192
#: Floats of activations a chunk of trials may hold at once (training and evaluation).
TRAIN_FLOATS = 1 << 22
#: At most this many trials are trained together (larger chunks leave the CPU caches).
MAX_TRIAL_CHUNK = 16


def _quantize_state(state: dict[str, Array], trained: tuple[str, ...], weights: tuple[Array, ...],
                    q_bits: int) -> tuple[dict[str, Array], int]:
    """Quantize each trained tensor per trial; for ``full`` the stored tensor is ``W - W0``."""
    out = dict(state)
    bits = 0
    for name in trained:
        layer = int(name.split(".")[0][5:])
        offset = weights[layer] if name.endswith(".W") else 0.0
        q = quantize(state[name] - offset, q_bits)
        out[name] = q.values + offset
        bits += q.bits_per_trial
    return out, bits


def mlp_trial_losses(
    task: MLPTask,
    variant: str,
    rank: int | None,
    n: int,
    trials: int,
    *,
    loss: str,
    q_bits: int | None = None,
    seed: int,
    return_params: bool = False,
) -> dict[str, np.ndarray]:
    r"""Train ``variant`` at ``rank`` on ``trials`` independent datasets of size ``n``; report losses.

    ``rank`` must fit every adapted layer (``rank <= min(d_in, d_out)``); it is ignored, and may
    be None, for ``full``.

    Each trial draws its own training set, frozen factor, minibatch order and a fresh test set of
    ``task.test_size`` samples from separate streams (``trial_streams``). The training objective
    is cross-entropy (classification) or squared loss (regression); ``loss`` picks the reported
    evaluation loss: ``cross_entropy`` (nats, unbounded), ``zero_one`` (range [0, 1]),
    ``squared`` (unbounded) or ``clipped`` (``min(l, task.clip)``, range [0, clip]).

    Trials run in chunks of ``trial_chunk(task, n)`` (memory stays flat in ``trials``); a trial's
    numbers do not depend on the chunk it falls in. The task and training are those of
    docs/THEORY.md §5 ("MLP teacher tasks"); the gap is measured as in §7.4 and §2.7.

    With ``q_bits`` every trained tensor is quantized after training (``synthetic.quantize``,
    one float32 scale per tensor and trial) and the quantized model is evaluated on both sets,
    so the gap is that of the model Lemma 4.5 (Zhu et al., ICML 2024) bounds. For ``full`` the
    quantized tensor is ``W - W0``: W0 is fixed before seeing data, so this stores the same
    model with the same ``q N`` bits. ``storage_bits = q N + 32 * (number of trained tensors)``.

    Returns
    -------
    dict of float64 arrays, all with leading axis ``trials``:
        ``train_loss``, ``test_loss`` : the requested loss; ``gap`` = test - train.
        ``train_<name>``, ``test_<name>`` : every evaluation loss of the task kind.
        ``train_objective`` : final full-batch training objective of the float model.
        ``n_params`` : trained parameter count N; ``storage_bits`` (only with ``q_bits``).
        With ``return_params``: ``params`` (trials, N) trained tensors flattened in
        ``factor_names`` order (quantized if ``q_bits``; for ``full``, W itself), and every
        adapter tensor (trained or frozen) by name, e.g. ``layer1.A`` (trials, r, d_in).
    """
    rank = check_mlp_call(task, variant, rank)
    n = as_int(n, "n", minimum=1)
    trials = as_int(trials, "trials", minimum=1)
    check_memory(n * sum(task.widths), "n", n, "the activations of one trial's training set")
    check_memory(trials * 16, "trials", trials, "the per-trial results")
    if loss not in LOSSES[task.kind]:
        raise ValueError(f"loss must be one of {LOSSES[task.kind]} for a {task.kind} task, got {loss!r}")
    q_bits = check_q_bits(q_bits)
    seed = as_int(seed, "seed", minimum=0)
    if task.batch_size is not None and task.batch_size > n:
        raise ValueError(f"batch_size {task.batch_size} exceeds n = {n}")

    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, trials, trial_chunk(task, n)):
        stop = min(trials, start + trial_chunk(task, n))
        chunk = _chunk_losses(task, variant, rank, n, range(start, stop), loss=loss, q_bits=q_bits, seed=seed,
                              return_params=return_params)
        for k, v in chunk.items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def trial_chunk(task: MLPTask, n: int) -> int:
    """Trials trained together: as many as keep ``T n sum(widths)`` floats under ``TRAIN_FLOATS``.

    ``max(1, min(MAX_TRIAL_CHUNK, TRAIN_FLOATS // (n sum(widths))))``: at most 16 trials, so that
    a chunk stays in the CPU caches (README, "Performance"). Infrastructure: chunking keeps memory
    flat in the number of trials; each trial's numbers do not depend on the chunk it falls in (its
    streams are its own and Adam is elementwise; docs/THEORY.md §7.4).
    """
    return max(1, min(MAX_TRIAL_CHUNK, TRAIN_FLOATS // (n * sum(task.widths))))


def _chunk_losses(task: MLPTask, variant: str, rank: int, n: int, ids: range, *, loss: str,
                  q_bits: int | None, seed: int, return_params: bool) -> dict[str, np.ndarray]:
    """``mlp_trial_losses`` for the trials ``ids`` (arguments already validated)."""
    weights = task.base_weights()
    target = task.target_weights()
    streams = [trial_streams(seed, t) for t in ids]
    trials = len(streams)
    x, y = _sample_trials(task, n, [s["data"] for s in streams], target)
    inits = [init_adapters(variant, task.init, weights, task.adapted_layers, rank, s["init"])
             for s in streams]
    state = {k: np.stack([i[k] for i in inits]) for k in inits[0]}
    trained, _ = factor_names(variant, task.adapted_layers)
    scaling = task.scaling(rank)
    state, objective = train_adapters(
        weights, state, trained, x, y, kind=task.kind, steps=task.steps, lr=task.lr,
        scaling=scaling, batch_size=task.batch_size, order_rngs=[s["order"] for s in streams],
        activation=task.activation,
    )
    shapes = [task.layer_shapes[l] for l in task.adapted_layers]
    n_params = sum(param_count(variant, rank, d_in, d_out) for d_out, d_in in shapes)
    out: dict[str, np.ndarray] = {"n_params": np.full(trials, float(n_params))}
    if q_bits is not None:
        state, bits = _quantize_state(state, trained, weights, q_bits)
        out["storage_bits"] = np.full(trials, float(bits))
    kw = {"kind": task.kind, "scaling": scaling, "clip": float(task.clip), "activation": task.activation}
    train = evaluate(weights, state, x, y, **kw)
    test = _test_losses(task, weights, target, state, streams, kw)
    for name in LOSSES[task.kind]:
        out[f"train_{name}"] = train[name]
        out[f"test_{name}"] = test[name]
    out["train_loss"], out["test_loss"] = train[loss], test[loss]
    out["gap"] = test[loss] - train[loss]
    out["train_objective"] = objective
    if return_params:
        out["params"] = np.concatenate([state[k].reshape(trials, -1) for k in trained], axis=1)
        out.update({k: v for k, v in state.items()})
    return out


def _test_losses(task: MLPTask, weights: tuple[Array, ...], target: tuple[Array, ...],
                 state: dict[str, Array], streams: list[dict[str, np.random.Generator]],
                 kw: dict[str, object]) -> dict[str, Array]:
    """Mean losses on ``task.test_size`` fresh samples per trial, generated chunk by chunk.

    Trials are evaluated in blocks of at most ``TRAIN_FLOATS / (TEST_CHUNK sum(widths))`` so that
    memory does not grow with the number of trials; each trial draws its test samples from its
    own stream, so the blocking does not change them.
    """
    block = max(1, TRAIN_FLOATS // (min(task.test_size, TEST_CHUNK) * sum(task.widths)))
    parts: dict[str, list[Array]] = {}
    for first in range(0, len(streams), block):
        sub = slice(first, first + block)
        sub_state = {k: v[sub] for k, v in state.items()}
        totals: dict[str, Array] = {}
        for start in range(0, task.test_size, TEST_CHUNK):
            m = min(TEST_CHUNK, task.test_size - start)
            xt, yt = _sample_trials(task, m, [s["test"] for s in streams[sub]], target)
            losses = evaluate(weights, sub_state, xt, yt, **kw)  # type: ignore[arg-type]
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + v * m
        for k, v in totals.items():
            parts.setdefault(k, []).append(v / task.test_size)
    return {k: np.concatenate(v) for k, v in parts.items()}
