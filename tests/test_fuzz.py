"""Issue 7, bad input: every public function of ``theory``, ``bounds`` and ``synthetic`` refuses
invalid arguments with a ``ValueError`` that names the argument, and never returns NaN.

Two parts:

- ``CASES``: the hand-written table of cases tried and the messages they give (at least one per
  public function), each message fragment asserted.
- ``SPECS``: one entry per public callable with a valid baseline call (tiny sizes) and, per
  argument, a strategy of invalid values (``tests/strategies.py``, fuzz section). Hypothesis picks
  an argument and a value; the call must raise ``ValueError`` whose message names the argument (or,
  for a shape change, the argument it disagrees with), or — for values that are valid edges, such
  as zero noise — return a result without NaN. Any other exception, a ``RuntimeWarning`` (an error
  under the project's pytest configuration) or a NaN in the result fails.

Skipped as plain result containers: ``BoundResult``, ``Estimate``, ``HighProbabilityBound``,
``GapResult``, ``GapSummary``, ``Quantized``; the constant ``VARIANTS``; and, for now, the
functions listed in ``NOT_FUZZED`` (modules still being written). The command line is fuzzed at
the end: one invalid flag value, figure name, output folder or subcommand gives exit status 2
and one error line naming it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import bounds
import synthetic
import theory
from figures import cli, registry
from theory import validation
from tests.strategies import (
    EITHER,
    OK,
    RAISE,
    Bad,
    bad_arrays,
    bad_covariances,
    bad_generators,
    bad_ints,
    bad_names,
    bad_objects,
    bad_reals,
)

# --- the table of cases tried and their messages ----------------------------------------------
# (call, fragment of the message it must raise). The calls use the valid baselines defined below
# (DELTA (4, 5), SIGMA (5, 5), A (2, 5), B (4, 2), TASK, X (2, 6, 5), Y (2, 6, 4), ...); each
# public callable appears at least once.

CASES = [
    # theory
    (lambda: theory.population_loss(DELTA, DELTA, SIGMA, -0.5), "noise_var must be >= 0.0, got -0.5"),
    (lambda: theory.population_loss(DELTA + 1j, DELTA, SIGMA, 0.1), "delta must be real, got complex entries"),
    (lambda: theory.optimal_b(DELTA, np.zeros((R, D_IN)), SIGMA), "A Σ Aᵀ is singular (rank 0 < 2) for this a"),
    (lambda: theory.optimal_a(DELTA, [[1.0, 2.0], [3.0]], SIGMA), "b must be a real matrix, got [[1.0, 2.0], [3.0]]"),
    (lambda: theory.loss_b_only(DELTA, A, SIGMA - 2 * np.eye(D_IN), 0.1), "sigma must be positive semi-definite"),
    (lambda: theory.loss_a_only(DELTA, B[:3], SIGMA, 0.1), "b has shape (3, 2); axis 0 must have length 4"),
    (lambda: theory.best_rank_update(DELTA, SIGMA, 0), "rank must be >= 1, got 0"),
    (lambda: theory.loss_lora(DELTA, SIGMA, 5, 0.1), "rank 5 exceeds min(d_in, d_out) = 4"),
    (lambda: theory.loss_full(DELTA, SIGMA, math.nan), "noise_var must be finite, got nan"),
    (lambda: theory.sqrtm_psd(np.full((3, 3), np.inf)), "sigma contains 9 NaN or infinite entries"),
    (lambda: theory.expected_loss_a_only(DELTA, SIGMA, 2.5, 0.1), "rank must be an integer, got 2.5"),
    (lambda: theory.expected_loss_b_only(DELTA, SIGMA, R, 0.1, draws=2, rng=np.random.RandomState(0)),
     "rng must be a numpy.random.Generator"),
    (lambda: theory.loss_b_only_draws(DELTA, SIGMA, np.full((3, D_IN, R), np.nan), 0.1),
     "q contains NaN or infinite entries"),
    (lambda: theory.loss_a_only_draws(DELTA, SIGMA, U3[:, :, :0], 0.1),
     "u has shape (3, 4, 0); axis 2 must have non-zero length"),
    (lambda: theory.asymmetry_gap(DELTA, SIGMA, R, 0.1), "rank(sigma) = 5 > rank = 2"),
    (lambda: theory.haar_stiefel(3, 4, np.random.default_rng(0)), "r 4 exceeds d = 3"),
    (lambda: theory.cca_similarity(B, B, "diagonal"), "side must be one of ('col', 'row'), got 'diagonal'"),
    # bounds
    (lambda: bounds.binary_kl(1.5, 0.5), "p must be <= 1.0, got 1.5"),
    (lambda: bounds.kl_inverse(0.2, -1.0), "budget must be >= 0.0, got -1.0"),
    (lambda: bounds.fast_rate_risk(0.1, math.inf), "mi_nats must be finite, got inf"),
    (lambda: bounds.binary_kl_risk(-0.1, 0.2), "train_loss must be >= 0.0, got -0.1"),
    (lambda: bounds.subgaussian_sigma(1.0, 1.0), "high must exceed low, got low=1.0, high=1.0"),
    (lambda: bounds.xu_raginsky(1.0, 0.0, 10), "sigma must be > 0, got 0.0"),
    (lambda: bounds.individual_sample_bound([0.1, 0.2], 0.5, 3),
     "mi_nats_per_sample must have shape (3,) to match n = 3, got (2,)"),
    (lambda: bounds.lora_mi_nats("c_only", [(4, 5)], 2, 8),
     "variant must be one of full, lora, b_only, a_only; got 'c_only'"),
    (lambda: bounds.lora_mi_bound("lora", [(4, 5)], 2, 0, 0.5, 100), "q_bits must be >= 1, got 0"),
    (lambda: bounds.trainable_params("b_only", [(4, 5), (2, 8)], 3),
     "rank 3 exceeds min(d_in, d_out) = 2 of layers[1] = (d_out=2, d_in=8)"),
    (lambda: bounds.code_length_bits(np.array([0.5, 1.0])), "quantized_params must be an integer array of symbols"),
    (lambda: bounds.occam_bound(0.1, 100.0, 1000, 1.0), "delta must be < 1, got 1.0"),
    (lambda: bounds.discrete_mi(np.arange(5), np.arange(4), rng()),
     "x and y must have the same number of samples, got 5 and 4"),
    (lambda: bounds.gaussian_channel_mi(np.ones((1, 3)), 0.5, rng()), "samples must have at least 2 trials (rows)"),
    (lambda: bounds.SupersampleConfig(n=3, k_z=1, k_u=1), "k_z must be >= 2, got 1"),
    (lambda: bounds.Supersample(losses=SS_LOSSES + 1.0, selectors=SS_SELECTORS), "losses must lie in [0, 1]"),
    (lambda: bounds.run_supersample(_train, lambda m, z: 0.5, _sample, bounds.SupersampleConfig(3, 2, 1), rng()),
     "loss(model, z) must return shape (6,) for 6 points, got ()"),
    (lambda: bounds.ld_cmi_bound(SUPERSAMPLE, rng(), n_boot=0), "n_boot must be >= 1, got 0"),
    (lambda: bounds.ecmi_bound(SUPERSAMPLE, rng(), confidence=1.0),
     "confidence must be strictly between 0 and 1, got 1.0"),
    (lambda: bounds.binary_kl_bound(SUPERSAMPLE, rng(), correction="jackknife"),
     "correction must be one of miller_madow, none; got 'jackknife'"),
    (lambda: bounds.fast_rate_bound({"losses": SS_LOSSES}, rng()), "supersample must be a Supersample"),
    (lambda: bounds.interpolation_bound(SUPERSAMPLE, 0), "rng must be a numpy.random.Generator"),
    # synthetic
    (lambda: synthetic.LinearTask(spectrum="powerlaw:nan"), "spectrum 'powerlaw:nan' is not"),
    (lambda: synthetic.GDConfig(betas=(0.9,)), "betas must be a pair of decay rates in [0, 1), got (0.9,)"),
    (lambda: synthetic.MLPTask(widths=(4, 0, 3)), "widths must be >= 1, got 0"),
    (lambda: synthetic.lstsq_batched(X, Y[:, :5]), "y has shape (2, 5, 4); axis 1 must have length 6"),
    (lambda: synthetic.fit_full(X, Y, ridge=-1.0), "ridge must be >= 0.0, got -1.0"),
    (lambda: synthetic.fit_b_only(X, Y, A_STACK[:, :, :4]), "a has shape (2, 2, 4); axis 2 must have length 5"),
    (lambda: synthetic.fit_a_only(X, Y, np.zeros_like(B_STACK)), "b must have full column rank"),
    (lambda: synthetic.fit_lora(X, Y, 5), "rank 5 exceeds min(d_in, d_out) = 4"),
    (lambda: synthetic.frozen_factor("xavier", "a", D_IN, D_OUT, R, rng()), "init 'xavier' is not one of"),
    (lambda: synthetic.sample_training_sets(TASK, 0, IDS, seed=0), "n must be >= 1, got 0"),
    (lambda: synthetic.frozen_factors(TASK, "b_only", R, [-1], seed=0),
     "trial_ids must be a non-empty 1-D array of integers >= 0, got [-1]"),
    (lambda: synthetic.population_losses(TASK, np.full((2, D_OUT, D_IN), np.nan)),
     "m contains NaN or infinite entries"),
    (lambda: synthetic.clipped_test_losses(TASK, M_STACK[:1], IDS, seed=0, clip=2.0),
     "m holds 1 updates but trial_ids names 2 trials"),
    (lambda: synthetic.linear_trial_losses(TASK, "b_only", R, 6, 2, loss="hinge", seed=0),
     "loss 'hinge' is not one of"),
    (lambda: synthetic.gd_fit(X, Y, "b_only", {"b": np.zeros((2, D_OUT, R))}, A_STACK, config=None),
     "config must be a GDConfig, got NoneType"),
    (lambda: synthetic.gd_vs_closed_form(TASK, "lora", R, 6, 2, seed=-1, config=GD), "seed must be >= 0, got -1"),
    (lambda: synthetic.mean_interval([1.0]), "values must be a 1-D array of at least 2 numbers, got shape (1,)"),
    (lambda: synthetic.summarize([1.0, np.inf], [1.0, 2.0]), "train_loss contains NaN or infinite entries"),
    (lambda: synthetic.measure_gap(TASK, "a_only", R, 6, 1, loss="population", seed=0), "trials must be >= 2, got 1"),
    (lambda: synthetic.quantize(np.ones((2, 3)), 40), "q_bits must be <= 32, got 40"),
    (lambda: synthetic.mlp_trial_losses(MLP, "b_only", 7, 8, 2, loss="zero_one", seed=0),
     "rank 7 exceeds min(d_in, d_out) = 6 of adapted layer 1"),
    (lambda: synthetic.similarity_grid((0, 0), (0, 1), task=MLP, rank=R, n=8), "task_seeds has repeated seeds: (0, 0)"),
]


# --- valid baselines (tiny: every call well under 0.5 s) -------------------------------------

D_OUT, D_IN, R = 4, 5, 2
_rng = np.random.default_rng(7)
DELTA = _rng.standard_normal((D_OUT, D_IN))
_g = _rng.standard_normal((D_IN, D_IN))
SIGMA = _g @ _g.T / D_IN + 0.1 * np.eye(D_IN)
_u = theory.haar_stiefel(D_IN, R, _rng)
SIGMA_LOW = _u @ _u.T  # rank R, for asymmetry_gap
A = theory.haar_stiefel(D_IN, R, _rng).T
B = theory.haar_stiefel(D_OUT, R, _rng)
Q3 = theory.haar_stiefel(D_IN, R, _rng, draws=3)
U3 = theory.haar_stiefel(D_OUT, R, _rng, draws=3)

TASK = synthetic.LinearTask(d_in=D_IN, d_out=D_OUT, spectrum="powerlaw:1", delta_rank=R, clip=4.0, n_test=64)
IDS = np.arange(2)
X, Y = synthetic.sample_training_sets(TASK, 6, IDS, seed=0)
A_STACK = synthetic.frozen_factors(TASK, "b_only", R, IDS, seed=0)
B_STACK = synthetic.frozen_factors(TASK, "a_only", R, IDS, seed=0)
M_STACK = np.zeros((2, D_OUT, D_IN))
GD = synthetic.GDConfig(steps=3)
MLP = synthetic.MLPTask(widths=(4, 6, 6, 3), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2,
                        test_size=64, steps=3)

SS_CONFIG = bounds.SupersampleConfig(n=3, k_z=4, k_u=2)
_ss_rng = np.random.default_rng(3)
SS_LOSSES = _ss_rng.integers(0, 3, size=(4, 2, 3, 2)) / 2.0
SS_SELECTORS = _ss_rng.integers(0, 2, size=(4, 2, 3))
SUPERSAMPLE = bounds.Supersample(losses=SS_LOSSES, selectors=SS_SELECTORS)
SYMBOLS = np.array([-3, 0, 0, 1, 3, 3, 3])


def _train(z, rng):
    return float(np.mean(z))


def _loss(model, z):
    return (np.asarray(z) > model).astype(np.float64)


def _sample(rng, size):
    return rng.standard_normal(size)


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# --- the table of specs ----------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Arg:
    """How to fuzz one argument: its invalid values and who else a shape error may name."""

    values: st.SearchStrategy[Bad]
    partners: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, repr=False)
class Spec:
    """A public callable, a valid call of it (keyword arguments) and how to fuzz each argument."""

    name: str
    fn: Callable
    valid: Callable[[], dict]
    args: dict[str, Arg]

    def __repr__(self) -> str:
        return f"Spec({self.name})"


REAL = bad_reals()
NONNEG = bad_reals(minimum=0.0, edges=(0.0,))
POSITIVE = bad_reals(positive=True)
UNIT = bad_reals(minimum=0.0, maximum=1.0, edges=(0.0, 1.0))
OPEN_UNIT = bad_reals(positive=True, maximum=1.0, open_max=True)
SEED = bad_ints(minimum=0, edges=(0,))
COUNT = bad_ints(minimum=1, edges=(1,))
RNG = Arg(bad_generators())


def discrete(valid: np.ndarray) -> st.SearchStrategy[Bad]:
    """``bad_arrays`` for discrete symbols: complex values are valid symbols too."""
    return bad_arrays(valid).map(lambda b: b._replace(expect=EITHER) if b.label == "complex" else b)


def rank_arg(d_in: int = D_IN, d_out: int = D_OUT, edges: tuple[int, ...] = ()) -> Arg:
    return Arg(bad_ints(minimum=1, maximum=min(d_in, d_out), edges=edges))


THEORY = [
    Spec("population_loss", theory.population_loss,
         lambda: dict(delta=DELTA, m=np.zeros((D_OUT, D_IN)), sigma=SIGMA, noise_var=0.1),
         {"delta": Arg(bad_arrays(DELTA), ("m", "sigma")), "m": Arg(bad_arrays(DELTA), ("delta",)),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "noise_var": Arg(NONNEG)}),
    Spec("optimal_b", theory.optimal_b, lambda: dict(delta=DELTA, a=A, sigma=SIGMA),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("a", "sigma")),
          "a": Arg(bad_arrays(A, fixed_axes=(1,)), ("delta",)), "sigma": Arg(bad_covariances(SIGMA), ("delta", "a"))}),
    Spec("optimal_a", theory.optimal_a, lambda: dict(delta=DELTA, b=B, sigma=SIGMA),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(0,)), ("b", "sigma")),
          "b": Arg(bad_arrays(B, fixed_axes=(0,)), ("delta",)), "sigma": Arg(bad_covariances(SIGMA), ("delta",))}),
    Spec("loss_b_only", theory.loss_b_only, lambda: dict(delta=DELTA, a=A, sigma=SIGMA, noise_var=0.1),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("a", "sigma")),
          "a": Arg(bad_arrays(A, fixed_axes=(1,)), ("delta",)), "sigma": Arg(bad_covariances(SIGMA), ("delta",)),
          "noise_var": Arg(NONNEG)}),
    Spec("loss_a_only", theory.loss_a_only, lambda: dict(delta=DELTA, b=B, sigma=SIGMA, noise_var=0.1),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(0,)), ("b", "sigma")),
          "b": Arg(bad_arrays(B, fixed_axes=(0,)), ("delta",)), "sigma": Arg(bad_covariances(SIGMA), ("delta",)),
          "noise_var": Arg(NONNEG)}),
    Spec("best_rank_update", theory.best_rank_update, lambda: dict(delta=DELTA, sigma=SIGMA, rank=R),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma",)),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "rank": rank_arg(edges=(min(D_IN, D_OUT),))}),
    Spec("loss_lora", theory.loss_lora, lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma",)),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "rank": rank_arg(edges=(1, 4)), "noise_var": Arg(NONNEG)}),
    Spec("loss_full", theory.loss_full, lambda: dict(delta=DELTA, sigma=SIGMA, noise_var=0.1),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma",)),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "noise_var": Arg(NONNEG)}),
    Spec("sqrtm_psd", theory.sqrtm_psd, lambda: dict(sigma=SIGMA), {"sigma": Arg(bad_covariances(SIGMA))}),
    Spec("expected_loss_a_only", theory.expected_loss_a_only,
         lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma",)),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "rank": rank_arg(edges=(4,)), "noise_var": Arg(NONNEG)}),
    Spec("expected_loss_b_only", theory.expected_loss_b_only,
         lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1, draws=4, rng=rng()),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma",)),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "rank": rank_arg(edges=(4,)), "noise_var": Arg(NONNEG),
          "draws": Arg(bad_ints(minimum=2, edges=(2,))), "rng": RNG}),
    Spec("loss_b_only_draws", theory.loss_b_only_draws, lambda: dict(delta=DELTA, sigma=SIGMA, q=Q3, noise_var=0.1),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma", "q")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "q": Arg(bad_arrays(Q3, fixed_axes=(1,)), ("delta",)),
          "noise_var": Arg(NONNEG)}),
    Spec("loss_a_only_draws", theory.loss_a_only_draws, lambda: dict(delta=DELTA, sigma=SIGMA, u=U3, noise_var=0.1),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(0,)), ("sigma", "u")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "u": Arg(bad_arrays(U3, fixed_axes=(1, 2)), ("delta",)),
          "noise_var": Arg(NONNEG)}),
    Spec("asymmetry_gap", theory.asymmetry_gap, lambda: dict(delta=DELTA, sigma=SIGMA_LOW, rank=R, noise_var=0.1),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma",)),
          "sigma": Arg(bad_covariances(SIGMA_LOW), ("delta",)), "rank": rank_arg(edges=(4,)),
          "noise_var": Arg(NONNEG)}),
    Spec("haar_stiefel", theory.haar_stiefel, lambda: dict(d=5, r=2, rng=rng(), draws=None),
         {"d": Arg(bad_ints(minimum=1), ("r",)), "r": Arg(bad_ints(minimum=1, maximum=5, edges=(5,))), "rng": RNG,
          "draws": Arg(bad_ints(minimum=1, edges=(1,), optional=True))}),
    Spec("cca_similarity", theory.cca_similarity, lambda: dict(m1=B, m2=B[:, ::-1], side="col"),
         {"m1": Arg(bad_arrays(B, fixed_axes=(0,)), ("m2",)), "m2": Arg(bad_arrays(B, fixed_axes=(0,)), ("m1",)),
          "side": Arg(bad_names(("col", "row")))}),
]

CMI_ARGS = {"supersample": Arg(bad_objects(("Estimate", bounds.Estimate(0.1, 0.0, 0.2, 4)))), "rng": RNG,
            "n_boot": Arg(COUNT), "confidence": Arg(OPEN_UNIT), "correction": Arg(bad_names(("miller_madow", "none")))}
LAYERS = Arg(st.one_of(
    st.sampled_from([Bad(label, value, RAISE) for label, value in [
        ("empty", []), ("None", None), ("string", "4x5"), ("one number", [(4,)]), ("triple", [(4, 5, 6)]),
        ("zero width", [(0, 5)]), ("float width", [(4.5, 5)]), ("bool width", [(True, 5)]),
        ("negative width", [(4, -1)]), ("nan width", [(4, math.nan)]), ("dict", {4: 5})]]),
))
VARIANT_ARG = Arg(bad_names(("lora", "b_only", "a_only", "full")))

BOUNDS = [
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
    Spec("lora_mi_nats", bounds.lora_mi_nats, lambda: dict(variant="lora", layers=[(4, 5)], rank=2, q_bits=8),
         {"variant": VARIANT_ARG, "layers": LAYERS, "rank": rank_arg(edges=(4,)), "q_bits": Arg(COUNT)}),
    Spec("lora_mi_bound", bounds.lora_mi_bound,
         lambda: dict(variant="b_only", layers=[(4, 5), (5, 5)], rank=2, q_bits=8, sigma=0.5, n=100),
         {"variant": VARIANT_ARG, "layers": LAYERS, "rank": rank_arg(edges=(4,)), "q_bits": Arg(COUNT),
          "sigma": Arg(POSITIVE), "n": Arg(COUNT)}),
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
         lambda: dict(samples=_rng.standard_normal((6, 3)), noise_std=0.5, rng=rng(), n_boot=5, confidence=0.9),
         {"samples": Arg(st.one_of(bad_arrays(np.ones((6, 3)), fixed_axes=()),
                                   st.just(Bad("one trial", np.ones((1, 3)), RAISE)))),
          "noise_std": Arg(POSITIVE), "rng": RNG, "n_boot": Arg(COUNT), "confidence": Arg(OPEN_UNIT)}),
    Spec("SupersampleConfig", bounds.SupersampleConfig, lambda: dict(n=3, k_z=2, k_u=1),
         {"n": Arg(COUNT), "k_z": Arg(bad_ints(minimum=2, edges=(2,))), "k_u": Arg(COUNT)}),
    Spec("Supersample", bounds.Supersample, lambda: dict(losses=SS_LOSSES, selectors=SS_SELECTORS),
         {"losses": Arg(st.one_of(bad_arrays(SS_LOSSES), st.sampled_from([
             Bad("above 1", SS_LOSSES + 1.0, RAISE), Bad("below 0", SS_LOSSES - 1.0, RAISE),
             Bad("one supersample", SS_LOSSES[:1], RAISE),
             Bad("too many levels", np.linspace(0, 1, SS_LOSSES.size).reshape(SS_LOSSES.shape), RAISE)])),
             ("selectors",)),
          "selectors": Arg(st.one_of(bad_arrays(SS_SELECTORS.astype(float)), st.sampled_from([
              Bad("a 2", SS_SELECTORS + 1, RAISE), Bad("a half", SS_SELECTORS * 0.5, RAISE)])), ("losses",))}),
    Spec("run_supersample", bounds.run_supersample,
         lambda: dict(train=_train, loss=_loss, sample=_sample, config=bounds.SupersampleConfig(n=3, k_z=2, k_u=1),
                      rng=rng()),
         {"train": Arg(bad_objects()), "loss": Arg(st.one_of(bad_objects(), st.sampled_from([
             Bad("returns NaN", lambda m, z: np.full(len(z), math.nan), RAISE),
             Bad("returns one number", lambda m, z: 0.5, RAISE),
             Bad("returns 2.0", lambda m, z: np.full(len(z), 2.0), RAISE)])), aliases=("losses",)),
          "sample": Arg(st.one_of(bad_objects(), st.just(Bad("returns 3 points", lambda r, size: np.zeros(3), RAISE)))),
          "config": Arg(bad_objects(("a task", TASK))), "rng": RNG}),
    *[Spec(fn.__name__, fn, lambda: dict(supersample=SUPERSAMPLE, rng=rng(), n_boot=5, confidence=0.9,
                                         correction="miller_madow"), CMI_ARGS)
      for fn in (bounds.ld_cmi_bound, bounds.ecmi_bound, bounds.binary_kl_bound, bounds.fast_rate_bound,
                 bounds.interpolation_bound)],
]


def _task_args() -> dict[str, Arg]:
    return {
        "d_in": Arg(bad_ints(minimum=1), ("delta_rank", "spectrum")),
        "d_out": Arg(bad_ints(minimum=1), ("delta_rank",)),
        "spectrum": Arg(st.one_of(bad_names(("isotropic", "powerlaw:1")), st.sampled_from([
            Bad(label, v, RAISE) for label, v in [
                ("negative exponent", "powerlaw:-1"), ("nan exponent", "powerlaw:nan"),
                ("inf exponent", "powerlaw:inf"), ("rank 0", "lowrank:0"), ("rank above d_in", "lowrank:99"),
                ("argument to isotropic", "isotropic:2"),
                ("no exponent", "powerlaw:")]]))),
        "delta_rank": rank_arg(edges=(4,)),
        "delta_singular_values": Arg(st.one_of(NONNEG, st.sampled_from([
            Bad("wrong length", (1.0, 2.0, 3.0), RAISE), Bad("nan entry", (1.0, math.nan), RAISE),
            Bad("negative entry", (1.0, -1.0), RAISE)]))),
        "alignment": Arg(bad_reals(minimum=0.0, maximum=1.0, edges=(0.0, 1.0), optional=True)),
        "noise_var": Arg(NONNEG), "w0_scale": Arg(NONNEG),
        "init": Arg(bad_names(("haar", "gaussian"))), "frozen": Arg(bad_names(("per_trial", "shared"))),
        "ridge": Arg(NONNEG), "clip": Arg(bad_reals(positive=True, optional=True)), "n_test": Arg(COUNT),
        "task_seed": Arg(SEED),
    }


def _mlp_args() -> dict[str, Arg]:
    layers = st.sampled_from([Bad(label, v, RAISE) for label, v in [
        ("empty", ()), ("out of range", (3,)), ("negative", (-1,)), ("repeated", (1, 1)), ("None", None),
        ("int", 1), ("float", (1.5,))]])
    return {
        "widths": Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
            ("empty", ()), ("one width", (4,)), ("zero width", (4, 0, 6, 3)), ("float width", (4, 2.5, 6, 3)),
            ("string", "abc"), ("None", None), ("int", 5)]]),
            ("adapted_layers", "perturbed_layers", "perturbation_rank")),
        "adapted_layers": Arg(layers), "perturbed_layers": Arg(layers), "teacher_seed": Arg(SEED),
        "task_seed": Arg(SEED),
        "perturbation_rank": Arg(bad_ints(minimum=1, maximum=6, edges=(6,))),
        "perturbation_scale": Arg(NONNEG), "logit_scale": Arg(POSITIVE),
        "kind": Arg(bad_names(("classification", "regression"))), "activation": Arg(bad_names(("tanh", "relu"))),
        "label_noise": Arg(UNIT), "noise_std": Arg(NONNEG),
        "input_dist": Arg(st.one_of(bad_names(("isotropic", "powerlaw:1")), st.sampled_from([
            Bad("negative exponent", "powerlaw:-1", RAISE), Bad("nan exponent", "powerlaw:nan", RAISE)]))),
        "test_size": Arg(COUNT), "steps": Arg(COUNT), "lr": Arg(POSITIVE),
        "batch_size": Arg(bad_ints(minimum=1, optional=True)), "alpha": Arg(bad_reals(positive=True, optional=True)),
        "init": Arg(bad_names(("haar", "gaussian"))),
        "clip": Arg(POSITIVE),
    }


TRIAL_IDS = Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
    ("None", None), ("empty", []), ("negative", [-1]), ("float", [0.5]), ("string", "0"), ("2-D", [[0, 1]]),
    ("nan", np.array([math.nan]))]]))
X_ARG = Arg(bad_arrays(X, fixed_axes=()), ("y", "a", "b", "frozen", "start"))
Y_ARG = Arg(bad_arrays(Y, fixed_axes=(0, 1)), ("x", "b"))
RIDGE = Arg(NONNEG)
TASK_ARG = Arg(bad_objects(("an MLPTask", MLP)))
Q_BITS = Arg(bad_ints(minimum=2, maximum=32, edges=(2, 32), optional=True))
GD_CONFIG = Arg(bad_objects(("a SupersampleConfig", SS_CONFIG)))
LINEAR_CALL = {"task": TASK_ARG, "variant": VARIANT_ARG, "rank": rank_arg(edges=(4,)), "n": Arg(COUNT),
               "trials": Arg(COUNT), "seed": Arg(SEED)}

SYNTHETIC = [
    Spec("LinearTask", synthetic.LinearTask,
         lambda: dict(d_in=D_IN, d_out=D_OUT, spectrum="powerlaw:1", delta_rank=R, delta_singular_values=1.0,
                      alignment=None, noise_var=0.1, w0_scale=1.0, init="haar", frozen="per_trial", ridge=0.0,
                      clip=4.0, n_test=64, task_seed=0), _task_args()),
    Spec("GDConfig", synthetic.GDConfig, lambda: dict(steps=3, lr=0.01, betas=(0.9, 0.999), threads=1),
         {"steps": Arg(COUNT), "lr": Arg(POSITIVE), "threads": Arg(COUNT),
          "betas": Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
              ("one", (0.9,)), ("nan", (math.nan, 0.9)), ("above 1", (0.9, 1.5)), ("negative", (-0.1, 0.9)),
              ("None", None), ("string", "ab"), ("int", 3)]]))}),
    Spec("MLPTask", synthetic.MLPTask, lambda: dataclasses.asdict(MLP), _mlp_args()),
    Spec("lstsq_batched", synthetic.lstsq_batched, lambda: dict(x=X, y=Y, ridge=0.0),
         {"x": X_ARG, "y": Y_ARG, "ridge": RIDGE}),
    Spec("fit_full", synthetic.fit_full, lambda: dict(x=X, y=Y, ridge=0.1), {"x": X_ARG, "y": Y_ARG, "ridge": RIDGE}),
    Spec("fit_b_only", synthetic.fit_b_only, lambda: dict(x=X, y=Y, a=A_STACK, ridge=0.0),
         {"x": X_ARG, "y": Y_ARG, "a": Arg(bad_arrays(A_STACK, fixed_axes=(0, 2)), ("x",)), "ridge": RIDGE}),
    Spec("fit_a_only", synthetic.fit_a_only, lambda: dict(x=X, y=Y, b=B_STACK, ridge=0.0),
         {"x": X_ARG, "y": Y_ARG, "b": Arg(st.one_of(bad_arrays(B_STACK, fixed_axes=(0, 1)), st.just(
             Bad("rank-deficient", np.zeros_like(B_STACK), RAISE))), ("x", "y")), "ridge": RIDGE}),
    Spec("fit_lora", synthetic.fit_lora, lambda: dict(x=X, y=Y, rank=R, ridge=0.0),
         {"x": X_ARG, "y": Y_ARG, "rank": rank_arg(edges=(4,)), "ridge": RIDGE}),
    Spec("frozen_factor", synthetic.frozen_factor,
         lambda: dict(init="w0_top_singular", side="a", d_in=D_IN, d_out=D_OUT, rank=R, rng=rng(), w0=TASK.w0),
         {"init": Arg(bad_names(("haar", "gaussian"))), "side": Arg(bad_names(("a", "b"))),
          "d_in": Arg(bad_ints(minimum=1), ("rank", "w0")), "d_out": Arg(bad_ints(minimum=1), ("rank", "w0")),
          "rank": rank_arg(edges=(4,)),
          "rng": RNG, "w0": Arg(bad_arrays(TASK.w0), ("d_in", "d_out"))}),
    Spec("sample_training_sets", synthetic.sample_training_sets, lambda: dict(task=TASK, n=6, trial_ids=IDS, seed=0),
         {"task": TASK_ARG, "n": Arg(COUNT), "trial_ids": TRIAL_IDS, "seed": Arg(SEED)}),
    Spec("frozen_factors", synthetic.frozen_factors,
         lambda: dict(task=TASK, variant="b_only", rank=R, trial_ids=IDS, seed=0),
         {"task": TASK_ARG, "variant": VARIANT_ARG, "rank": rank_arg(edges=(4,)), "trial_ids": TRIAL_IDS,
          "seed": Arg(SEED)}),
    Spec("population_losses", synthetic.population_losses, lambda: dict(task=TASK, m=M_STACK),
         {"task": TASK_ARG, "m": Arg(bad_arrays(M_STACK, fixed_axes=(1, 2)))}),
    Spec("clipped_test_losses", synthetic.clipped_test_losses,
         lambda: dict(task=TASK, m=M_STACK, trial_ids=IDS, seed=0, clip=2.0),
         {"task": TASK_ARG, "m": Arg(bad_arrays(M_STACK), ("trial_ids",)), "trial_ids": TRIAL_IDS, "seed": Arg(SEED),
          "clip": Arg(POSITIVE)}),
    Spec("linear_trial_losses", synthetic.linear_trial_losses,
         lambda: dict(task=TASK, variant="b_only", rank=R, n=6, trials=2, loss="population", q_bits=None, seed=0),
         {**LINEAR_CALL, "loss": Arg(bad_names(("population", "clipped"))), "q_bits": Q_BITS}),
    Spec("gd_fit", synthetic.gd_fit,
         lambda: dict(x=X, y=Y, variant="b_only", start={"b": np.zeros((2, D_OUT, R))}, frozen=A_STACK, config=GD,
                      ridge=0.0),
         {"x": X_ARG, "y": Y_ARG, "variant": Arg(bad_names(("b_only", "lora")), ("start",)),
          "start": Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
              ("None", None), ("empty", {}), ("wrong key", {"a": np.zeros((2, R, D_IN))}),
              ("nan", {"b": np.full((2, D_OUT, R), math.nan)}), ("wrong shape", {"b": np.zeros((2, D_OUT, R + 1))}),
              ("list", [np.zeros((2, D_OUT, R))])]])),
          "frozen": Arg(st.one_of(bad_arrays(A_STACK), st.just(Bad("None", None, RAISE))), ("start", "x")),
          "config": GD_CONFIG, "ridge": RIDGE}),
    Spec("gd_vs_closed_form", synthetic.gd_vs_closed_form,
         lambda: dict(task=TASK, variant="lora", rank=R, n=6, trials=2, seed=0, config=GD),
         {**LINEAR_CALL, "config": GD_CONFIG}),
    Spec("mean_interval", synthetic.mean_interval, lambda: dict(values=np.array([1.0, 2.0, 4.0]), level=0.95),
         {"values": Arg(st.one_of(bad_arrays(np.array([1.0, 2.0, 4.0]), fixed_axes=()),
                                  st.just(Bad("one value", np.array([1.0]), RAISE)))),
          "level": Arg(OPEN_UNIT)}),
    Spec("summarize", synthetic.summarize,
         lambda: dict(train_loss=np.array([1.0, 2.0, 4.0]), test_loss=np.array([2.0, 2.5, 5.0])),
         {"train_loss": Arg(bad_arrays(np.array([1.0, 2.0, 4.0])), ("test_loss",)),
          "test_loss": Arg(bad_arrays(np.array([2.0, 2.5, 5.0])), ("train_loss",))}),
    Spec("measure_gap", synthetic.measure_gap,
         lambda: dict(task=TASK, variant="a_only", rank=R, n=6, trials=2, loss="clipped", q_bits=None, seed=0),
         {**LINEAR_CALL, "task": Arg(bad_objects()), "trials": Arg(bad_ints(minimum=2, edges=(2,))),
          "loss": Arg(bad_names(("population", "clipped"))), "q_bits": Q_BITS}),
    Spec("quantize", synthetic.quantize, lambda: dict(params=_rng.standard_normal((2, 3)), q_bits=4),
         {"params": Arg(bad_arrays(np.ones((2, 3)), fixed_axes=(), any_ndim=True)),
          "q_bits": Arg(bad_ints(minimum=2, maximum=32, edges=(2, 32)))}),
    Spec("mlp_trial_losses", synthetic.mlp_trial_losses,
         lambda: dict(task=MLP, variant="b_only", rank=R, n=8, trials=2, loss="zero_one", q_bits=None, seed=0),
         {"task": Arg(bad_objects(("a LinearTask", TASK))), "variant": VARIANT_ARG,
          "rank": Arg(bad_ints(minimum=1, maximum=6, edges=(6,))), "n": Arg(COUNT), "trials": Arg(COUNT),
          "loss": Arg(bad_names(("zero_one", "cross_entropy"))), "q_bits": Q_BITS, "seed": Arg(SEED)}),
    Spec("similarity_grid", synthetic.similarity_grid,
         lambda: dict(task_seeds=(0, 1), init_seeds=(0, 1), task=MLP, rank=R, n=8, data_seed=0),
         {"task_seeds": Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
             ("empty", ()), ("None", None), ("negative", (-1,)), ("repeated", (1, 1)), ("float", (0.5,)),
             ("int", 3)]])),
          "init_seeds": Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
              ("empty", ()), ("None", None), ("negative", (-1,)), ("string", "ab")]])),
          "task": Arg(bad_objects(("a LinearTask", TASK)).filter(lambda b: b.value is not None)),  # None: the default
          "rank": Arg(bad_ints(minimum=1, maximum=6, edges=(6,))), "n": Arg(COUNT), "data_seed": Arg(SEED)}),
]

SPECS = THEORY + BOUNDS + SYNTHETIC


#: Public callables not in the fuzz table yet, and why: modules still being written by others.
NOT_FUZZED = {
    "adapted_shift_rms": "synthetic/channel.py, being written by another engineer",
    "perturbed_trial_losses": "synthetic/channel.py, being written by another engineer",
    "discretize": "synthetic/learners.py, being written by another engineer",
    "linear_supersample": "synthetic/learners.py, being written by another engineer",
    "mlp_fit": "synthetic/learners.py, being written by another engineer",
    "mlp_supersample": "synthetic/learners.py, being written by another engineer",
}


def test_every_public_callable_has_a_spec():
    """The fuzz table covers every public callable of theory, bounds and synthetic, except the
    plain result containers and the documented NOT_FUZZED ones."""
    containers = {"BoundResult", "Estimate", "HighProbabilityBound", "GapResult", "GapSummary", "Quantized"}
    public = {
        name for package in (theory, bounds, synthetic) for name in package.__all__
        if callable(getattr(package, name)) and name not in containers
    }
    assert public - set(NOT_FUZZED) == {spec.name for spec in SPECS}


def _called(call: Callable) -> str:
    """The public function a CASES lambda calls (its first attribute access on a package)."""
    names = call.__code__.co_names
    return next(n for package, n in zip(names, names[1:]) if package in ("theory", "bounds", "synthetic"))


def test_cases_cover_every_public_callable():
    """The table of cases has at least one row per public callable."""
    assert {_called(call) for call, _ in CASES} == {spec.name for spec in SPECS}


@pytest.mark.parametrize(("call", "fragment"), CASES, ids=[f"{_called(c)}: {f}" for c, f in CASES])
def test_table_of_cases(call, fragment):
    """Each row of CASES raises ValueError with the documented message."""
    with pytest.raises(ValueError) as info:
        call()
    assert fragment in str(info.value), str(info.value)


# --- the property ----------------------------------------------------------------------------


def _names(message: str, name: str) -> bool:
    """Whether ``message`` names ``name`` as a word (the article "a" does not count as ``a``)."""
    if name == "a":
        return re.search(r"^a\b|(?<![\w.'])a(?![\w])(?! [a-z0-9])", message) is not None
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message) is not None


def _has_nan(result: object) -> bool:
    if isinstance(result, torch.Tensor):
        return bool(torch.isnan(result).any())
    if isinstance(result, np.ndarray):
        return result.dtype.kind in "fc" and bool(np.isnan(result).any())
    if isinstance(result, float):
        return math.isnan(result)
    if isinstance(result, dict):
        return any(_has_nan(v) for v in result.values())
    if isinstance(result, (tuple, list)):
        return any(_has_nan(v) for v in result)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return any(_has_nan(getattr(result, f.name)) for f in dataclasses.fields(result))
    return False


def check(spec: Spec, arg: str, bad: Bad) -> None:
    """Call ``spec`` with ``arg`` replaced by ``bad.value``; assert what ``bad.expect`` demands."""
    kwargs = spec.valid()
    kwargs[arg] = bad.value
    where = f"{spec.name}({arg}={bad.label})"
    try:
        result = spec.fn(**kwargs)
    except ValueError as exc:
        message = str(exc)
        assert bad.expect != OK, f"{where}: a valid value was refused: {message}"
        names = (arg, *spec.args[arg].aliases, *(spec.args[arg].partners if bad.partners else ()))
        assert any(_names(message, n) for n in names), f"{where}: the message does not name {names}: {message}"
        return
    assert bad.expect != RAISE, f"{where}: accepted, returned {type(result).__name__}"
    assert not _has_nan(result), f"{where}: returned NaN"


CALLS = [(spec, arg) for spec in SPECS for arg in spec.args]


@pytest.mark.parametrize("spec", SPECS, ids=[spec.name for spec in SPECS])
def test_valid_baseline_calls_succeed_without_nan(spec):
    """The baseline each fuzz case starts from is itself valid, so a refusal is the fuzzed value's doing."""
    assert not _has_nan(spec.fn(**spec.valid()))


@pytest.mark.parametrize(("spec", "arg"), CALLS, ids=[f"{spec.name}-{arg}" for spec, arg in CALLS])
@given(data=st.data())
def test_bad_input_raises_value_error_naming_the_argument(spec, arg, data):
    """Every invalid argument of a public function raises ValueError naming it; valid edge values
    (zero noise, rank = min(d_in, d_out), ...) return a result without NaN."""
    check(spec, arg, data.draw(spec.args[arg].values, label=arg))


# --- the fuzz strategies themselves (STYLE.md rule 8) ----------------------------------------


@given(data=st.data())
def test_fuzz_strategies_draw_what_the_validation_helpers_refuse(data):
    """Values the fuzz strategies mark RAISE are refused by theory.validation's helpers for the same
    constraint, and values marked OK are accepted: the pools are what they claim to be."""
    bad = data.draw(bad_reals(minimum=0.0, maximum=1.0, edges=(0.0, 1.0)), label="real in [0, 1]")
    _agrees(bad, lambda v: validation.as_real(v, "v", minimum=0.0, maximum=1.0))
    bad = data.draw(bad_reals(positive=True, optional=True), label="positive real or None")
    _agrees(bad, lambda v: v is None or validation.as_real(v, "v", positive=True))
    bad = data.draw(bad_ints(minimum=1, maximum=5, edges=(5,)), label="rank")
    _agrees(bad, lambda v: validation.as_rank(v, 5, 6))
    bad = data.draw(bad_arrays(np.ones((2, 3))), label="(2, 3) array")
    _agrees(bad, lambda v: validation.as_array(v, "v", (2, 3)))
    bad = data.draw(bad_covariances(np.eye(3)), label="3 x 3 covariance")
    _agrees(bad, lambda v: validation.as_covariance(v, "v", dim=3))
    bad = data.draw(bad_names(("haar", "gaussian")), label="name")
    assert bad.expect == RAISE and bad.value not in ("haar", "gaussian")
    bad = data.draw(bad_generators(), label="generator")
    _agrees(bad, validation.as_generator)


def _agrees(bad: Bad, helper: Callable[[object], object]) -> None:
    if bad.expect == EITHER:
        return
    if bad.expect == OK:
        helper(bad.value)
        return
    with pytest.raises(ValueError):
        helper(bad.value)


# --- the command line ------------------------------------------------------------------------


def _invalid_seed(text: str) -> bool:
    try:
        return int(text) < 0
    except ValueError:
        return True


CLI_BAD = st.one_of(
    st.one_of(st.integers(max_value=-1).map(str), st.text("abcxyz.,_ 0123456789", min_size=1),
              st.floats().map(repr)).filter(_invalid_seed).map(lambda v: (["figures", "--seed", v], "--seed")),
    st.one_of(st.integers(max_value=-1).map(str), st.text("abc.,_", min_size=1)).filter(_invalid_seed)
    .map(lambda v: (["demo", "--seed", v], "--seed")),
    st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1).filter(lambda v: v not in registry.FIGURES)
    .map(lambda v: (["figures", "--only", v], f"unknown figure {v!r}")),
    st.sampled_from(["/proc/lora-asym-out", "/dev/null/out", "/proc/self/status/out"])
    .map(lambda v: (["figures", "--out", v], "--out")),
    st.sampled_from(["--bogus", "--quik", "-x"]).map(lambda v: (["figures", v], v)),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1).filter(lambda v: v not in ("figures", "list", "demo"))
    .map(lambda v: ([v], repr(v))),
)


@given(case=CLI_BAD)
def test_cli_bad_flag_is_one_error_line_and_status_2(case):
    """``lora-asym`` with one invalid flag value, figure name, output folder or subcommand exits with
    status 2 and prints one error line on stderr that names it, before any computation."""
    argv, fragment = case
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as info, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        cli.main(argv)
    assert info.value.code == cli.EXIT_USAGE, (argv, err.getvalue())
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], (argv, err.getvalue())
    assert out.getvalue() == ""
