"""Huge finite inputs: a clear ``ValueError``, never NaN, inf or a ``RuntimeWarning``.

NaN and inf entries were always refused; entries around 1e200 were not, and overflowed inside
(squares, Gram matrices, eigendecompositions). Now every array and real argument is limited to
``|x| <= MAX_ABS`` (``theory.validation``), whose square stays finite in float64, and the public
functions whose results are of third order in their inputs (``Tr[Δ Σ Δᵀ]``) check them.

- ``AFFECTED``: every (function, argument) that returned NaN/inf, raised a NumPy error that
  names no argument, or warned with the argument scaled to 1e200, 1e160 or 1e100 (one at a time,
  from the tiny baselines below) before the limit existed. Each now raises ``ValueError`` naming
  the argument, the largest magnitude and the limit.
- The limit does not change results just under it: the losses of eq. (1)-(3) and of ``lora`` are
  homogeneous in ``Δ`` and ``Σ``, and one input at the limit gives the scaled unit-size result.
- With several inputs at the limit a loss can exceed float64 (it is cubic); it is then a
  ``ValueError`` naming the inputs, not inf.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bounds
import synthetic
import theory
from tests.fuzz.fuzz_specs import D_IN, D_OUT, R
from tests.fuzz.fuzz_theory import A, B, DELTA, Q3, SIGMA, SIGMA_LOW, U3
from tests.tolerances import tol
from theory.validation import MAX_ABS, MAX_COUNT, as_array, as_covariance, as_int, as_matrix, as_real

# --- tiny valid baselines ----------------------------------------------------------------------

_rng = np.random.default_rng(8)  # the theory baselines are the fuzz table's
SAMPLES = _rng.standard_normal((6, 3))
PARAMS = _rng.standard_normal((2, 3))

TASK = synthetic.LinearTask(d_in=D_IN, d_out=D_OUT, spectrum="powerlaw:1", delta_rank=R, clip=4.0, n_test=64)
IDS = np.arange(2)
X, Y = synthetic.sample_training_sets(TASK, 6, IDS, seed=0)
B_STACK = synthetic.frozen_factors(TASK, "a_only", R, IDS, seed=0)
M_STACK = np.zeros((2, D_OUT, D_IN))
VALUES = np.array([1.0, 2.0, 4.0])

HUGE = 1e200


def _rng0() -> np.random.Generator:
    return np.random.default_rng(0)


# (name, function, baseline keyword arguments, the argument scaled to HUGE)
AFFECTED = [
    ("population_loss", theory.population_loss, lambda: dict(delta=DELTA, m=M_STACK[0], sigma=SIGMA, noise_var=0.1),
     ("delta", "m")),
    ("optimal_b", theory.optimal_b, lambda: dict(delta=DELTA, a=A, sigma=SIGMA), ("a",)),
    ("optimal_a", theory.optimal_a, lambda: dict(delta=DELTA, b=B, sigma=SIGMA), ("b",)),
    ("loss_b_only", theory.loss_b_only, lambda: dict(delta=DELTA, a=A, sigma=SIGMA, noise_var=0.1), ("delta",)),
    ("loss_a_only", theory.loss_a_only, lambda: dict(delta=DELTA, b=B, sigma=SIGMA, noise_var=0.1), ("delta",)),
    ("loss_lora", theory.loss_lora, lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1), ("delta",)),
    ("expected_loss_a_only", theory.expected_loss_a_only,
     lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1), ("delta",)),
    ("expected_loss_b_only", theory.expected_loss_b_only,
     lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1, draws=4, rng=_rng0()), ("delta", "sigma")),
    ("loss_b_only_draws", theory.loss_b_only_draws, lambda: dict(delta=DELTA, sigma=SIGMA, q=Q3, noise_var=0.1),
     ("delta",)),
    ("loss_a_only_draws", theory.loss_a_only_draws, lambda: dict(delta=DELTA, sigma=SIGMA, u=U3, noise_var=0.1),
     ("delta", "u")),
    ("asymmetry_gap", theory.asymmetry_gap, lambda: dict(delta=DELTA, sigma=SIGMA_LOW, rank=R, noise_var=0.1),
     ("delta",)),
    ("gaussian_channel_mi", bounds.gaussian_channel_mi,
     lambda: dict(samples=SAMPLES, noise_std=0.5, rng=_rng0(), n_boot=5, confidence=0.9), ("samples",)),
    ("fit_full", synthetic.fit_full, lambda: dict(x=X, y=Y, ridge=0.1), ("x",)),
    ("fit_a_only", synthetic.fit_a_only, lambda: dict(x=X, y=Y, b=B_STACK, ridge=0.0), ("b",)),
    ("fit_lora", synthetic.fit_lora, lambda: dict(x=X, y=Y, rank=R, ridge=0.0), ("y",)),
    ("population_losses", synthetic.population_losses, lambda: dict(task=TASK, m=M_STACK), ("m",)),
    ("clipped_test_losses", synthetic.clipped_test_losses,
     lambda: dict(task=TASK, m=M_STACK, trial_ids=IDS, seed=0, clip=2.0), ("m",)),
    ("mean_interval", synthetic.mean_interval, lambda: dict(values=VALUES), ("values",)),
    ("summarize", synthetic.summarize, lambda: dict(train_loss=VALUES, test_loss=VALUES + 1.0),
     ("train_loss", "test_loss")),
    ("quantize", synthetic.quantize, lambda: dict(params=PARAMS, q_bits=4), ("params",)),
]
ARRAY_CASES = [(name, fn, valid, arg) for name, fn, valid, args in AFFECTED for arg in args]

# Reals that scale arrays or are squared: limited to MAX_ABS too.
REAL_CASES = [
    ("population_loss", theory.population_loss, lambda: dict(delta=DELTA, m=M_STACK[0], sigma=SIGMA, noise_var=0.1),
     "noise_var"),
    ("xu_raginsky", bounds.xu_raginsky, lambda: dict(mi_nats=2.0, sigma=0.5, n=10), "sigma"),
    ("gaussian_channel_mi", bounds.gaussian_channel_mi,
     lambda: dict(samples=SAMPLES, noise_std=0.5, rng=_rng0(), n_boot=5, confidence=0.9), "noise_std"),
    ("fit_full", synthetic.fit_full, lambda: dict(x=X, y=Y, ridge=0.1), "ridge"),
    ("LinearTask", synthetic.LinearTask, lambda: dict(d_in=D_IN, d_out=D_OUT, noise_var=0.1), "noise_var"),
    ("GDConfig", synthetic.GDConfig, lambda: dict(steps=3, lr=0.01), "lr"),
]


def _at(value: np.ndarray, peak: float) -> np.ndarray:
    """``value`` rescaled so that its largest magnitude is ``peak`` (an all-zero array: filled)."""
    top = float(np.max(np.abs(value)))
    if top == 0:
        return np.full_like(value, peak)
    out = np.clip(value * (peak / top), -peak, peak)  # rounding must not push an entry past peak
    i = int(np.argmax(np.abs(value)))
    out.flat[i] = math.copysign(peak, value.flat[i])
    return out


@pytest.mark.parametrize(("name", "fn", "valid", "arg"), ARRAY_CASES, ids=[f"{c[0]}-{c[3]}" for c in ARRAY_CASES])
def test_huge_array_entries_raise_value_error_naming_the_argument(name, fn, valid, arg):
    """An argument with entries at 1e200 (finite) is refused at the boundary: the message names
    the argument, its largest magnitude and the limit, instead of NaN, inf or a RuntimeWarning."""
    assert fn(**valid()) is not None  # the baseline is valid: the refusal is the huge value's doing
    kwargs = valid()
    kwargs[arg] = _at(np.asarray(kwargs[arg], dtype=np.float64), HUGE)
    with pytest.raises(ValueError, match=rf"^{arg} has entries up to 1e\+200 in magnitude; the limit is 1e\+150"):
        fn(**kwargs)


@pytest.mark.parametrize(("name", "fn", "valid", "arg"), REAL_CASES, ids=[f"{c[0]}-{c[3]}" for c in REAL_CASES])
def test_huge_reals_raise_value_error_naming_the_argument(name, fn, valid, arg):
    """A real argument at 1e200 that scales arrays (noise, sigma, ridge, lr) is refused by name."""
    fn(**valid())
    kwargs = valid()
    kwargs[arg] = HUGE
    with pytest.raises(ValueError, match=rf"^{arg} is 1e\+200; the limit is 1e\+150 in magnitude"):
        fn(**kwargs)


def test_quantize_limits_params_to_the_float32_range():
    """``quantize`` stores its step in float32: params at 1e100 (within MAX_ABS) are refused by name
    rather than quantized to NaN; the largest float32 itself is accepted and kept finite."""
    with pytest.raises(ValueError, match=r"^params has entries up to 1e\+100 in magnitude; the limit is 3.4e\+38"):
        synthetic.quantize(_at(PARAMS, 1e100), 4)
    top = float(np.finfo(np.float32).max)
    quantized = synthetic.quantize(_at(PARAMS, top), 2)
    assert np.all(np.isfinite(quantized.values)) and np.max(np.abs(quantized.values)) == pytest.approx(top, rel=1e-6)


# --- the limit itself --------------------------------------------------------------------------


def test_the_limit_keeps_a_product_of_two_inputs_finite_with_room_for_sums():
    """MAX_ABS² times 1e8 (sums of up to 1e8 such products) stays below the largest float64."""
    assert MAX_ABS**2 * 1e8 < np.finfo(np.float64).max


def test_validators_accept_the_limit_and_refuse_the_next_float():
    """``|x| = MAX_ABS`` is valid; the next float64 above it is refused, by every validator; counts
    are integers up to ``MAX_COUNT`` (2**53, the last integer float64 holds exactly), and a larger one
    is refused without building a number larger than itself."""
    above = float(np.nextafter(MAX_ABS, np.inf))
    for value in (MAX_ABS, -MAX_ABS):
        as_array([value, 1.0], "v")
        as_matrix([[value]], "v")
        as_real(value, "v")
    as_covariance([[MAX_ABS]], "v")
    assert as_int(MAX_COUNT, "n") == MAX_COUNT
    for huge in (MAX_COUNT + 1, 10**30, 10**5000):  # repr of 10**5000 is refused by Python: not used
        with pytest.raises(ValueError, match="^n must be <= 9007199254740992"):
            as_int(huge, "n")
    for check in (lambda v: as_array([v], "v"), lambda v: as_matrix([[1.0, -v]], "v"),
                  lambda v: as_covariance([[v]], "v"), lambda v: as_real(v, "v"), lambda v: as_real(-v, "v")):
        with pytest.raises(ValueError, match="^v "):
            check(above)


# --- just under the limit --------------------------------------------------------------------

@st.composite
def _small_problems(draw):
    """A small (d_out <= 3, d_in <= 3) shift Δ, covariance Σ and frozen A, each with largest entry
    magnitude 1, a rank, and a factor in [0.5, 1] for the scaled input."""
    d_out, d_in = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rank = draw(st.integers(1, min(d_in, d_out)))
    delta = _at(rng.standard_normal((d_out, d_in)), 1.0)
    g = rng.standard_normal((d_in, d_in))
    sigma = _at(g @ g.T + 0.1 * np.eye(d_in), 1.0)
    a = _at(rng.standard_normal((rank, d_in)), 1.0)
    return delta, sigma, a, rank, draw(st.floats(0.5, 1.0))


def _losses(delta: np.ndarray, sigma: np.ndarray, a: np.ndarray, rank: int) -> np.ndarray:
    """Noise-free population loss of M = 0, and the b_only and lora losses."""
    return np.array([
        theory.population_loss(delta, np.zeros_like(delta), sigma, 0.0),
        theory.loss_b_only(delta, a, sigma, 0.0),
        theory.loss_lora(delta, sigma, rank, 0.0),
    ])


@given(problem=_small_problems(), scaled=st.sampled_from(["delta", "sigma", "a", "noise_var"]))
def test_one_input_just_under_the_limit_gives_the_scaled_finite_losses(problem, scaled):
    """Eq. (1), Lemma 4.1's eq. (2) and the lora loss are homogeneous: degree 2 in Δ, 1 in Σ, 0 in
    A, and ``d_out s²`` adds the noise. With one input scaled by c to just under MAX_ABS and the
    others of order 1, each loss is finite and equals the scaled unit-size loss. The tolerance is
    relative to the energy ``Tr[ΔΣΔᵀ]``: eq. (2) is computed as the energy minus a reduction."""
    delta, sigma, a, rank, factor = problem
    c = factor * MAX_ABS
    unit = _losses(delta, sigma, a, rank)
    energy = unit[0]
    if scaled == "noise_var":
        got = np.array([theory.population_loss(delta, np.zeros_like(delta), sigma, c),
                        theory.loss_b_only(delta, a, sigma, c), theory.loss_lora(delta, sigma, rank, c)])
        want, scale = unit + delta.shape[0] * c, delta.shape[0] * c
    else:
        degree = {"delta": 2, "sigma": 1, "a": 0}[scaled]
        inputs = {"delta": delta, "sigma": sigma, "a": a}
        inputs[scaled] = inputs[scaled] * c
        got = _losses(inputs["delta"], inputs["sigma"], inputs["a"], rank)
        want, scale = unit * c**degree, energy * c**degree
    assert np.all(np.isfinite(got)), (scaled, got)
    np.testing.assert_allclose(got, want, rtol=0.0, atol=tol()["rtol"] * scale)


@given(problem=_small_problems(), shrink=st.floats(0.0, 60.0))
def test_every_input_near_the_limit_is_finite_or_a_value_error_naming_the_inputs(problem, shrink):
    """With Δ, A, Σ and s² all scaled by c (1e90 <= c <= MAX_ABS) the losses are of order c³,
    beyond float64 for c above about 1e102: the limit alone cannot keep them finite. The functions
    then raise ValueError naming their inputs; they never return inf or NaN (and NumPy's overflow
    warnings, errors in this suite, stay silent)."""
    delta, sigma, a, rank, factor = problem
    c = factor * MAX_ABS * 10.0**-shrink
    calls = {
        "population_loss": lambda: theory.population_loss(delta * c, np.zeros_like(delta), sigma * c, c),
        "loss_b_only": lambda: theory.loss_b_only(delta * c, a * c, sigma * c, c),
        "loss_lora": lambda: theory.loss_lora(delta * c, sigma * c, rank, c),
    }
    for name, call in calls.items():
        try:
            value = call()
        except ValueError as exc:
            assert str(exc).startswith(f"{name} overflows float64 for these delta"), str(exc)
            assert "sigma" in str(exc)
        else:
            assert math.isfinite(value), (name, value)


# --- results that were computed through an overflow --------------------------------------------


def test_expected_loss_b_only_standard_error_survives_losses_near_the_float64_limit():
    """Losses of order 1e300 (Δ at MAX_ABS, Σ of order 1) have a finite mean and standard error;
    squaring the losses for the variance would overflow, so it is computed on rescaled losses."""
    delta = _at(DELTA, MAX_ABS)
    mean, stderr = theory.expected_loss_b_only(delta, SIGMA, R, 0.0, draws=4, rng=_rng0())
    losses = theory.loss_b_only_draws(DELTA, SIGMA, theory.haar_stiefel(D_IN, R, _rng0(), draws=4), 0.0)
    scale = (MAX_ABS / np.max(np.abs(DELTA))) ** 2
    np.testing.assert_allclose([mean, stderr], [losses.mean() * scale, losses.std(ddof=1) / 2 * scale], **tol())


@pytest.mark.parametrize("noise_std", [1e-200, 1e-100, 0.5])
def test_gaussian_channel_mi_is_finite_for_tiny_noise_and_huge_samples(noise_std):
    """``1/2 log det(I + C/τ²)`` is finite for every valid τ and samples: τ² underflowing to 0 or
    ``C/τ²`` overflowing no longer give inf; the estimate is invariant to scaling samples and τ by
    the same factor (it depends on ``C/τ²`` only)."""
    small = bounds.gaussian_channel_mi(SAMPLES * noise_std, noise_std, _rng0(), n_boot=5, confidence=0.9)
    unit = bounds.gaussian_channel_mi(SAMPLES, 1.0, _rng0(), n_boot=5, confidence=0.9)
    huge = bounds.gaussian_channel_mi(_at(SAMPLES, MAX_ABS), MAX_ABS / np.max(np.abs(SAMPLES)), _rng0(),
                                      n_boot=5, confidence=0.9)
    for estimate in (small, huge):
        np.testing.assert_allclose([estimate.value, estimate.low, estimate.high],
                                   [unit.value, unit.low, unit.high], **tol())


def test_gd_fit_divergence_is_a_value_error_naming_the_config():
    """Adam at lr = 1e149 (a valid real) overflows the parameters: a ValueError naming config.lr,
    not NaN parameters."""
    config = synthetic.GDConfig(steps=3, lr=1e149)
    a_stack = synthetic.frozen_factors(TASK, "b_only", R, IDS, seed=0)
    start = {"a": a_stack, "b": np.zeros((2, D_OUT, R))}
    with pytest.raises(ValueError, match=r"^gd_fit diverged: .* config\.lr=1e\+149"):
        synthetic.gd_fit(X, Y, "lora", start, None, config=config)
