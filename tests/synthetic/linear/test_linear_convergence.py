r"""Finite-n losses of the sample fits converge to the population theory like 1/n.

For a Gaussian design the single-factor variants and ``full`` are ordinary least squares with
``p`` Gaussian features and independent Gaussian noise of covariance ``C`` (docs/THEORY.md §1,
"Finite samples"), for which (derived here, classical OLS theory: the mean of an inverse
Wishart matrix, e.g. Anderson, "An Introduction to Multivariate Statistical Analysis", §7)

    E[excess test loss] = Tr(C) p / (n − p − 1),     E[train loss] = (L* or Tr C part)(n − p)/n.

* b_only, frozen A: features ``A x`` (p = r); the part of ``Δx`` that ``A x`` cannot explain is
  Gaussian, uncorrelated with — hence independent of — ``A x``, so ``C`` has trace ``L_b*(A)``
  (eq. 2): ``E[L | A] = L_b*(A)(n − 1)/(n − r − 1)``, ``E[train | A] = L_b*(A)(n − r)/n``.
* a_only, frozen B: OLS of the projected outputs on ``x`` (p = rank Σ), noise ``s²`` in the
  ``r`` directions of ``col(B)``: ``E[L | B] = L_a*(B) + s² r p/(n − p − 1)``,
  ``E[train | B] = L_a*(B) − s² r p/n``.
* full: ``E[L] = d_out s² (n − 1)/(n − p − 1)``, ``E[train] = d_out s² (n − p)/n``, p = rank Σ.
* lora (derived, asymptotic): for rank Δ = r, reduced-rank regression is the least-squares
  estimator on a smooth manifold of dimension ``D = r(d_in + d_out − r)``, so
  ``E[L] − L* = s² D / n + O(1/n²)``.
"""

import numpy as np
import pytest

import theory
from synthetic.linear.engine import LinearTask, linear_trial_losses
from tests.tolerances import MC_SIGMAS

TASK = LinearTask(d_in=6, d_out=5, spectrum="powerlaw:1", delta_rank=3, delta_singular_values=(3.0, 2.0, 1.0), noise_var=0.5)
RANK = 2
TRIALS = 3000


def _within(values, expected):
    """The Monte Carlo mean of ``values`` is within MC_SIGMAS standard errors of ``expected``."""
    stderr = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - expected) <= MC_SIGMAS * stderr, (values.mean(), expected, stderr)


@pytest.mark.parametrize("n", [12, 48])
def test_b_only_finite_n_losses(n):
    """b_only: E[L | A] / L_b*(A) = (n − 1)/(n − r − 1) and E[train | A] / L_b*(A) = (n − r)/n."""
    out = linear_trial_losses(TASK, "b_only", RANK, n, TRIALS, loss="population", seed=1, return_params=True)
    star = np.array([theory.loss_b_only(TASK.delta, a, TASK.sigma, TASK.noise_var) for a in out["frozen"]])
    _within(out["test_loss"] / star, (n - 1) / (n - RANK - 1))
    _within(out["train_loss"] / star, (n - RANK) / n)


@pytest.mark.parametrize("n", [12, 48])
def test_a_only_finite_n_losses(n):
    """a_only: E[L | B] − L_a*(B) = s² r p/(n − p − 1) and E[train | B] − L_a*(B) = −s² r p/n."""
    out = linear_trial_losses(TASK, "a_only", RANK, n, TRIALS, loss="population", seed=2, return_params=True)
    star = np.array([theory.loss_a_only(TASK.delta, b, TASK.sigma, TASK.noise_var) for b in out["frozen"]])
    p, s2 = TASK.d_in, TASK.noise_var
    _within(out["test_loss"] - star, s2 * RANK * p / (n - p - 1))
    _within(out["train_loss"] - star, -s2 * RANK * p / n)


@pytest.mark.parametrize("n", [12, 48])
def test_full_finite_n_losses_with_a_low_rank_sigma(n):
    """full with rank Σ = p < d_in (singular sample system, minimum-norm OLS):
    E[L] = d_out s² (n − 1)/(n − p − 1), E[train] = d_out s² (n − p)/n."""
    task = LinearTask(d_in=6, d_out=5, spectrum="lowrank:3", delta_rank=4, noise_var=0.5)
    out = linear_trial_losses(task, "full", None, n, TRIALS, loss="population", seed=3)
    floor = task.d_out * task.noise_var
    _within(out["test_loss"], floor * (n - 1) / (n - 3 - 1))
    _within(out["train_loss"], floor * (n - 3) / n)


def test_lora_excess_shrinks_like_one_over_n():
    """lora with rank Δ = r: n (E[L] − L*) → s² r(d_in + d_out − r). The O(1/n) correction is
    removed by Richardson extrapolation, 2·(2n)·excess(2n) − n·excess(n), on nested datasets."""
    task = LinearTask(d_in=6, d_out=5, spectrum="powerlaw:1", delta_rank=RANK, delta_singular_values=3.0, noise_var=0.5)
    star = theory.loss_lora(task.delta, task.sigma, RANK, task.noise_var)
    n = 150
    small = linear_trial_losses(task, "lora", RANK, n, TRIALS, loss="population", seed=4)["test_loss"]
    large = linear_trial_losses(task, "lora", RANK, 2 * n, TRIALS, loss="population", seed=4)["test_loss"]
    extrapolated = 2 * (2 * n) * (large - star) - n * (small - star)
    _within(extrapolated, task.noise_var * RANK * (task.d_in + task.d_out - RANK))
