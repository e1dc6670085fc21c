"""Closed-form bounds of ``bounds``: Lemma 4.5 per variant, Xu–Raginsky, Bu–Zou–Veeravalli.

Each inequality is one test with its statement in the docstring; reference values are worked
out by hand in the comments of ``REFERENCE``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bounds import (
    VARIANTS,
    individual_sample_bound,
    lora_mi_bound,
    lora_mi_nats,
    subgaussian_sigma,
    trainable_params,
    xu_raginsky,
)
from tests.strategies import lora_settings, mi_nats_values, mi_vectors
from tests.tolerances import tol

LN2 = math.log(2.0)

# (function, args, expected, the arithmetic)
REFERENCE = [
    # Section 4.2.1 counts. 64x64 at r = 4: full 64*64 = 4096; lora 4*(64+64) = 512;
    # b_only 4*64 = 256; a_only 4*64 = 256.
    (trainable_params, ("full", [(64, 64)], 4), 4096),
    (trainable_params, ("lora", [(64, 64)], 4), 512),
    (trainable_params, ("b_only", [(64, 64)], 4), 256),
    (trainable_params, ("a_only", [(64, 64)], 4), 256),
    # Two layers (d_out, d_in) = (10, 30), (20, 40) at r = 2: lora 2*(40 + 60) = 200;
    # b_only 2*(10 + 20) = 60; a_only 2*(30 + 40) = 140; full 300 + 800 = 1100.
    (trainable_params, ("lora", [(10, 30), (20, 40)], 2), 200),
    (trainable_params, ("b_only", [(10, 30), (20, 40)], 2), 60),
    (trainable_params, ("a_only", [(10, 30), (20, 40)], 2), 140),
    (trainable_params, ("full", [(10, 30), (20, 40)], None), 1100),
    # Hoeffding: [0, 1] -> 1/2; [-2, 4] -> 3.
    (subgaussian_sigma, (0.0, 1.0), 0.5),
    (subgaussian_sigma, (-2.0, 4.0), 3.0),
    # Xu–Raginsky: sqrt(2 * 1 * 2 / 4) = 1; sqrt(2 * 0.25 * 0.5 / 8) = sqrt(1/32) = 0.1767766953.
    (xu_raginsky, (2.0, 1.0, 4), 1.0),
    (xu_raginsky, (0.5, 0.5, 8), 0.17677669529663687),
    # Bu–Zou–Veeravalli: (sqrt(2*1*0.5) + sqrt(2*1*2)) / 2 = (1 + 2) / 2 = 1.5.
    (individual_sample_bound, ([0.5, 2.0], 1.0, 2), 1.5),
    # A scalar per-sample MI: sqrt(2 * 4 * 0.125) = 1.
    (individual_sample_bound, (0.125, 2.0, 3), 1.0),
    # Lemma 4.5 MI: q N ln 2 = 16 * 512 * 0.6931471806 = 5678.2617031.
    (lora_mi_nats, ("lora", [(64, 64)], 4, 16), 16 * 512 * LN2),
    # Lemma 4.5 at the layer of ``lora-asym demo`` (64x64, r = 4, q = 16, sigma = 1/2, n = 1000):
    # 2 sigma^2 ln2 q / n = 0.5 * 0.6931471806 * 16 / 1000 = 0.0055451774, times N, sqrt:
    # full  sqrt(0.0055451774 * 4096) = sqrt(22.713047) = 4.7658207
    # lora  sqrt(0.0055451774 *  512) = sqrt(2.8391308) = 1.6849721
    # b_only, a_only sqrt(0.0055451774 * 256) = sqrt(1.4195654) = 1.1914552
    (lora_mi_bound, ("full", [(64, 64)], 4, 16, 0.5, 1000), 4.765820686155564),
    (lora_mi_bound, ("lora", [(64, 64)], 4, 16, 0.5, 1000), 1.684972062549862),
    (lora_mi_bound, ("b_only", [(64, 64)], 4, 16, 0.5, 1000), 1.191455171538891),
    (lora_mi_bound, ("a_only", [(64, 64)], 4, 16, 0.5, 1000), 1.191455171538891),
]


@pytest.mark.parametrize(("fn", "args", "expected"), REFERENCE, ids=lambda v: getattr(v, "__name__", None))
def test_reference_values(fn, args, expected):
    """Each formula reproduces its hand-computed value."""
    np.testing.assert_allclose(fn(*args), expected, **tol())


@given(lora_settings(), st.sampled_from(VARIANTS))
def test_lemma45_bound_nonnegative_and_finite(setting, variant):
    """Lemma 4.5: ``0 <= sqrt(2 sigma^2 ln2 q N / n) < inf`` for every variant."""
    value = lora_mi_bound(variant, **setting)
    assert math.isfinite(value) and value >= 0.0


@given(lora_settings(), st.sampled_from(VARIANTS))
def test_lemma45_bound_monotone(setting, variant):
    """Lemma 4.5 is decreasing in n and increasing in q (and in rank for the low-rank variants)."""
    base = lora_mi_bound(variant, **setting)
    assert lora_mi_bound(variant, **{**setting, "n": setting["n"] + 1}) < base
    assert lora_mi_bound(variant, **{**setting, "q_bits": setting["q_bits"] + 1}) > base
    max_rank = min(min(layer) for layer in setting["layers"])
    if setting["rank"] < max_rank:
        bigger = lora_mi_bound(variant, **{**setting, "rank": setting["rank"] + 1})
        assert bigger > base if variant != "full" else bigger == base


@given(lora_settings())
def test_lemma45_variant_order(setting):
    """``b_only <= lora`` and ``a_only <= lora`` always; ``lora <= full`` iff ``N_lora <= N_full``,
    in particular when ``r (d_in + d_out) <= d_in d_out`` for every layer."""
    bound = {v: lora_mi_bound(v, **setting) for v in VARIANTS}
    assert bound["b_only"] <= bound["lora"]
    assert bound["a_only"] <= bound["lora"]
    r = setting["rank"]
    if all(r * (d_in + d_out) <= d_in * d_out for d_out, d_in in setting["layers"]):
        assert bound["lora"] <= bound["full"]


@given(lora_settings())
def test_lemma45_b_only_ratio(setting):
    """``b_only / lora = sqrt(sum d_out / sum (d_in + d_out))``: ``sqrt(d_out/(d_in+d_out))`` for one layer."""
    layers = setting["layers"]
    ratio = lora_mi_bound("b_only", **setting) / lora_mi_bound("lora", **setting)
    expected = math.sqrt(sum(d_out for d_out, _ in layers) / sum(d_out + d_in for d_out, d_in in layers))
    np.testing.assert_allclose(ratio, expected, **tol())


@given(lora_settings(square=True))
def test_lemma45_square_layers_sqrt2(setting):
    """Square layers: ``lora / b_only = sqrt(2)`` exactly, and ``b_only`` at rank 2r equals ``lora`` at rank r."""
    np.testing.assert_allclose(
        lora_mi_bound("lora", **setting) / lora_mi_bound("b_only", **setting), math.sqrt(2.0), **tol()
    )
    rank = setting["rank"]
    if 2 * rank <= min(d for d, _ in setting["layers"]):
        np.testing.assert_allclose(
            lora_mi_bound("b_only", **{**setting, "rank": 2 * rank}), lora_mi_bound("lora", **setting), **tol()
        )


@given(mi_nats_values, st.floats(1e-3, 1e3), st.integers(1, 10**6), mi_nats_values)
def test_xu_raginsky_monotone(mi, sigma, n, extra):
    """Xu–Raginsky ``sqrt(2 sigma^2 I / n)`` is >= 0, non-decreasing in I and non-increasing in n."""
    value = xu_raginsky(mi, sigma, n)
    assert value >= 0.0
    assert xu_raginsky(mi + extra, sigma, n) >= value
    assert xu_raginsky(mi, sigma, n + 1) <= value


@given(mi_vectors(), st.floats(1e-3, 1e3))
def test_individual_sample_tighter_than_xu_raginsky(mis, sigma):
    """Bu–Zou–Veeravalli: ``(1/n) sum sqrt(2 sigma^2 I_i) <= sqrt(2 sigma^2 sum I_i / n)`` (Cauchy–Schwarz),
    so with ``sum_i I(W; Z_i) <= I(W; S)`` the individual-sample bound is the tighter one."""
    n = mis.size
    slack = 1e-12  # relative: the two sides are equal when all I_i are equal
    assert individual_sample_bound(mis, sigma, n) <= xu_raginsky(float(mis.sum()), sigma, n) * (1 + slack)


@given(mi_vectors(), st.floats(1e-3, 1e3), st.floats(0.0, 10.0))
def test_individual_sample_monotone(mis, sigma, extra):
    """The individual-sample bound is >= 0 and non-decreasing in each per-sample MI."""
    value = individual_sample_bound(mis, sigma, mis.size)
    assert value >= 0.0
    bumped = mis.copy()
    bumped[0] += extra
    assert individual_sample_bound(bumped, sigma, mis.size) >= value


BAD_INPUTS = [
    (trainable_params, ("partial", [(4, 4)], 1), "variant 'partial' is not one of 'full', 'lora', 'b_only', 'a_only'"),
    (trainable_params, ("lora", [], 1), "layers"),
    (trainable_params, ("lora", [(4,)], 1), r"layers\[0\]"),
    (trainable_params, ("lora", "64x64", 1), "layers"),
    (trainable_params, ("lora", [(4, 0)], 1), r"layers\[0\] d_in must be >= 1"),
    (trainable_params, ("lora", [(8, 8), (4, 16)], 5), r"rank 5 exceeds min\(d_in, d_out\) = 4 of layers\[1\]"),
    (trainable_params, ("lora", [(8, 8)], 0), "rank must be >= 1"),
    (trainable_params, ("lora", [(8, 8)], None), "rank is required"),
    (subgaussian_sigma, (1.0, 1.0), "high must exceed low"),
    (xu_raginsky, (-0.1, 1.0, 10), "mi_nats must be >= 0"),
    (xu_raginsky, (float("nan"), 1.0, 10), "mi_nats must be finite"),
    (xu_raginsky, (1.0, 0.0, 10), "sigma must be > 0"),
    (xu_raginsky, (1.0, 1.0, 0), "n must be >= 1, got 0"),
    (xu_raginsky, (1.0, 1.0, -5), "n must be >= 1, got -5"),
    (xu_raginsky, (1.0, 1.0, 2.5), "n must be an integer"),
    (individual_sample_bound, ([1.0, -1.0], 1.0, 2), "mi_nats_per_sample must be >= 0"),
    (individual_sample_bound, ([1.0, 2.0], 1.0, 3), r"shape \(3,\)"),
    (individual_sample_bound, ([1.0, np.nan], 1.0, 2), "NaN"),
    (lora_mi_bound, ("lora", [(8, 8)], 2, -1, 0.5, 10), "q_bits must be >= 1, got -1"),
    (lora_mi_bound, ("lora", [(8, 8)], 2, 0, 0.5, 10), "q_bits must be >= 1, got 0"),
    (lora_mi_bound, ("lora", [(8, 8)], 2, 8, -0.5, 10), "sigma must be > 0"),
    (lora_mi_bound, ("lora", [(8, 8)], 2, 8, 0.5, -3), "n must be >= 1"),
    (lora_mi_bound, ("dora", [(8, 8)], 2, 8, 0.5, 3), "variant 'dora' is not one of"),
]


@pytest.mark.parametrize(("fn", "args", "message"), BAD_INPUTS)
def test_bad_input_names_the_argument(fn, args, message):
    """Bad input raises ``ValueError`` naming the argument and its value."""
    with pytest.raises(ValueError, match=message):
        fn(*args)


@pytest.mark.parametrize("variant", ["full", "lora", "b_only", "a_only"])
def test_scale_bits_count_what_the_quantizer_stores(variant):
    """Lemma 4.5 with ``scale_bits=32`` counts exactly the bits the toolkit's quantized models store
    (``q N`` plus a float32 step per trained tensor), on the linear task and on an MLP with two adapted
    layers; ``scale_bits=0`` is the paper's ``q N``."""
    import synthetic

    linear = synthetic.LinearTask(d_in=6, d_out=4, spectrum="powerlaw:1", delta_rank=2, clip=4.0, n_test=16)
    stored = synthetic.measure_gap(linear, variant, 2, n=8, trials=2, loss="clipped", q_bits=6, seed=0)
    assert stored.records[0]["storage_bits"] == pytest.approx(lora_mi_nats(variant, [(4, 6)], 2, 6, scale_bits=32) / LN2,
                                                              rel=1e-12)
    mlp = synthetic.MLPTask(widths=(4, 6, 5, 3), adapted_layers=(0, 1), perturbed_layers=(1,), perturbation_rank=2,
                            test_size=16, steps=2)
    bits = synthetic.mlp_trial_losses(mlp, variant, 2, 8, 2, loss="zero_one", q_bits=5, seed=0)["storage_bits"][0]
    assert bits == pytest.approx(lora_mi_nats(variant, [(6, 4), (5, 6)], 2, 5, scale_bits=32) / LN2, rel=1e-12)
    paper = lora_mi_nats(variant, [(6, 4), (5, 6)], 2, 5) / LN2
    assert paper == pytest.approx(5 * trainable_params(variant, [(6, 4), (5, 6)], 2), rel=1e-12)
