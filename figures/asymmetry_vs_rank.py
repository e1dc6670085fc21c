r"""Figure 1: population excess loss vs rank for full, lora, b_only and a_only.

Section 4.1 of Zhu et al. (ICML 2024) in one picture. For a square layer and a random shift Δ,
the excess loss ``L − d_out s²`` of each variant (normalised by ``Tr[ΔΣΔᵀ]``, the excess of the
pretrained weight) is plotted against the rank r: full (0), lora (Eckart–Young), a_only
(exact expectation over a Haar B) and b_only (Monte Carlo over a Haar A, mean ± 2 s.e.).
Left: isotropic Σ, where the two single-factor variants agree in expectation. Right: a
fast-decaying Σ, where a random A already reads the high-variance inputs and b_only tracks lora.
"""

from __future__ import annotations

import sys

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import theory
from figures.parallel import Unit, run_units
from figures.output import render

NAME = "asymmetry_vs_rank"
DESCRIPTION = "Excess loss vs rank for full, lora, b_only, a_only; isotropic vs decaying Σ."


@dataclass(frozen=True)
class Config:
    """Setting of the figure: a ``d × d`` layer, ranks, Monte Carlo draws, the two spectra."""

    d: int = 32
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16, 24, 32)
    draws: int = 200
    powerlaw_alpha: float = 2.0
    noise_var: float = 0.1

    @classmethod
    def quick(cls) -> "Config":
        """The quick preset (``lora-asym figures``): Figure 1 at the defaults (Section 4.1; docs/THEORY.md §1.3–§1.5)."""
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Figure 1 at seconds size (Section 4.1; docs/THEORY.md §1.3–§1.5), for smoke tests."""
        return cls(d=6, ranks=(1, 3, 6), draws=8)

    @classmethod
    def full(cls) -> "Config":
        """The full preset (``lora-asym figures --full``): Figure 1 at larger sizes (Section 4.1; docs/THEORY.md §1.3–§1.5)."""
        return cls(d=64, ranks=(1, 2, 4, 8, 12, 16, 24, 32, 48, 64), draws=2000)


def spectra(config: Config) -> dict[str, np.ndarray]:
    """The two input spectra of the panels, each normalised to ``Tr Σ = d``.

    ``isotropic``: all ones; ``powerlaw:α``: ``i^-α`` rescaled to sum to ``d`` (Section 4.1 of Zhu et al.;
    docs/THEORY.md §1.3–§1.5).

    Parameters
    ----------
    config : Config

    Returns
    -------
    dict of ndarray
        Spectrum name -> (d,) eigenvalues of ``Σ``.
    """
    i = np.arange(1, config.d + 1, dtype=float)
    decay = i ** -config.powerlaw_alpha
    return {"isotropic": np.ones(config.d), f"powerlaw:{config.powerlaw_alpha:g}": decay * config.d / decay.sum()}


def panel(config: Config, name: str, eig: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """One spectrum's normalised excess losses ``(L − d s²) / Tr[ΔΣΔᵀ]``, each (len(ranks),).

    Per rank: ``full`` 0, ``lora`` by Eckart–Young (``theory.loss_lora``, docs/THEORY.md §1.3),
    ``a_only`` the exact expectation over a Haar B and ``b_only`` a Monte Carlo mean over Haar A
    with its standard error (``theory.expected_loss_a_only``/``expected_loss_b_only``, §1.5), for
    one Gaussian shift ``Δ`` shared by both panels.

    Parameters
    ----------
    config : Config
    name : str
        The spectrum's key in ``spectra(config)``.
    eig : ndarray
        (d,) its eigenvalues.
    seed : int
        Seeds ``Δ`` (``seed``) and the Haar draws (``(seed, spectrum index)``).

    Returns
    -------
    dict of ndarray
        ``full``, ``lora``, ``b_only``, ``b_only_se``, ``a_only``, each (len(ranks),).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, list(spectra(config)).index(name)]))
    d = config.d
    delta = np.random.default_rng(seed).standard_normal((d, d)) / np.sqrt(d)  # same Δ in both panels
    sigma = np.diag(eig)
    floor = theory.loss_full(delta, sigma, config.noise_var)
    energy = theory.population_loss(delta, np.zeros_like(delta), sigma, config.noise_var) - floor
    rows: dict[str, list[float]] = {v: [] for v in ("full", "lora", "b_only", "b_only_se", "a_only")}
    for r in config.ranks:
        mean_b, se_b = theory.expected_loss_b_only(delta, sigma, r, config.noise_var, draws=config.draws, rng=rng)
        rows["full"].append(0.0)
        rows["lora"].append(theory.loss_lora(delta, sigma, r, config.noise_var) - floor)
        rows["b_only"].append(mean_b - floor)
        rows["b_only_se"].append(se_b)
        rows["a_only"].append(theory.expected_loss_a_only(delta, sigma, r, config.noise_var) - floor)
    return {k: np.array(v) / energy for k, v in rows.items()}


def units(config: Config, seed: int) -> list[Unit]:
    """One unit per spectrum of ``spectra``: its ``panel`` (the figure's cache entries; ``figures.parallel``)."""
    return [Unit(NAME, {"config": asdict(config), "spectrum": name, "seed": seed}, panel, (config, name, eig, seed))
            for name, eig in spectra(config).items()]


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """``ranks`` (k,) and, per spectrum name, ``{variant: (k,)}`` plus ``b_only_se`` (k,).

    ``panel`` per spectrum of ``spectra`` (Section 4.1 of Zhu et al.; docs/THEORY.md §1.3–§1.5): the
    results of ``units``, cached (``figures.parallel.run_units``).

    Parameters
    ----------
    config : Config; seed : int.
    cache_dir : Path or None, where results are cached; force : bool, recompute them.

    Returns
    -------
    dict
    """
    results = run_units(units(config, seed), cache_dir, force=force, desc=f"{NAME}: Monte Carlo over Haar A")
    return {"ranks": np.array(config.ranks), **dict(zip(spectra(config), results))}


def plot(data: dict, ax=None):
    """Plot one spectrum's curves (``data`` = one entry of ``compute``'s result plus ``ranks``).

    Normalised excess loss against rank per variant, ``b_only`` with ±2 s.e. bars (Section 4.1 of Zhu et
    al.; docs/THEORY.md §1.3–§1.5).

    Parameters
    ----------
    data : dict
        ``ranks`` and the arrays of ``panel``.
    ax : matplotlib Axes, optional
        The current axes when None.

    Returns
    -------
    The axes drawn on.
    """
    import matplotlib.pyplot as plt

    from figures.style import VARIANT_STYLE

    ax = ax if ax is not None else plt.gca()
    ranks = data["ranks"]
    for variant in ("a_only", "b_only", "lora", "full"):
        style = VARIANT_STYLE[variant]
        y = data[variant]
        if variant == "b_only":
            ax.errorbar(ranks, y, yerr=2 * data["b_only_se"], capsize=3, **style)
        else:
            ax.plot(ranks, y, **style)
    ax.set_xlabel("rank r")
    ax.set_ylabel(r"excess loss / Tr[$\Delta\Sigma\Delta^T$]")
    return ax


def caption(config: Config, data: dict) -> str:
    """Two sentences: the setting, then what the computed curves show at the middle rank.

    Per spectrum the normalised excess losses of ``b_only`` (±2 s.e.), ``a_only`` and ``lora``
    (Section 4.1 of Zhu et al.; docs/THEORY.md §1.3–§1.5).

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    str
    """
    names = [k for k in data if k != "ranks"]
    i = len(config.ranks) // 2
    r = config.ranks[i]
    parts = [
        f"{n}: b_only {data[n]['b_only'][i]:.3f} ± {2 * data[n]['b_only_se'][i]:.3f}, "
        f"a_only {data[n]['a_only'][i]:.3f}, lora {data[n]['lora'][i]:.3f}"
        for n in names
    ]
    return (
        f"Population excess loss (normalised by that of the pretrained weight) vs rank for a "
        f"{config.d}x{config.d} layer with a random shift, isotropic vs power-law input covariance; "
        f"b_only is a Monte Carlo mean over {config.draws} Haar draws of A (±2 s.e.), a_only the exact "
        f"expectation over a Haar B. At r={r}: " + "; ".join(parts) + "."
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for Figure 1 (Section 4.1; docs/THEORY.md §1.3–§1.5).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return dict(ncols=2, figsize=(10, 4), sharey=True)


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` of Figure 1 on the axes made with ``SUBPLOTS`` (Section 4.1; docs/THEORY.md §1.3–§1.5).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    for ax, name in zip(axes, [k for k in data if k != "ranks"]):
        plot({"ranks": data["ranks"], **data[name]}, ax=ax)
        ax.set_title(f"Σ {name}")
    axes[0].legend(loc="upper right")


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 1 (Section 4.1; docs/THEORY.md §1.3–§1.5): PNG, PDF, JSON data, caption.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
