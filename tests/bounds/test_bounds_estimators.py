"""Estimators against ground truth: discrete MI, the Gaussian channel, and the supersample CMI bounds.

Interval checks are calibration checks: over ``REPS`` independent repetitions the stated
interval must cover the truth at least ``confidence - MC_SIGMAS * (binomial standard error)``
of the time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounds import (
    binary_kl_bound,
    discrete_mi,
    ecmi_bound,
    fast_rate_bound,
    gaussian_channel_mi,
    interpolation_bound,
    ld_cmi_bound,
    redraw_selectors,
    supersample_gap,
)
from bounds.cmi import selector_blind_floor
from bounds.discrete_mi import batched_counts, mi_from_counts
from bounds.gaussian_channel import EstimateMayBeLowWarning
from synthetic.supersample import Supersample, SupersampleConfig, run_supersample
from tests.tolerances import MC_SIGMAS, tol

CONFIDENCE = 0.95
CMI_BOUNDS = (ld_cmi_bound, ecmi_bound, binary_kl_bound, fast_rate_bound)


def coverage_floor(reps: int, level: float = CONFIDENCE) -> float:
    """Least acceptable coverage frequency of a level-``level`` interval over ``reps`` repetitions."""
    return level - MC_SIGMAS * math.sqrt(level * (1 - level) / reps)


def binary_entropy_nats(p: float) -> float:
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


# --- discrete MI -----------------------------------------------------------------------------


def test_discrete_mi_correlated_bits_covers_truth():
    """For ``X ~ Bern(1/2)``, ``Y = X xor Bern(eps)``: ``I(X; Y) = ln 2 - h(eps)`` nats; the interval
    covers it at (nearly) its nominal rate."""
    rng = np.random.default_rng(0)
    reps, size = 100, 2000
    for eps in (0.05, 0.3):
        truth = math.log(2) - binary_entropy_nats(eps)
        hits = 0
        for _ in range(reps):
            x = rng.integers(0, 2, size)
            y = x ^ (rng.random(size) < eps)
            est = discrete_mi(x, y, rng, confidence=CONFIDENCE)
            assert est.draws == size
            hits += est.covers(truth)
        assert hits / reps >= coverage_floor(reps), (eps, hits)


def test_discrete_mi_independent_bits_covers_zero():
    """Independent ``X, Y``: ``I = 0``; the (clipped) interval reaches 0 at its nominal rate."""
    rng = np.random.default_rng(1)
    reps, size = 100, 500
    hits = sum(discrete_mi(rng.integers(0, 2, size), rng.integers(0, 3, size), rng).covers(0.0) for _ in range(reps))
    assert hits / reps >= coverage_floor(reps)


@given(st.integers(0, 2**32 - 1), st.integers(2, 6), st.integers(2, 4))
def test_plugin_mi_data_processing(seed, m_x, m_y):
    """Data processing holds for the plug-in (the MI of the empirical law): ``I^(f(X); Y) <= I^(X; Y)``,
    here with ``f`` merging two symbols of X."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, m_x, 200)
    y = (x + rng.integers(0, m_y, 200)) % m_y
    merged = np.where(x == 1, 0, x)
    fine = mi_from_counts(batched_counts(x[None], y[None], m_x, m_y), "none")[0]
    coarse = mi_from_counts(batched_counts(merged[None], y[None], m_x, m_y), "none")[0]
    assert coarse <= fine + 1e-12


# --- Gaussian channel --------------------------------------------------------------------------


def test_gaussian_channel_hand_value():
    """Rows (1, 0) and (-1, 0): sample covariance diag(2, 0), so the plug-in (two trials, too few for the
    bias correction: a warning) is ``1/2 log(1 + 2/tau^2) = 1/2 ln 3`` at tau = 1."""
    with pytest.warns(EstimateMayBeLowWarning):
        est = gaussian_channel_mi(np.array([[1.0, 0.0], [-1.0, 0.0]]), 1.0, np.random.default_rng(0))
    np.testing.assert_allclose(est.value, 0.5 * math.log(3.0), **tol())
    assert est.draws == 2


def test_gaussian_channel_gram_trick_matches_direct_logdet():
    """With fewer trials than parameters the Gram-matrix route equals the plug-in
    ``1/2 log det(I_p + C/tau^2)`` computed directly on the p x p covariance (and warns)."""
    rng = np.random.default_rng(3)
    samples = rng.standard_normal((15, 300)) * rng.random(300)
    tau = 0.7
    cov = np.cov(samples, rowvar=False)
    direct = 0.5 * np.linalg.slogdet(np.eye(300) + cov / tau**2)[1]
    with pytest.warns(EstimateMayBeLowWarning, match="15 trials for p = 300"):
        est = gaussian_channel_mi(samples, tau, rng)
    np.testing.assert_allclose(est.value, direct, **tol())


def test_gaussian_channel_mean_estimation_ground_truth():
    """Gaussian mean estimation: ``W`` = mean of n draws of ``N(mu, I_d)``, so ``Cov(W) = I/n`` and
    ``I(W + N; S) = (d/2) log(1 + 1/(n tau^2))`` exactly; the stated interval covers it at (nearly) its
    nominal rate over independent repetitions of ``trials`` trainings (``tests/test_gaussian_channel.py``
    checks it at the ratios ``p/trials`` of the figures)."""
    rng = np.random.default_rng(4)
    d, n, tau, trials, reps = 4, 10, 0.5, 120, 40
    truth = d / 2 * math.log1p(1 / (n * tau**2))
    hits = 0
    for _ in range(reps):
        data = 1.0 + rng.standard_normal((trials, n, d))  # trials independent datasets S
        est = gaussian_channel_mi(data.mean(axis=1), tau, rng, confidence=CONFIDENCE)
        assert est.draws == trials
        hits += est.covers(truth)
    assert hits / reps >= coverage_floor(reps)


# --- supersample learners (self-contained; the experiment runner is synthetic.run_supersample) ---

FLIP = 0.1  # label noise of the threshold task
DOMAIN = 30  # size of the memorizer's finite input domain


def sample_threshold_task(rng, size):
    """x ~ U[0, 1], y = [x > 1/2] xor Bern(FLIP); rows (x, y)."""
    x = rng.random(size)
    return np.stack([x, ((x > 0.5) ^ (rng.random(size) < FLIP)).astype(float)], axis=1)


def train_threshold(z, rng):
    """ERM over the thresholds {0} U {training x}: predict 1 iff x > t."""
    candidates = np.r_[0.0, np.sort(z[:, 0])]
    errors = ((z[None, :, 0] > candidates[:, None]) != z[None, :, 1]).mean(axis=1)
    return candidates[int(np.argmin(errors))]


def zero_one_loss(t, z):
    return ((z[:, 0] > t) != z[:, 1]).astype(float)


def train_ignoring_data(z, rng):
    """A threshold drawn independently of the data: I(anything; U) = 0."""
    return rng.random()


def sample_memorizer_task(rng, size):
    """x uniform on {0..DOMAIN-1}, deterministic label y = [x mod 3 = 0]."""
    x = rng.integers(0, DOMAIN, size)
    return np.stack([x, (x % 3 == 0)], axis=1).astype(float)


def train_memorizer(z, rng):
    return {int(x): y for x, y in z}


def memorizer_loss(table, z):
    """0-1 loss of 'look up x, else predict 0'; zero on every training point."""
    return np.array([float(table.get(int(x), 0.0) != y) for x, y in z])


def memorizer_risk(n):
    """Exact population risk: an unseen x (probability (1 - 1/DOMAIN)^n) with label 1 (probability 1/3)."""
    return (1 / 3) * (1 - 1 / DOMAIN) ** n


@pytest.fixture(scope="module")
def threshold_run():
    return run_supersample(
        train_threshold, zero_one_loss, sample_threshold_task, SupersampleConfig(n=20, k_z=100, k_u=4),
        np.random.default_rng(10),
    )


@pytest.fixture(scope="module")
def memorizer_run():
    return run_supersample(
        train_memorizer, memorizer_loss, sample_memorizer_task, SupersampleConfig(n=20, k_z=100, k_u=4),
        np.random.default_rng(11),
    )


def test_supersample_bookkeeping():
    """The learner sees exactly the selected points: a learner that memorizes its training set has
    training loss 0 and test loss 1 on every pair when the loss is 'not memorized'."""
    config = SupersampleConfig(n=7, k_z=3, k_u=2)
    run = run_supersample(
        lambda z, rng: set(z[:, 0].tolist()),
        lambda seen, z: np.array([float(x not in seen) for x in z[:, 0]]),
        lambda rng, size: rng.random((size, 1)),
        config,
        np.random.default_rng(5),
    )
    assert run.losses.shape == (3, 2, 7, 2) and run.draws == config.draws
    assert np.all(run.train_losses == 0.0) and np.all(run.test_losses == 1.0)


@pytest.mark.parametrize("bound", CMI_BOUNDS, ids=lambda f: f.__name__)
def test_cmi_bound_not_below_measured_gap(bound, threshold_run):
    """Each CMI bound holds: ``gen <= bound`` for the same 0-1 loss on the same supersample draws. The
    estimates must not contradict it: the bound's interval reaches the gap's interval."""
    rng = np.random.default_rng(12)
    gap = supersample_gap(threshold_run.losses, threshold_run.selectors, rng)
    result = bound(threshold_run.losses, threshold_run.selectors, rng)
    assert result.draws == threshold_run.draws and not result.vacuous
    assert 0.0 <= result.low <= result.high
    assert result.high >= gap.low, (result, gap)


def test_ld_never_looser_than_ecmi(threshold_run):
    """``I(Delta L_i; U_i) <= I(L~_i; U_i)`` (data processing), so the loss-difference bound is never
    looser than the e-CMI bound; exact for plug-in estimates on the same draws."""
    rng = np.random.default_rng(13)
    ld = ld_cmi_bound(threshold_run.losses, threshold_run.selectors, rng, correction="none").value
    ecmi = ecmi_bound(threshold_run.losses, threshold_run.selectors, rng, correction="none").value
    assert ld <= ecmi + 1e-12


def test_interpolation_bound_is_exact_for_zero_one_loss(memorizer_run):
    """Interpolating learner, 0-1 loss: ``E[L_mu] = (1/n) sum_i I(Delta L_i; U_i) / ln 2`` exactly
    (Wang & Mao 2023). The estimate's interval covers the exact risk ``(1/3)(29/30)^20``, and the
    fast-rate bound at zero training loss coincides with it."""
    rng = np.random.default_rng(14)
    truth = memorizer_risk(memorizer_run.n)
    arrays = memorizer_run.losses, memorizer_run.selectors
    result = interpolation_bound(*arrays, rng)
    assert not result.vacuous and result.covers(truth), (result, truth)
    assert supersample_gap(*arrays, rng).covers(truth)
    np.testing.assert_allclose(fast_rate_bound(*arrays, rng).value, result.value, **tol())


def test_interpolation_bound_vacuous_when_training_loss_positive(threshold_run):
    """The interpolation bound does not apply with positive training loss: trivial value, flagged."""
    result = interpolation_bound(threshold_run.losses, threshold_run.selectors, np.random.default_rng(15))
    trivial = 1.0 - threshold_run.train_losses.mean()
    assert result.vacuous and result.value == pytest.approx(trivial)


def test_data_ignoring_learner_has_zero_cmi():
    """An algorithm that ignores its data has ``I(Delta L_i; U_i) = 0``: the bound's interval reaches 0."""
    run = run_supersample(
        train_ignoring_data, zero_one_loss, sample_threshold_task, SupersampleConfig(n=20, k_z=100, k_u=4),
        np.random.default_rng(16),
    )
    result = ld_cmi_bound(run.losses, run.selectors, np.random.default_rng(17))
    assert result.low == 0.0, result


def test_vacuous_bound_returns_trivial_value():
    """A learner that memorizes and answers wrongly off its training set leaks every ``U_i`` through the
    loss (``I = ln 2``): ``sqrt(2 ln 2) > 1``, so the bound is vacuous and returns the trivial ``1 - R^``."""
    run = run_supersample(
        lambda z, rng: set(z[:, 0].tolist()),
        lambda seen, z: np.array([float(x not in seen) for x in z[:, 0]]),
        lambda rng, size: rng.random((size, 1)),
        SupersampleConfig(n=10, k_z=50, k_u=2),
        np.random.default_rng(18),
    )
    result = ld_cmi_bound(run.losses, run.selectors, np.random.default_rng(19))
    assert result.vacuous and result.value == 1.0 and not math.isnan(result.low)


@pytest.mark.slow
@pytest.mark.parametrize("bound", CMI_BOUNDS, ids=lambda f: f.__name__)
def test_cmi_bound_above_gap_precisely(bound):
    """With 12,000 training runs the estimates are precise enough to see each bound above the gap."""
    run = run_supersample(
        train_threshold, zero_one_loss, sample_threshold_task, SupersampleConfig(n=20, k_z=3000, k_u=4),
        np.random.default_rng(20),
    )
    rng = np.random.default_rng(21)
    assert bound(run.losses, run.selectors, rng, n_boot=100).value >= supersample_gap(run.losses, run.selectors, rng).high


#: Arrays of a supersample experiment that the record and every bound refuse, and the message.
BAD_ARRAYS = [
    (np.full((2, 1, 3, 2), 1.5), np.zeros((2, 1, 3)), r"losses must lie in \[0, 1\]"),
    (np.full((2, 1, 3, 2), np.nan), np.zeros((2, 1, 3)), "NaN"),
    (np.zeros((1, 1, 3, 2)), np.zeros((1, 1, 3)), "k_z >= 2"),
    (np.zeros((2, 2)), np.zeros(2), r"losses must have shape \(k_z, k_u, n, 2\)"),
    (np.zeros((2, 1, 3, 2)), np.full((2, 1, 3), 2), "selectors must contain only 0 and 1"),
    (np.zeros((2, 1, 3, 2)), np.zeros((2, 1, 4)), "selectors must have shape"),
    (np.linspace(0, 1, 2 * 5 * 4 * 2).reshape(2, 5, 4, 2), np.zeros((2, 5, 4)), "distinct values"),
]
#: Everything that validates supersample arrays: the record, the gap, the floor, and every bound.
ARRAY_TAKERS = {
    "Supersample": lambda losses, selectors: Supersample(losses, selectors),
    "supersample_gap": lambda losses, selectors: supersample_gap(losses, selectors, np.random.default_rng(0)),
    "redraw_selectors": lambda losses, selectors: redraw_selectors(losses, selectors, np.random.default_rng(0)),
    "selector_blind_floor": lambda losses, selectors: selector_blind_floor(
        losses, selectors, np.random.default_rng(0), bound=ld_cmi_bound),
    **{f.__name__: (lambda f: lambda losses, selectors: f(losses, selectors, np.random.default_rng(0)))(f)
       for f in (*CMI_BOUNDS, interpolation_bound)},
}


@pytest.mark.parametrize("taker", ARRAY_TAKERS)
@pytest.mark.parametrize(("losses", "selectors", "message"), BAD_ARRAYS)
def test_bad_supersample_arrays_are_refused_alike(taker, losses, selectors, message):
    """The record (theory.supersample.Supersample, synthetic.Supersample) and every bounds function that takes the arrays validate
    them alike: the same ValueError for the same bad arrays."""
    with pytest.raises(ValueError, match=message):
        ARRAY_TAKERS[taker](losses, selectors)


def test_the_finest_discretized_loss_fits_the_bounds_alphabet():
    """A loss discretized at the most levels the learners allow takes at most MAX_LOSS_LEVELS values,
    so the bounds accept it; one level more is refused by the learners' own check."""
    from synthetic.learner_checks import MAX_LEVELS
    from synthetic.supersample import discretize

    losses = discretize(np.linspace(0.0, 1.0, 2 * 3 * 50 * 2).reshape(2, 3, 50, 2), 1.0, MAX_LEVELS)
    assert np.unique(losses).size == MAX_LEVELS + 1
    ld_cmi_bound(losses, np.zeros((2, 3, 50), dtype=int), np.random.default_rng(0))
    with pytest.raises(ValueError, match="levels must be <= 31"):
        discretize(losses, 1.0, MAX_LEVELS + 1)


def test_supersample_gap_is_the_mean_test_minus_train_loss(threshold_run):
    """supersample_gap: the mean of test minus training loss over all runs and points, with a basic
    bootstrap interval over supersamples that contains it; draws counts the runs."""
    run = threshold_run
    gap = supersample_gap(run.losses, run.selectors, np.random.default_rng(3), n_boot=50)
    assert gap.value == pytest.approx(float((run.test_losses - run.train_losses).mean()))
    assert gap.low <= gap.value <= gap.high and gap.draws == run.draws


def test_redraw_selectors_keeps_the_losses_and_draws_fair_bits(threshold_run):
    """redraw_selectors: the same losses, fresh bits of the selectors' shape, from the given generator."""
    losses, bits = redraw_selectors(threshold_run.losses, threshold_run.selectors, np.random.default_rng(4))
    np.testing.assert_array_equal(losses, threshold_run.losses)
    assert bits.shape == threshold_run.selectors.shape and bits.dtype == np.int64
    np.testing.assert_array_equal(bits, np.random.default_rng(4).integers(0, 2, size=bits.shape))
    assert abs(bits.mean() - 0.5) < 0.05


BAD_INPUTS = [
    (lambda: SupersampleConfig(n=0, k_z=5, k_u=1), "n must be >= 1"),
    (lambda: SupersampleConfig(n=5, k_z=1, k_u=1), "k_z must be >= 2"),
    (
        lambda: run_supersample(
            train_threshold, zero_one_loss, lambda rng, size: rng.random((size - 1, 2)),
            SupersampleConfig(n=3, k_z=2, k_u=1), np.random.default_rng(0),
        ),
        "must return 6 points",
    ),
    (
        lambda: run_supersample(
            train_threshold, lambda t, z: np.zeros(3), sample_threshold_task,
            SupersampleConfig(n=3, k_z=2, k_u=1), np.random.default_rng(0),
        ),
        r"must return shape \(6,\)",
    ),
    (lambda: ld_cmi_bound(np.zeros((2, 1, 3, 2)), np.zeros((2, 1, 3)), 0), "rng must be a numpy.random.Generator"),
    (lambda: discrete_mi(np.zeros(3), np.zeros(4), np.random.default_rng(0)), "same number of samples"),
    (lambda: discrete_mi(np.zeros(3), np.zeros(3), 0), "rng must be a numpy.random.Generator"),
    (lambda: gaussian_channel_mi(np.zeros((1, 3)), 1.0, np.random.default_rng(0)), "at least 2 trials"),
    (lambda: gaussian_channel_mi(np.zeros((4, 3)), 0.0, np.random.default_rng(0)), "noise_std must be > 0"),
    (lambda: gaussian_channel_mi(np.full((4, 3), np.nan), 1.0, np.random.default_rng(0)), "samples contains"),
]


@pytest.mark.parametrize(("make", "message"), BAD_INPUTS)
def test_bad_input_names_the_argument(make, message):
    """Bad input raises ``ValueError`` naming the argument."""
    with pytest.raises(ValueError, match=message):
        make()
