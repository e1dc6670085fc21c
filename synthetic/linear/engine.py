r"""The linear-regression task of Section 4.1 (``synthetic.linear.task``), sampled for many trials at once.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.1
(docs/THEORY.md §1). The adapter learns an update ``M`` of ``W0``; its exact population loss is
docs/THEORY.md eq. (1),

.. math:: L(M) = d_{out} s^2 + \operatorname{Tr}[(Δ − M) Σ (Δ − M)^T].

The sampler returns the target the adapter sees, ``y − W0 x = Δ x + ε``. Inputs, noise,
frozen factors and test samples of trial ``t`` come from their own streams
(``synthetic.linear.task.stream_rng``), so they do not depend on how trials are chunked, on
the variant or on ``rank``; the inputs of a smaller ``n`` are the first rows of a larger one.
"""

from __future__ import annotations

import numpy as np

from synthetic.linear.fit import _frozen_factor, fit_variant, update_from
from synthetic.linear.task import (
    check_linear_call,  # noqa: F401 - the task is part of this module's interface
    STREAM_FROZEN,
    STREAM_FROZEN_SHARED,
    STREAM_NOISE,
    STREAM_TEST,
    STREAM_X,
    LinearTask,
    as_linear_task,
    stream_rng,
)
from synthetic.quantize import SCALE_BITS, quantize
from synthetic.linear.suffstats import _fit_and_losses, _sample_sufficient_statistics
from synthetic.streams import STREAM_SUFFICIENT
from theory.validation import Array, as_array, as_int, as_rank, as_real, check_memory
from theory.variants import FROZEN_FACTOR, check_q_bits, check_variant, param_count

LOSSES = ("population", "clipped")
#: How ``linear_trial_losses`` draws a training set: the data itself, or its sufficient statistics.
SAMPLERS = ("data", "sufficient")

#: Floats per chunk of trials (inputs + targets + fits); memory stays flat in ``trials``.
CHUNK_FLOATS = 4_000_000
#: Rows of a fresh test sample drawn at a time for the clipped loss.
TEST_BLOCK = 8192


def _trial_ids(trial_ids: object) -> np.ndarray:
    try:
        ids = np.asarray(trial_ids)
    except (TypeError, ValueError):  # a ragged nested sequence
        ids = np.empty(0)
    integers = np.issubdtype(ids.dtype, np.integer)
    if ids.ndim != 1 or ids.size == 0 or not integers or np.any(ids < 0):
        raise ValueError(
            f"trial_ids must be a non-empty 1-D array of integers >= 0, got {trial_ids!r}"
        )
    return ids


def sample_training_sets(
    task: LinearTask, n: int, trial_ids: object, *, seed: int
) -> tuple[Array, Array]:
    r"""Draw one training set of ``n`` samples per trial: ``x ~ N(0, Σ)``, target ``Δ x + ε``.

    The data model of Zhu et al. (ICML 2024), Section 4.1 (docs/THEORY.md §1.1): zero-mean
    Gaussian inputs with the task's diagonal ``Σ`` and ``ε ~ N(0, s² I_{d_out})``. Trial ``t``
    draws its inputs and noise from its own streams, so the inputs of a smaller ``n`` are the
    first rows of a larger one (docs/THEORY.md §7.4).

    Parameters
    ----------
    task : LinearTask
    n : int, samples per training set, ``>= 1``.
    trial_ids : (T,) integers ``>= 0``, the trials to draw.
    seed : int ``>= 0``.

    Returns
    -------
    x : (T, n, d_in); y : (T, n, d_out), the target minus ``W0 x`` (what the adapter fits).
    """
    task = as_linear_task(task)
    n = as_int(n, "n", minimum=1)
    ids = _trial_ids(trial_ids)
    seed = as_int(seed, "seed", minimum=0)
    check_memory(ids.size * n * (task.d_in + task.d_out), "n", n, f"{ids.size} training sets of n samples")
    return _sample_training_sets(task, n, ids, seed)


def _sample_training_sets(task: LinearTask, n: int, ids: np.ndarray, seed: int) -> tuple[Array, Array]:
    """:func:`sample_training_sets` on checked arguments (``ids`` a 1-D integer array)."""
    root = np.sqrt(task.sigma_eigenvalues)
    noise_std = np.sqrt(task.noise_var)
    x = np.empty((ids.size, n, task.d_in))
    y = np.empty((ids.size, n, task.d_out))
    for i, t in enumerate(ids):  # draws straight into the output; a scale of exactly 1 is skipped
        stream_rng(seed, STREAM_X, int(t)).standard_normal((n, task.d_in), out=x[i])
        stream_rng(seed, STREAM_NOISE, int(t)).standard_normal((n, task.d_out), out=y[i])
    if np.any(root != 1.0):
        x *= root
    if noise_std != 1.0:
        y *= noise_std
    y += x @ task.delta.T
    return x, y


def frozen_factors(
    task: LinearTask, variant: str, rank: int, trial_ids: object, *, seed: int
) -> Array | None:
    """The frozen factor of each trial: ``A`` (T, r, d_in) for ``b_only``, ``B`` (T, d_out, r)
    for ``a_only``, ``None`` for ``lora`` and ``full``. ``task.frozen == "shared"`` repeats one draw.

    Each factor is drawn from ``task.init`` by ``synthetic.linear.fit.frozen_factor``
    (docs/THEORY.md §0, "Frozen factors"; ``haar`` is the setting of Theorem 4.3 of Zhu et al.,
    ICML 2024): from the trial's own stream, or from one shared stream (the conditioning of the
    Gaussian-channel bound, docs/THEORY.md §2.5).

    Parameters
    ----------
    task : LinearTask; variant : one of ``VARIANTS``.
    rank : int, ``1 <= rank <= min(d_in, d_out)`` (checked for ``b_only`` / ``a_only`` only).
    trial_ids : (T,) integers ``>= 0``; seed : int ``>= 0``.
    """
    task = as_linear_task(task)
    variant = check_variant(variant)
    ids = _trial_ids(trial_ids)
    seed = as_int(seed, "seed", minimum=0)
    if variant not in ("b_only", "a_only"):
        return None
    return _frozen_factors(task, variant, as_rank(rank, task.d_in, task.d_out), ids, seed)


def _frozen_factors(task: LinearTask, variant: str, rank: int | None, ids: np.ndarray, seed: int) -> Array | None:
    """:func:`frozen_factors` on checked arguments (``ids`` a 1-D integer array)."""
    if variant not in ("b_only", "a_only"):
        return None
    side = FROZEN_FACTOR[variant]

    def draw(rng: np.random.Generator) -> Array:
        return _frozen_factor(task.init, side, task.d_in, task.d_out, rank, rng, task.w0)

    if task.frozen == "shared":
        one = draw(stream_rng(seed, STREAM_FROZEN_SHARED))
        return np.repeat(one[None], ids.size, axis=0)
    return np.stack([draw(stream_rng(seed, STREAM_FROZEN, int(t))) for t in ids])


def population_losses(task: LinearTask, m: Array) -> Array:  # (T, d_out, d_in) -> (T,)
    r"""docs/THEORY.md eq. (1) for a stack of updates, ``d_out s² + Tr[(Δ − M)Σ(Δ − M)ᵀ]``.

    The batched twin of ``theory.population_loss`` for the task's diagonal ``Σ`` (tested
    against it).
    """
    task = as_linear_task(task)
    return _population_losses(task, as_array(m, "m", (None, task.d_out, task.d_in)))


def _population_losses(task: LinearTask, m: Array) -> Array:  # (T, d_out, d_in) -> (T,)
    """:func:`population_losses` on checked arguments."""
    resid = task.delta - m
    return task.d_out * task.noise_var + np.einsum("tij,j->t", resid**2, task.sigma_eigenvalues)


def clipped_test_losses(
    task: LinearTask, m: Array, trial_ids: object, *, seed: int, clip: float
) -> Array:  # (T, d_out, d_in) -> (T,)
    r"""Clipped test loss ``E[min(‖y − (W0 + M)x‖², c)]``, estimated on a fresh sample per trial.

    For Gaussian ``x`` and ``ε`` the residual ``(Δ − M)x + ε`` is ``N(0, C)`` with
    ``C = (Δ − M)Σ(Δ − M)ᵀ + s² I``, so its squared norm has the law of ``Σ_j μ_j z_j²``
    (``μ`` the eigenvalues of ``C``, ``z`` standard normal). Each trial draws ``task.n_test``
    such samples from its own test stream (independent of the training set), in blocks.
    The clipped squared loss ``min(ℓ, c)`` is bounded, so Lemma 4.4 of Zhu et al. (ICML 2024)
    applies with ``σ = c/2`` (docs/THEORY.md §2.1; its gap: §2.7).

    Parameters
    ----------
    task : LinearTask; m : (T, d_out, d_in) updates ``M``.
    trial_ids : (T,) integers ``>= 0``, one per update; seed : int ``>= 0``.
    clip : float ``> 0``, the level ``c``.

    Returns
    -------
    (T,) the mean clipped loss over ``task.n_test`` fresh samples.
    """
    task = as_linear_task(task)
    ids = _trial_ids(trial_ids)
    seed = as_int(seed, "seed", minimum=0)
    clip = as_real(clip, "clip", positive=True)
    m_ = as_array(m, "m", (None, task.d_out, task.d_in))
    if m_.shape[0] != ids.size:
        raise ValueError(f"m holds {m_.shape[0]} updates but trial_ids names {ids.size} trials; they must match")
    return _clipped_test_losses(task, m_, ids, seed, clip)


def _clipped_test_losses(task: LinearTask, m: Array, ids: np.ndarray, seed: int, clip: float) -> Array:
    """:func:`clipped_test_losses` on checked arguments."""
    resid = task.delta - m
    cov = (resid * task.sigma_eigenvalues) @ np.swapaxes(resid, 1, 2)
    mu = np.clip(np.linalg.eigvalsh(cov), 0.0, None) + task.noise_var  # (T, d_out)
    out = np.empty(ids.size)
    for i, t in enumerate(ids):
        rng = stream_rng(seed, STREAM_TEST, int(t))
        total, left = 0.0, task.n_test
        while left > 0:
            rows = min(left, TEST_BLOCK)
            z = rng.standard_normal((rows, task.d_out))
            total += float(np.minimum((z**2) @ mu[i], clip).sum())
            left -= rows
        out[i] = total / task.n_test
    return out


def _train_losses(x: Array, y: Array, m: Array, loss: str, clip: float | None) -> Array:
    sq = np.sum((y - x @ np.swapaxes(m, 1, 2)) ** 2, axis=2)  # (T, n)
    if loss == "clipped":
        sq = np.minimum(sq, clip)
    return sq.mean(axis=1)


def trial_chunk(task: LinearTask, n: int) -> int:
    """Trials fitted together by ``linear_trial_losses``: at most ``CHUNK_FLOATS`` floats of data
    and updates at once, so memory stays flat in the number of trials.

    Infrastructure: ``max(1, CHUNK_FLOATS // (n (d_in + d_out) + 2 d_in d_out))``. The numbers do
    not depend on the chunking, since every trial has its own streams (docs/THEORY.md §7.4).
    """
    return max(1, CHUNK_FLOATS // (n * (task.d_in + task.d_out) + 2 * task.d_in * task.d_out))


def linear_trial_losses(
    task: LinearTask,
    variant: str,
    rank: int | None,
    n: int,
    trials: int,
    *,
    loss: str,
    q_bits: int | None = None,
    seed: int,
    return_params: bool = False,
    sampler: str = "data",
) -> dict[str, np.ndarray]:
    r"""Fit ``variant`` on ``trials`` independent training sets and evaluate each fit.

    Losses: ``"population"`` — test loss is eq. (1) exactly, train loss the mean over samples
    of the squared error summed over outputs; ``"clipped"`` — ``min(squared error, task.clip)``,
    on the training set and on a fresh test sample (``clipped_test_losses``).

    ``sampler="data"`` draws each training set (``sample_training_sets``). ``sampler="sufficient"``
    (population loss, ``n >= d_in``) draws only what the fits and losses depend on, ``(XᵀX, XᵀY,
    ‖Y‖²)``, from its exact joint law (``synthetic.linear.suffstats``): the same distribution of every
    returned number at ``O(d³)`` instead of ``O(n d²)`` per trial, but other values for a given
    seed (its own stream).

    With ``q_bits`` the trained tensors are quantized (``synthetic.quantize``: one float32
    scale per tensor) and the quantized model is the one evaluated. Its storage is
    ``storage_bits = q_bits · N + 32 · (number of trained tensors)`` bits (``lora`` stores A and B,
    two scales; the others one), the ``H(W)`` of Lemma 4.5 with the scales counted. For ``full``
    the stored tensor is the update ``M = W − W0``; ``W0`` is fixed before the data, so this is
    the same model at the same cost.

    Parameters
    ----------
    task : LinearTask
    variant : {"b_only", "a_only", "lora", "full"}
    rank : int, ``1 <= rank <= min(d_in, d_out)``; unused for ``full`` (None allowed; a given
        rank is still checked).
    n : int, samples per training set, ``>= 1``.
    trials : int, ``>= 1``.
    loss : {"population", "clipped"}
    q_bits : int in [2, 32] or None.
    seed : int ``>= 0``; the same seed gives the same numbers, whatever the chunking.
    return_params : bool

    Returns
    -------
    dict
        ``train_loss``, ``test_loss``, ``n_params`` (all (trials,)); ``storage_bits`` (trials,) with
        ``q_bits``; with ``return_params`` also ``params`` (trials, N) (the trained tensors
        flattened in the order A, B; quantized if ``q_bits``), ``update`` (trials, d_out, d_in)
        and ``frozen`` (trials, ...) for ``b_only``/``a_only``.
    """
    task, variant, rank = check_linear_call(task, variant, rank)
    n = as_int(n, "n", minimum=1)
    trials = as_int(trials, "trials", minimum=1)
    check_memory(n * (task.d_in + task.d_out), "n", n, "one training set of n samples")
    check_memory(trials * (16 + (task.d_in * task.d_out if return_params else 0)), "trials", trials,
                 "the per-trial results")
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r} is not one of 'population', 'clipped' for a LinearTask")
    if loss == "clipped" and task.clip is None:
        raise ValueError("loss 'clipped' needs task.clip (the level c of min(loss, c)), got None")
    q_bits = check_q_bits(q_bits)
    seed = as_int(seed, "seed", minimum=0)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r} is not one of {', '.join(map(repr, SAMPLERS))}")
    if sampler == "sufficient" and (loss != "population" or n < task.d_in):
        raise ValueError(f"sampler 'sufficient' needs loss 'population' and n >= d_in = {task.d_in}, "
                         f"got loss {loss!r} and n = {n}")

    chunk = trial_chunk(task, n)
    parts: dict[str, list[Array]] = {}
    for start in range(0, trials, chunk):
        ids = np.arange(start, min(trials, start + chunk))
        frozen = _frozen_factors(task, variant, rank, ids, seed)
        if sampler == "sufficient":
            rngs = [stream_rng(seed, STREAM_SUFFICIENT, int(t)) for t in ids]
            stats = _sample_sufficient_statistics(task.delta, task.sigma_eigenvalues, task.noise_var, n, rngs)
            tensors, m, train = _fit_and_losses(variant, rank, stats, frozen, n=n, ridge=task.ridge, q_bits=q_bits)
            out = {"train_loss": train, "test_loss": _population_losses(task, m)}
        else:
            x, y = _sample_training_sets(task, n, ids, seed)
            tensors = fit_variant(variant, rank, x, y, frozen, ridge=task.ridge)
            if q_bits is not None:
                tensors = {name: quantize(t, q_bits).values for name, t in tensors.items()}
            m = update_from(variant, tensors, frozen)
            out = dict(zip(("train_loss", "test_loss"), _update_losses(task, x, y, m, ids, loss=loss, seed=seed)))
        if return_params:
            names = sorted(tensors)  # "a" before "b"
            out["params"] = np.concatenate([tensors[k].reshape(ids.size, -1) for k in names], axis=1)
            out["update"] = m
            if frozen is not None:
                out["frozen"] = frozen
        for key, value in out.items():
            parts.setdefault(key, []).append(value)
    return _joined_result(parts, task, variant, rank, q_bits)


def _update_losses(task: LinearTask, x: Array, y: Array, m: Array, ids: Array, *, loss: str,
                  seed: int) -> tuple[Array, Array]:  # -> train (T,), test (T,)
    """Train and test loss of each trial's update ``m`` (T, d_out, d_in) on its training set
    (x, y): eq. (1) exactly for ``"population"``, the clipped loss on a fresh test sample otherwise."""
    train = _train_losses(x, y, m, loss, task.clip)
    if loss == "population":
        return train, _population_losses(task, m)
    return train, _clipped_test_losses(task, m, ids, seed, task.clip)


def _joined_result(parts: dict[str, list[Array]], task: LinearTask, variant: str, rank: int | None,
                  q_bits: int | None) -> dict[str, Array]:
    """The per-chunk arrays joined along trials, with ``n_params`` and, with ``q_bits``,
    ``storage_bits = q_bits · N + 32 · (number of trained tensors)``."""
    result = {key: np.concatenate(value) for key, value in parts.items()}
    trials = len(next(iter(result.values())))
    n_params = param_count(variant, rank, task.d_in, task.d_out)
    result["n_params"] = np.full(trials, n_params)
    if q_bits is not None:
        n_tensors = 2 if variant == "lora" else 1
        result["storage_bits"] = np.full(trials, q_bits * n_params + SCALE_BITS * n_tensors)
    return result
