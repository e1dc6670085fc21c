r"""The A/B asymmetry measured on finite samples (docs/THEORY.md §1, Section 4.1.1 of Zhu et al.).

Both regimes docs/THEORY.md asks for: ``b_only`` beats ``a_only`` on a low-rank ``Σ`` with a random
Δ, by eq. (4) plus a finite-n correction; and loses on the counterexample (Δ on the
lowest-variance directions). Variants are compared on the same training sets (common seed).
"""

import numpy as np
import pytest

import theory
from synthetic.linear.engine import LinearTask, linear_trial_losses
from tests.tolerances import MC_SIGMAS

TRIALS = 400


def _stderr(values):
    return values.std(ddof=1) / np.sqrt(values.size)


def test_b_only_beats_a_only_on_low_rank_sigma_by_eq_4():
    """rank Σ = k <= r, random Δ: E[L_a_only] − E[L_b_only] equals eq. (4),
    (1 − r/d_out) Tr[ΔΣΔᵀ], minus the finite-n term s² k (d_out − r)/(n − k − 1) (both fits are
    OLS with k effective features; test_linear_convergence), and is positive."""
    task = LinearTask(d_in=24, d_out=24, spectrum="lowrank:3", delta_rank=12, delta_singular_values=2.0, noise_var=0.5)
    r, n, k = 4, 64, 3
    b_only = linear_trial_losses(task, "b_only", r, n, TRIALS, loss="population", seed=5)["test_loss"]
    a_only = linear_trial_losses(task, "a_only", r, n, TRIALS, loss="population", seed=5)["test_loss"]
    diff = a_only - b_only
    eq4 = theory.asymmetry_gap(task.delta, task.sigma, r, task.noise_var)
    finite_n = task.noise_var * k * (task.d_out - r) / (n - k - 1)
    assert diff.mean() - MC_SIGMAS * _stderr(diff) > 0
    assert abs(diff.mean() - (eq4 - finite_n)) <= MC_SIGMAS * _stderr(diff)


def test_a_only_beats_b_only_on_the_counterexample():
    """docs/THEORY.md (derived): with Δ on the lowest-variance directions of Σ, a random A barely
    sees Δ and b_only loses to a_only. Each mean also matches its finite-n expectation:
    E[L_b | A] = L_b*(A)(n − 1)/(n − r − 1) and E[L_a | B] = L_a*(B) + s² r d_in/(n − d_in − 1)."""
    task = LinearTask.counterexample(d=16)
    r, n = 4, 64
    b_out = linear_trial_losses(task, "b_only", r, n, TRIALS, loss="population", seed=6, return_params=True)
    a_out = linear_trial_losses(task, "a_only", r, n, TRIALS, loss="population", seed=6, return_params=True)
    diff = b_out["test_loss"] - a_out["test_loss"]
    assert diff.mean() - MC_SIGMAS * _stderr(diff) > 0
    b_star = np.array([theory.loss_b_only(task.delta, a, task.sigma, task.noise_var) for a in b_out["frozen"]])
    a_star = np.array([theory.loss_a_only(task.delta, b, task.sigma, task.noise_var) for b in a_out["frozen"]])
    ratio = b_out["test_loss"] / b_star
    assert abs(ratio.mean() - (n - 1) / (n - r - 1)) <= MC_SIGMAS * _stderr(ratio)
    excess = a_out["test_loss"] - a_star
    want = task.noise_var * r * task.d_in / (n - task.d_in - 1)
    assert abs(excess.mean() - want) <= MC_SIGMAS * _stderr(excess)


@pytest.mark.slow
def test_issue_reference_setting_d64_r4_n256():
    """The issue's reference setting (LinearTask.full(): d = 64, rank Σ = 4, random Δ, r = 4,
    n = 256): E[L_a_only] − E[L_b_only] = eq. (4) − s² k (d_out − r)/(n − k − 1), k = rank Σ."""
    task = LinearTask.full()
    r, n, k = 4, 256, 4
    b_only = linear_trial_losses(task, "b_only", r, n, 1000, loss="population", seed=2024)["test_loss"]
    a_only = linear_trial_losses(task, "a_only", r, n, 1000, loss="population", seed=2024)["test_loss"]
    diff = a_only - b_only
    eq4 = theory.asymmetry_gap(task.delta, task.sigma, r, task.noise_var)
    want = eq4 - task.noise_var * k * (task.d_out - r) / (n - k - 1)
    assert abs(diff.mean() - want) <= MC_SIGMAS * _stderr(diff)
    assert abs(b_only.mean() - task.d_out * task.noise_var * (n - 1) / (n - k - 1)) <= MC_SIGMAS * _stderr(b_only)
