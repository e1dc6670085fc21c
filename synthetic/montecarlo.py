r"""Monte Carlo over training sets: the generalization gap of a tuning variant, with intervals.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.2
(docs/THEORY.md §2): ``gen(μ, 𝒜) = E[L_μ(W) − L_S(W)]``, the expectation over the training set
``S`` and the algorithm's randomness (here: the frozen factor). ``measure_gap`` draws
``trials`` independent training sets, trains on each, and averages ``test − train``.

The two engines — ``synthetic.linear.linear_trial_losses`` (``LinearTask``) and
``synthetic.mlp.mlp_trial_losses`` (``MLPTask``, imported lazily) — share one signature and
return at least per-trial ``train_loss`` and ``test_loss``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from synthetic.linear.engine import LinearTask, linear_trial_losses
from synthetic.provenance import environment, json_bytes, plain, write_atomic
from theory.validation import Array, as_array, as_int, as_real

#: Confidence level of the reported intervals.
LEVEL = 0.95


def mean_interval(values: object, level: float = LEVEL) -> tuple[float, float, float, float]:  # (trials,)
    r"""Sample mean, its standard error and a Student-t confidence interval.

    .. math:: \bar v \pm t_{(1+level)/2,\; m-1}\; \frac{s}{\sqrt m},

    ``s`` the sample standard deviation (``ddof=1``) of the ``m`` values: the interval of every
    measured gap (docs/THEORY.md §7.4, "Monte Carlo gaps", and §2.7). Assumes independent values;
    the coverage is exact for Gaussian values and approximate otherwise (central limit theorem),
    and at small ``m`` the t quantile gives a wider interval than the normal one.

    Parameters
    ----------
    values : (m,) finite numbers, ``m >= 2``.
    level : float in (0, 1), the confidence level (default 0.95).

    Returns
    -------
    (mean, stderr, low, high) : tuple of float
        ``v̄``, ``s/√m`` and the interval's ends.
    """
    v = as_array(values, "values", (None,))
    if v.size < 2:
        raise ValueError(f"values must be a 1-D array of at least 2 numbers, got shape {v.shape}")
    level = as_real(level, "level", positive=True, maximum=1.0 - 1e-12)
    return _mean_interval(v, level)


def _mean_interval(v: Array, level: float) -> tuple[float, float, float, float]:  # (m,) finite, m >= 2
    """:func:`mean_interval` on checked arguments."""
    mean = float(v.mean())
    stderr = float(v.std(ddof=1) / math.sqrt(v.size))
    half = float(stats.t.ppf(0.5 + level / 2, df=v.size - 1)) * stderr
    return mean, stderr, mean - half, mean + half


@dataclass(frozen=True)
class GapSummary:
    """Means over trials with standard errors and 95 % Student-t intervals (``mean_interval``).

    For the gap ``test − train`` (``*_gap``), the training loss (``*_train_loss``) and the test
    loss (``*_test_loss``) of ``trials`` independent trials: the summary of a measured gap
    (docs/THEORY.md §7.4 and §2.7). ``ci95_*`` is ``(low, high)``; ``interval`` names the method.
    """

    trials: int
    mean_gap: float
    stderr_gap: float
    ci95_gap: tuple[float, float]
    mean_train_loss: float
    stderr_train_loss: float
    ci95_train_loss: tuple[float, float]
    mean_test_loss: float
    stderr_test_loss: float
    ci95_test_loss: tuple[float, float]
    interval: str = "student-t, 95%, df = trials - 1"


def summarize(train_loss: object, test_loss: object) -> GapSummary:  # (trials,), (trials,)
    """Summary of per-trial train and test losses and their gap ``test − train``.

    Applies :func:`mean_interval` at level 0.95 to the per-trial gaps, training losses and test
    losses (docs/THEORY.md §7.4, "Monte Carlo gaps").

    Parameters
    ----------
    train_loss, test_loss : (trials,) finite arrays of one length, ``trials >= 2``
        (``ValueError`` otherwise).

    Returns
    -------
    GapSummary
    """
    train = as_array(train_loss, "train_loss", (None,))
    test = as_array(test_loss, "test_loss", (None,))
    if train.shape != test.shape:
        raise ValueError(f"train_loss {train.shape} and test_loss {test.shape} must have one shape")
    if train.size < 2:
        raise ValueError(f"train_loss and test_loss must hold at least 2 trials for an interval, got {train.size}")
    return _summary(train, test)


def _summary(train: Array, test: Array) -> GapSummary:  # (trials,), (trials,) finite, trials >= 2
    """:func:`summarize` on checked arguments."""
    parts = {}
    for name, values in (("gap", test - train), ("train_loss", train), ("test_loss", test)):
        mean, stderr, low, high = _mean_interval(values, LEVEL)
        parts.update({f"mean_{name}": mean, f"stderr_{name}": stderr, f"ci95_{name}": (low, high)})
    return GapSummary(trials=int(train.size), **parts)


def _task_fields(task: object) -> dict[str, Any]:
    return {f.name: plain(getattr(task, f.name)) for f in fields(task)}


@dataclass(frozen=True)
class GapResult:
    """Per-trial records and their summary for one ``measure_gap`` call.

    The measured gap of docs/THEORY.md §7.4 ("Monte Carlo gaps"), with what is needed to
    reproduce it (the call, including the seed, and the task's fields).

    Attributes
    ----------
    task : LinearTask or MLPTask
    call : dict
        ``variant``, ``rank``, ``n``, ``trials``, ``loss``, ``q_bits``, ``seed``.
    records : list of dict
        One tidy row per trial: ``trial`` and the call fields except ``trials``, ``train_loss``,
        ``test_loss``, ``gap``, every other per-trial number of the engine (e.g. ``n_params``,
        ``storage_bits``) and the task's fields prefixed ``task_``.
    summary : GapSummary
    arrays : dict
        With ``return_params``: ``params`` (trials, N) and the engine's other per-trial arrays
        of more than one axis (e.g. ``frozen``, ``update``); empty otherwise. Not written to
        CSV/JSON.
    """

    task: Any
    call: dict[str, Any]
    records: list[dict[str, Any]]
    summary: GapSummary
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def to_csv(self, path: str | Path) -> Path:
        """Write the records as CSV (one row per trial); returns the path.

        Infrastructure: the columns are the keys of the first record (see ``records``), written
        atomically (``synthetic.provenance.write_atomic``); README, "Use it from Python".
        """
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=list(self.records[0]))
        writer.writeheader()
        writer.writerows(self.records)
        return write_atomic(path, buffer.getvalue().encode())

    def to_json(self, path: str | Path) -> Path:
        """Write task config, call (with the seed), summary, records and versions as JSON; returns the path.

        Infrastructure: one strict-JSON document (``synthetic.provenance.json_bytes``: non-finite
        numbers as ``null``) with the keys ``environment`` (library versions), ``task`` (its type
        and fields), ``call``, ``summary`` and ``records``, written atomically.
        """
        doc = {
            "environment": environment(),
            "task": {"type": type(self.task).__name__, **_task_fields(self.task)},
            "call": self.call,
            "summary": plain(asdict(self.summary)),
            "records": self.records,
        }
        return write_atomic(path, json_bytes(doc))


def _engine(task: object):
    if isinstance(task, LinearTask):
        return linear_trial_losses
    try:
        from synthetic.mlp.engine import MLPTask, mlp_trial_losses
    except ImportError as exc:  # the MLP engine is optional for the linear half
        raise ValueError(f"task must be a LinearTask or an MLPTask, got {type(task).__name__}") from exc
    if not isinstance(task, MLPTask):
        raise ValueError(f"task must be a LinearTask or an MLPTask, got {type(task).__name__}")
    return mlp_trial_losses


def measure_gap(
    task: Any,
    variant: str,
    rank: int | None,
    n: int,
    trials: int,
    *,
    loss: str,
    q_bits: int | None = None,
    seed: int,
    return_params: bool = False,
) -> GapResult:
    r"""Measure ``gen = E[L_μ(W) − L_S(W)]`` of ``variant`` by Monte Carlo over training sets.

    Each of the ``trials`` trials draws an independent training set of ``n`` samples (and, for
    ``b_only``/``a_only``, a frozen factor), trains, and evaluates train and test loss
    (Zhu et al., ICML 2024, Section 4.2; docs/THEORY.md §2.7, "Measured gaps", and §7.4). The
    summary's 95 % intervals are Student-t intervals over trials (``mean_interval``). A bound is
    only comparable with the gap of the loss it is about: a bounded loss (``clipped``,
    ``zero_one``) and, for Lemma 4.5, ``q_bits``.

    A run that diverges (non-finite losses or parameters, e.g. float32 MLP training at too large
    a step size) raises ``ValueError`` whose message ends with the whole configuration (task
    fields, variant, rank, n, trials, loss, q_bits, seed) that produced it.

    Parameters
    ----------
    task : LinearTask or MLPTask
    variant : {"b_only", "a_only", "lora", "full"}
    rank : int (None allowed for ``full``, on either task)
    n : int, training-set size, ``>= 1``.
    trials : int, ``>= 2`` (a standard error needs two).
    loss : str
        ``LinearTask``: ``"population"`` or ``"clipped"``; ``MLPTask``: see ``synthetic.mlp``.
    q_bits : int or None
        Quantize the trained parameters to ``q_bits`` bits (per-tensor float32 scale counted in
        ``storage_bits``) and evaluate the quantized model.
    seed : int
        Seeds every random stream; the same seed gives identical numbers.
    return_params : bool
        Keep the trained parameters (``GapResult.arrays["params"]``, (trials, N)).

    Returns
    -------
    GapResult
    """
    engine = _engine(task)
    trials = as_int(trials, "trials", minimum=2)
    seed = as_int(seed, "seed", minimum=0)
    config = (
        f"variant={variant!r}, rank={rank}, n={n}, trials={trials}, loss={loss!r}, q_bits={q_bits}, "
        f"seed={seed}, task={task!r}"
    )
    try:
        out = engine(
            task, variant, rank, n, trials, loss=loss, q_bits=q_bits, seed=seed, return_params=return_params,
        )
    except ValueError as exc:
        if "diverged" not in str(exc):  # a bad argument: the engine's message names it
            raise
        raise ValueError(f"{exc}; configuration: {config}") from exc
    train, test = np.asarray(out["train_loss"]), np.asarray(out["test_loss"])
    if not (np.all(np.isfinite(train)) and np.all(np.isfinite(test))):
        bad = int(np.count_nonzero(~(np.isfinite(train) & np.isfinite(test))))
        raise ValueError(f"training diverged: non-finite losses in {bad} of {trials} trials; configuration: {config}")
    call = {
        "variant": variant, "rank": rank, "n": n, "trials": trials, "loss": loss, "q_bits": q_bits, "seed": seed,
    }
    per_trial = {
        k: np.asarray(v)
        for k, v in out.items()
        if k not in ("train_loss", "test_loss", "gap", "params") and np.ndim(v) == 1 and len(v) == trials
    }
    task_cols = {f"task_{k}": v for k, v in _task_fields(task).items()}
    records = []
    for t in range(trials):
        row = {"trial": t, **{k: v for k, v in call.items() if k != "trials"}}
        row.update(train_loss=float(train[t]), test_loss=float(test[t]), gap=float(test[t] - train[t]))
        row.update({k: plain(v[t]) for k, v in per_trial.items()})
        row.update(task_cols)
        records.append(row)
    arrays = {k: np.asarray(v) for k, v in out.items() if return_params and np.ndim(v) > 1}
    return GapResult(task=task, call=call, records=records, summary=_summary(train, test), arrays=arrays)
