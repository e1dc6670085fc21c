"""The bad-input fuzz table of ``theory``: the cases tried, their messages, and a spec
per public callable (``tests/fuzz/fuzz_specs.py`` explains the machinery; ``tests/fuzz/test_fuzz.py`` runs it).
"""

from __future__ import annotations

import math

import numpy as np

import theory
from tests.fuzz.fuzz_specs import D_IN, D_OUT, NONNEG, R, RNG, Arg, Spec, rank_arg, rng
from tests.fuzz.fuzz_values import bad_arrays, bad_covariances, bad_ints, bad_names

# --- valid baselines --------------------------------------------------------------------------

_rng = np.random.default_rng(7)
DELTA = _rng.standard_normal((D_OUT, D_IN))
_g = _rng.standard_normal((D_IN, D_IN))
SIGMA = _g @ _g.T / D_IN + 0.1 * np.eye(D_IN)
_u = theory.haar_stiefel(D_IN, R, _rng)
SIGMA_LOW = _u @ _u.T  # rank R, for asymmetry_gap
A = theory.haar_stiefel(D_IN, R, _rng).T
B = theory.haar_stiefel(D_OUT, R, _rng)
Q3 = theory.haar_stiefel(D_IN, R, _rng, draws=3)
_h = _rng.standard_normal((D_OUT, D_OUT))
METRIC = _h @ _h.T / D_OUT + 0.1 * np.eye(D_OUT)  # an output metric G (docs/THEORY.md §1b)
U3 = theory.haar_stiefel(D_OUT, R, _rng, draws=3)


# --- the table of cases tried and their messages ----------------------------------------------
# (call, fragment of the message it must raise); each public callable appears at least once.

CASES = [
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
    (lambda: theory.loss_a_only(DELTA, B, SIGMA, 0.1, metric=-METRIC), "metric must be positive semi-definite"),
    (lambda: theory.expected_loss_a_only(DELTA, SIGMA, R, 0.1, metric=METRIC),
     "metric is not a multiple of the identity"),
    (lambda: theory.expected_loss_a_only_mc(DELTA, SIGMA, R, 0.1, metric=METRIC[:2, :2], draws=4, rng=rng()),
     "metric has shape (2, 2); axis 0 must have length 4"),
    (lambda: theory.captured_fraction(SIGMA, 6, draws=4, rng=rng()), "rank 6 exceeds the dimension d = 5 of cov"),
    (lambda: theory.captured_fraction(np.zeros((3, 3)), 1, draws=4, rng=rng()), "cov is zero"),
    (lambda: theory.effective_rank(np.ones((2, 3))), "cov must be square, got shape (2, 3)"),
]


# --- the specs: a valid call and the invalid values of each argument --------------------------

SPECS = [
    Spec("population_loss", theory.population_loss,
         lambda: dict(delta=DELTA, m=np.zeros((D_OUT, D_IN)), sigma=SIGMA, noise_var=0.1, metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA), ("m", "sigma", "metric")), "m": Arg(bad_arrays(DELTA), ("delta",)),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "noise_var": Arg(NONNEG),
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("optimal_b", theory.optimal_b, lambda: dict(delta=DELTA, a=A, sigma=SIGMA),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("a", "sigma")),
          "a": Arg(bad_arrays(A, fixed_axes=(1,)), ("delta",)), "sigma": Arg(bad_covariances(SIGMA), ("delta", "a"))}),
    Spec("optimal_a", theory.optimal_a, lambda: dict(delta=DELTA, b=B, sigma=SIGMA, metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(0,)), ("b", "sigma", "metric")),
          "b": Arg(bad_arrays(B, fixed_axes=(0,)), ("delta",)), "sigma": Arg(bad_covariances(SIGMA), ("delta",)),
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("loss_b_only", theory.loss_b_only, lambda: dict(delta=DELTA, a=A, sigma=SIGMA, noise_var=0.1, metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("a", "sigma", "metric")),
          "a": Arg(bad_arrays(A, fixed_axes=(1,)), ("delta",)), "sigma": Arg(bad_covariances(SIGMA), ("delta",)),
          "noise_var": Arg(NONNEG),
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("loss_a_only", theory.loss_a_only, lambda: dict(delta=DELTA, b=B, sigma=SIGMA, noise_var=0.1, metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(0,)), ("b", "sigma", "metric")),
          "b": Arg(bad_arrays(B, fixed_axes=(0,)), ("delta",)), "sigma": Arg(bad_covariances(SIGMA), ("delta",)),
          "noise_var": Arg(NONNEG),
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("best_rank_update", theory.best_rank_update, lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma", "metric")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "rank": rank_arg(edges=(min(D_IN, D_OUT),)),
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("loss_lora", theory.loss_lora, lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1, metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma", "metric")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "rank": rank_arg(edges=(1, 4)), "noise_var": Arg(NONNEG),
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("loss_full", theory.loss_full, lambda: dict(delta=DELTA, sigma=SIGMA, noise_var=0.1, metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma", "metric")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "noise_var": Arg(NONNEG),
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("sqrtm_psd", theory.sqrtm_psd, lambda: dict(sigma=SIGMA), {"sigma": Arg(bad_covariances(SIGMA))}),
    Spec("expected_loss_a_only", theory.expected_loss_a_only,
         lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1, metric=2.0 * np.eye(D_OUT)),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma", "metric")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "rank": rank_arg(edges=(4,)), "noise_var": Arg(NONNEG),
          "metric": Arg(bad_covariances(2.0 * np.eye(D_OUT), optional=True), ("delta",))}),
    Spec("expected_loss_a_only_mc", theory.expected_loss_a_only_mc,
         lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1, draws=4, rng=rng(), metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma", "metric")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "rank": rank_arg(edges=(4,)), "noise_var": Arg(NONNEG),
          "draws": Arg(bad_ints(minimum=2, edges=(2,))), "rng": RNG,
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("captured_fraction", theory.captured_fraction, lambda: dict(cov=SIGMA, rank=R, draws=4, rng=rng()),
         {"cov": Arg(bad_covariances(SIGMA), ("rank",)), "rank": Arg(bad_ints(minimum=1, maximum=D_IN, edges=(D_IN,))),
          "draws": Arg(bad_ints(minimum=2, edges=(2,))), "rng": RNG}),
    Spec("effective_rank", theory.effective_rank, lambda: dict(cov=SIGMA), {"cov": Arg(bad_covariances(SIGMA))}),
    Spec("expected_loss_b_only", theory.expected_loss_b_only,
         lambda: dict(delta=DELTA, sigma=SIGMA, rank=R, noise_var=0.1, draws=4, rng=rng(), metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma", "metric")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "rank": rank_arg(edges=(4,)), "noise_var": Arg(NONNEG),
          "draws": Arg(bad_ints(minimum=2, edges=(2,))), "rng": RNG,
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("loss_b_only_draws", theory.loss_b_only_draws, lambda: dict(delta=DELTA, sigma=SIGMA, q=Q3, noise_var=0.1, metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(1,)), ("sigma", "q", "metric")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "q": Arg(bad_arrays(Q3, fixed_axes=(1,)), ("delta",)),
          "noise_var": Arg(NONNEG),
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
    Spec("loss_a_only_draws", theory.loss_a_only_draws, lambda: dict(delta=DELTA, sigma=SIGMA, u=U3, noise_var=0.1, metric=METRIC),
         {"delta": Arg(bad_arrays(DELTA, fixed_axes=(0,)), ("sigma", "u", "metric")),
          "sigma": Arg(bad_covariances(SIGMA), ("delta",)), "u": Arg(bad_arrays(U3, fixed_axes=(1, 2)), ("delta",)),
          "noise_var": Arg(NONNEG),
          "metric": Arg(bad_covariances(METRIC, optional=True), ("delta",))}),
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
