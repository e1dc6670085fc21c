r"""The per-run baseline of the linear task: Adam, one trial at a time, until it matches the exact fit.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.1
(docs/THEORY.md §1, "Finite samples"): on ``n`` samples every tuning variant has an exact solution,
which ``synthetic.linear.linear_trial_losses`` computes for all trials at once. Without it, a
researcher trains each trial with Adam. This module is that loop: one ``torch.optim.Adam`` per
trial, float32, full batch, on the objective of ``synthetic.linear.fit``

.. math:: \frac1n \|Y - X M^T\|_F^2, \qquad M = BA \text{ (A or B frozen, or both trained)}, \; M \text{ (full)},

from LoRA's start (``B = 0``; ``A`` the trial's Haar draw for ``lora``, ``A = 0`` under a frozen
B for ``a_only``), stopped at the first step whose training loss is within ``loss_tol``
(absolute, in the loss's units: squared error summed over outputs, mean over samples) of the
exact minimum on the same data. The time it takes is what the exact solves save.
"""

from __future__ import annotations

import numpy as np
import torch

from synthetic.linear.fit import check_variant, frozen_factor
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

    ``start`` holds the trained tensors (``a`` (r, d_in), ``b`` (d_out, r) or ``m``
    (d_out, d_in)); ``frozen`` is A (``b_only``) or B (``a_only``). Returns (final training
    loss, steps taken); the loss is the one computed at the last step.
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
    """Draw trial ``trial``'s data and frozen factor (as ``linear_trial_losses`` does) and run Adam on it."""
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
