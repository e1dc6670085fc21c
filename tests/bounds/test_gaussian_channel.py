"""``bounds.gaussian_channel_mi``: the bias-corrected estimate, its jackknife, the fallback, and coverage.

Reference implementations here are independent of the module's: eigendecompositions of each
covariance and a scalar bisection (against the rank-one downdates and batched bisection of the
module), and the ``(n_boot, T, T)`` bootstrap of the original implementation (against the
one-replicate-at-a-time fallback). Coverage checks are calibration checks over independent
repetitions on Gaussian mean estimation, where the value is known exactly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import bounds.gaussian_channel as gc
from bounds import gaussian_channel_mi
from bounds.gaussian_channel import EstimateMayBeLowWarning
from bounds.results import basic_bootstrap_interval
from tests.tolerances import MC_SIGMAS, tol

CONFIDENCE = 0.95
#: (p, trials) of every Gaussian-channel point of Figures 4 and 5, quick and full presets:
#: linear d = 8, rank 2 (b_only/a_only 16, lora 32, full 64) at 150 and 300 trials; MLP hidden
#: layer 16 x 16, rank 2 (32, 64) at 120 and 300 trials, and full (256) at 300 (full preset).
FIGURE_RATIOS = ((16, 150), (32, 150), (64, 150), (16, 300), (32, 300), (64, 300), (32, 120), (64, 120), (256, 300))


def coverage_floor(reps: int, level: float = CONFIDENCE) -> float:
    """Least acceptable coverage frequency of a level-``level`` interval over ``reps`` repetitions."""
    return level - MC_SIGMAS * math.sqrt(level * (1 - level) / reps)


def reference_corrected(cov: np.ndarray, dof: int, tau: float) -> float:
    """The corrected estimate of the docstring, from the eigenvalues of ``cov`` and a scalar bisection."""
    nu = np.maximum(np.linalg.eigvalsh(cov), 0.0) / tau**2
    lo, hi = 0.0, 1.0
    for _ in range(200):
        u = 0.5 * (lo + hi)
        lo, hi = (lo, u) if u > 1.0 - np.sum(nu / (nu + u)) / dof else (u, hi)
    kappa = np.sum(nu * u / (nu + u) ** 2) / dof
    gamma = (1.0 - u) - u * kappa / (u - kappa)
    return 0.5 * (np.sum(np.log1p(nu / u)) + dof * (np.log(u) + 1.0 - u)) - 0.25 * math.log1p(-gamma)


def mean_estimation_trials(rng, trials: int, d: int, n: int) -> np.ndarray:
    """``trials`` independent trainings of Gaussian mean estimation: each ``W`` is the mean of ``n``
    draws of ``N(1, I_d)``, so ``Cov(W) = I/n``."""
    return (1.0 + rng.standard_normal((trials, n, d))).mean(axis=1)


def coverage(p: int, trials: int, snr: float, reps: int, seed: int) -> tuple[float, float]:
    """(two-sided, upper-end) coverage of ``(d/2) log(1 + 1/(n tau^2))`` by the interval, with
    ``1/(n tau^2) = snr``, over ``reps`` repetitions of ``trials`` trainings each."""
    rng = np.random.default_rng([seed, p, trials])
    n = 4
    tau = 1.0 / math.sqrt(n * snr)
    truth = p / 2 * math.log1p(1.0 / (n * tau**2))
    hits = upper = 0
    with threadpool_limits(1):  # one small eigendecomposition per call: extra BLAS threads only spin
        for _ in range(reps):
            est = gaussian_channel_mi(mean_estimation_trials(rng, trials, p, n), tau, rng, confidence=CONFIDENCE)
            hits += est.covers(truth)
            upper += est.high >= truth
    return hits / reps, upper / reps


# --- the estimator against independent references --------------------------------------------


@pytest.mark.parametrize(("trials", "p"), [(6, 3), (20, 5), (60, 40), (300, 8)])
def test_corrected_value_and_jackknife_match_eigendecompositions(trials, p):
    """The value equals the corrected estimate computed from the eigenvalues of the sample
    covariance; every leave-one-out value of the jackknife (rank-one downdates of one
    eigendecomposition) equals the estimate recomputed on the other ``T - 1`` rows."""
    rng = np.random.default_rng(trials + p)
    samples = rng.standard_normal((trials, p)) * 3 * rng.random(p)
    tau = 0.6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimateMayBeLowWarning)  # fewer than MIN_TRIALS trials
        est = gaussian_channel_mi(samples, tau, rng)
    np.testing.assert_allclose(est.value, reference_corrected(np.cov(samples, rowvar=False), trials - 1, tau), **tol())
    centred, log_scale = gc._scaled(samples, tau)
    _, leave_out = gc._corrected_with_jackknife(centred, log_scale)
    want = [reference_corrected(np.cov(np.delete(samples, i, 0), rowvar=False), trials - 2, tau) for i in range(trials)]
    np.testing.assert_allclose(leave_out, want, **tol())


def test_correction_vanishes_with_many_trials():
    """With ``p/T -> 0`` the corrected estimate tends to the plug-in ``1/2 log det(I + C/tau^2)``."""
    rng = np.random.default_rng(1)
    samples = rng.standard_normal((20000, 3)) * [1.0, 0.5, 0.1]
    plugin = 0.5 * np.linalg.slogdet(np.eye(3) + np.cov(samples, rowvar=False) / 0.25)[1]
    assert abs(gaussian_channel_mi(samples, 0.5, rng).value - plugin) < 1e-3 * plugin


def test_fallback_equals_the_materialised_bootstrap():
    """With ``T < p + 3`` the plug-in and its basic bootstrap interval equal, draw for draw, those of
    the original implementation (all ``n_boot`` resampled Gram matrices at once, same random stream)."""
    rng_data = np.random.default_rng(2)
    for trials, p in ((7, 30), (5, 3)):
        samples = rng_data.standard_normal((trials, p))
        tau, n_boot = 0.8, 50
        with pytest.warns(EstimateMayBeLowWarning, match=f"{trials} trials for p = {p}"):
            est = gaussian_channel_mi(samples, tau, np.random.default_rng(9), n_boot=n_boot)
        centred = samples - samples.mean(axis=0)
        gram = centred @ centred.T / tau**2

        def half_logdet(g):
            return 0.5 * np.sum(np.log1p(np.maximum(np.linalg.eigvalsh(g) / (trials - 1), 0.0)), axis=-1)

        picks = np.random.default_rng(9).integers(0, trials, size=(n_boot, trials))
        boot = gram[picks[:, :, None], picks[:, None, :]]
        boot = boot - boot.mean(axis=2, keepdims=True) - boot.mean(axis=1, keepdims=True) + boot.mean(
            axis=(1, 2), keepdims=True)
        value = float(half_logdet(gram))
        low, high = basic_bootstrap_interval(value, half_logdet(boot), CONFIDENCE)
        np.testing.assert_allclose([est.value, est.low, est.high], [value, max(low, 0.0), high], **tol())
        direct = 0.5 * np.linalg.slogdet(np.eye(p) + np.cov(samples, rowvar=False) / tau**2)[1]
        np.testing.assert_allclose(est.value, direct, **tol())


# --- warnings, sizes, edges --------------------------------------------------------------------


def test_warns_where_the_estimate_may_be_low_and_only_there():
    """``EstimateMayBeLowWarning`` (a ``UserWarning``) for ``T < p + 3`` and for ``T < MIN_TRIALS``;
    silence at the sizes of the figures."""
    rng = np.random.default_rng(3)
    assert issubclass(EstimateMayBeLowWarning, UserWarning)
    with pytest.warns(EstimateMayBeLowWarning, match="needs trials >= p \\+ 3"):
        gaussian_channel_mi(rng.standard_normal((10, 8)), 1.0, rng)
    with pytest.warns(EstimateMayBeLowWarning, match=f"fewer than {gc.MIN_TRIALS}: the interval fell short"):
        gaussian_channel_mi(rng.standard_normal((gc.MIN_TRIALS - 1, 4)), 1.0, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EstimateMayBeLowWarning)
        for p, trials in ((64, 120), (256, 300), (1, gc.MIN_TRIALS)):
            gaussian_channel_mi(rng.standard_normal((trials, p)), 1.0, rng)


def test_size_is_checked_before_allocating(monkeypatch):
    """An input whose working memory would exceed the limit is refused by name, with the memory it
    would need, before anything is allocated: ``n_boot`` when the bootstrap draws dominate."""
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match=r"^n_boot too large: samples of shape \(6, 10\) with n_boot = 10000000000 "
                                         r"bootstrap replicates would need 447.0 GiB of working memory; "
                                         r"the limit is 4 GiB"):
        gaussian_channel_mi(np.ones((6, 10)) * np.arange(6)[:, None], 1.0, rng, n_boot=10**10)
    monkeypatch.setattr(gc, "MAX_WORK_BYTES", 2**20)
    with pytest.raises(ValueError, match=r"^samples too large: samples of shape \(400, 200\)"):
        gaussian_channel_mi(np.zeros((400, 200)), 1.0, rng)


@pytest.mark.parametrize("tau", [1e-300, 1e-100, 1.0, 1e100, 1e150])
def test_finite_for_any_noise_and_degenerate_directions(tau):
    """Finite, ordered and silent (no RuntimeWarning) for noise far below or above the samples' scale,
    a constant column (a zero eigenvalue) and a direction carried by one trial alone; the value
    falls as ``tau`` grows."""
    rng = np.random.default_rng(5)
    samples = rng.standard_normal((gc.MIN_TRIALS, 6))
    samples[:, 2] = 4.0
    samples[:, 4] = 0.0
    samples[7, 4] = 1.0
    est = gaussian_channel_mi(samples, tau, rng)
    assert all(math.isfinite(v) for v in (est.value, est.low, est.high))
    assert 0.0 <= est.low <= est.value <= est.high
    assert gaussian_channel_mi(samples, tau / 2, rng).value >= est.value


def test_zero_samples_give_zero():
    """Identical trials: ``Cov(W) = 0`` is estimated as 0 with the interval [0, 0]."""
    est = gaussian_channel_mi(np.ones((gc.MIN_TRIALS, 3)), 0.5, np.random.default_rng(0))
    assert (est.value, est.low, est.high) == (0.0, 0.0, 0.0)


# --- coverage ----------------------------------------------------------------------------------


def test_mean_estimation_coverage_at_the_figure_ratios():
    """Gaussian mean estimation, ``I(W + N; S) = (d/2) log(1 + 1/(n tau^2))``: pooled over the
    ``(p, T)`` of the figures (but the largest, ``p = 256``) and three signal-to-noise ratios, the
    interval covers at least at its nominal rate less ``MC_SIGMAS`` standard errors, and so does its
    upper end alone (level ``(1 + confidence)/2``). 1440 repetitions; per-cell tables: the slow test."""
    reps, hits, upper = 60, 0.0, 0.0
    cases = [(p, t, snr) for p, t in FIGURE_RATIOS if p < 256 for snr in (0.3, 3.0, 30.0)]
    for i, (p, trials, snr) in enumerate(cases):
        two, up = coverage(p, trials, snr, reps, seed=i)
        hits, upper = hits + two * reps, upper + up * reps
    total = reps * len(cases)
    assert hits / total >= coverage_floor(total), hits / total
    assert upper / total >= coverage_floor(total, (1 + CONFIDENCE) / 2), upper / total


@pytest.mark.slow
@pytest.mark.parametrize(("p", "trials"), FIGURE_RATIOS)
@pytest.mark.parametrize("snr", [0.3, 3.0, 30.0])
def test_mean_estimation_coverage_per_figure_ratio(p, trials, snr):
    """As above, for each ``(p, T)`` of the figures and each signal-to-noise ratio
    ``Cov(W)/tau^2 = snr I``, over 300 repetitions (minutes in all)."""
    reps = 300
    two, up = coverage(p, trials, snr, reps, seed=100)
    assert two >= coverage_floor(reps), two
    assert up >= coverage_floor(reps, (1 + CONFIDENCE) / 2), up
