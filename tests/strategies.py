"""Hypothesis strategies shared by the whole suite (STYLE.md rule 8); each is tested in test_strategies.py."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from theory.random import haar_stiefel


# --- theory: covariances, shifts and frozen factors ------------------------------------------

SPECTRA = ("isotropic", "powerlaw", "lowrank")

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def spectrum(kind: str, d: int, *, alpha: float = 1.0, k: int = 1, scale: float = 1.0) -> np.ndarray:
    """Eigenvalues (d,), descending: ``isotropic`` all equal, ``powerlaw`` ``i^-alpha``, ``lowrank`` k equal."""
    if kind == "isotropic":
        return np.full(d, scale)
    if kind == "powerlaw":
        return scale * np.arange(1, d + 1, dtype=float) ** -alpha
    if kind == "lowrank":
        return np.r_[np.full(k, scale), np.zeros(d - k)]
    raise ValueError(f"unknown spectrum {kind!r}")


def covariance_from(eigenvalues: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``V diag(λ) Vᵀ`` with a Haar rotation ``V``; symmetric by construction."""
    d = eigenvalues.size
    v = haar_stiefel(d, d, rng)
    out = (v * eigenvalues) @ v.T
    return (out + out.T) / 2


@st.composite
def covariances(draw, d: int, kinds: tuple[str, ...] = SPECTRA, max_rank: int | None = None):
    """A (d, d) PSD covariance with an isotropic, power-law or low-rank spectrum."""
    kind = draw(st.sampled_from(kinds))
    alpha = draw(st.floats(0.5, 3.0))
    k = draw(st.integers(1, max_rank if max_rank is not None else d))
    scale = draw(st.floats(0.1, 10.0))
    return covariance_from(spectrum(kind, d, alpha=alpha, k=k, scale=scale), np.random.default_rng(draw(seeds)))


@st.composite
def shifts(draw, d_out: int, d_in: int, rank: int | None = None):
    """A (d_out, d_in) shift Δ of the given rank (drawn when None), Gaussian singular vectors."""
    k = rank if rank is not None else draw(st.integers(1, min(d_out, d_in)))
    rng = np.random.default_rng(draw(seeds))
    scale = draw(st.floats(0.1, 10.0))
    return scale * rng.standard_normal((d_out, k)) @ rng.standard_normal((k, d_in)) / np.sqrt(k)


@st.composite
def haar_factors(draw, d: int, r: int):
    """A (d, r) Haar-distributed matrix with orthonormal columns."""
    return haar_stiefel(d, r, np.random.default_rng(draw(seeds)))


@st.composite
def linear_problems(draw, max_dim: int = 8, kinds: tuple[str, ...] = SPECTRA):
    """A whole Section 4.1 problem: dims, rank, Δ, Σ, noise variance, Haar A and B."""
    d_out = draw(st.integers(2, max_dim))
    d_in = draw(st.integers(2, max_dim))
    rank = draw(st.integers(1, min(d_out, d_in)))
    return {
        "d_out": d_out,
        "d_in": d_in,
        "rank": rank,
        "delta": draw(shifts(d_out, d_in)),
        "sigma": draw(covariances(d_in, kinds)),
        "noise_var": draw(st.floats(0.0, 2.0)),
        "a": draw(haar_factors(d_in, rank)).T,
        "b": draw(haar_factors(d_out, rank)),
    }


# --- synthetic (linear engine): tasks and batched least-squares problems ----------------------


@st.composite
def linear_tasks(draw, max_dim: int = 8, spectra: tuple[str, ...] = ("isotropic", "powerlaw", "lowrank")):
    """A small ``synthetic.linear.LinearTask``: dims, spectrum, Δ, alignment, noise, init."""
    from synthetic.linear import LinearTask  # deferred: the strategies module must not need synthetic

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
    from synthetic.mlp import MLPTask  # deferred: the strategies module must not need synthetic

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


# --- bounds: layer lists, LoRA settings and information quantities (issue 3) ----------------

BOUND_VARIANTS = ("full", "lora", "b_only", "a_only")


@st.composite
def layer_lists(draw, max_layers: int = 4, max_dim: int = 256, square: bool = False):
    """A non-empty list of ``(d_out, d_in)`` layers, each dimension in ``[1, max_dim]``."""
    count = draw(st.integers(1, max_layers))
    dims = st.integers(1, max_dim)
    if square:
        return [(d, d) for d in draw(st.lists(dims, min_size=count, max_size=count))]
    return [(draw(dims), draw(dims)) for _ in range(count)]


@st.composite
def lora_settings(draw, max_layers: int = 4, max_dim: int = 256, square: bool = False):
    """Arguments of ``lora_mi_bound``: layers, a rank valid for every layer, q_bits, sigma, n."""
    layers = draw(layer_lists(max_layers, max_dim, square))
    max_rank = min(min(d_out, d_in) for d_out, d_in in layers)
    return {
        "layers": layers,
        "rank": draw(st.integers(1, max_rank)),
        "q_bits": draw(st.integers(1, 32)),
        "sigma": draw(st.floats(1e-3, 1e3)),
        "n": draw(st.integers(1, 10**7)),
    }


mi_nats_values = st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False)

probabilities = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def mi_vectors(draw, max_size: int = 50):
    """A (n,) array of non-negative per-sample mutual informations in nats."""
    size = draw(st.integers(1, max_size))
    return np.array(draw(st.lists(mi_nats_values, min_size=size, max_size=size)))


@st.composite
def symbol_arrays(draw, max_size: int = 64, max_abs: int = 2**15):
    """A (size,) int64 array of quantized symbols within ``[-max_abs, max_abs - 1]``."""
    size = draw(st.integers(1, max_size))
    levels = draw(st.lists(st.integers(-max_abs, max_abs - 1), min_size=1, max_size=6, unique=True))
    return np.array(draw(st.lists(st.sampled_from(levels), min_size=size, max_size=size)), dtype=np.int64)


# --- performance and sweeps (issue 6) --------------------------------------------------------


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
