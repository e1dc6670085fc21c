r"""The measured advantage of ``b_only`` over ``a_only`` on an MLP task, for the predictor's test.

docs/THEORY.md §1b predicts which single factor to train from the adapted layer's input second
moment ``Σ`` and output metric ``G`` (``synthetic.predict_asymmetry``: ``f(Σ, r) − f(G, r)``,
the difference of the fractions of a random-orientation shift's loss that ``b_only`` and
``a_only`` remove). This module measures the quantity it predicts, on the same task:

.. math:: \text{advantage} = \frac{E[L_{a\_only}] − E[L_{b\_only}]}{L_{pretrained} − E[L_{full}]},

test losses of the training objective (cross-entropy for classification, the squared loss for
regression), each variant trained on the same ``trials`` training sets of size ``n``
(``synthetic.mlp_trial_losses``; trial ``t`` draws the same data and test samples for every
variant). The denominator is the part of the shift's loss that full fine-tuning removes, so the
advantage is the difference of the fractions removed by the two single factors, measured.
The paper (Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models", ICML 2024) has no
experiment of this kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthetic.mlp.engine import _test_losses, mlp_trial_losses
from synthetic.mlp.task import MLPTask, check_mlp_call, trial_streams
from theory.validation import as_int

#: The evaluation loss that is the training objective, per task kind.
OBJECTIVE_LOSS = {"classification": "cross_entropy", "regression": "squared"}
#: The variants measured, in the order of ``AdvantageMeasurement.losses``.
MEASURED = ("pretrained", "full", "b_only", "a_only")


@dataclass(frozen=True)
class AdvantageMeasurement:
    r"""Test losses of four variants on one task and the advantage of ``b_only`` over ``a_only``.

    What :func:`measure_advantage` returns: the measured side of the prediction rule of
    docs/THEORY.md §1b.5, as in §1b.6, "Measured" (Figure 9, ``asymmetry_predictor``).

    Attributes
    ----------
    rank, n, trials : the adapter rank, training-set size and number of training sets.
    loss : the evaluation loss (``OBJECTIVE_LOSS`` of the task kind).
    losses : {variant: (trials,) test losses} for ``MEASURED``; ``pretrained`` is the base model.
    advantage : ``mean(L_a_only − L_b_only) / mean(L_pretrained − L_full)``, paired by trial.
    advantage_stderr : its standard error by the delta method for a ratio of paired means,
        ``sqrt(Var(d − R e) / T) / mean(e)`` with ``d = L_a − L_b``, ``e = L_pre − L_full``,
        ``R`` the advantage (Cochran, "Sampling Techniques", 1977, §6.3).
    """

    rank: int
    n: int
    trials: int
    loss: str
    losses: dict[str, np.ndarray]
    advantage: float
    advantage_stderr: float


def measure_advantage(task: MLPTask, rank: int, n: int, trials: int, *, seed: int) -> AdvantageMeasurement:
    r"""Train ``full``, ``b_only`` and ``a_only`` on ``trials`` training sets; return the measured advantage.

    ``(E[L_a_only] − E[L_b_only]) / (L_pretrained − E[L_full])`` of the test losses of the
    training objective (module docstring; docs/THEORY.md §1b.6, "Measured"). Positive: ``b_only``
    wins, as Zhu et al. (ICML 2024) argue for a frozen random A; negative: ``a_only`` wins.
    ``ValueError`` when full fine-tuning does not lower the mean test loss (the normalisation is
    then meaningless: raise ``n`` or ``task.steps``).

    Parameters
    ----------
    task : the MLP task; its adapted layers get the adapters.
    rank : adapter rank, at most ``min(d_in, d_out)`` of every adapted layer.
    n : training-set size; trials : at least 2 (the standard error needs two).
    seed : seed of every trial's streams (``synthetic.mlp.task.trial_streams``).
    """
    rank = check_mlp_call(task, "b_only", rank)
    n = as_int(n, "n", minimum=1)
    trials = as_int(trials, "trials", minimum=2)
    seed = as_int(seed, "seed", minimum=0)
    if task.batch_size is not None and task.batch_size > n:
        raise ValueError(f"batch_size {task.batch_size} of the task exceeds n = {n}")
    loss = OBJECTIVE_LOSS[task.kind]
    losses = {"pretrained": _pretrained_losses(task, trials, seed, loss)}
    for variant in MEASURED[1:]:
        losses[variant] = mlp_trial_losses(task, variant, rank, n, trials, loss=loss, seed=seed)["test_loss"]
    removed = losses["pretrained"] - losses["full"]
    if removed.mean() <= 0:
        raise ValueError(
            f"full fine-tuning did not lower the mean test loss ({losses['full'].mean():.4g} against the "
            f"pretrained {losses['pretrained'].mean():.4g}); raise n or the task's steps"
        )
    diff = losses["a_only"] - losses["b_only"]
    ratio = float(diff.mean() / removed.mean())
    stderr = float(np.std(diff - ratio * removed, ddof=1) / np.sqrt(trials) / removed.mean())
    return AdvantageMeasurement(rank, n, trials, loss, losses, ratio, stderr)


def _pretrained_losses(task: MLPTask, trials: int, seed: int, loss: str) -> np.ndarray:
    """Test loss (trials,) of the pretrained model on each trial's own test samples."""
    streams = [trial_streams(seed, t) for t in range(trials)]
    kw = {"kind": task.kind, "scaling": 1.0, "clip": float(task.clip), "activation": task.activation}
    return _test_losses(task, task.base_weights(), task.target_weights(), {}, streams, kw)[loss]
