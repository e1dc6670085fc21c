r"""Figure 2: the asymmetry gap ``E[L_a_only] − E[L_b_only]`` and how often b_only wins, vs d/r.

Left: the measured gap (Monte Carlo over Haar ``A`` and ``B``, ±2 s.e.), normalised by
``Tr[ΔΣΔᵀ]``, against docs/THEORY.md eq. (4) for a rank-r Σ with equal eigenvalues (Zhu et al.,
ICML 2024, Section 4.1.1), and, for a full-rank power-law Σ, against the expected gap for a
shift of random orientation, ``f(Σ, r) − r/d`` (docs/THEORY.md eq. (5), derived;
``theory.captured_fraction``), and the large-effective-rank approximation
``r Tr[ΔΣ²Δᵀ]/(Tr Σ Tr[ΔΣΔᵀ]) − r/d``, which is close to it only when the effective rank
``(Tr Σ)²/Tr Σ²`` is much larger than r (docs/THEORY.md §1b.4). Right: the fraction of
paired draws ``(Q, U)`` in which ``L_b_only(Qᵀ) < L_a_only(U)`` (Theorem 4.3: with high
probability as d/r grows), with an isotropic Σ as the no-asymmetry reference.
"""

from __future__ import annotations

import sys

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import theory
from figures.parallel import Unit, run_units
from figures.output import render

NAME = "asymmetry_gap"
DESCRIPTION = "Measured E[L_a_only] - E[L_b_only] vs d/r against eq. (4); how often b_only wins."
SPECTRA = ("lowrank", "powerlaw", "isotropic")


@dataclass(frozen=True)
class Config:
    """Square ``d × d`` layers at a fixed rank; Monte Carlo draws per point."""

    rank: int = 4
    dims: tuple[int, ...] = (8, 16, 32, 64, 128)
    draws: int = 400
    powerlaw_alpha: float = 1.0
    noise_var: float = 0.1

    @classmethod
    def quick(cls) -> "Config":
        """The quick preset (``lora-asym figures``): Figure 2 at the defaults (Theorem 4.3; docs/THEORY.md §1.5–§1.6)."""
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Figure 2 at seconds size (Theorem 4.3; docs/THEORY.md §1.5–§1.6), for smoke tests."""
        return cls(rank=2, dims=(4, 8), draws=16)

    @classmethod
    def full(cls) -> "Config":
        """The full preset (``lora-asym figures --full``): Figure 2 at larger sizes (Theorem 4.3; docs/THEORY.md §1.5–§1.6)."""
        return cls(dims=(8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256), draws=4000)


def eigenvalues(kind: str, d: int, config: Config) -> np.ndarray:
    """Σ's spectrum: rank-r equal (``lowrank``), ``i^-α`` (``powerlaw``) or all ones.

    ``lowrank`` is the setting of eq. (4) (Section 4.1.1 of Zhu et al.; docs/THEORY.md §1.6).

    Parameters
    ----------
    kind : {"lowrank", "powerlaw", "isotropic"}
    d : int
        Dimension.
    config : Config
        Gives ``rank`` and ``powerlaw_alpha``.

    Returns
    -------
    ndarray
        (d,) eigenvalues.
    """
    if kind == "lowrank":
        return np.r_[np.ones(config.rank), np.zeros(d - config.rank)]
    if kind == "powerlaw":
        return np.arange(1, d + 1, dtype=float) ** -config.powerlaw_alpha
    return np.ones(d)


def point(config: Config, kind: str, d: int, seed: int) -> dict[str, np.ndarray]:
    """One (spectrum, d) point: normalised gap, its s.e., win fraction, and the theory values.

    ``(mean L_a_only − mean L_b_only) / Tr[ΔΣΔᵀ]`` over ``draws`` paired Haar draws ``(Q, U)``
    and the fraction with ``L_b_only(Qᵀ) < L_a_only(U)`` (Theorem 4.3), beside eq. (4)
    (``theory.asymmetry_gap``, ``lowrank`` only), eq. (5) ``f(Σ, r) − r/d``
    (``theory.captured_fraction``) and the approximation ``r Tr[ΔΣ²Δᵀ]/(Tr Σ Tr[ΔΣΔᵀ]) − r/d``
    (docs/THEORY.md §1.6, §1b.3–§1b.4).

    Parameters
    ----------
    config : Config; kind : str, a key of ``SPECTRA``; d : int; seed : int.

    Returns
    -------
    dict of ndarray
        0-d arrays ``gap``, ``gap_se``, ``win_fraction``, ``win_se``, ``eq4``, ``derived_approx``,
        ``eq5``, ``eq5_se``, ``effective_rank``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, d, SPECTRA.index(kind)]))
    eig = eigenvalues(kind, d, config)
    sigma = np.diag(eig)
    delta = rng.standard_normal((d, d)) / np.sqrt(d)
    energy = float(np.sum(delta**2 * eig))  # Tr[ΔΣΔᵀ]
    q = theory.haar_stiefel(d, config.rank, rng, draws=config.draws)
    u = theory.haar_stiefel(d, config.rank, rng, draws=config.draws)
    loss_b = theory.loss_b_only_draws(delta, sigma, q, config.noise_var)
    loss_a = theory.loss_a_only_draws(delta, sigma, u, config.noise_var)
    n = config.draws
    gap = (loss_a.mean() - loss_b.mean()) / energy
    gap_se = np.sqrt(loss_a.var(ddof=1) / n + loss_b.var(ddof=1) / n) / energy
    wins = float(np.mean(loss_b < loss_a))
    r = config.rank
    approx = r * float(np.sum(delta**2 * eig**2)) / (eig.sum() * energy) - r / d
    exact = theory.asymmetry_gap(delta, sigma, r, config.noise_var) / energy if kind == "lowrank" else np.nan
    fraction, fraction_se = theory.captured_fraction(sigma, r, draws=config.draws, rng=rng)
    return {
        "gap": np.array(gap),
        "gap_se": np.array(gap_se),
        "win_fraction": np.array(wins),
        "win_se": np.array(np.sqrt(max(wins * (1 - wins), 1.0 / n) / n)),
        "eq4": np.array(exact),
        "derived_approx": np.array(approx),
        "eq5": np.array(fraction - r / d),
        "eq5_se": np.array(fraction_se),
        "effective_rank": np.array(theory.effective_rank(sigma)),
    }


def units(config: Config, seed: int) -> list[Unit]:
    """One unit per (spectrum, d): its ``point`` (the figure's cache entries; ``figures.parallel``)."""
    return [Unit(NAME, {"config": asdict(config), "kind": kind, "d": d, "seed": seed}, point, (config, kind, d, seed))
            for kind in SPECTRA for d in config.dims]


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """All points, as ``{spectrum: {quantity: (len(dims),)}}`` plus ``d_over_r``.

    ``point`` per (spectrum, d) (Section 4.1.1 and Theorem 4.3 of Zhu et al.; docs/THEORY.md §1.6):
    the results of ``units``, cached (``figures.parallel.run_units``).

    Parameters
    ----------
    config : Config; seed : int.
    cache_dir : Path or None, where results are cached; force : bool, recompute them.

    Returns
    -------
    dict
    """
    results = iter(run_units(units(config, seed), cache_dir, force=force, desc=f"{NAME}: Haar draws per (Σ, d)"))
    out: dict = {"d_over_r": np.array(config.dims) / config.rank}
    for kind in SPECTRA:
        rows = [next(results) for _ in config.dims]
        out[kind] = {q: np.array([row[q] for row in rows]) for q in rows[0]}
    return out


def plot_gap(data: dict, ax=None):
    """Normalised gap vs d/r with ±2 s.e., eq. (4), eq. (5) and the large-effective-rank approximation.

    The left panel (docs/THEORY.md §1.6, §1b.3–§1b.4).

    Parameters
    ----------
    data : dict, ``compute``'s output; ax : matplotlib Axes, optional (the current axes).

    Returns
    -------
    The axes drawn on.
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    x = data["d_over_r"]
    colours = {"lowrank": "#D55E00", "powerlaw": "#0072B2", "isotropic": "#999999"}
    for kind in ("lowrank", "powerlaw"):
        d = data[kind]
        ax.errorbar(x, d["gap"], yerr=2 * d["gap_se"], fmt="o", capsize=3, color=colours[kind], label=f"measured, Σ {kind}")
    ax.plot(x, data["lowrank"]["eq4"], "-", color=colours["lowrank"], label="eq. (4): 1 − r/d")
    ax.plot(x, data["powerlaw"]["eq5"], "--", color=colours["powerlaw"], label="eq. (5): f(Σ, r) − r/d")
    ax.plot(x, data["powerlaw"]["derived_approx"], ":", color=colours["powerlaw"],
            label="approx. r Tr[ΔΣ²Δᵀ]/(Tr Σ Tr[ΔΣΔᵀ]) − r/d (≈ r/erank − r/d; needs erank ≫ r)")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("d / r")
    ax.set_ylabel(r"(E[L$_{a\_only}$] − E[L$_{b\_only}$]) / Tr[$\Delta\Sigma\Delta^T$]")
    ax.legend(loc="best")
    return ax


def plot_wins(data: dict, ax=None):
    """Fraction of paired draws in which b_only beats a_only, ±2 s.e.

    The right panel: Theorem 4.3 of Zhu et al. says the fraction tends to 1 as d/r grows
    (docs/THEORY.md §1.5); the isotropic Σ is the no-asymmetry reference.

    Parameters
    ----------
    data : dict, ``compute``'s output; ax : matplotlib Axes, optional (the current axes).

    Returns
    -------
    The axes drawn on.
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    x = data["d_over_r"]
    colours = {"lowrank": "#D55E00", "powerlaw": "#0072B2", "isotropic": "#999999"}
    for kind in SPECTRA:
        d = data[kind]
        ax.errorbar(x, d["win_fraction"], yerr=2 * d["win_se"], marker="o", capsize=3, color=colours[kind], label=f"Σ {kind}")
    ax.axhline(0.5, color="black", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("d / r")
    ax.set_ylabel("P(L_b_only < L_a_only)")
    ax.legend(loc="best")
    return ax


def caption(config: Config, data: dict) -> str:
    """The setting, then the measured values at the largest d/r.

    Measured gaps beside eq. (4) and eq. (5), the approximation with Σ's effective rank, and the
    win fractions of Theorem 4.3 (docs/THEORY.md §1.5–§1.6, §1b.4).

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    str
    """
    lo, pw, iso = data["lowrank"], data["powerlaw"], data["isotropic"]
    x = data["d_over_r"][-1]
    return (
        f"Square layers at rank {config.rank}, d from {config.dims[0]} to {config.dims[-1]}, a random shift, "
        f"{config.draws} paired Haar draws of A and B per point, one Gaussian Δ per point (the ± 2 s.e. cover the "
        f"Haar draws, not Δ, so the power-law points scatter about eq. 5, an expectation over Δ, by more than "
        f"their bars); gaps are normalised by Tr[ΔΣΔᵀ]. "
        f"At d/r = {x:g} the measured gap is {lo['gap'][-1]:.3f} ± {2 * lo['gap_se'][-1]:.3f} for the rank-{config.rank} Σ "
        f"(eq. 4: {lo['eq4'][-1]:.3f}) and {pw['gap'][-1]:.3f} ± {2 * pw['gap_se'][-1]:.3f} for the power-law Σ "
        f"(eq. 5, the expectation over a shift of random orientation: {pw['eq5'][-1]:.3f}; the large-effective-rank "
        f"approximation r Tr[ΔΣ²Δᵀ]/(Tr Σ Tr[ΔΣΔᵀ]) − r/d (about r/erank − r/d) gives {pw['derived_approx'][-1]:.3f}, "
        f"and is valid only when Σ's effective rank, here "
        f"{pw['effective_rank'][-1]:.1f}, is much larger than r = {config.rank}); b_only beat a_only in "
        f"{100 * lo['win_fraction'][-1]:.0f}% (rank-{config.rank}), {100 * pw['win_fraction'][-1]:.0f}% (power-law) and "
        f"{100 * iso['win_fraction'][-1]:.0f}% (isotropic) of draws."
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for Figure 2 (Theorem 4.3; docs/THEORY.md §1.5–§1.6).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return dict(ncols=2, figsize=(11, 4.2))


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` of Figure 2 on the axes made with ``SUBPLOTS`` (Theorem 4.3; docs/THEORY.md §1.5–§1.6).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    left, right = axes
    plot_gap(data, ax=left)
    plot_wins(data, ax=right)


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 2 (Theorem 4.3; docs/THEORY.md §1.5–§1.6): PNG, PDF, JSON data, caption.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
