"""Binary kl and its inverse, the prefix code for quantized parameters, and the Occam bound."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounds import binary_kl, binary_kl_risk, code_length_bits, fast_rate_risk, kl_inverse, occam_bound
from bounds.coding import elias_gamma_bits, enumerative_bits
from tests.strategies import probabilities, symbol_arrays
from tests.tolerances import MC_SIGMAS, tol

LN2 = math.log(2.0)

REFERENCE = [
    # kl(1/2 || 1/4) = 1/2 ln(0.5/0.25) + 1/2 ln(0.5/0.75) = 0.5*0.6931472 - 0.5*0.4054651 = 0.1438410
    (binary_kl, (0.5, 0.25), 0.14384103622589045),
    # kl(0 || q) = -ln(1 - q): q = 1/2 -> ln 2
    (binary_kl, (0.0, 0.5), LN2),
    # kl(1 || 1/4) = ln 4
    (binary_kl, (1.0, 0.25), math.log(4.0)),
    # kl^-1_+(0, c) = 1 - e^-c: c = ln 2 -> 1/2;  kl^-1_-(1, ln 4) = 1/4 (kl(1||q) = -ln q)
    (lambda p, c: kl_inverse(p, c), (0.0, LN2), 0.5),
    (lambda p, c: kl_inverse(p, c, side="lower"), (1.0, math.log(4.0)), 0.25),
    # Fast rate at zero training loss: I / ln 2 = 0.1 ln 2 / ln 2 = 0.1
    (fast_rate_risk, (0.0, 0.1 * LN2), 0.1),
    # Binary kl at zero training loss: 2 (1 - e^-I) = 2 (1 - 3/4) = 1/2 for I = ln(4/3)
    (binary_kl_risk, (0.0, math.log(4.0 / 3.0)), 0.5),
    # Elias gamma: 1 -> 1 bit, 2, 3 -> 3 bits, 4..7 -> 5 bits, 2^10 -> 21 bits
    (elias_gamma_bits, (1,), 1),
    (elias_gamma_bits, (3,), 3),
    (elias_gamma_bits, (4,), 5),
    (elias_gamma_bits, (1024,), 21),
    # [0, 0, 0, 1]: K = 2 (3 bits), zigzag(0)+1 = 1 (1 bit), gap 1 (1 bit), count 3 (3 bits),
    # index ceil(log2(4!/(3! 1!))) = ceil(log2 4) = 2 bits: 10 bits.
    (code_length_bits, (np.array([0, 0, 0, 1]),), 10),
    # With q = 2 the fixed-width alternative is 2 * 4 = 8 bits, plus the flag: 9 bits.
    (lambda x: code_length_bits(x, q_bits=2), (np.array([0, 0, 0, 1]),), 9),
    # Eight copies of 5: K = 1 (1 bit), zigzag(5)+1 = 11 (7 bits), no gaps, no counts, no index.
    (code_length_bits, (np.full(8, 5),), 8),
    # [-1, 1, 1, 1, 1, 1]: K = 2 (3), zigzag(-1)+1 = 2 (3), gap 2 (3), count 1 (1),
    # index ceil(log2 6) = 3: 13 bits.
    (code_length_bits, (np.array([-1, 1, 1, 1, 1, 1]),), 13),
]


@pytest.mark.parametrize(("fn", "args", "expected"), REFERENCE)
def test_reference_values(fn, args, expected):
    """Each formula reproduces its hand-computed value."""
    np.testing.assert_allclose(fn(*args), expected, **tol())


@given(probabilities, probabilities)
def test_binary_kl_nonnegative(p, q):
    """Gibbs: ``kl(p || q) >= 0``, with equality iff ``p = q``; never NaN."""
    value = binary_kl(p, q)
    assert value >= 0.0 and not math.isnan(value)
    if p == q:
        assert value == 0.0


@given(st.floats(0.0, 1.0), st.floats(1e-9, 20.0), st.sampled_from(["upper", "lower"]))
def test_kl_inverse_round_trip(p_hat, budget, side):
    """``kl_inverse`` returns the boundary of ``{q : kl(p_hat || q) <= c}``: the returned ``q`` spends
    at least the budget, and a point ``SHRINK`` (relative) back towards ``p_hat`` is within it."""
    q = kl_inverse(p_hat, budget, side=side)
    assert (q >= p_hat) if side == "upper" else (q <= p_hat)
    shrink = 1e-9  # relative step back towards p_hat, well above float resolution of kl
    inside = q + (p_hat - q) * shrink
    assert binary_kl(p_hat, inside) <= budget * (1 + shrink) + 1e-15
    if q not in (0.0, 1.0):
        assert binary_kl(p_hat, q) >= budget * (1 - shrink)


@given(st.floats(0.01, 0.99), st.floats(1e-4, 2.0))
def test_kl_inverse_round_trip_value(p_hat, budget):
    """``kl(p_hat || kl_inverse(p_hat, c)) = c`` (when the inverse is < 1), up to the error that
    rounding ``q`` to a float can cause: ``|dkl/dq| = |q - p|/(q (1 - q))`` times ``ULPS`` spacings."""
    ulps = 4  # the bisection returns the bracket end, a few spacings from the exact boundary
    q = kl_inverse(p_hat, budget)
    if q < 1.0:
        slope = abs(q - p_hat) / (q * (1.0 - q))
        slack = tol()["rtol"] * budget + slope * ulps * float(np.spacing(q))
        assert abs(binary_kl(p_hat, q) - budget) <= slack


@given(probabilities, st.floats(0.0, 5.0), st.floats(0.0, 5.0))
def test_kl_risk_bounds_monotone(r_hat, mi, extra):
    """The binary-kl and fast-rate risk bounds are in [r_hat, 1] and non-decreasing in the MI."""
    for fn in (binary_kl_risk, fast_rate_risk):
        value = fn(r_hat, mi)
        assert min(r_hat, 1.0) - 1e-12 <= value <= 1.0
        assert fn(r_hat, mi + extra) >= value - 1e-12


def test_fast_rate_eta_is_feasible():
    """Every (C, eta) the fast-rate bound uses satisfies ``e^eta + e^{-C eta} <= 2``, checked in 50-digit arithmetic."""
    import mpmath

    from bounds.cmi_risk import _C_GRID, _ETA_GRID

    mpmath.mp.dps = 50
    for c, eta in zip(_C_GRID[::20], _ETA_GRID[::20]):
        assert mpmath.e ** mpmath.mpf(eta) + mpmath.e ** (-mpmath.mpf(c) * mpmath.mpf(eta)) <= 2


def test_enumerative_bits_is_exact():
    """The index part uses ``ceil(log2 M)`` bits, ``M = N! / prod c_k!``, compared with exact integers."""
    for counts in itertools.product(range(1, 7), repeat=3):
        m = math.factorial(sum(counts)) // math.prod(math.factorial(c) for c in counts)
        assert enumerative_bits(np.array(counts)) == (m - 1).bit_length()


def test_code_satisfies_kraft():
    """Kraft: ``sum_x 2^-len(x) <= 1`` over all arrays of a shape (here all length-4 arrays over
    {-3..3}, a subset, whose partial sum must then also be <= 1), with and without the q-bit flag."""
    for q_bits in (None, 3):
        total = sum(
            2.0 ** -code_length_bits(np.array(x), q_bits=q_bits) for x in itertools.product(range(-3, 4), repeat=4)
        )
        assert total <= 1.0


@given(symbol_arrays())
def test_code_never_longer_than_fixed_width_plus_flag(symbols):
    """With ``q_bits`` the code is at most ``q N + 1`` bits (the flag picks the shorter branch)."""
    assert code_length_bits(symbols, q_bits=16) <= 16 * symbols.size + 1


def test_code_length_bounds_entropy_in_expectation():
    """Shannon: ``H(W) <= E[len(W)]`` for a prefix code. W has N i.i.d. symbols with known entropy;
    the Monte Carlo mean of the length must not fall below ``N H`` by more than ``MC_SIGMAS`` errors."""
    rng = np.random.default_rng(0)
    probs = np.array([0.7, 0.2, 0.1])
    size, draws = 50, 400
    entropy_bits = size * float(-(probs * np.log2(probs)).sum())
    lengths = np.array(
        [code_length_bits(rng.choice([-1, 0, 1], size=size, p=probs), q_bits=16) for _ in range(draws)]
    )
    se = lengths.std(ddof=1) / math.sqrt(draws)
    assert lengths.mean() + MC_SIGMAS * se >= entropy_bits


def test_code_much_shorter_than_q_n_when_concentrated():
    """For parameters concentrated on 3 of 2^16 levels (entropy 1.16 bits), the code is far below ``q N``:
    under ``N (H + 1) + 100`` bits, a tenth of ``16 N`` here."""
    rng = np.random.default_rng(1)
    size = 4096
    probs = np.array([0.7, 0.2, 0.1])
    symbols = rng.choice([-1200, 0, 3000], size=size, p=probs)
    entropy = float(-(probs * np.log2(probs)).sum())
    length = code_length_bits(symbols, q_bits=16)
    assert length <= size * (entropy + 1) + 100
    assert length < 16 * size / 10


def test_occam_bound_holds_with_probability():
    """Occam-kl: with probability ``>= 1 - delta`` over S, ``L_mu(h) <= kl^-1(L_S(h), (len(h) ln2 + ln 1/delta)/n)``.
    Threshold classifiers on a grid of 2^6 thresholds (6-bit code each), ERM on n = 50 noisy points;
    the failure frequency over independent datasets must not exceed delta by more than ``MC_SIGMAS`` errors."""
    rng = np.random.default_rng(2)
    delta, n, trials, flip = 0.2, 50, 400, 0.15
    grid = np.linspace(0.0, 1.0, 64)

    def risk(t):  # exact population 0-1 risk of "predict 1 iff x > t" for x ~ U[0,1], y = [x > 1/2] xor Bern(flip)
        disagree = abs(t - 0.5)
        return flip + (1 - 2 * flip) * disagree

    failures = 0
    for _ in range(trials):
        x = rng.random(n)
        y = (x > 0.5) ^ (rng.random(n) < flip)
        errors = ((x[None, :] > grid[:, None]) != y[None, :]).mean(axis=1)
        best = int(np.argmin(errors))
        bound = occam_bound(float(errors[best]), code_bits=6, n=n, delta=delta)
        failures += risk(grid[best]) > bound.value
    rate = failures / trials
    assert rate <= delta + MC_SIGMAS * math.sqrt(delta * (1 - delta) / trials)


@given(probabilities, st.floats(0.0, 1e4), st.integers(1, 10**6), st.floats(1e-6, 0.5), st.floats(0.0, 100.0))
def test_occam_bound_monotone(train_loss, bits, n, delta, extra):
    """The Occam bound lies in [train_loss, 1], decreases in n and increases in the code length and search bits."""
    base = occam_bound(train_loss, bits, n, delta)
    assert train_loss <= base.value <= 1.0
    assert base.vacuous == (base.value >= 1.0)
    assert occam_bound(train_loss, bits, n + 1, delta).value <= base.value
    assert occam_bound(train_loss, bits + extra, n, delta).value >= base.value
    assert occam_bound(train_loss, bits, n, delta, search_bits=extra).value >= base.value


BAD_INPUTS = [
    (binary_kl, (1.5, 0.5), "p must be <= 1"),
    (binary_kl, (0.5, -0.1), "q must be >= 0"),
    (kl_inverse, (0.5, -1.0), "budget must be >= 0"),
    (lambda: kl_inverse(0.5, 1.0, side="middle"), (), "side must be"),
    (code_length_bits, (np.array([0.5, 1.0]),), "quantized_params must be an integer array"),
    (code_length_bits, (np.array([], dtype=int),), "at least one entry"),
    (lambda: code_length_bits(np.array([0, 9]), q_bits=4), (), "does not fit q_bits = 4"),
    (lambda: code_length_bits(np.array([0, 1]), q_bits=0), (), "q_bits must be >= 1"),
    (occam_bound, (1.2, 10.0, 100, 0.05), "train_loss must be <= 1"),
    (occam_bound, (0.1, -1.0, 100, 0.05), "code_bits must be >= 0"),
    (occam_bound, (0.1, 10.0, 0, 0.05), "n must be >= 1"),
    (occam_bound, (0.1, 10.0, 100, 1.0), "delta must be < 1"),
    (fast_rate_risk, (0.1, -0.5), "mi_nats must be >= 0"),
    (binary_kl_risk, (-0.1, 0.5), "train_loss must be >= 0"),
]


@pytest.mark.parametrize(("fn", "args", "message"), BAD_INPUTS)
def test_bad_input_names_the_argument(fn, args, message):
    """Bad input raises ``ValueError`` naming the argument and its value."""
    with pytest.raises(ValueError, match=message):
        fn(*args)
