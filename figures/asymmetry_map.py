r"""Figure 3: where the asymmetry holds, vanishes and reverses.

Heatmap of the normalised gap ``(E[L_a_only] − E[L_b_only]) / Tr[ΔΣΔᵀ]`` over the spectral decay
``α`` of ``Σ = diag(i^{−α})`` (``α = 0``: isotropic) and the orientation of a rank-``k`` shift ``Δ``
with unit singular values (docs/THEORY.md §1). Positive: b_only wins, as Zhu et al. (ICML 2024)
argue; zero: no asymmetry (isotropic Σ); negative: the asymmetry reverses (docs/THEORY.md §1's
counterexample). ``E[L_a_only]`` is exact (Haar B); ``E[L_b_only]`` is a Monte Carlo mean over Haar A.

Two kinds of rows, counted apart:

* **random orientation** (top row, set apart; Theorem 4.3's assumption): ``Δ = U Vᵀ`` with
  ``U, V`` Haar on ``St(d, k)``, averaged over ``delta_draws`` shifts. Its expected normalised gap
  is ``f(Σ, r) − r/d_out`` (docs/THEORY.md §1b, eq. 5 with ``G = I``), drawn beside the heatmap.
* **alignment** (the grid): ``Δ``'s row space on the ``k`` eigenvectors of Σ picked by
  ``synthetic.LinearTask.alignment`` (0: the lowest-variance inputs, 1: the highest).
"""

from __future__ import annotations

import sys

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import theory
from figures.parallel import Unit, run_units
from figures.output import render
from synthetic.linear.engine import LinearTask

NAME = "asymmetry_map"
DESCRIPTION = "Heatmap of the normalised gap over (decay of Σ, orientation of Δ): holds, vanishes, reverses."
#: Entropy word that keeps the random-orientation streams apart from the cells' (alignment ≤ 1000).
RANDOM_ORIENTATION_KEY = 10_000
#: Label of the random-orientation row.
RANDOM_LABEL = "random orientation"


@dataclass(frozen=True)
class Config:
    """A square ``d × d`` layer at rank ``rank``, Δ of rank ``delta_rank``, a grid of (α, alignment).

    ``draws`` Haar draws of A per alignment cell and per random-orientation shift; ``delta_draws``
    shifts per random-orientation column; ``fraction_draws`` Haar draws for eq. (5)'s ``f(Σ, r)``.
    """

    d: int = 32
    rank: int = 4
    delta_rank: int = 4
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
    alignments: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    draws: int = 200
    delta_draws: int = 64
    fraction_draws: int = 20_000

    @classmethod
    def quick(cls) -> "Config":
        """The quick preset (``lora-asym figures``): Figure 3 at the defaults (docs/THEORY.md §1.5–§1.6, §1b.3)."""
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Figure 3 at seconds size (docs/THEORY.md §1.5–§1.6, §1b.3), for smoke tests."""
        return cls(
            d=8, rank=2, delta_rank=2, alphas=(0.0, 2.0), alignments=(0.0, 1.0), draws=8,
            delta_draws=32, fraction_draws=2000,
        )

    @classmethod
    def full(cls) -> "Config":
        """The full preset (``lora-asym figures --full``): Figure 3 at larger sizes (docs/THEORY.md §1.5–§1.6, §1b.3)."""
        return cls(
            d=64,
            alphas=(0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0),
            alignments=tuple(np.round(np.linspace(0, 1, 21), 3)),
            draws=1000,
            delta_draws=256,
            fraction_draws=100_000,
        )


def spectrum(alpha: float) -> str:
    """``LinearTask.spectrum`` of ``Σ = diag(i^{−α})``: ``"isotropic"`` at ``α = 0`` (docs/THEORY.md §1.1).

    Parameters
    ----------
    alpha : float, the decay ``α >= 0``.

    Returns
    -------
    str, ``"isotropic"`` or ``"powerlaw:α"``.
    """
    return "isotropic" if alpha == 0 else f"powerlaw:{alpha:g}"


def task(config: Config, alpha: float, alignment: float, seed: int) -> LinearTask:
    """The linear task of one grid cell: eq. (1) with ``Σ = diag(i^{−α})``, no noise, and a rank
    ``delta_rank`` shift with unit singular values placed by ``alignment`` (docs/THEORY.md §1.1, §1.6).

    Parameters
    ----------
    config : Config; alpha : float; alignment : float in ``[0, 1]``; seed : int, the task seed.

    Returns
    -------
    LinearTask
    """
    return LinearTask(
        d_in=config.d, d_out=config.d, spectrum=spectrum(alpha), delta_rank=config.delta_rank,
        delta_singular_values=1.0, alignment=alignment, noise_var=0.0, task_seed=seed,
    )


def cell(config: Config, alpha: float, alignment: float, seed: int) -> dict[str, np.ndarray]:
    """Normalised gap and its standard error at one (α, alignment) (docs/THEORY.md §1.5–§1.6).

    ``(E_U[L_a_only] − Ê_Q[L_b_only]) / Tr[ΔΣΔᵀ]``: exact over a Haar B, Monte Carlo over
    ``draws`` Haar A (``theory.expected_loss_a_only``, ``theory.expected_loss_b_only``).

    Parameters
    ----------
    config : Config; alpha : float; alignment : float; seed : int.

    Returns
    -------
    dict of 0-d ndarray: ``gap``, ``gap_se``.
    """
    t = task(config, alpha, alignment, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(1000 * alpha), int(1000 * alignment)]))
    energy = float(np.trace(t.delta @ t.sigma @ t.delta.T))
    mean_b, se_b = theory.expected_loss_b_only(t.delta, t.sigma, config.rank, 0.0, draws=config.draws, rng=rng)
    exact_a = theory.expected_loss_a_only(t.delta, t.sigma, config.rank, 0.0)
    return {"gap": np.array((exact_a - mean_b) / energy), "gap_se": np.array(se_b / energy)}


def ratio_of_means(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:  # (n,), (n,)
    r"""``R = Σ num / Σ den`` and its delta-method standard error over ``n`` i.i.d. pairs.

    .. math:: \widehat{se}(R) = \frac{\operatorname{std}(num_i − R\, den_i)}{\sqrt{n}\; \overline{den}}

    ``R`` estimates ``E[num] / E[den]`` (consistently; its bias is O(1/n)), the quantity that
    docs/THEORY.md §1b predicts for the random-orientation row (``random_orientation_column``).

    Parameters
    ----------
    num, den : ndarray, (n,) the paired draws.

    Returns
    -------
    (ratio, stderr) : tuple of float
    """
    ratio = float(num.sum() / den.sum())
    return ratio, float(np.std(num - ratio * den, ddof=1) / (np.sqrt(num.size) * den.mean()))


def random_orientation_column(config: Config, alpha: float, seed: int) -> dict[str, np.ndarray]:
    r"""Measured and predicted normalised gap at one α for Δ of random orientation.

    ``Δ_i = U_i V_iᵀ`` (unit singular values, rank ``delta_rank``, ``U_i, V_i`` Haar on
    ``St(d, delta_rank)``), ``i = 1..delta_draws``; for each, ``g_i = E_U[L_a_only] − Ê_Q[L_b_only]``
    (exact over Haar B; ``draws`` Haar A) and ``e_i = Tr[Δ_i Σ Δ_iᵀ]``. The reported gap is the
    **ratio of means** ``Σ g_i / Σ e_i`` (standard error by the delta method, ``ratio_of_means``),
    not the mean of ``g_i / e_i``: ``E[Δᵀ Δ] = (k/d) I``, so by docs/THEORY.md §1b (eq. 5, ``G = I``)

    .. math:: \frac{E[L_{a\_only} − L_{b\_only}]}{E \operatorname{Tr}[ΔΣΔ^T]} = f(Σ, r) − \frac{r}{d_{out}}

    exactly; the mean of ratios estimates another quantity (``e_i`` varies with ``V_i``, so it
    falls below the prediction where Σ decays fast). The prediction
    comes from ``theory.captured_fraction`` on an independent stream.

    Parameters
    ----------
    config : Config; alpha : float; seed : int.

    Returns
    -------
    dict of 0-d arrays: ``gap``, ``gap_se`` (measured), ``predicted``, ``predicted_se``.
    """
    t = task(config, alpha, 1.0, seed)  # only its Σ is used
    rng_delta, rng_f = (np.random.default_rng(s) for s in np.random.SeedSequence(
        [seed, int(1000 * alpha), RANDOM_ORIENTATION_KEY]).spawn(2))
    k, d = config.delta_rank, config.d
    u, v = (theory.haar_stiefel(d, k, rng_delta, draws=config.delta_draws) for _ in range(2))
    gaps, energies = np.empty(config.delta_draws), np.empty(config.delta_draws)
    for i in range(config.delta_draws):
        delta = u[i] @ v[i].T
        mean_b, _ = theory.expected_loss_b_only(delta, t.sigma, config.rank, 0.0, draws=config.draws, rng=rng_delta)
        gaps[i] = theory.expected_loss_a_only(delta, t.sigma, config.rank, 0.0) - mean_b
        energies[i] = np.trace(delta @ t.sigma @ delta.T)
    gap, gap_se = ratio_of_means(gaps, energies)
    f, f_se = theory.captured_fraction(t.sigma, config.rank, draws=config.fraction_draws, rng=rng_f)
    predicted = f - config.rank / d  # a_only removes r/d_out of the shift's loss: f(I, r) = r/d_out
    arrays = {"gap": gap, "gap_se": gap_se, "predicted": predicted, "predicted_se": f_se}
    return {key: np.array(value) for key, value in arrays.items()}


def units(config: Config, seed: int) -> list[Unit]:
    """A unit per (alignment, α) cell, row by row, then one per α of the random-orientation row (the
    figure's cache entries; ``figures.parallel``)."""
    cells = [Unit(NAME, {"config": asdict(config), "alpha": alpha, "alignment": al, "seed": seed}, cell,
                  (config, alpha, al, seed)) for al in config.alignments for alpha in config.alphas]
    row = [Unit(NAME, {"config": asdict(config), "alpha": alpha, "alignment": RANDOM_LABEL, "seed": seed},
                random_orientation_column, (config, alpha, seed)) for alpha in config.alphas]
    return cells + row


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """The alignment grid and the random-orientation row, one cache entry per cell and per column.

    ``cell`` per (α, alignment) and ``random_orientation_column`` per α (docs/THEORY.md §1.5–§1.6,
    §1b.3): the results of ``units``, cached (``figures.parallel.run_units``).

    Parameters
    ----------
    config : Config; seed : int; cache_dir : Path or None; force : bool, recompute cached entries.

    Returns
    -------
    dict: ``alphas`` (a,), ``alignments`` (m,); ``gap``, ``gap_se`` (m, a) for Δ placed by
    alignment; ``random_gap``, ``random_gap_se`` (a,) measured and ``predicted_gap``,
    ``predicted_gap_se`` (a,) = ``f(Σ, r) − r/d_out`` for Δ of random orientation.
    """
    results = run_units(units(config, seed), cache_dir, force=force, desc=f"{NAME}: Monte Carlo per cell")
    shape = (len(config.alignments), len(config.alphas))
    cells, row = results[: shape[0] * shape[1]], results[shape[0] * shape[1]:]
    return {
        "alphas": np.array(config.alphas), "alignments": np.array(config.alignments),
        "gap": np.array([float(c["gap"]) for c in cells]).reshape(shape),
        "gap_se": np.array([float(c["gap_se"]) for c in cells]).reshape(shape),
        "random_gap": np.array([float(c["gap"]) for c in row]),
        "random_gap_se": np.array([float(c["gap_se"]) for c in row]),
        "predicted_gap": np.array([float(c["predicted"]) for c in row]),
        "predicted_gap_se": np.array([float(c["predicted_se"]) for c in row]),
    }


def plot(data: dict, ax=None):
    """Diverging heatmap: the alignment grid, and the random-orientation row set apart above it.

    Dots mark cells where the gap is within 2 s.e. of 0; the random-orientation cells print their
    measured gap (docs/THEORY.md §1.5–§1.6, §1b.3).

    Parameters
    ----------
    data : dict, ``compute``'s arrays; ax : matplotlib Axes, optional (the current axes).

    Returns
    -------
    The axes drawn on.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    ax = ax if ax is not None else plt.gca()
    gap, row = data["gap"], np.asarray(data["random_gap"])
    n_al, n_a = gap.shape
    limit = max(float(np.abs(gap).max()), float(np.abs(row).max()), 1e-12)
    style = dict(aspect="auto", cmap="RdBu_r", norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit))
    mesh = ax.imshow(gap, origin="lower", extent=(-0.5, n_a - 0.5, -0.5, n_al - 0.5), **style)
    top = n_al + 0.1  # the random-orientation row: one row high, a gap below it
    ax.imshow(row[None, :], origin="lower", extent=(-0.5, n_a - 0.5, top, top + 1), **style)
    ax.axhspan(n_al - 0.5, top, color="white", zorder=2)
    ax.set_ylim(-0.5, top + 1)
    ax.grid(False)
    flat = np.argwhere(np.abs(gap) <= 2 * data["gap_se"])  # no asymmetry detectable at ±2 s.e.
    flat_row = np.flatnonzero(np.abs(row) <= 2 * np.asarray(data["random_gap_se"]))
    xs, ys = np.r_[flat[:, 1], flat_row], np.r_[flat[:, 0], np.full(flat_row.size, top + 0.25)]
    ax.plot(xs, ys, "o", ms=3, color="black", label="|gap| within 2 s.e. of 0", zorder=3)
    for j, value in enumerate(row):
        ax.text(j, top + 0.62, f"{value:.2f}", ha="center", va="center", fontsize=7,
                color="white" if abs(value) > 0.6 * limit else "black", zorder=4)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    ax.set_xticks(range(n_a), [f"{a:g}" for a in data["alphas"]])
    step = max(1, n_al // 6)
    ticks = list(range(0, n_al, step))
    ax.set_yticks(ticks + [top + 0.5], [f"{a:g}" for a in data["alignments"][::step]] + ["random\norientation"])
    ax.set_xlabel("spectral decay α of Σ (0 = isotropic)")
    ax.set_ylabel("alignment of Δ with Σ's top eigenvectors")
    ax.figure.colorbar(mesh, ax=ax, label="(E[L_a_only] − E[L_b_only]) / Tr[ΔΣΔᵀ]")
    return ax


def plot_random_orientation(data: dict, ax=None):
    """Random-orientation Δ: measured gap ±2 s.e. against ``f(Σ, r) − r/d_out`` (docs/THEORY.md §1b).

    Eq. (5) with ``G = I`` (§1b.3), the prediction for Theorem 4.3's random shift.

    Parameters
    ----------
    data : dict, ``compute``'s arrays; ax : matplotlib Axes, optional (the current axes).

    Returns
    -------
    The axes drawn on.
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    alphas, pred, pred_se = data["alphas"], np.asarray(data["predicted_gap"]), np.asarray(data["predicted_gap_se"])
    ax.plot(alphas, pred, "-", color="#0072B2", label="predicted: f(Σ, r) − r/d_out (eq. 5)")
    ax.fill_between(alphas, pred - 2 * pred_se, pred + 2 * pred_se, color="#0072B2", alpha=0.25, lw=0)
    ax.errorbar(alphas, data["random_gap"], yerr=2 * np.asarray(data["random_gap_se"]), fmt="o", capsize=3,
                color="#D55E00", label="measured (±2 s.e.)")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("spectral decay α of Σ")
    ax.set_ylabel("normalised gap (> 0: b_only wins)")
    ax.set_title("Δ of random orientation (Theorem 4.3)")
    ax.legend(loc="upper left")
    return ax


def caption(config: Config, data: dict) -> str:
    """The setting; the random-orientation row, counted apart; then the alignment cells.

    Counts the columns where b_only wins beyond 2 s.e. and the largest distance from eq. (5), then
    the cells where b_only loses and the range of the gap (docs/THEORY.md §1.5–§1.6, §1b.3).

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    str
    """
    gap, row, row_se = data["gap"], np.asarray(data["random_gap"]), np.asarray(data["random_gap_se"])
    iso = np.abs(gap[:, 0]).max() if config.alphas[0] == 0 else np.nan
    neg = int(np.sum(gap < -2 * data["gap_se"]))
    wins = int(np.sum(row > 2 * row_se))
    z = np.abs(row - data["predicted_gap"]) / np.hypot(row_se, data["predicted_gap_se"])
    lo, hi = np.unravel_index(gap.argmin(), gap.shape), np.unravel_index(gap.argmax(), gap.shape)
    return (
        f"Square {config.d}x{config.d} layer at rank {config.rank}; Δ of rank {config.delta_rank} with unit singular "
        f"values; Σ = diag(i^-α); gaps (E[L_a_only] − E[L_b_only]) normalised by Tr[ΔΣΔᵀ]. "
        f"Top row: for Δ of random orientation (Theorem 4.3's assumption; Δ = UVᵀ, U and V Haar; "
        f"{config.delta_draws} draws of Δ × {config.draws} Haar draws of A per column, ratio of means) "
        f"b_only wins (gap > 2 s.e.) in {wins} of {row.size} columns; the gap runs from {row.min():.3f} to "
        f"{row.max():.3f} and is within {z.max():.1f} s.e. of the prediction f(Σ, r) − r/d_out "
        f"(docs/THEORY.md eq. 5) at every α. "
        f"Grid: for Δ placed by alignment among the eigenvectors of Σ ({config.draws} Haar draws of A per cell), "
        f"b_only loses (gap < −2 s.e.) in {neg} of {gap.size} cells; the gap ranges from {gap.min():.3f} "
        f"(α={config.alphas[lo[1]]:g}, alignment {config.alignments[lo[0]]:g}) to {gap.max():.3f} "
        f"(α={config.alphas[hi[1]]:g}, alignment {config.alignments[hi[0]]:g}) and is at most {iso:.3f} in "
        f"absolute value for isotropic Σ."
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for Figure 3 (docs/THEORY.md §1.5–§1.6, §1b.3).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return dict(ncols=2, figsize=(12, 5), gridspec_kw={"width_ratios": (1.5, 1)})


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` of Figure 3 on the axes made with ``SUBPLOTS`` (docs/THEORY.md §1.5–§1.6, §1b.3).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    left, right = axes
    plot(data, ax=left)
    plot_random_orientation(data, ax=right)


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 3 (docs/THEORY.md §1.5–§1.6, §1b.3): PNG, PDF, JSON data, caption.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
