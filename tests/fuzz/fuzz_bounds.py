"""The bad-input fuzz table of ``bounds``: the cases tried, their messages, and a spec
per public callable (``tests/fuzz/fuzz_specs.py`` explains the machinery; ``tests/fuzz/test_fuzz.py`` runs it).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import bounds
from tests.fuzz.fuzz_specs import COUNT, NONNEG, OPEN_UNIT, POSITIVE, REAL, RNG, UNIT, VARIANT_ARG, Arg, Spec, rank_arg, rng
from tests.fuzz.fuzz_values import EITHER, OK, RAISE, Bad, bad_arrays, bad_ints, bad_names, bad_objects

# --- valid baselines --------------------------------------------------------------------------

_ss_rng = np.random.default_rng(3)
SS_LOSSES = _ss_rng.integers(0, 3, size=(4, 2, 3, 2)) / 2.0
SS_SELECTORS = _ss_rng.integers(0, 2, size=(4, 2, 3))
SYMBOLS = np.array([-3, 0, 0, 1, 3, 3, 3])


def _samples() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((6, 3))


def discrete(valid: np.ndarray) -> st.SearchStrategy[Bad]:
    """``bad_arrays`` for discrete symbols: complex values and entries above MAX_ABS are valid symbols too."""
    return bad_arrays(valid, huge=OK).map(lambda b: b._replace(expect=EITHER) if b.label == "complex" else b)


# --- the table of cases tried and their messages ----------------------------------------------
# (call, fragment of the message it must raise); each public callable appears at least once.

CASES = [
    (lambda: bounds.binary_kl(1.5, 0.5), "p must be <= 1.0, got 1.5"),
    (lambda: bounds.kl_inverse(0.2, -1.0), "budget must be >= 0.0, got -1.0"),
    (lambda: bounds.fast_rate_risk(0.1, math.inf), "mi_nats must be finite, got inf"),
    (lambda: bounds.binary_kl_risk(-0.1, 0.2), "train_loss must be >= 0.0, got -0.1"),
    (lambda: bounds.subgaussian_sigma(1.0, 1.0), "high must exceed low, got low=1.0, high=1.0"),
    (lambda: bounds.xu_raginsky(1.0, 0.0, 10), "sigma must be > 0, got 0.0"),
    (lambda: bounds.individual_sample_bound([0.1, 0.2], 0.5, 3),
     "mi_nats_per_sample must have shape (3,) to match n = 3, got (2,)"),
    (lambda: bounds.lora_mi_nats("c_only", [(4, 5)], 2, 8),
     "variant 'c_only' is not one of 'full', 'lora', 'b_only', 'a_only'"),
    (lambda: bounds.lora_mi_bound("lora", [(4, 5)], 2, 0, 0.5, 100), "q_bits must be >= 1, got 0"),
    (lambda: bounds.lora_mi_bound("lora", [(4, 5)], 2, 8, 0.5, 100, scale_bits=65), "scale_bits must be <= 64"),
    (lambda: bounds.trained_tensors("lora", [(4, 0)]), "layers"),
    (lambda: bounds.trainable_params("b_only", [(4, 5), (2, 8)], 3),
     "rank 3 exceeds min(d_in, d_out) = 2 of layers[1] = (d_out=2, d_in=8)"),
    (lambda: bounds.code_length_bits(np.array([0.5, 1.0])), "quantized_params must be an integer array of symbols"),
    (lambda: bounds.occam_bound(0.1, 100.0, 1000, 1.0), "delta must be < 1, got 1.0"),
    (lambda: bounds.discrete_mi(np.arange(5), np.arange(4), rng()),
     "x and y must have the same number of samples, got 5 and 4"),
    (lambda: bounds.gaussian_channel_mi(np.ones((1, 3)), 0.5, rng()), "samples must have at least 2 trials (rows)"),
    (lambda: bounds.supersample_gap(SS_LOSSES + 1.0, SS_SELECTORS, rng()), "losses must lie in [0, 1]"),
    (lambda: bounds.supersample_gap(SS_LOSSES[:1], SS_SELECTORS[:1], rng()),
     "losses must hold k_z >= 2 supersamples, got k_z = 1"),
    (lambda: bounds.redraw_selectors(SS_LOSSES, SS_SELECTORS[..., :2], rng()),
     "selectors must have shape (4, 2, 3) to match losses, got (4, 2, 2)"),
    (lambda: bounds.ld_cmi_bound(SS_LOSSES, SS_SELECTORS, rng(), n_boot=0), "n_boot must be >= 1, got 0"),
    (lambda: bounds.ecmi_bound(SS_LOSSES, SS_SELECTORS, rng(), confidence=1.0),
     "confidence must be strictly between 0 and 1, got 1.0"),
    (lambda: bounds.binary_kl_bound(SS_LOSSES, SS_SELECTORS, rng(), correction="jackknife"),
     "correction must be one of miller_madow, none; got 'jackknife'"),
    (lambda: bounds.fast_rate_bound({"losses": SS_LOSSES}, SS_SELECTORS, rng()), "losses must be a real array"),
    (lambda: bounds.interpolation_bound(SS_LOSSES, SS_SELECTORS, 0), "rng must be a numpy.random.Generator"),
]


# --- the specs: a valid call and the invalid values of each argument --------------------------

#: The arrays of a supersample experiment, as every function of bounds.cmi and bounds.supersample takes them.
SS_ARGS = {
    "losses": Arg(st.one_of(bad_arrays(SS_LOSSES), bad_objects(("Estimate", bounds.Estimate(0.1, 0.0, 0.2, 4))),
                            st.sampled_from([
                                Bad("above 1", SS_LOSSES + 1.0, RAISE), Bad("below 0", SS_LOSSES - 1.0, RAISE),
                                Bad("one supersample", SS_LOSSES[:1], RAISE),
                                Bad("too many levels", np.linspace(0, 1, SS_LOSSES.size).reshape(SS_LOSSES.shape),
                                    RAISE)])),
                  ("selectors",)),
    "selectors": Arg(st.one_of(bad_arrays(SS_SELECTORS.astype(float)), st.sampled_from([
        Bad("a 2", SS_SELECTORS + 1, RAISE), Bad("a half", SS_SELECTORS * 0.5, RAISE)])), ("losses",)),
}
CMI_ARGS = {**SS_ARGS, "rng": RNG, "n_boot": Arg(COUNT), "confidence": Arg(OPEN_UNIT),
            "correction": Arg(bad_names(("miller_madow", "none")))}
LAYERS = Arg(st.one_of(
    st.sampled_from([Bad(label, value, RAISE) for label, value in [
        ("empty", []), ("None", None), ("string", "4x5"), ("one number", [(4,)]), ("triple", [(4, 5, 6)]),
        ("zero width", [(0, 5)]), ("float width", [(4.5, 5)]), ("bool width", [(True, 5)]),
        ("negative width", [(4, -1)]), ("nan width", [(4, math.nan)]), ("dict", {4: 5})]]),
))

SCALE_BITS = Arg(bad_ints(minimum=0, maximum=64, edges=(0, 64)))

SPECS = [
    Spec("binary_kl", bounds.binary_kl, lambda: dict(p=0.2, q=0.3), {"p": Arg(UNIT), "q": Arg(UNIT)}),
    Spec("kl_inverse", bounds.kl_inverse, lambda: dict(p_hat=0.2, budget=0.1, side="upper"),
         {"p_hat": Arg(UNIT), "budget": Arg(NONNEG), "side": Arg(bad_names(("upper", "lower")))}),
    Spec("fast_rate_risk", bounds.fast_rate_risk, lambda: dict(train_loss=0.1, mi_nats=0.2),
         {"train_loss": Arg(UNIT), "mi_nats": Arg(NONNEG)}),
    Spec("binary_kl_risk", bounds.binary_kl_risk, lambda: dict(train_loss=0.1, mi_nats=0.2),
         {"train_loss": Arg(UNIT), "mi_nats": Arg(NONNEG)}),
    Spec("subgaussian_sigma", bounds.subgaussian_sigma, lambda: dict(low=0.0, high=1.0),
         {"low": Arg(st.one_of(REAL, st.floats(1.0, 1e300).map(lambda v: Bad("low >= high", v, RAISE))), ("high",)),
          "high": Arg(st.one_of(REAL, st.floats(-1e300, 0.0).map(lambda v: Bad("high <= low", v, RAISE))), ("low",))}),
    Spec("xu_raginsky", bounds.xu_raginsky, lambda: dict(mi_nats=2.0, sigma=0.5, n=10),
         {"mi_nats": Arg(NONNEG), "sigma": Arg(POSITIVE), "n": Arg(COUNT)}),
    Spec("individual_sample_bound", bounds.individual_sample_bound,
         lambda: dict(mi_nats_per_sample=np.full(3, 0.1), sigma=0.5, n=3),
         {"mi_nats_per_sample": Arg(st.one_of(
             bad_arrays(np.full(3, 0.1)).filter(lambda b: b.label not in ("one axis too few", "scalar")), NONNEG,
             st.just(Bad("negative entry", np.array([0.1, -0.1, 0.1]), RAISE))), ("n",)),
          "sigma": Arg(POSITIVE), "n": Arg(bad_ints(minimum=1), ("mi_nats_per_sample",))}),
    Spec("lora_mi_nats", bounds.lora_mi_nats,
         lambda: dict(variant="lora", layers=[(4, 5)], rank=2, q_bits=8, scale_bits=32),
         {"variant": VARIANT_ARG, "layers": LAYERS, "rank": rank_arg(edges=(4,)), "q_bits": Arg(COUNT),
          "scale_bits": SCALE_BITS}),
    Spec("lora_mi_bound", bounds.lora_mi_bound,
         lambda: dict(variant="b_only", layers=[(4, 5), (5, 5)], rank=2, q_bits=8, sigma=0.5, n=100, scale_bits=32),
         {"variant": VARIANT_ARG, "layers": LAYERS, "rank": rank_arg(edges=(4,)), "q_bits": Arg(COUNT),
          "sigma": Arg(POSITIVE), "n": Arg(COUNT), "scale_bits": SCALE_BITS}),
    Spec("trained_tensors", bounds.trained_tensors, lambda: dict(variant="lora", layers=[(4, 5), (5, 5)]),
         {"variant": VARIANT_ARG, "layers": LAYERS}),
    Spec("trainable_params", bounds.trainable_params, lambda: dict(variant="a_only", layers=[(4, 5)], rank=2),
         {"variant": VARIANT_ARG, "layers": LAYERS, "rank": rank_arg(edges=(4,))}),
    Spec("code_length_bits", bounds.code_length_bits, lambda: dict(quantized_params=SYMBOLS, q_bits=None),
         {"quantized_params": Arg(st.one_of(bad_arrays(SYMBOLS.astype(float)), st.sampled_from([
             Bad("float symbols", SYMBOLS + 0.5, RAISE), Bad("huge symbol", np.array([2**62, 0]), RAISE)]))),
          "q_bits": Arg(st.one_of(bad_ints(minimum=1, optional=True),
                                  st.integers(1, 2).map(lambda q: Bad("too few bits", q, RAISE))),
                        ("quantized_params",))}),
    Spec("occam_bound", bounds.occam_bound,
         lambda: dict(train_loss=0.1, code_bits=100.0, n=1000, delta=0.05, search_bits=0.0),
         {"train_loss": Arg(UNIT), "code_bits": Arg(NONNEG), "n": Arg(COUNT), "delta": Arg(OPEN_UNIT),
          "search_bits": Arg(NONNEG)}),
    Spec("discrete_mi", bounds.discrete_mi,
         lambda: dict(x=np.arange(12) % 3, y=np.arange(12) % 2, rng=rng(), correction="miller_madow", n_boot=5,
                      confidence=0.9),
         {"x": Arg(discrete(np.arange(12.0) % 3), ("y",)), "y": Arg(discrete(np.arange(12.0) % 2), ("x",)),
          "rng": RNG, "correction": Arg(bad_names(("miller_madow", "none"))), "n_boot": Arg(COUNT),
          "confidence": Arg(OPEN_UNIT)}),
    Spec("gaussian_channel_mi", bounds.gaussian_channel_mi,
         lambda: dict(samples=_samples(), noise_std=0.5, rng=rng(), n_boot=5, confidence=0.9),
         {"samples": Arg(st.one_of(bad_arrays(np.ones((6, 3)), fixed_axes=()),
                                   st.just(Bad("one trial", np.ones((1, 3)), RAISE)))),
          "noise_std": Arg(POSITIVE), "rng": RNG, "n_boot": Arg(COUNT), "confidence": Arg(OPEN_UNIT)}),
    Spec("supersample_gap", bounds.supersample_gap,
         lambda: dict(losses=SS_LOSSES, selectors=SS_SELECTORS, rng=rng(), n_boot=5, confidence=0.9),
         {**SS_ARGS, "rng": RNG, "n_boot": Arg(COUNT), "confidence": Arg(OPEN_UNIT)}),
    Spec("redraw_selectors", bounds.redraw_selectors, lambda: dict(losses=SS_LOSSES, selectors=SS_SELECTORS, rng=rng()),
         {**SS_ARGS, "rng": RNG}),
    *[Spec(fn.__name__, fn, lambda: dict(losses=SS_LOSSES, selectors=SS_SELECTORS, rng=rng(), n_boot=5,
                                         confidence=0.9, correction="miller_madow"), CMI_ARGS)
      for fn in (bounds.ld_cmi_bound, bounds.ecmi_bound, bounds.binary_kl_bound, bounds.fast_rate_bound,
                 bounds.interpolation_bound)],
]
