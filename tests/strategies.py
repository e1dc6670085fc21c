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
