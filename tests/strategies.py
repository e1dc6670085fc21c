"""Hypothesis strategies shared by the whole suite; each is tested in test_strategies.py.

The strategies of theory and bounds problems are public, in ``bounds.strategies`` (users property-test
their own bounds with them); this module re-exports them and adds those of the synthetic engines.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from bounds.strategies import (  # re-exported for the suite
    SPECTRA,
    covariance_from,
    covariances,
    layer_lists,
    linear_problems,
    lora_settings,
    loss_tables,
    metric_problems,
    mi_nats_values,
    mi_vectors,
    probabilities,
    seeds,
    shifts,
    spectrum,
    stiefel_factors,
    supersamples,
    symbol_arrays,
)

haar_factors = stiefel_factors


# --- synthetic (linear engine): tasks and batched least-squares problems ----------------------


@st.composite
def linear_tasks(draw, max_dim: int = 8, spectra: tuple[str, ...] = ("isotropic", "powerlaw", "lowrank")):
    """A small ``synthetic.linear.LinearTask``: dims, spectrum, Δ, alignment, noise, init."""
    from synthetic.linear.engine import LinearTask  # deferred: the strategies module must not need synthetic

    d_in = draw(st.integers(2, max_dim))
    d_out = draw(st.integers(2, max_dim))
    kind = draw(st.sampled_from(spectra))
    spec = {
        "isotropic": "isotropic",
        "powerlaw": f"powerlaw:{draw(st.sampled_from((0.5, 1.0, 2.0)))}",
        "lowrank": f"lowrank:{draw(st.integers(1, d_in))}",
    }[kind]
    k = draw(st.integers(1, min(d_in, d_out)))
    svals = draw(st.one_of(
        st.floats(0.1, 5.0),
        st.lists(st.floats(0.1, 5.0), min_size=k, max_size=k).map(tuple),
    ))
    return LinearTask(
        d_in=d_in,
        d_out=d_out,
        spectrum=spec,
        delta_rank=k,
        delta_singular_values=svals,
        alignment=draw(st.one_of(st.none(), st.floats(0.0, 1.0))),
        noise_var=draw(st.floats(0.0, 2.0)),
        init=draw(st.sampled_from(("haar", "kaiming_uniform", "gaussian", "w0_top_singular"))),
        clip=draw(st.floats(0.5, 20.0)),
        n_test=256,
        task_seed=draw(seeds),
    )


@st.composite
def batched_designs(draw, max_trials: int = 3, max_dim: int = 6, max_n: int = 14):
    """Stacks ``x`` (T, n, d_in), ``y`` (T, n, d_out) of least-squares problems, plus a rank.

    ``design`` says how ``x`` was made: ``"gaussian"`` (full rank when ``n >= d_in``),
    ``"wide"`` (``n < d_in``) or ``"deficient"`` (rank ``deficient_rank < min(n, d_in)``, exact
    duplicate directions: singular sample systems).
    """
    trials = draw(st.integers(1, max_trials))
    d_in = draw(st.integers(2, max_dim))
    d_out = draw(st.integers(2, max_dim))
    design = draw(st.sampled_from(("gaussian", "wide", "deficient")))
    n = draw(st.integers(1, d_in - 1)) if design == "wide" else draw(st.integers(d_in + 2, max_n + d_in))
    rng = np.random.default_rng(draw(seeds))
    x = rng.standard_normal((trials, n, d_in))
    deficient_rank = None
    if design == "deficient":
        deficient_rank = draw(st.integers(1, d_in - 1))
        x = x[:, :, :deficient_rank] @ rng.standard_normal((deficient_rank, d_in))
    y = rng.standard_normal((trials, n, d_out))
    return {
        "x": x,
        "y": y,
        "design": design,
        "deficient_rank": deficient_rank,
        "rank": draw(st.integers(1, min(d_in, d_out))),
        "ridge": draw(st.sampled_from((0.0, 0.0, 0.05, 1.0))),
    }


# --- synthetic (small-MLP engine): tiny teacher tasks ------------------------------------------


@st.composite
def mlp_tasks(draw, max_width: int = 8, max_layers: int = 3, kinds: tuple[str, ...] = ("classification", "regression")):
    """A tiny valid ``synthetic.mlp.MLPTask``: widths, adapted and perturbed layers, k, rho, kind.

    ``test_size`` and ``steps`` are small so that a training run takes milliseconds.
    """
    from synthetic.mlp.engine import MLPTask  # deferred: the strategies module must not need synthetic

    n_layers = draw(st.integers(1, max_layers))
    widths = tuple(draw(st.lists(st.integers(2, max_width), min_size=n_layers + 1, max_size=n_layers + 1)))
    layer_sets = st.sets(st.integers(0, n_layers - 1), min_size=1).map(lambda s: tuple(sorted(s)))
    adapted = draw(layer_sets)
    perturbed = draw(layer_sets)
    k_max = min(min(widths[l], widths[l + 1]) for l in perturbed)
    return MLPTask(
        widths=widths,
        adapted_layers=adapted,
        perturbed_layers=perturbed,
        teacher_seed=draw(seeds),
        task_seed=draw(seeds),
        perturbation_rank=draw(st.integers(1, k_max)),
        perturbation_scale=draw(st.one_of(st.just(0.0), st.floats(0.05, 2.0))),
        logit_scale=draw(st.floats(0.5, 8.0)),
        kind=draw(st.sampled_from(kinds)),
        label_noise=draw(st.floats(0.0, 1.0)),
        noise_std=draw(st.floats(0.0, 1.0)),
        input_dist=draw(st.sampled_from(("isotropic", "powerlaw:1.0", "powerlaw:2.5"))),
        test_size=64,
        steps=draw(st.integers(1, 5)),
        lr=draw(st.sampled_from((1e-3, 1e-2))),
        init=draw(st.sampled_from(("haar", "kaiming_uniform", "gaussian", "w0_top_singular"))),
        clip=draw(st.floats(0.5, 10.0)),
    )


BOUND_VARIANTS = ("full", "lora", "b_only", "a_only")


# --- performance and sweeps ----------------------------------------------------------------


def relu_mlp_tasks(**kwargs):
    """``mlp_tasks`` with ReLU hidden activations (the ``activation`` field of ``MLPTask``)."""
    from dataclasses import replace

    return mlp_tasks(**kwargs).map(lambda task: replace(task, activation="relu"))


@st.composite
def sweep_points(draw, max_dim: int = 6):
    """A valid ``synthetic.sweep.SweepPoint`` on a tiny ``LinearTask`` (2-4 trials, n <= 12)."""
    from synthetic.sweep import SweepPoint  # deferred: the strategies module must not need synthetic

    task = draw(linear_tasks(max_dim=max_dim))
    variant = draw(st.sampled_from(("b_only", "a_only", "lora", "full")))
    rank = draw(st.integers(1, min(task.d_in, task.d_out)))
    return SweepPoint(task=task, variant=variant, rank=rank, n=draw(st.integers(2, 12)),
                      trials=draw(st.integers(2, 4)), loss="population", seed=draw(st.integers(0, 2**16)))
