"""Hypothesis strategies shared by the whole suite (STYLE.md rule 8); each is tested in test_strategies.py."""

from __future__ import annotations

import math
from typing import NamedTuple

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


# --- fuzz: invalid arguments for every public function (issue 7) ------------------------------
#
# Each strategy draws a ``Bad(label, value, expect, partners)``: ``expect`` is RAISE (the call must
# raise ValueError naming the argument), OK (a valid edge value: the call must succeed without NaN)
# or EITHER (valid for some calls, e.g. one more row of a factor whose row count is free);
# ``partners`` marks a shape change, whose error may name the argument it disagrees with instead.

RAISE, OK, EITHER = "raise", "ok", "either"

#: A finite value above ``theory.validation.MAX_ABS`` (1e150): its square overflows float64. Every
#: real and array argument is limited to ``MAX_ABS`` unless its strategy says otherwise (``huge``).
HUGE = 1e200


class Bad(NamedTuple):
    """One fuzzed argument value and what the call must do with it."""

    label: str
    value: object
    expect: str
    partners: bool = False


def _fixed(*items: tuple[str, object], expect: str = RAISE) -> st.SearchStrategy[Bad]:
    return st.sampled_from([Bad(label, value, expect) for label, value in items])


NOT_NUMBERS = (
    ("None", None), ("string", "0.5"), ("bool True", True), ("bool False", False), ("complex", 0.5 + 1j),
    ("list", [0.5, 0.5]), ("array", np.array([0.5, 0.5])),
)


def _none_ok(items: tuple[tuple[str, object], ...], optional: bool) -> list[st.SearchStrategy[Bad]]:
    """The fixed invalid values; with ``optional``, None moves to the valid (OK) values."""
    if not optional:
        return [_fixed(*items)]
    return [_fixed(*(i for i in items if i[1] is not None)), st.just(Bad("None (optional)", None, OK))]


def bad_reals(
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    open_max: bool = False,
    edges: tuple[float, ...] = (),
    optional: bool = False,
    huge: str = RAISE,
) -> st.SearchStrategy[Bad]:
    """Invalid values of a real argument: non-finite, not a number, outside its range, or above
    ``MAX_ABS`` in magnitude.

    ``minimum``/``maximum`` bound the valid range (``positive``: ``> 0``; ``open_max``: ``< maximum``);
    ``edges`` are valid boundary values, drawn with ``expect=OK``; ``optional``: None is valid;
    ``huge``: what the call must do with ``HUGE`` (and ``-HUGE`` when no minimum is set) — RAISE
    for the arguments limited to ``MAX_ABS``, OK for one that accepts any finite value.
    """
    parts = _none_ok((("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), *NOT_NUMBERS), optional)
    unbounded_below = minimum is None and not positive
    parts.append(_fixed(("above MAX_ABS", HUGE), *([("below -MAX_ABS", -HUGE)] if unbounded_below else []),
                        expect=huge))
    finite = {"allow_nan": False, "allow_infinity": False}
    if positive:
        parts.append(st.floats(max_value=0.0, **finite).map(lambda v: Bad("not > 0", v, RAISE)))
    elif minimum is not None:
        below = st.floats(max_value=minimum - max(abs(minimum), 1.0) * 1e-9, **finite)
        parts.append(below.map(lambda v: Bad("below minimum", v, RAISE)))
    if maximum is not None:
        above = st.floats(min_value=maximum, **finite) if open_max else st.floats(
            min_value=maximum + max(abs(maximum), 1.0) * 1e-9, **finite)
        parts.append(above.map(lambda v: Bad("above maximum", v, RAISE)))
    if edges:
        parts.append(st.sampled_from([Bad(f"edge {e!r}", e, OK) for e in edges]))
    return st.one_of(parts)


def bad_ints(
    *, minimum: int, maximum: int | None = None, edges: tuple[int, ...] = (), optional: bool = False
) -> st.SearchStrategy[Bad]:
    """Invalid values of an integer argument: floats, bools, None, strings, or out of range.

    Huge values are drawn only where the argument has a ``maximum``: a huge size is valid, just slow.
    ``optional``: None is valid.
    """
    parts = _none_ok((("float 2.5", 2.5), ("integral float 3.0", 3.0), ("nan", math.nan), ("inf", math.inf),
                      ("bool True", True), ("bool False", False), ("None", None), ("string", "3"),
                      ("array", np.array([3]))), optional)
    parts.append(st.integers(max_value=minimum - 1).map(lambda v: Bad("below minimum", v, RAISE)))
    if maximum is not None:
        parts.append(st.integers(min_value=maximum + 1, max_value=10**30).map(lambda v: Bad("above maximum", v, RAISE)))
    if edges:
        parts.append(st.sampled_from([Bad(f"edge {e!r}", e, OK) for e in edges]))
    return st.one_of(parts)


@st.composite
def _poisoned(draw, valid: np.ndarray, values: tuple[float, ...] = (math.nan, math.inf, -math.inf),
              label: str = "", expect: str = RAISE):
    """``valid`` with one entry replaced by one of ``values`` at a drawn position (label: the value,
    or ``label``, then the position)."""
    out = np.array(valid, dtype=np.float64)
    index = tuple(draw(st.integers(0, n - 1)) for n in out.shape)
    value = draw(st.sampled_from(values))
    out[index] = value
    return Bad(f"{label or value} at {index}", out, expect)


@st.composite
def _reshaped(draw, valid: np.ndarray, fixed_axes: tuple[int, ...]):
    """``valid`` one longer along a drawn axis: RAISE where that length is fixed by other arguments."""
    axis = draw(st.integers(0, valid.ndim - 1))
    first = np.take(valid, [0], axis=axis)
    grown = np.concatenate([valid, first], axis=axis)
    expect = RAISE if axis in fixed_axes else EITHER
    return Bad(f"one longer along axis {axis}", grown, expect, partners=True)


def bad_arrays(
    valid: np.ndarray, *, fixed_axes: tuple[int, ...] | None = None, any_ndim: bool = False, huge: str = RAISE
) -> st.SearchStrategy[Bad]:
    """Invalid values of an array argument whose valid value looks like ``valid``.

    NaN/inf entries, an entry of magnitude ``HUGE`` (``huge``: what the call must do with it, RAISE
    for the arrays limited to ``MAX_ABS``), one axis too few or too many (EITHER with ``any_ndim``:
    arrays of any rank are valid), an empty axis, complex entries, None, a string, a ragged nested
    list, an object array; and a length change along each axis (``fixed_axes``: the axes whose
    length other arguments fix, all of them by default).
    """
    valid = np.asarray(valid)
    fixed = tuple(range(valid.ndim)) if fixed_axes is None else fixed_axes
    empties = [(f"empty axis {k}", np.take(valid, [], axis=k)) for k in range(valid.ndim)]
    fixed_items = [
        *empties, ("complex", valid + 1j), ("None", None), ("string", "matrix"), ("ragged", [[1.0, 2.0], [3.0]]),
        ("object array", np.array([{"a": 1}], dtype=object)), ("scalar", 1.0),
    ]
    ranks = _fixed(("one axis too few", valid[0]), ("one axis too many", valid[None]),
                   expect=EITHER if any_ndim else RAISE)
    return st.one_of(_fixed(*fixed_items), ranks, _poisoned(valid),
                     _poisoned(valid, (HUGE, -HUGE), "above MAX_ABS", huge), _reshaped(valid, fixed))


def bad_covariances(valid: np.ndarray) -> st.SearchStrategy[Bad]:
    """``bad_arrays`` plus a non-symmetric and a non-PSD matrix of the same size; zero is EITHER."""
    d = valid.shape[0]
    top = float(np.linalg.eigvalsh(valid)[-1])
    asym = valid + np.triu(np.full((d, d), 0.5), 1)
    not_psd = valid - (top + 1.0) * np.outer(np.eye(d)[0], np.eye(d)[0])
    return st.one_of(
        bad_arrays(valid),
        _fixed(("non-symmetric", asym), ("not PSD", not_psd)),
        st.just(Bad("zero covariance", np.zeros((d, d)), EITHER, partners=True)),
    )


def bad_names(choices: tuple[str, ...]) -> st.SearchStrategy[Bad]:
    """Names not among ``choices``: unknown, empty, upper-cased, padded, None, a number, a list."""
    first = choices[0]
    items = [("unknown", "no_such_name"), ("empty", ""), ("padded", first + " "), ("None", None),
             ("int", 3), ("list", [first]), ("bytes", first.encode())]
    if first.upper() not in choices:
        items.append(("upper-case", first.upper()))
    return _fixed(*items)


def bad_generators() -> st.SearchStrategy[Bad]:
    """Things that are not a ``numpy.random.Generator``: None, a seed, a legacy RandomState, a string."""
    return _fixed(("None", None), ("int seed", 0), ("RandomState", np.random.RandomState(0)), ("string", "rng"))


def bad_objects(*extra: tuple[str, object]) -> st.SearchStrategy[Bad]:
    """Wrong types for an argument that must be an object of one class (task, config, callable)."""
    return _fixed(("None", None), ("string", "x"), ("int", 3), ("dict", {}), *extra)


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
