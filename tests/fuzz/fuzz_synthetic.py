"""The bad-input fuzz table of ``synthetic``: the cases tried, their messages, and a spec
per public callable (``tests/fuzz/fuzz_specs.py`` explains the machinery; ``tests/fuzz/test_fuzz.py`` runs it).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from hypothesis import strategies as st

import synthetic
from synthetic.mlp.task import ADAM_BETA1, FLOAT32_MAX, MAX_SCALE
from tests.fuzz.fuzz_specs import (
    COUNT,
    D_IN,
    D_OUT,
    NONNEG,
    OPEN_UNIT,
    POSITIVE,
    R,
    RNG,
    SEED,
    UNIT,
    VARIANT_ARG,
    Arg,
    Spec,
    rank_arg,
    rng,
)
from tests.fuzz.fuzz_supersample import SUPERSAMPLE_CASES, SUPERSAMPLE_SPECS
from tests.fuzz.fuzz_values import OK, RAISE, Bad, bad_arrays, bad_ints, bad_names, bad_objects, bad_reals
from theory.validation import MAX_ABS

# --- valid baselines --------------------------------------------------------------------------

TASK = synthetic.LinearTask(d_in=D_IN, d_out=D_OUT, spectrum="powerlaw:1", delta_rank=R, clip=4.0, n_test=64)
IDS = np.arange(2)
X, Y = synthetic.sample_training_sets(TASK, 6, IDS, seed=0)
A_STACK = synthetic.frozen_factors(TASK, "b_only", R, IDS, seed=0)
B_STACK = synthetic.frozen_factors(TASK, "a_only", R, IDS, seed=0)
M_STACK = np.zeros((2, D_OUT, D_IN))
GD = synthetic.GDConfig(steps=3)
MLP = synthetic.MLPTask(widths=(4, 6, 6, 3), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2,
                        test_size=64, steps=3)
#: A task on which full fine-tuning lowers the test loss within 30 steps (``measure_advantage`` needs it).
ADV_MLP = synthetic.MLPTask(widths=(4, 6, 3), adapted_layers=(0,), perturbed_layers=(0,), perturbation_rank=3,
                            perturbation_scale=1.0, kind="regression", test_size=64, steps=30, lr=3e-2)
SS_CONFIG = synthetic.SupersampleConfig(n=3, k_z=4, k_u=2)

_rng = np.random.default_rng(11)
MLP_X = _rng.standard_normal((2, 8, 4))  # two training sets of 8 inputs of MLP
MLP_Y = _rng.integers(0, 3, size=(2, 8))  # their class labels
LOSS = np.array([[0.0, 0.5, 1.2], [3.0, 4.0, 2.5]])  # losses clipped at TASK.clip

# --- the table of cases tried and their messages ----------------------------------------------
# (call, fragment of the message it must raise); each public callable appears at least once.

CASES = [
    (lambda: synthetic.LinearTask(spectrum="powerlaw:nan"), "spectrum 'powerlaw:nan' is not"),
    (lambda: synthetic.GDConfig(betas=(0.9,)), "betas must be a pair of decay rates in [0, 1), got (0.9,)"),
    (lambda: synthetic.MLPTask(widths=(4, 0, 3)), "widths must be >= 1, got 0"),
    (lambda: synthetic.MLPTask(logit_scale=1e149), "logit_scale is 1e+149; the limit is 1e+06 (it scales the float32"),
    (lambda: synthetic.MLPTask(kind="regression", noise_std=1e7), "noise_std is 1e+07; the limit is 1e+06"),
    (lambda: synthetic.MLPTask(lr=1e38),
     "lr is 1e+38; Adam's first step lr / (1 - 0.9) = 1e+39 exceeds the largest float32, 3.4e+38"),
    (lambda: synthetic.MLPTask(clip=1e39), "clip is 1e+39; the limit is 3.4e+38 (the loss is clipped in float32"),
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
    (lambda: synthetic.layer_geometry(MLP, 3, samples=16, seed=0), "layer 3 is out of range: the MLP has layers 0..2"),
    (lambda: synthetic.layer_geometry(TASK, 0, samples=16, seed=0), "task must be an MLPTask, got LinearTask"),
    (lambda: synthetic.predict_asymmetry(MLP, 7, samples=16, draws=8, seed=0),
     "rank 7 exceeds min(d_in, d_out) = 6 of adapted layer 1"),
    (lambda: synthetic.predict_asymmetry(dataclasses.replace(MLP, logit_scale=1e6), R, samples=16, draws=8, seed=0),
     "task has a zero output metric G at layer 1"),
    (lambda: synthetic.predict_asymmetry(MLP, R, samples=16, draws=1, seed=0), "draws must be >= 2, got 1"),
    (lambda: synthetic.measure_advantage(ADV_MLP, 5, 32, 2, seed=0), "rank 5 exceeds min(d_in, d_out) = 4"),
    (lambda: synthetic.measure_advantage(ADV_MLP, R, 32, 1, seed=0), "trials must be >= 2, got 1"),
    (lambda: synthetic.measure_advantage(dataclasses.replace(ADV_MLP, perturbation_scale=0.0), R, 32, 2, seed=0),
     "full fine-tuning did not lower the mean test loss"),
    (lambda: synthetic.similarity_grid((0, 0), (0, 1), task=MLP, rank=R, n=8), "task_seeds has repeated seeds: (0, 0)"),
    (lambda: synthetic.similarity_grid((0, 1), (2,), task=dataclasses.replace(MLP, lr=1e-200), rank=R, n=8),
     "the trained B of layer 1 in cell (task seed 0, init seed 2) is zero"),
    (lambda: synthetic.adapted_shift_rms("linear"), "task must be a LinearTask or an MLPTask, got str"),
    (lambda: synthetic.perturbed_trial_losses(TASK, "b_only", R, 6, 2, tau=-0.1, loss="population", seed=0),
     "tau must be >= 0.0, got -0.1"),
    (lambda: synthetic.perturbed_trial_losses(MLP, "lora", R, 8, 2, tau=0.1, loss="population", seed=0),
     "loss must be one of ('cross_entropy', 'zero_one') for a classification task, got 'population'"),
    (lambda: synthetic.discretize(np.array([0.5, math.nan]), 4.0, 8), "loss contains NaN or infinite entries"),
    (lambda: synthetic.discretize(LOSS, 0.0, 8), "clip must be > 0, got 0.0"),
    (lambda: synthetic.discretize(LOSS, -4.0, 8), "clip must be > 0, got -4.0"),
    (lambda: synthetic.discretize("0.5", 4.0, 8), "loss must be a real array, got '0.5'"),
    (lambda: synthetic.discretize(LOSS, 2.0, 8), "loss must lie in [0, clip] = [0, 2.0], got values in [0, 4]"),
    (lambda: synthetic.discretize(LOSS - 1.0, 4.0, 8), "loss must lie in [0, clip] = [0, 4.0], got values in [-1, 3]"),
    (lambda: synthetic.linear_supersample(dataclasses.replace(TASK, clip=None), "b_only", R, 4, 2, 1, seed=0),
     "task.clip must be set"),
    (lambda: synthetic.linear_supersample(TASK, "b_only", R, 4, 2, 1, eval_points=5, seed=0),
     "eval_points 5 exceeds n = 4"),
    (lambda: synthetic.mlp_fit(MLP, "lora", R, MLP_X, MLP_Y + 1, seed=0),
     "y must hold class labels 0 .. 2 of a classification task, got labels in [1, 3]"),
    (lambda: synthetic.mlp_fit(MLP, "lora", R, MLP_X, MLP_Y, seed=0, order_rngs=[rng()]),
     "order_rngs must be None or hold one numpy.random.Generator per trial (2), got a list of 1"),
    (lambda: synthetic.mlp_fit(MLP, "lora", R, "inputs", MLP_Y, seed=0), "x must be a real array, got 'inputs'"),
    (lambda: synthetic.mlp_fit(MLP, "lora", R, MLP_X * 1e40, MLP_Y, seed=0),
     "the limit is 1e+06 (training runs in float32"),
    (lambda: synthetic.mlp_supersample(dataclasses.replace(MLP, kind="regression"), "lora", R, 4, 2, 1, seed=0),
     "task.kind must be 'classification' (0-1 loss) for mlp_supersample, got 'regression'"),
    *SUPERSAMPLE_CASES,
]


# --- the specs: a valid call and the invalid values of each argument --------------------------


def _task_args() -> dict[str, Arg]:
    return {
        "d_in": Arg(bad_ints(minimum=1), ("delta_rank", "spectrum")),
        "d_out": Arg(bad_ints(minimum=1), ("delta_rank",)),
        "spectrum": Arg(st.one_of(bad_names(("isotropic", "powerlaw:1")), st.sampled_from([
            Bad(label, v, RAISE) for label, v in [
                ("negative exponent", "powerlaw:-1"), ("nan exponent", "powerlaw:nan"),
                ("inf exponent", "powerlaw:inf"), ("rank 0", "lowrank:0"), ("rank above d_in", "lowrank:99"),
                ("argument to isotropic", "isotropic:2"),
                ("no exponent", "powerlaw:")]]),
            st.just(Bad("exponent above MAX_ABS: one input direction", "powerlaw:1e200", OK)))),
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


def _float32_limited(values: st.SearchStrategy[Bad], limit: float) -> st.SearchStrategy[Bad]:
    """``values`` plus reals above ``limit`` and within MAX_ABS, which an ``MLPTask`` field refuses
    because training runs in float32 (``synthetic.mlp.task``: ``MAX_SCALE``, ``FLOAT32_MAX``)."""
    above = st.floats(min_value=limit * (1 + 1e-9), max_value=MAX_ABS)
    return st.one_of(values, above.map(lambda v: Bad("above the MLPTask limit", v, RAISE)))


SCALE_NONNEG = _float32_limited(bad_reals(minimum=0.0, edges=(0.0, MAX_SCALE)), MAX_SCALE)
SCALE_POSITIVE = _float32_limited(bad_reals(positive=True, edges=(MAX_SCALE,)), MAX_SCALE)


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
        "perturbation_scale": Arg(SCALE_NONNEG), "logit_scale": Arg(SCALE_POSITIVE),
        "kind": Arg(bad_names(("classification", "regression"))), "activation": Arg(bad_names(("tanh", "relu"))),
        "label_noise": Arg(UNIT), "noise_std": Arg(SCALE_NONNEG),
        "input_dist": Arg(st.one_of(bad_names(("isotropic", "powerlaw:1")), st.sampled_from([
            Bad("negative exponent", "powerlaw:-1", RAISE), Bad("nan exponent", "powerlaw:nan", RAISE),
            Bad("exponent above MAX_ABS: one input direction", "powerlaw:1e200", OK)]))),
        "test_size": Arg(COUNT), "steps": Arg(COUNT),
        "lr": Arg(_float32_limited(bad_reals(positive=True, edges=(1e37,)), (1 - ADAM_BETA1) * FLOAT32_MAX)),
        "batch_size": Arg(bad_ints(minimum=1, optional=True)),
        "alpha": Arg(_float32_limited(bad_reals(positive=True, edges=(MAX_SCALE,), optional=True), MAX_SCALE)),
        "init": Arg(bad_names(("haar", "gaussian"))),
        "clip": Arg(_float32_limited(bad_reals(positive=True, edges=(FLOAT32_MAX,)), FLOAT32_MAX)),
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

MLP_RANK = Arg(bad_ints(minimum=1, maximum=6, edges=(6,)))  # the adapted layer of MLP is 6 x 6
EVAL_POINTS = Arg(bad_ints(minimum=1, maximum=4, edges=(1, 4), optional=True))  # in [1, n], n = 4 in the baselines
SUPERSAMPLE_SIZES = {"n": Arg(COUNT), "k_z": Arg(bad_ints(minimum=2, edges=(2,))), "k_u": Arg(COUNT)}
LABELS = st.sampled_from([Bad(label, v, RAISE) for label, v in [
    ("label = classes", np.where(MLP_Y == 0, 3, MLP_Y)), ("negative label", MLP_Y - 1),
    ("fractional label", MLP_Y + 0.5), ("bool labels", MLP_Y > 0)]])
ORDER_RNGS = Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
    ("one Generator for two trials", [rng()]), ("three Generators", [rng(), rng(), rng()]),
    ("seeds", [0, 1]), ("a Generator", rng()), ("string", "rng"), ("RandomStates", [np.random.RandomState(0)] * 2)]]))


SPECS = [
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
         lambda: dict(task=TASK, variant="b_only", rank=R, n=6, trials=2, loss="population", q_bits=None, seed=0,
                      sampler="data"),
         {**LINEAR_CALL, "loss": Arg(bad_names(("population", "clipped"))), "q_bits": Q_BITS,
          "sampler": Arg(bad_names(("data", "sufficient")))}),
    Spec("gd_fit", synthetic.gd_fit,
         lambda: dict(x=X, y=Y, variant="b_only", start={"b": np.zeros((2, D_OUT, R))}, frozen=A_STACK, config=GD,
                      ridge=0.0),
         {"x": X_ARG, "y": Y_ARG, "variant": Arg(bad_names(("b_only", "lora")), ("start",)),
          "start": Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
              ("None", None), ("empty", {}), ("wrong key", {"a": np.zeros((2, R, D_IN))}),
              ("nan", {"b": np.full((2, D_OUT, R), math.nan)}), ("wrong shape", {"b": np.zeros((2, D_OUT, R + 1))}),
              ("above MAX_ABS", {"b": np.full((2, D_OUT, R), 1e200)}),
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
    Spec("layer_geometry", synthetic.layer_geometry, lambda: dict(task=MLP, layer=1, samples=16, seed=0),
         {"task": Arg(bad_objects(("a LinearTask", TASK))), "layer": Arg(bad_ints(minimum=0, maximum=2, edges=(0, 2))),
          "samples": Arg(COUNT), "seed": Arg(SEED)}),
    Spec("predict_asymmetry", synthetic.predict_asymmetry,
         lambda: dict(task=MLP, rank=R, samples=16, draws=8, seed=0),
         {"task": Arg(bad_objects(("a LinearTask", TASK), ("a saturated softmax: G = 0", dataclasses.replace(
             MLP, logit_scale=1e6)))),
          "rank": MLP_RANK, "samples": Arg(COUNT), "draws": Arg(bad_ints(minimum=2, edges=(2,))), "seed": Arg(SEED)}),
    Spec("measure_advantage", synthetic.measure_advantage,
         lambda: dict(task=ADV_MLP, rank=R, n=32, trials=2, seed=0),
         {"task": Arg(bad_objects(("a LinearTask", TASK))), "rank": Arg(bad_ints(minimum=1, maximum=4, edges=(1,))),
          "n": Arg(bad_ints(minimum=1)), "trials": Arg(bad_ints(minimum=2, edges=(2,))), "seed": Arg(SEED)}),
    Spec("similarity_grid", synthetic.similarity_grid,
         lambda: dict(task_seeds=(0, 1), init_seeds=(0, 1), task=MLP, rank=R, n=8, data_seed=0),
         {"task_seeds": Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
             ("empty", ()), ("None", None), ("negative", (-1,)), ("repeated", (1, 1)), ("float", (0.5,)),
             ("int", 3)]])),
          "init_seeds": Arg(st.sampled_from([Bad(label, v, RAISE) for label, v in [
              ("empty", ()), ("None", None), ("negative", (-1,)), ("string", "ab")]])),
          "task": Arg(bad_objects(("a LinearTask", TASK), ("lr too small to move B", dataclasses.replace(
              MLP, lr=1e-200))).filter(lambda b: b.value is not None)),  # None: the default
          "rank": Arg(bad_ints(minimum=1, maximum=6, edges=(6,))), "n": Arg(COUNT), "data_seed": Arg(SEED)}),
    Spec("adapted_shift_rms", synthetic.adapted_shift_rms, lambda: dict(task=TASK), {"task": Arg(bad_objects())}),
    Spec("perturbed_trial_losses", synthetic.perturbed_trial_losses,
         lambda: dict(task=TASK, variant="b_only", rank=R, n=6, trials=2, tau=0.1, loss="clipped", q_bits=None,
                      seed=0),
         {**LINEAR_CALL, "task": Arg(bad_objects()), "tau": Arg(NONNEG),
          "loss": Arg(bad_names(("population", "clipped"))), "q_bits": Q_BITS}, tag="linear"),
    Spec("perturbed_trial_losses", synthetic.perturbed_trial_losses,
         lambda: dict(task=MLP, variant="lora", rank=R, n=8, trials=2, tau=0.1, loss="zero_one", q_bits=None, seed=0),
         {"variant": VARIANT_ARG, "rank": MLP_RANK, "n": Arg(COUNT), "trials": Arg(COUNT), "tau": Arg(NONNEG),
          "loss": Arg(bad_names(("zero_one", "cross_entropy"))), "q_bits": Q_BITS, "seed": Arg(SEED)}, tag="mlp"),
    Spec("discretize", synthetic.discretize, lambda: dict(loss=LOSS, clip=4.0, levels=8),
         {"loss": Arg(st.one_of(bad_arrays(LOSS, fixed_axes=(), any_ndim=True), st.sampled_from([
             Bad("negative entry", LOSS - 0.5, RAISE), Bad("above clip", LOSS + 0.5, RAISE, partners=True)])),
             ("clip",)),
          "clip": Arg(st.one_of(POSITIVE, st.just(Bad("below the largest loss", 3.5, RAISE, partners=True))),
                      ("loss",)),
          "levels": Arg(bad_ints(minimum=1, maximum=31, edges=(1, 31)))}),
    Spec("linear_supersample", synthetic.linear_supersample,
         lambda: dict(task=TASK, variant="b_only", rank=R, n=4, k_z=2, k_u=1, q_bits=None, levels=8, eval_points=None,
                      seed=0),
         {"task": Arg(bad_objects(("an MLPTask", MLP), ("no clip", dataclasses.replace(TASK, clip=None)))),
          "variant": VARIANT_ARG, "rank": rank_arg(edges=(4,)), **SUPERSAMPLE_SIZES, "q_bits": Q_BITS,
          "levels": Arg(bad_ints(minimum=1, maximum=31, edges=(1, 31))), "eval_points": EVAL_POINTS,
          "seed": Arg(SEED)}),
    Spec("mlp_fit", synthetic.mlp_fit,
         lambda: dict(task=MLP, variant="lora", rank=R, x=MLP_X, y=MLP_Y, q_bits=None, seed=0, order_rngs=None),
         {"task": Arg(bad_objects(("a LinearTask", TASK))), "variant": VARIANT_ARG, "rank": MLP_RANK,
          "x": Arg(bad_arrays(MLP_X), ("y",)), "y": Arg(st.one_of(bad_arrays(MLP_Y.astype(float)), LABELS), ("x",)),
          "q_bits": Q_BITS, "seed": Arg(SEED), "order_rngs": ORDER_RNGS}),
    Spec("mlp_supersample", synthetic.mlp_supersample,
         lambda: dict(task=MLP, variant="lora", rank=R, n=4, k_z=2, k_u=1, q_bits=None, eval_points=None, seed=0),
         {"task": Arg(bad_objects(("a LinearTask", TASK), ("a regression task", dataclasses.replace(
             MLP, kind="regression")))),
          "variant": VARIANT_ARG, "rank": MLP_RANK, **SUPERSAMPLE_SIZES, "q_bits": Q_BITS, "eval_points": EVAL_POINTS,
          "seed": Arg(SEED)}),
    *SUPERSAMPLE_SPECS,
]
