"""The sufficient-statistics sampler of the linear task (``synthetic.linear.suffstats``).

Two kinds of claim: exact algebra (fits and training losses from ``(XᵀX, XᵀY, ‖Y‖²)`` equal the
fits and losses from the data they summarise) and laws (the sampled statistics have the moments
of those of ``n`` Gaussian samples, and every returned loss has the data path's distribution).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from synthetic.linear.fit import fit_variant, update_from
from synthetic.linear.engine import LinearTask, frozen_factors, linear_trial_losses, sample_training_sets, stream_rng
from synthetic.streams import STREAM_SUFFICIENT
from synthetic.linear.suffstats import (
    _fit_variant_gram,
    _sample_sufficient_statistics,
    _train_losses_gram,
)
from tests.tolerances import MC_SIGMAS, tol

from theory.variants import VARIANTS  # noqa: E402 - the paper's vocabulary
TASKS = {
    "powerlaw": LinearTask(d_in=7, d_out=5, spectrum="powerlaw:1", delta_rank=3, noise_var=0.4),
    "lowrank": LinearTask(d_in=7, d_out=5, spectrum="lowrank:3", delta_rank=2, noise_var=0.4),
}


def _statistics(x, y):
    xt = np.swapaxes(x, 1, 2)
    return xt @ x, xt @ y, np.sum(y**2, axis=(1, 2))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", sorted(TASKS))
@pytest.mark.parametrize("ridge", [0.0, 0.05])
def test_fits_and_train_losses_from_the_statistics_equal_those_from_the_data(variant, name, ridge):
    """For every variant, ``_fit_variant_gram(XᵀX, XᵀY)`` is ``fit_variant(X, Y)`` (the same
    minimum-norm or ridge least squares, including a singular ``XᵀX``), and
    ``(‖Y‖² − 2 tr(MC) + tr(MWMᵀ))/n`` is ``‖Y − XMᵀ‖²/n``."""
    task, n, ids = TASKS[name], 20, np.arange(4)
    x, y = sample_training_sets(task, n, ids, seed=3)
    frozen = frozen_factors(task, variant, 2, ids, seed=3)
    want = update_from(variant, fit_variant(variant, 2, x, y, frozen, ridge=ridge), frozen)
    gram, cross, y_sq = _statistics(x, y)
    got = update_from(variant, _fit_variant_gram(variant, 2, gram, cross, frozen, n=n, ridge=ridge), frozen)
    assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    loss = np.sum((y - x @ np.swapaxes(got, 1, 2)) ** 2, axis=(1, 2)) / n
    assert_allclose(_train_losses_gram(gram, cross, y_sq, got, n), loss, **tol())


def test_statistics_have_the_moments_of_n_gaussian_samples():
    """Bartlett's decomposition: ``E[W] = nΣ``, ``Var W_ii = 2nΣ_ii²``, ``Var W_ij = nΣ_iiΣ_jj`` (diagonal Σ);
    ``E[C] = nΣΔᵀ``; ``E‖Y‖² = n(tr(ΔΣΔᵀ) + s² d_out)``. Each Monte Carlo mean within MC_SIGMAS
    standard errors of its expectation."""
    task, n, draws = TASKS["powerlaw"], 12, 20000
    lam = task.sigma_eigenvalues
    rngs = [stream_rng(7, STREAM_SUFFICIENT, t) for t in range(draws)]
    gram, cross, y_sq = _sample_sufficient_statistics(task.delta, lam, task.noise_var, n, rngs)
    checks = [
        (gram, n * np.diag(lam)),
        ((gram - n * np.diag(lam)) ** 2, n * (np.outer(lam, lam) + np.diag(lam**2))),
        (cross, n * (lam[:, None] * task.delta.T)),
        (y_sq, n * (np.sum(task.delta**2 * lam) + task.noise_var * task.delta.shape[0])),
    ]
    for sample, expected in checks:
        se = sample.std(axis=0, ddof=1) / np.sqrt(draws)
        assert np.all(np.abs(sample.mean(axis=0) - expected) <= MC_SIGMAS * se + 1e-12)


@pytest.mark.parametrize(("name", "k"), [("powerlaw", 7), ("lowrank", 3)])
def test_ols_training_loss_has_its_exact_expectation(name, k):
    """``full`` (OLS) with ``X`` of rank ``k``: ``E[‖Y − XM̂ᵀ‖²/n] = s² d_out (n − k)/n``, the residual
    ``χ²`` of ``n − k`` dimensions per output, for the sufficient-statistics sampler."""
    task, n = TASKS[name], 15
    train = linear_trial_losses(task, "full", None, n, 20000, loss="population", seed=4,
                                sampler="sufficient")["train_loss"]
    want = task.noise_var * task.d_out * (n - k) / n
    assert abs(train.mean() - want) <= MC_SIGMAS * train.std(ddof=1) / np.sqrt(train.size)


@pytest.mark.parametrize("variant", VARIANTS)
def test_both_samplers_give_the_same_distribution_of_losses(variant):
    """The train and test losses of ``sampler="sufficient"`` and ``sampler="data"`` (independent
    draws) have equal means, within MC_SIGMAS combined standard errors."""
    task, n, trials = TASKS["powerlaw"], 12, 6000
    out = {s: linear_trial_losses(task, variant, 2, n, trials, loss="population", seed=5, sampler=s)
           for s in ("data", "sufficient")}
    for key in ("train_loss", "test_loss"):
        a, b = out["data"][key], out["sufficient"][key]
        se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        assert abs(a.mean() - b.mean()) <= MC_SIGMAS * se, key


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"sampler": "wishart"}, "sampler 'wishart' is not one of 'data', 'sufficient'"),
    ({"sampler": "sufficient", "loss": "clipped"}, "sampler 'sufficient' needs loss 'population'"),
    ({"sampler": "sufficient", "n": 5}, "n >= d_in = 7"),
])
def test_sampler_errors_name_the_argument(kwargs, fragment):
    """An unknown sampler, or the sufficient sampler where it does not apply, is a ValueError."""
    task = LinearTask(d_in=7, d_out=5, spectrum="powerlaw:1", delta_rank=3, noise_var=0.4, clip=3.0)
    call = {"loss": "population", "seed": 0, "n": 10, **kwargs}
    n = call.pop("n")
    with pytest.raises(ValueError, match=fragment):
        linear_trial_losses(task, "b_only", 2, n, 3, **call)
