r"""Figure 3: where the asymmetry holds, vanishes and reverses.

Heatmap of the normalised gap ``(E[L_a_only] − E[L_b_only]) / Tr[ΔΣΔᵀ]`` over the spectral decay
``α`` of ``Σ = diag(i^{−α})`` (``α = 0``: isotropic) and the alignment of ``Δ``'s row space with
``Σ``'s eigenvectors (0: Δ on the lowest-variance inputs, 1: on the highest;
``synthetic.LinearTask.alignment``). ``E[L_a_only]`` is exact (Haar B); ``E[L_b_only]`` is a
Monte Carlo mean over Haar A. Positive: b_only wins, as Zhu et al. (ICML 2024) argue; zero: no
asymmetry (isotropic Σ); negative: the asymmetry reverses (THEORY.md's counterexample).
"""

from __future__ import annotations

import sys

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import theory
from figures.cache import memo
from figures.output import render
from synthetic.linear import LinearTask

NAME = "asymmetry_map"
DESCRIPTION = "Heatmap of the normalised gap over (decay of Σ, alignment of Δ): holds, vanishes, reverses."


@dataclass(frozen=True)
class Config:
    """A square ``d × d`` layer at rank ``rank``, Δ of rank ``delta_rank``, a grid of (α, alignment)."""

    d: int = 32
    rank: int = 4
    delta_rank: int = 4
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
    alignments: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    draws: int = 200

    @classmethod
    def quick(cls) -> "Config":
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Seconds-sized, for smoke tests."""
        return cls(d=8, rank=2, delta_rank=2, alphas=(0.0, 2.0), alignments=(0.0, 1.0), draws=8)

    @classmethod
    def full(cls) -> "Config":
        return cls(
            d=64,
            alphas=(0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0),
            alignments=tuple(np.round(np.linspace(0, 1, 21), 3)),
            draws=1000,
        )


def task(config: Config, alpha: float, alignment: float, seed: int) -> LinearTask:
    """The linear task of one grid cell (unit singular values of Δ)."""
    spectrum = "isotropic" if alpha == 0 else f"powerlaw:{alpha:g}"
    return LinearTask(
        d_in=config.d, d_out=config.d, spectrum=spectrum, delta_rank=config.delta_rank,
        delta_singular_values=1.0, alignment=alignment, noise_var=0.0, task_seed=seed,
    )


def cell(config: Config, alpha: float, alignment: float, seed: int) -> dict[str, np.ndarray]:
    """Normalised gap and its standard error at one (α, alignment)."""
    t = task(config, alpha, alignment, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(1000 * alpha), int(1000 * alignment)]))
    energy = float(np.trace(t.delta @ t.sigma @ t.delta.T))
    mean_b, se_b = theory.expected_loss_b_only(t.delta, t.sigma, config.rank, 0.0, draws=config.draws, rng=rng)
    exact_a = theory.expected_loss_a_only(t.delta, t.sigma, config.rank, 0.0)
    return {"gap": np.array((exact_a - mean_b) / energy), "gap_se": np.array(se_b / energy)}


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """``gap`` and ``gap_se`` as (len(alignments), len(alphas)) arrays."""
    grid = [(i, j) for i in range(len(config.alignments)) for j in range(len(config.alphas))]
    gap = np.empty((len(config.alignments), len(config.alphas)))
    se = np.empty_like(gap)
    for i, j in tqdm(grid, desc=f"{NAME}: Monte Carlo per (α, alignment)", leave=False):
        al, alpha = config.alignments[i], config.alphas[j]
        params = {"config": asdict(config), "alpha": alpha, "alignment": al, "seed": seed}
        out = memo(cache_dir, NAME, params, lambda: cell(config, alpha, al, seed), force=force)
        gap[i, j], se[i, j] = out["gap"], out["gap_se"]
    return {"alphas": np.array(config.alphas), "alignments": np.array(config.alignments), "gap": gap, "gap_se": se}


def plot(data: dict, ax=None):
    """Diverging heatmap of the normalised gap; dots mark cells where it is not distinguishable from 0."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    ax = ax if ax is not None else plt.gca()
    gap = data["gap"]
    limit = max(float(np.abs(gap).max()), 1e-12)
    mesh = ax.imshow(
        gap, origin="lower", aspect="auto", cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit),
    )
    ax.grid(False)
    flat = np.argwhere(np.abs(gap) <= 2 * data["gap_se"])  # no asymmetry detectable at ±2 s.e.
    ax.plot(flat[:, 1], flat[:, 0], "o", ms=3, color="black", label="|gap| within 2 s.e. of 0")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    ax.set_xticks(range(len(data["alphas"])), [f"{a:g}" for a in data["alphas"]])
    step = max(1, len(data["alignments"]) // 6)
    ax.set_yticks(range(0, len(data["alignments"]), step), [f"{a:g}" for a in data["alignments"][::step]])
    ax.set_xlabel("spectral decay α of Σ (0 = isotropic)")
    ax.set_ylabel("alignment of Δ with Σ's top eigenvectors")
    ax.figure.colorbar(mesh, ax=ax, label="(E[L_a_only] − E[L_b_only]) / Tr[ΔΣΔᵀ]")
    return ax


def caption(config: Config, data: dict) -> str:
    """The setting, then the measured extremes and the isotropic column."""
    gap = data["gap"]
    iso = np.abs(gap[:, 0]).max() if config.alphas[0] == 0 else np.nan
    neg = int(np.sum(gap < -2 * data["gap_se"]))
    return (
        f"Square {config.d}x{config.d} layer at rank {config.rank}, Δ of rank {config.delta_rank} placed by alignment "
        f"among the eigenvectors of Σ = diag(i^-α); {config.draws} Haar draws of A per cell, normalised by Tr[ΔΣΔᵀ]. "
        f"The gap ranges from {gap.min():.3f} (α={config.alphas[np.unravel_index(gap.argmin(), gap.shape)[1]]:g}, "
        f"alignment {config.alignments[np.unravel_index(gap.argmin(), gap.shape)[0]]:g}) to {gap.max():.3f}; "
        f"it is at most {iso:.3f} in absolute value for isotropic Σ, and significantly negative "
        f"(b_only loses) in {neg} of {gap.size} cells."
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for this figure."""
    return dict(figsize=(7, 4.8))


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` on the axes made with ``SUBPLOTS``."""
    plot(data, ax=axes)


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save the figure, its data and caption.

    ``config`` overrides the ``quick``/``full`` preset (the tests use ``Config.tiny()``).
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
