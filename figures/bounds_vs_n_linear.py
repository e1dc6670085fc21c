r"""Figure 4: measured generalization gaps against three kinds of bound, vs n, linear task.

For each tuning variant (``full``, ``lora``, ``b_only``, ``a_only``) of the Section 4.1 linear task
(Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models", ICML 2024), fitted in
closed form and quantized to ``q_bits`` bits per trained parameter, one panel shows, against the
training-set size ``n`` (log–log), three bound/gap pairs. Each bound is drawn only beside the
measured gap of the loss *and* the algorithm it is about (docs/THEORY.md §2):

1. **Lemma 4.5** (with Lemma 4.4, Xu & Raginsky 2017): ``sqrt(2 σ² I / n)`` with
   ``I = storage_bits · ln 2`` nats, ``storage_bits = q N + 32`` per trained tensor
   (``bounds.lora_mi_bound(..., scale_bits=32)``); beside the gap of the clipped squared loss
   ``min(ℓ, c)`` of the quantized model. ``σ = c/2``.
2. **Gaussian channel** (docs/THEORY.md §2.5, derived): the released predictor is ``W + N``,
   ``N ~ N(0, τ² I)``; ``I(W + N; S) <= ½ log det(I + Cov(W)/τ²)`` estimated by
   ``bounds.gaussian_channel_mi`` across the same trials (bias-corrected, jackknife interval, pushed
   through the monotone Xu–Raginsky map); beside the clipped-loss gap of ``W + N``
   (``synthetic.channel``). Reported only when ``trials > p`` (``p`` trained parameters); an
   estimate that warns it may be low (``channel_may_be_low``) is counted unresolved and named.
3. **Supersample CMI** (``bounds.ld_cmi_bound``, ``ecmi_bound``, ``binary_kl_bound``,
   ``fast_rate_bound``; Steinke & Zakynthinou 2020, Hellström & Durisi 2022, Wang & Mao 2023):
   on the clipped loss in units of ``c`` rounded up to a grid of ``1/levels``
   (``synthetic.supersample.discretize``), beside the gap of that same loss from the same runs.
   The points of a run share one law (i.i.d. data, an order-invariant fit), so each MI is one
   plug-in pooled over the ``eval_points`` points of all runs, uncorrected so that its bias is
   upward (``CMI_ESTIMATOR``, docs/THEORY.md §2.4); beside it, its estimator's floor
   (``bounds.cmi.selector_blind_floor``: the 95th percentile for selectors redrawn at random).

Everything is in units of ``c`` (``σ = 1/2``). A bound is vacuous at the trivial level: 1 for
Lemma 4.5 and the channel (drawn, uncapped), ``1 − E[L_S(W)]`` for a CMI bound (``BoundResult.vacuous``).
An estimate is resolved when it is at least its interval's width and, for CMI, above its floor
(``figures.checks.is_resolved``); unresolved ones are hollow, ``<bound>_resolved = 0``, and named.
The frozen factor is shared by all trials and runs (``LinearTask(frozen="shared")``): every gap
and bound is conditional on it (``I(W; S | A) <= H(W | A)``). The channel's ``τ = tau_rel ·
‖Δ‖_F / sqrt(d_in d_out)`` is fixed by the task before any data
(``synthetic.channel.adapted_shift_rms``): ``W + N`` keeps most of what the fit gained over ``W0``
(the caption gives the largest increase of test loss) while swamping the sampling noise of ``W``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from figures.bounds_vs_n_common import (
    assemble,
    channel_point,
    grid_units,
    pair_checks,
    point_rng,
    summary,
    supersample_point,
)
from figures.parallel import Unit, run_units
from figures.bounds_vs_n_plot import legend, plot
from figures.output import render
from synthetic.channel import adapted_shift_rms
from synthetic.linear.learners import linear_supersample
from synthetic.linear.engine import LinearTask
from theory.variants import VARIANTS

NAME = "bounds_vs_n_linear"
DESCRIPTION = "Gaps vs n of each variant (linear, clipped loss) beside Lemma 4.5, Gaussian-channel and CMI bounds."


@dataclass(frozen=True)
class Config:
    """Square ``d × d`` layer at one rank; channel trials and supersample sizes per ``n``."""

    d: int = 8
    rank: int = 2
    ns: tuple[int, ...] = (16, 64, 256, 1024)
    q_bits: int = 8
    spectrum: str = "powerlaw:1"
    delta_rank: int = 4
    noise_var: float = 0.25
    clip: float = 4.0
    n_test: int = 2000
    trials: int = 150
    tau_rel: float = 0.5
    k_z: int = 100
    k_u: int = 4
    eval_points: int = 256
    levels: int = 4
    n_boot: int = 100

    @classmethod
    def quick(cls) -> "Config":
        """The quick preset (``lora-asym figures``): Figure 4 at the defaults (Section 4.2; docs/THEORY.md §2)."""
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Figure 4 at seconds size (Section 4.2; docs/THEORY.md §2), for smoke tests."""
        return cls(d=4, rank=1, ns=(16, 32), trials=8, n_test=200, k_z=4, k_u=2, eval_points=8, n_boot=20)

    @classmethod
    def full(cls) -> "Config":
        """The full preset (``lora-asym figures --full``): Figure 4 at larger sizes (Section 4.2; docs/THEORY.md §2)."""
        return cls(ns=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096), trials=300, k_z=250, eval_points=1024, n_boot=200)


def task(config: Config) -> LinearTask:
    """The linear task: ``c = 2 d s²``, twice the noise floor ``d_out s²``, so clipping only cuts the tail.

    Eq. (1)'s square task (docs/THEORY.md §1.1) with a frozen factor shared by every trial and run
    (``frozen="shared"``), so every gap and bound is conditional on it (§2.2).

    Parameters
    ----------
    config : Config

    Returns
    -------
    LinearTask
    """
    return LinearTask(
        d_in=config.d, d_out=config.d, spectrum=config.spectrum, delta_rank=min(config.delta_rank, config.d),
        noise_var=config.noise_var, clip=config.clip, n_test=config.n_test, frozen="shared",
    )


def channel_unit(config: Config, variant: str, n: int, seed: int) -> dict[str, np.ndarray]:
    """``channel_point`` of ``variant`` at ``n`` on the clipped loss in units of ``c``, with
    ``τ = tau_rel ·`` the RMS entry of ``Δ`` (Section 4.2 of Zhu et al.; docs/THEORY.md §2.3–§2.5)."""
    t = task(config)
    return channel_point(t, variant, config.rank, n, config.trials, tau=config.tau_rel * adapted_shift_rms(t),
                         loss="clipped", scale=config.clip, q_bits=config.q_bits, n_boot=config.n_boot, seed=seed,
                         rng=point_rng(seed, VARIANTS.index(variant), n, 0))


def cmi_unit(config: Config, variant: str, n: int, seed: int) -> dict[str, np.ndarray]:
    """``supersample_point`` of ``synthetic.linear_supersample``'s discretized loss for ``variant``
    at ``n`` (docs/THEORY.md §2.6)."""
    ss = linear_supersample(task(config), variant, config.rank, n, config.k_z, config.k_u, q_bits=config.q_bits,
                            levels=config.levels, eval_points=min(config.eval_points, n), seed=seed)
    return supersample_point(ss, config.n_boot, point_rng(seed, VARIANTS.index(variant), n, 1))


def units(config: Config, seed: int) -> list[Unit]:
    """Per (variant, n): a ``channel_unit`` and a ``cmi_unit`` (the figure's cache entries; ``figures.parallel``)."""
    return grid_units(NAME, config, seed, channel_unit, cmi_unit)


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """Per variant, every gap and bound over ``config.ns``; plus ``n`` and ``tau``.

    Per (variant, n): ``channel_unit`` and ``cmi_unit`` (the results of ``units``, cached), then
    ``assemble`` (``figures.bounds_vs_n_common``; Section 4.2 of Zhu et al.; docs/THEORY.md §2).
    ``τ = tau_rel ·`` the RMS entry of ``Δ`` (``synthetic.channel.adapted_shift_rms``).

    Parameters
    ----------
    config : Config; seed : int; cache_dir : Path or None; force : bool, recompute cached entries.

    Returns
    -------
    dict
        ``n`` (len(ns),), ``tau`` (0-d), and per variant the arrays of ``assemble``.
    """
    results = iter(run_units(units(config, seed), cache_dir, force=force,
                             desc=f"{NAME}: channel trials and supersamples per (variant, n)"))
    out: dict = {"n": np.array(config.ns), "tau": np.array(config.tau_rel * adapted_shift_rms(task(config)))}
    for v in VARIANTS:
        pairs = [(next(results), next(results)) for _ in config.ns]
        out[v] = assemble(config.ns, [c for c, _ in pairs], [m for _, m in pairs])
    return out


def bound_checks(config: Config, data: dict) -> list[dict]:
    """Every bound against the gap of its own loss, in units of ``c`` (``pair_checks``).

    Lemma 4.5 and the channel against the clipped-loss gaps, the CMI bounds against the supersample
    gap of the discretized loss (docs/THEORY.md §2.7).

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    list of dict
    """
    unit = f"clipped squared loss / c (c = {config.clip:g})"
    return pair_checks(data, {"gap": f"{unit} of the quantized model", "perturbed_gap": f"{unit} of W + N",
                              "cmi_gap": f"{unit} rounded up to a 1/{config.levels} grid, supersample runs"})


def caption(config: Config, data: dict) -> str:
    """The setting, then the measured gaps and bounds at the largest n, and the checks.

    The setting of Section 4.2's comparison (docs/THEORY.md §2), then ``summary``.

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    str
    """
    return (
        f"Linear task ({config.d}x{config.d} layer, {config.spectrum} Σ, rank-{config.delta_rank} shift, "
        f"noise s² = {config.noise_var:g}), rank {config.rank}, closed-form fits quantized to {config.q_bits} bits "
        f"with a shared frozen factor; losses in units of the clip c = {config.clip:g}: clipped squared loss for "
        f"Lemma 4.5 and for the Gaussian channel (W + N, τ = {float(data['tau']):.3g} = {config.tau_rel:g} x RMS "
        f"entry of Δ), over {config.trials} training sets per point, and that loss rounded up to a "
        f"1/{config.levels} grid for the CMI bounds, over {config.k_z}x{config.k_u} supersample runs "
        f"(up to {config.eval_points} evaluated pairs each, MI pooled over them); markers are measured gaps with 95% "
        f"intervals, lines the bounds with bootstrap intervals. "
        + summary(data, bound_checks(config, data))
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for Figure 4 (Section 4.2; docs/THEORY.md §2).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return dict(nrows=2, ncols=2, figsize=(11, 8.5), sharex=True, sharey=True)


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` of Figure 4 on the axes made with ``SUBPLOTS`` (Section 4.2; docs/THEORY.md §2).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    plot(data, axes)
    legend(fig, axes[0, 0])


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 4 (Section 4.2; docs/THEORY.md §2): PNG, PDF, JSON data, caption.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
