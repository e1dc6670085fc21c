r"""The per-run baseline of the linear task: Adam, one trial at a time, until it matches the exact fit.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.1
(docs/THEORY.md §1.7, "Finite samples", and §7.1): on ``n`` samples every tuning variant has an
exact solution, which ``synthetic.linear.linear_trial_losses`` computes for all trials at once.
Without it, a researcher trains each trial with Adam. This module is that loop: one
``torch.optim.Adam`` per trial, float32, full batch, on the objective of ``synthetic.linear.fit``

.. math:: \frac1n \|Y - X M^T\|_F^2, \qquad M = BA \text{ (A or B frozen, or both trained)}, \; M \text{ (full)},

from LoRA's start (``B = 0``, Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models",
ICLR 2022; for ``lora``, ``A`` drawn with the task's ``init``, Haar by default, from the trial's
frozen-factor stream; ``A = 0`` under a frozen B for ``a_only``; ``M = 0`` for ``full``), stopped at
the first step whose training loss is within ``loss_tol`` (absolute, in the loss's units: squared
error summed over outputs, mean over samples) of the exact minimum on the same data. The time it
takes is what the exact solves save: the README (section "Performance") reports the ratio.
"""

from __future__ import annotations

import numpy as np
import torch

from synthetic.linear.fit import frozen_factor
from theory.variants import check_variant
from synthetic.linear.engine import (
    STREAM_FROZEN,
    LinearTask,
    as_linear_task,
    frozen_factors,
    sample_training_sets,
    stream_rng,
)
from theory.validation import as_int, as_rank, as_real


def adam_to_target(x: np.ndarray, y: np.ndarray, variant: str, start: dict[str, np.ndarray],
                   frozen: np.ndarray | None, target_loss: float, *, lr: float, loss_tol: float,
                   max_steps: int) -> tuple[float, int]:  # x (n, d_in), y (n, d_out)
    r"""Adam on one trial until ``loss <= target_loss + loss_tol`` or ``max_steps``.

    The objective of ``synthetic.linear.fit`` without ridge (docs/THEORY.md §7.1), in float32,

    .. math:: L(M) = \frac1n \|Y - X M^T\|_F^2, \qquad M = B A_{\text{frozen}}\ (b\_only),\
              B_{\text{frozen}} A\ (a\_only),\ B A\ (lora),\ M\ (full),

    minimised by ``torch.optim.Adam`` (learning rate ``lr``) over the tensors of ``start``. Step
    ``k`` evaluates ``L`` at the current parameters; it stops there if ``L <= target_loss +
    loss_tol``, and otherwise takes one Adam step. So ``k`` steps mean ``k − 1`` Adam updates when
    the goal is reached, and ``max_steps`` updates when it is not.

    Parameters
    ----------
    x : numpy.ndarray (n, d_in); y : numpy.ndarray (n, d_out), the training set (targets minus
        ``W0 x``).
    variant : {"b_only", "a_only", "lora", "full"}
    start : dict of the trained tensors: ``a`` (r, d_in), ``b`` (d_out, r) or ``m`` (d_out, d_in).
    frozen : numpy.ndarray or None, A (r, d_in) for ``b_only``, B (d_out, r) for ``a_only``.
    target_loss : float, the exact minimum of ``L`` on this training set.
    lr : float; loss_tol : float, absolute, in the loss's units; max_steps : int.

    Returns
    -------
    (loss, steps) : (float, int)
        The last evaluated training loss (before the last update when ``max_steps`` is
        reached) and the number of steps taken.
    """
    variant = check_variant(variant)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    ft = None if frozen is None else torch.as_tensor(frozen, dtype=torch.float32)
    params = {k: torch.tensor(v, dtype=torch.float32, requires_grad=True) for k, v in start.items()}
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    goal = target_loss + loss_tol
    loss = float("inf")
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        if variant == "b_only":
            m = params["b"] @ ft
        elif variant == "a_only":
            m = ft @ params["a"]
        elif variant == "lora":
            m = params["b"] @ params["a"]
        else:
            m = params["m"]
        objective = ((yt - xt @ m.T) ** 2).sum(dim=1).mean()
        loss = float(objective.detach())
        if loss <= goal:
            return loss, step
        objective.backward()
        opt.step()
    return loss, max_steps


def loop_trial(task: LinearTask, variant: str, rank: int, n: int, trial: int, target_loss: float, *,
               seed: int, lr: float, loss_tol: float, max_steps: int) -> tuple[float, int]:
    """Draw trial ``trial``'s data and frozen factor (as ``linear_trial_losses`` does) and run Adam on it.

    The training set is ``synthetic.linear.engine.sample_training_sets`` and the frozen factor
    ``frozen_factors`` of the same trial and seed, so the exact fits of ``linear_trial_losses``
    (docs/THEORY.md §7.1) and this loop see the same data. Starts: ``B = 0`` (``b_only``),
    ``A = 0`` (``a_only``), ``M = 0`` (``full``), and for ``lora`` ``B = 0`` with ``A`` drawn
    with ``task.init`` from the trial's frozen-factor stream; then :func:`adam_to_target`. One
    trial of the per-run baseline that the README (section "Performance") times against the
    exact solves.

    Parameters
    ----------
    task : LinearTask; variant : str; rank : int; n : int >= 1; trial : int, the trial index.
    target_loss : float, the exact training loss of the trial (``linear_trial_losses``).
    seed, lr, loss_tol, max_steps : as in ``LinearBenchConfig`` and :func:`adam_to_target`.

    Returns
    -------
    (loss, steps) : (float, int), from :func:`adam_to_target`.
    """
    task = as_linear_task(task)
    variant = check_variant(variant)
    rank = as_rank(rank, task.d_in, task.d_out)
    n = as_int(n, "n", minimum=1)
    lr = as_real(lr, "lr", positive=True)
    ids = np.array([trial])
    x, y = sample_training_sets(task, n, ids, seed=seed)
    frozen = frozen_factors(task, variant, rank, ids, seed=seed)
    r, d_in, d_out = rank, task.d_in, task.d_out
    if variant == "full":
        start = {"m": np.zeros((d_out, d_in))}
    elif variant == "b_only":
        start = {"b": np.zeros((d_out, r))}
    elif variant == "a_only":
        start = {"a": np.zeros((r, d_in))}
    else:
        a0 = frozen_factor(task.init, "a", d_in, d_out, r, stream_rng(seed, STREAM_FROZEN, trial), w0=task.w0)
        start = {"a": a0, "b": np.zeros((d_out, r))}
    return adam_to_target(x[0], y[0], variant, start, None if frozen is None else frozen[0], target_loss,
                          lr=lr, loss_tol=loss_tol, max_steps=max_steps)
