r"""Hypothesis strategies for property-testing bounds and closed forms, the way the toolkit tests its own.

A user who writes a bound of their own can test it against the toolkit's measured gaps, or an
inequality against its closed forms, on the same kinds of problems the toolkit's suite draws:

* ``covariances(d, kinds)`` — symmetric PSD ``Σ`` with an isotropic, power-law or low-rank
  spectrum and a Haar-random eigenbasis (``spectrum`` and ``covariance_from`` build one by hand);
* ``stiefel_factors(d, r)`` — Haar frames with orthonormal columns, the frozen factors of
  Section 4.1 of Zhu et al. (ICML 2024);
* ``shifts(d_out, d_in, rank)`` and ``linear_problems()`` — a shift ``Δ`` and a whole Section 4.1
  problem (Δ, Σ, s², frozen A and B); ``metric_problems()`` adds an output metric ``G``
  (docs/THEORY.md §1b);
* ``layer_lists``, ``lora_settings`` — the arguments of Lemma 4.5 (``bounds.lora_mi_bound``);
* ``loss_tables`` and ``supersamples`` — the ``(losses, selectors)`` arrays of a supersample
  experiment, the input of the conditional-MI bounds (``bounds.ld_cmi_bound(losses, selectors, rng)``);
* ``mi_vectors``, ``symbol_arrays`` — per-sample MIs and quantized symbols.

Every strategy is itself tested (``tests/bounds/test_bounds_strategies.py``). Example::

    from hypothesis import given
    from bounds.strategies import lora_settings
    import bounds

    @given(lora_settings())
    def test_my_bound_is_tighter(setting):
        assert my_bound(**setting) <= bounds.lora_mi_bound("lora", **setting)
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from bounds.supersample import MAX_LOSS_LEVELS, _supersample
from theory.random import haar_stiefel

#: Spectra ``covariances`` draws from.
SPECTRA = ("isotropic", "powerlaw", "lowrank")
#: Seeds of the generators behind every drawn array (so that hypothesis can shrink them).
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def spectrum(kind: str, d: int, *, alpha: float = 1.0, k: int = 1, scale: float = 1.0) -> np.ndarray:  # -> (d,)
    """Eigenvalues, descending: ``isotropic`` all equal, ``powerlaw`` ``i^-alpha``, ``lowrank`` k equal, rest 0.

    The input spectra of Section 4.1's ``Σ`` (docs/THEORY.md §1.1, §1.6), times ``scale``.

    Parameters
    ----------
    kind : {"isotropic", "powerlaw", "lowrank"}
    d : int
        Dimension.
    alpha, k, scale
        The power-law exponent, the rank of ``lowrank``, and the top eigenvalue.

    Returns
    -------
    ndarray
        (d,) eigenvalues.
    """
    if kind == "isotropic":
        return np.full(d, scale)
    if kind == "powerlaw":
        return scale * np.arange(1, d + 1, dtype=float) ** -alpha
    if kind == "lowrank":
        return np.r_[np.full(k, scale), np.zeros(d - k)]
    raise ValueError(f"kind must be one of {SPECTRA}, got {kind!r}")


def covariance_from(eigenvalues: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # (d,) -> (d, d)
    """``V diag(λ) Vᵀ`` with a Haar rotation ``V``; symmetric by construction.

    ``V`` from ``theory.haar_stiefel(d, d)`` (Haar sampling, docs/THEORY.md §0).

    Parameters
    ----------
    eigenvalues : ndarray
        (d,) the spectrum ``λ``.
    rng : numpy.random.Generator
        Source of ``V``.

    Returns
    -------
    ndarray
        (d, d) the covariance.
    """
    d = eigenvalues.size
    v = haar_stiefel(d, d, rng)
    out = (v * eigenvalues) @ v.T
    return (out + out.T) / 2


@st.composite
def covariances(draw, d: int, kinds: tuple[str, ...] = SPECTRA, max_rank: int | None = None):
    """A (d, d) PSD covariance with a spectrum of one of ``kinds`` (``max_rank`` caps a low rank).

    ``covariance_from(spectrum(kind, d, ...))`` with drawn exponent ``alpha in [0.5, 3]``, rank and
    scale ``in [0.1, 10]``: the input covariances ``Σ`` of Section 4.1 (docs/THEORY.md §1.1).

    Parameters
    ----------
    d : int
        Dimension.
    kinds : tuple of str
        Spectra to draw from (``SPECTRA``).
    max_rank : int, optional
        Largest ``k`` of a ``lowrank`` spectrum (``d`` by default).

    Returns
    -------
    A hypothesis strategy of (d, d) ndarrays.
    """
    kind = draw(st.sampled_from(kinds))
    alpha = draw(st.floats(0.5, 3.0))
    k = draw(st.integers(1, max_rank if max_rank is not None else d))
    scale = draw(st.floats(0.1, 10.0))
    return covariance_from(spectrum(kind, d, alpha=alpha, k=k, scale=scale), np.random.default_rng(draw(seeds)))


@st.composite
def shifts(draw, d_out: int, d_in: int, rank: int | None = None):
    """A (d_out, d_in) shift Δ of the given rank (drawn when None), Gaussian singular vectors.

    ``Δ = scale · G_1 G_2 / sqrt(k)`` with Gaussian ``G_1`` (d_out, k), ``G_2`` (k, d_in) and
    ``scale in [0.1, 10]``: the shift ``Δ = W_t − W0`` of Section 4.1 (docs/THEORY.md §1.1).

    Parameters
    ----------
    d_out, d_in : int
        The layer's shape.
    rank : int, optional
        ``k``; drawn from ``[1, min(d_out, d_in)]`` when None.

    Returns
    -------
    A hypothesis strategy of (d_out, d_in) ndarrays.
    """
    k = rank if rank is not None else draw(st.integers(1, min(d_out, d_in)))
    rng = np.random.default_rng(draw(seeds))
    scale = draw(st.floats(0.1, 10.0))
    return scale * rng.standard_normal((d_out, k)) @ rng.standard_normal((k, d_in)) / np.sqrt(k)


@st.composite
def stiefel_factors(draw, d: int, r: int):
    """A (d, r) Haar-distributed matrix with orthonormal columns (``theory.haar_stiefel``).

    A frozen factor of the theory: ``A = Qᵀ`` or ``B = U`` on a Stiefel manifold (docs/THEORY.md §0).

    Parameters
    ----------
    d, r : int
        Rows and orthonormal columns, ``r <= d``.

    Returns
    -------
    A hypothesis strategy of (d, r) ndarrays.
    """
    return haar_stiefel(d, r, np.random.default_rng(draw(seeds)))


@st.composite
def linear_problems(draw, max_dim: int = 8, kinds: tuple[str, ...] = SPECTRA):
    """A Section 4.1 problem: ``d_out``, ``d_in``, ``rank``, ``delta``, ``sigma``, ``noise_var``, Haar ``a``, ``b``.

    Eq. (1)'s task (docs/THEORY.md §1.1) with both frozen factors drawn (§0): ``a`` (rank, d_in)
    with orthonormal rows, ``b`` (d_out, rank) with orthonormal columns; dimensions in
    ``[2, max_dim]``, ``noise_var in [0, 2]``.

    Parameters
    ----------
    max_dim : int
        Largest ``d_out`` and ``d_in``.
    kinds : tuple of str
        Spectra of ``sigma`` (``covariances``).

    Returns
    -------
    A hypothesis strategy of dicts.
    """
    d_out = draw(st.integers(2, max_dim))
    d_in = draw(st.integers(2, max_dim))
    rank = draw(st.integers(1, min(d_out, d_in)))
    return {
        "d_out": d_out, "d_in": d_in, "rank": rank,
        "delta": draw(shifts(d_out, d_in)),
        "sigma": draw(covariances(d_in, kinds)),
        "noise_var": draw(st.floats(0.0, 2.0)),
        "a": draw(stiefel_factors(d_in, rank)).T,
        "b": draw(stiefel_factors(d_out, rank)),
    }


@st.composite
def metric_problems(draw, max_dim: int = 8, kinds: tuple[str, ...] = SPECTRA):
    """``linear_problems`` plus ``metric``: an output metric ``G`` (d_out, d_out), PSD, of one of ``kinds``.

    The problem of eq. (1G), a layer inside a network whose loss weighs outputs by ``G``
    (docs/THEORY.md §1b.1).

    Parameters
    ----------
    max_dim, kinds
        As in ``linear_problems``; ``kinds`` also gives the spectrum of ``G``.

    Returns
    -------
    A hypothesis strategy of dicts.
    """
    problem = draw(linear_problems(max_dim, kinds))
    return {**problem, "metric": draw(covariances(problem["d_out"], kinds))}


@st.composite
def layer_lists(draw, max_layers: int = 4, max_dim: int = 256, square: bool = False):
    """A non-empty list of ``(d_out, d_in)`` layers, each dimension in ``[1, max_dim]``.

    The ``layers`` argument of Lemma 4.5 (``bounds.lora_mi_bound``; Zhu et al., ICML 2024,
    Section 4.2.1; docs/THEORY.md §2.2).

    Parameters
    ----------
    max_layers : int
        Most layers.
    max_dim : int
        Largest dimension.
    square : bool
        Draw ``d_out = d_in`` for every layer.

    Returns
    -------
    A hypothesis strategy of lists of (int, int).
    """
    count = draw(st.integers(1, max_layers))
    dims = st.integers(1, max_dim)
    if square:
        return [(d, d) for d in draw(st.lists(dims, min_size=count, max_size=count))]
    return [(draw(dims), draw(dims)) for _ in range(count)]


@st.composite
def lora_settings(draw, max_layers: int = 4, max_dim: int = 256, square: bool = False):
    """Keyword arguments of ``lora_mi_bound`` but the variant: layers, a rank valid for every layer, q_bits, sigma, n.

    Lemma 4.5's setting (Zhu et al., ICML 2024; docs/THEORY.md §2.2): ``q_bits in [1, 32]``,
    ``sigma in [1e-3, 1e3]``, ``n in [1, 10^7]``.

    Parameters
    ----------
    max_layers, max_dim, square
        As in ``layer_lists``.

    Returns
    -------
    A hypothesis strategy of dicts.
    """
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
    """A (n,) array of non-negative per-sample mutual informations in nats, each in ``[0, 1e6]``.

    The ``I(W; Z_i)`` of the individual-sample bound (``bounds.individual_sample_bound``;
    docs/THEORY.md §2.3).

    Parameters
    ----------
    max_size : int
        Largest ``n``.

    Returns
    -------
    A hypothesis strategy of (n,) ndarrays.
    """
    size = draw(st.integers(1, max_size))
    return np.array(draw(st.lists(mi_nats_values, min_size=size, max_size=size)))


@st.composite
def symbol_arrays(draw, max_size: int = 64, max_abs: int = 2**15):
    """A (size,) int64 array of quantized symbols within ``[-max_abs, max_abs - 1]``, at most 6 distinct.

    Quantized parameters as ``bounds.code_length_bits`` codes them (docs/THEORY.md §6).

    Parameters
    ----------
    max_size : int
        Largest ``size``.
    max_abs : int
        Range of the symbols.

    Returns
    -------
    A hypothesis strategy of (size,) ndarrays.
    """
    size = draw(st.integers(1, max_size))
    levels = draw(st.lists(st.integers(-max_abs, max_abs - 1), min_size=1, max_size=6, unique=True))
    return np.array(draw(st.lists(st.sampled_from(levels), min_size=size, max_size=size)), dtype=np.int64)


@st.composite
def loss_tables(draw, max_k_z: int = 12, max_k_u: int = 3, max_n: int = 6, max_levels: int = MAX_LOSS_LEVELS):
    """Losses (k_z, k_u, n, 2) in [0, 1] on a grid of at most ``max_levels`` values, and selectors (k_z, k_u, n).

    The losses of a model on both samples of each supersample pair, and which sample trained it;
    the selectors are fair coins, as the supersample construction (Steinke & Zakynthinou 2020) draws them
    (docs/THEORY.md §2.4).

    Parameters
    ----------
    max_k_z, max_k_u, max_n : int
        Largest sizes; ``k_z >= 2``.
    max_levels : int
        Most grid values of the losses.

    Returns
    -------
    A hypothesis strategy of ``(losses, selectors)`` pairs of ndarrays.
    """
    k_z, k_u, n = draw(st.integers(2, max_k_z)), draw(st.integers(1, max_k_u)), draw(st.integers(1, max_n))
    levels = draw(st.integers(2, max(2, max_levels)))
    rng = np.random.default_rng(draw(seeds))
    losses = rng.integers(0, levels, size=(k_z, k_u, n, 2)) / (levels - 1)
    return losses, rng.integers(0, 2, size=(k_z, k_u, n))


@st.composite
def supersamples(draw, **sizes: int):
    """``(losses, selectors)`` from ``loss_tables(**sizes)`` as the CMI bounds validate them (float64
    losses, int64 selectors): valid first arguments of every bound of ``bounds.cmi`` (docs/THEORY.md §2.4).

    Parameters
    ----------
    **sizes : int
        Keyword arguments of ``loss_tables``.

    Returns
    -------
    A hypothesis strategy of ``(losses, selectors)`` pairs of ndarrays.
    """
    ss = _supersample(*draw(loss_tables(**sizes)))
    return ss.losses, ss.selectors
