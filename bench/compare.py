r"""Side-by-side timings of the toolkit's engines and the per-run loops, with an equality check.

Two reference configurations, kept fixed so numbers can be compared across machines:

* ``MLPBenchConfig.full()``: a 64 -> 128 -> 10 ReLU MLP with a fixed pretrained base, LoRA on both
  layers at rank 4 (scaling 1), regression to a teacher = base + a rank-2 change of each layer,
  n = 256, full-batch Adam (lr 1e-2, 300 steps), 64 trials per variant (lora, b_only, a_only),
  test loss on 2048 fresh samples per trial.
* ``LinearBenchConfig.full()``: Section 4.1 regression, d_in = d_out = 64, adapter rank 4,
  n = 256, 1000 trials per variant, all four variants, against Adam (lr 3e-2) per trial until
  its training loss is within 1e-3 of the exact minimum; the exact path both drawing the data and
  sampling the sufficient statistics.

Both engines of a comparison see the same trials (same streams, so the same data, frozen
factors and test samples). A faster engine only counts if it computes the same thing:
``gap_check`` requires the mean gaps to agree within 2 standard errors. The README (section
"Performance") reports these comparisons and describes the reference configurations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bench.linear_loop import loop_trial
from bench.mlp_loop import loop_step_flops, loop_trial_flops, loop_trial_losses
from synthetic.linear.engine import LinearTask, linear_trial_losses, sample_training_sets
from synthetic.linear.engine import trial_chunk as linear_trial_chunk
from synthetic.mlp.engine import MLPTask, mlp_trial_losses, sample_trials, trial_chunk, trial_streams
from synthetic.mlp.train import factor_names, init_adapters, train_adapters
from theory.validation import as_int, as_real

#: Mean gaps agree when they differ by at most this many (combined) standard errors.
GAP_SIGMAS = 2.0

Engine = Callable[..., dict]


def reference_mlp_task() -> MLPTask:
    """The MLP task of the reference configuration (module docstring).

    ``MLPTask`` (docs/THEORY.md §5) with widths 64 → 128 → 10, ReLU, both layers adapted and
    perturbed by a rank-2 shift with ``‖Δ_l‖_F = 0.5 ‖W0_l‖_F``, regression with output noise
    ``N(0, 0.1²)``, ``logit_scale`` 1, 2048 test samples, 300 full-batch Adam steps at lr 1e-2:
    the "MLP 64 → 128 → 10 ReLU" of the README, section "Performance".
    """
    return MLPTask(widths=(64, 128, 10), adapted_layers=(0, 1), perturbed_layers=(0, 1), perturbation_rank=2,
                   perturbation_scale=0.5, kind="regression", activation="relu", logit_scale=1.0, noise_std=0.1,
                   test_size=2048, steps=300, lr=1e-2)


@dataclass(frozen=True)
class MLPBenchConfig:
    """What the MLP comparison runs; ``loop_trials`` (the first trials) go through the per-run loop.

    The configuration :func:`time_mlp` measures; ``full()`` is the one the README reports
    (section "Performance"). Fields are checked on construction (``ValueError``).

    Attributes
    ----------
    task : MLPTask, the task and its training schedule (:func:`reference_mlp_task`).
    variants : the variants compared (``lora``, ``b_only``, ``a_only``).
    rank : LoRA rank ``r``.
    n : training samples per trial.
    trials : trials per call of the batched engine (>= 2).
    loop_trials : trials per run of the per-run loop, ``2 <= loop_trials <= trials``.
    loss : the loss whose gaps ``gap_check`` compares (``squared``).
    seed : root of the trial streams.
    repeats : timed runs per variant; every figure is the best of them.
    """

    task: MLPTask = field(default_factory=reference_mlp_task)
    variants: tuple[str, ...] = ("lora", "b_only", "a_only")
    rank: int = 4
    n: int = 256
    trials: int = 64
    loop_trials: int = 64
    loss: str = "squared"
    seed: int = 0
    repeats: int = 3

    def __post_init__(self) -> None:
        as_int(self.repeats, "repeats", minimum=1)
        as_int(self.trials, "trials", minimum=2)
        as_int(self.loop_trials, "loop_trials", minimum=2)
        if self.loop_trials > self.trials:
            raise ValueError(f"loop_trials {self.loop_trials} exceeds trials {self.trials}")

    @classmethod
    def full(cls) -> MLPBenchConfig:
        """The reference configuration of the benchmark (module docstring): rank 4, n = 256, 64
        trials through each engine, best of 3 runs (README, section "Performance")."""
        return cls()

    @classmethod
    def quick(cls) -> MLPBenchConfig:
        """Tiny sizes for smoke tests (seconds): widths 8 → 12 → 3, 20 steps, 64 test samples,
        rank 2, n = 24, 8 trials, one run; no number in the README (section "Performance")
        comes from it."""
        task = replace(reference_mlp_task(), widths=(8, 12, 3), test_size=64, steps=20)
        return cls(task=task, rank=2, n=24, trials=8, loop_trials=8, repeats=1)


def reference_linear_task() -> LinearTask:
    """The linear task of the reference configuration: isotropic inputs, a random Δ of rank 8, s² = 1.

    ``LinearTask`` with ``d_in = d_out = 64``: the regression of Zhu et al., ICML 2024, Section
    4.1 (docs/THEORY.md §1.1), sampled as in docs/THEORY.md §7; the "linear d = 64" of the
    README, section "Performance".
    """
    return LinearTask(d_in=64, d_out=64, spectrum="isotropic", delta_rank=8, noise_var=1.0)


@dataclass(frozen=True)
class LinearBenchConfig:
    """What the linear comparison runs; Adam runs on the first ``loop_trials`` trials of each variant.

    The configuration :func:`time_linear` measures; ``full()`` is the one the README reports
    (section "Performance"). Fields are checked on construction (``ValueError``).

    Attributes
    ----------
    task : LinearTask (:func:`reference_linear_task`).
    variants : the variants compared (all four).
    rank : adapter rank ``r``.
    n : training samples per trial.
    trials : trials per call of the exact engines.
    loop_trials : trials per variant trained by Adam (the first ones).
    lr : Adam's learning rate.
    loss_tol : Adam stops within this (absolute) of the exact training loss.
    max_steps : Adam's step limit.
    seed : root of the trial streams.
    repeats : timed runs per variant; every figure is the best of them.
    """

    task: LinearTask = field(default_factory=reference_linear_task)
    variants: tuple[str, ...] = ("b_only", "a_only", "lora", "full")
    rank: int = 4
    n: int = 256
    trials: int = 1000
    loop_trials: int = 20
    lr: float = 3e-2
    loss_tol: float = 1e-3
    max_steps: int = 20_000
    seed: int = 0
    repeats: int = 3

    def __post_init__(self) -> None:
        as_int(self.repeats, "repeats", minimum=1)
        as_int(self.trials, "trials", minimum=1)
        as_int(self.loop_trials, "loop_trials", minimum=1)
        as_real(self.lr, "lr", positive=True)
        as_real(self.loss_tol, "loss_tol", positive=True)
        as_int(self.max_steps, "max_steps", minimum=1)

    @classmethod
    def full(cls) -> LinearBenchConfig:
        """The reference configuration of the benchmark (module docstring): rank 4, n = 256,
        1000 exact trials and 20 Adam trials per variant, best of 3 runs (README, section
        "Performance")."""
        return cls()

    @classmethod
    def quick(cls) -> LinearBenchConfig:
        """Tiny sizes for smoke tests (seconds): d = 8, rank 2, n = 32, 20 exact and 2 Adam
        trials, one run; no number in the README (section "Performance") comes from it."""
        return cls(task=LinearTask(d_in=8, d_out=8, delta_rank=2), rank=2, n=32, trials=20, loop_trials=2, repeats=1)


def gap_check(loop_gaps: object, engine_gaps: object, sigmas: float = GAP_SIGMAS) -> dict[str, float | bool]:
    r"""Do two samples of gaps have the same mean? ``|mean_1 - mean_2| <= sigmas sqrt(se_1^2 + se_2^2)``.

    .. math:: |\bar g_2 - \bar g_1| \le k \sqrt{s_1^2 / m_1 + s_2^2 / m_2},

    ``s_i²`` the sample variance (``ddof = 1``) and ``m_i`` the size of sample ``i``, ``k =
    sigmas``: a two-sample comparison of means at ``k`` combined standard errors. When both
    engines ran the same trials the two samples are nearly identical and the test is
    conservative; it still fails for an engine that trains or evaluates a different model. It is
    the "same distribution of gaps (means within 2 standard errors)" check of the README, section
    "Performance".

    Parameters
    ----------
    loop_gaps, engine_gaps : array_like (m_1,), (m_2,), each with at least 2 values.
    sigmas : float, ``k``.

    Returns
    -------
    dict
        ``mean_loop``, ``mean_engine``, ``diff`` (engine minus loop), ``stderr`` (the combined
        standard error), ``sigmas`` and ``ok`` (whether the inequality holds).
    """
    a, b = np.asarray(loop_gaps, dtype=np.float64), np.asarray(engine_gaps, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.size < 2 or b.size < 2:
        raise ValueError(f"gaps must be 1-D with at least 2 values, got shapes {a.shape} and {b.shape}")
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    diff = float(b.mean() - a.mean())
    return {"mean_loop": float(a.mean()), "mean_engine": float(b.mean()), "diff": diff, "stderr": se,
            "sigmas": sigmas, "ok": bool(abs(diff) <= sigmas * se)}


def _timed(fn: Callable[[], dict]) -> tuple[dict, float]:
    """``(fn(), wall seconds of the call)``."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _window(fn: Callable[[], Any], seconds: float) -> tuple[Any, float, int]:
    """Call ``fn`` until at least ``seconds`` have passed (at least once): (last result, elapsed, calls)."""
    calls, start = 0, time.perf_counter()
    while True:
        out = fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return out, elapsed, calls


def batched_training_seconds(config: MLPBenchConfig, variant: str, min_seconds: float = 0.0) -> float:
    """Seconds per trial of ``train_adapters`` alone on the engine's first chunk of trials.

    The inputs are built as ``mlp_trial_losses`` builds them (same streams); only the call that
    runs the Adam steps is timed, the counterpart of the loop's ``train_seconds``. The call is
    repeated on the same inputs until ``min_seconds`` have passed (at least once). This is the
    "Adam steps alone" row of the README (section "Performance"): seconds of all calls divided
    by calls times trials in the chunk.

    Returns
    -------
    float
        Seconds per trial.
    """
    c = config
    trials = min(c.trials, trial_chunk(c.task, c.n))
    weights, target = c.task.base_weights(), c.task.target_weights()
    streams = [trial_streams(c.seed, t) for t in range(trials)]
    x, y = sample_trials(c.task, c.n, [s["data"] for s in streams], target=target)
    inits = [init_adapters(variant, c.task.init, weights, c.task.adapted_layers, c.rank, s["init"]) for s in streams]
    state = {k: np.stack([i[k] for i in inits]) for k in inits[0]}
    trained, _ = factor_names(variant, c.task.adapted_layers)
    _, seconds, calls = _window(lambda: train_adapters(weights, state, trained, x, y, kind=c.task.kind,
                                                       steps=c.task.steps, lr=c.task.lr,
                                                       scaling=c.task.scaling(c.rank), activation=c.task.activation),
                                min_seconds)
    return seconds / (calls * trials)


def time_mlp(config: MLPBenchConfig, *, engine: Engine = mlp_trial_losses,
             loop: Engine = loop_trial_losses) -> dict[str, dict]:
    """Seconds per trial of ``loop`` and ``engine`` per variant, the loop's FLOPs, and ``gap_check``.

    Each engine is warmed up on 2 trials first (imports, allocator, thread pool). Data
    generation and evaluation are inside the timings of both: a trial is everything it takes
    to turn a seed into a train and a test loss. The Adam steps alone are timed as well
    (``train_seconds`` of the loop, ``batched_training_seconds``). Each of ``config.repeats``
    runs times the loop first, then the engine in a window of the same length: the engine is
    run again on the same trials until it has taken as long as the loop did (likewise for the
    Adam steps alone). On a shared machine a short window is likelier to fall in a quiet spell
    than a long one, so equal windows keep the ratio from favouring the faster engine. Every
    timing is the best of the runs; every run's time is kept as well. This is the measurement the
    README reports in section "Performance" (its MLP rows).

    Parameters
    ----------
    config : MLPBenchConfig
    engine, loop : callables with the signature of ``mlp_trial_losses`` returning a dict with
        ``gap`` (the loop also ``train_seconds``); replaced in tests.

    Returns
    -------
    dict {variant: dict}
        Seconds per trial of each engine (best and every run), the engine's calls per window,
        trial counts, the loop's FLOPs per trial and per training (:func:`loop_trial_flops`,
        ``steps ·`` :func:`loop_step_flops`), seconds per trial of the Adam steps alone, and
        ``check`` (:func:`gap_check` of the loop's against the engine's gaps).
    """
    c = config
    out: dict[str, dict] = {}
    for variant in c.variants:
        kw = {"loss": c.loss, "seed": c.seed}
        engine(c.task, variant, c.rank, c.n, 2, **kw)
        loop(c.task, variant, c.rank, c.n, 2, **kw)
        t_batched, t_loop, t_loop_train, t_batched_train, calls = [], [], [], [], []
        for _ in range(c.repeats):
            looped, seconds = _timed(lambda: loop(c.task, variant, c.rank, c.n, c.loop_trials, **kw))
            t_loop.append(seconds / c.loop_trials)
            batched, seconds, k = _window(lambda: engine(c.task, variant, c.rank, c.n, c.trials, **kw), seconds)
            t_batched.append(seconds / (k * c.trials))
            calls.append(k)
            t_loop_train.append(float(np.mean(looped["train_seconds"])))
            t_batched_train.append(batched_training_seconds(c, variant, float(np.sum(looped["train_seconds"]))))
        out[variant] = {
            "loop_seconds_per_trial": min(t_loop),
            "batched_seconds_per_trial": min(t_batched),
            "loop_seconds_per_trial_runs": t_loop,
            "batched_seconds_per_trial_runs": t_batched,
            "batched_calls_per_run": calls,
            "loop_trials": c.loop_trials,
            "batched_trials": c.trials,
            "loop_flops_per_trial": loop_trial_flops(c.task, variant, c.rank, c.n),
            "loop_training_flops_per_trial": c.task.steps * loop_step_flops(c.task, variant, c.rank, c.n),
            "loop_training_seconds_per_trial": min(t_loop_train),
            "batched_training_seconds_per_trial": min(t_batched_train),
            "check": gap_check(looped["gap"], batched["gap"]),
        }
    return out


def _draw_training_sets(c: LinearBenchConfig) -> None:
    """Draw the training sets of ``c.trials`` trials in the exact path's chunks (and discard them)."""
    chunk = linear_trial_chunk(c.task, c.n)
    for first in range(0, c.trials, chunk):
        sample_training_sets(c.task, c.n, np.arange(first, min(c.trials, first + chunk)), seed=c.seed)


def time_linear(config: LinearBenchConfig) -> dict[str, dict]:
    """Seconds per trial of the exact solves and of Adam per trial, per variant, and their losses.

    Two exact engines: ``exact`` draws every training set as the Adam loop does (same trials,
    whose exact training losses are the loop's targets); ``sufficient`` draws only
    ``(XᵀX, XᵀY, ‖Y‖²)`` from their exact joint law (``synthetic.linear.suffstats``), other trials of the
    same distribution, which ``check`` tests on the gaps (``gap_check``). ``data_seconds_per_trial``
    times the drawing of the training sets alone (in the exact path's chunks); ``loop / data`` is
    the largest ratio an exact path that draws the data could reach with solves that cost nothing.
    Each of ``config.repeats`` runs times the Adam loop first, then each exact path and the
    drawing in windows of the same length (repeated on the same trials), as ``time_mlp`` does.
    Every timing is the best of the runs. This is the measurement the README reports in section
    "Performance" (its linear rows).

    Returns
    -------
    dict {variant: dict}
        Best seconds per trial of ``exact``, ``sufficient``, the drawing (``data``) and the Adam
        loop, every run's time, ``check`` (:func:`gap_check` of the two exact samplers' gaps),
        trial counts, the median and largest number of Adam steps, ``reached`` (Adam trials that
        ended within ``loss_tol`` of the exact loss) and the range of Adam's loss minus the exact
        one.
    """
    c = config
    out: dict[str, dict] = {}
    kw = {"seed": c.seed, "lr": c.lr, "loss_tol": c.loss_tol, "max_steps": c.max_steps}
    for variant in c.variants:
        linear_trial_losses(c.task, variant, c.rank, c.n, 2, loss="population", seed=c.seed)  # warm-up
        linear_trial_losses(c.task, variant, c.rank, c.n, 2, loss="population", seed=c.seed, sampler="sufficient")
        exact = linear_trial_losses(c.task, variant, c.rank, c.n, c.trials, loss="population", seed=c.seed)
        loop_trial(c.task, variant, c.rank, c.n, 0, exact["train_loss"][0], **{**kw, "max_steps": 5})  # warm-up
        t_exact, t_suff, t_loop, t_data = [], [], [], []
        for _ in range(c.repeats):
            losses, steps = [], []
            start = time.perf_counter()
            for t in range(c.loop_trials):
                loss, k = loop_trial(c.task, variant, c.rank, c.n, t, exact["train_loss"][t], **kw)
                losses.append(loss)
                steps.append(k)
            window = time.perf_counter() - start
            t_loop.append(window / c.loop_trials)
            exact, seconds, calls = _window(lambda: linear_trial_losses(c.task, variant, c.rank, c.n, c.trials,
                                                                        loss="population", seed=c.seed), window)
            t_exact.append(seconds / (calls * c.trials))
            suff, seconds, calls = _window(lambda: linear_trial_losses(
                c.task, variant, c.rank, c.n, c.trials, loss="population", seed=c.seed, sampler="sufficient"), window)
            t_suff.append(seconds / (calls * c.trials))
            _, seconds, calls = _window(lambda: _draw_training_sets(c), window)
            t_data.append(seconds / (calls * c.trials))
        diff = np.asarray(losses) - exact["train_loss"][: c.loop_trials]
        out[variant] = {
            "exact_seconds_per_trial": min(t_exact),
            "sufficient_seconds_per_trial": min(t_suff),
            "data_seconds_per_trial": min(t_data),
            "loop_seconds_per_trial": min(t_loop),
            "exact_seconds_per_trial_runs": t_exact,
            "sufficient_seconds_per_trial_runs": t_suff,
            "loop_seconds_per_trial_runs": t_loop,
            "check": gap_check(exact["test_loss"] - exact["train_loss"], suff["test_loss"] - suff["train_loss"]),
            "exact_trials": c.trials,
            "loop_trials": c.loop_trials,
            "loop_steps_median": float(np.median(steps)),
            "loop_steps_max": int(max(steps)),
            "reached": int(np.sum(diff <= c.loss_tol)),
            "max_loss_diff": float(np.max(diff)),
            "min_loss_diff": float(np.min(diff)),
        }
    return out
