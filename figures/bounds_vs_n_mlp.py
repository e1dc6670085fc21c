r"""Figure 5: measured generalization gaps against three kinds of bound, vs n, small MLP.

The MLP twin of ``figures.bounds_vs_n_linear`` (read its docstring for the three bound/gap pairs; both
compute and draw with ``figures.bounds_vs_n_common``): a small tanh teacher–student classifier
(``synthetic.MLPTask``) in the regime of ``MLPTask.paper_regime`` (docs/THEORY.md §1b and §5), scaled down:
the first layer is adapted and perturbed, its inputs have a decaying spectrum (``"powerlaw:2"``), it is read
by a map as wide as the network (two layers above it, as many classes as hidden units), and the shift has
random orientation and full rank ``min(d_0, d_1)``. It is trained by full-batch Adam and quantized to
``q_bits`` bits per trained parameter, with the 0-1 loss, which lies in ``[0, 1]`` (``σ = 1/2``) and takes
two values, so the CMI bounds use it as it is. Each bound is drawn beside the gap of the loss and algorithm
it is about:

1. Lemma 4.5 of Zhu et al. (ICML 2024), ``I = storage_bits · ln 2`` with
   ``storage_bits = q N + 32`` per trained tensor, beside the 0-1 gap of the quantized network;
2. the Gaussian channel (docs/THEORY.md §2, derived) beside the 0-1 gap of ``W + N``;
3. the supersample CMI bounds beside the 0-1 gap of the same supersample runs, each MI pooled over
   every point of every run (``eval_points`` up to ``n``), with its estimator's floor; estimates
   that are not resolved are drawn hollow and named in the caption.

Conditioning on the init. ``synthetic.mlp.mlp_trial_losses`` draws a fresh init (the frozen
factor, or ``lora``'s random ``A``) per trial, so it cannot give ``Cov(W | init)``. Every run
here is trained instead from one shared init drawn from the seed
(``synthetic.mlp.learners.mlp_fit``); with full-batch training that init is the algorithm's only
randomness, so gaps and bounds are all conditional on it, and Lemma 4.5 holds conditionally
(``I(W; S | init) <= H(W | init)``). The channel bound is reported only when ``trials > p``;
the ``full`` variant trains ``p = 128`` parameters, more than the quick preset's trials, so it
gets a channel bound in the full preset only. The network is smaller than
``paper_regime``'s (8-16-16-16 instead of 64-64-64-64) so that the supersample's ``k_z k_u`` trainings per
point fit the time budget; ``τ = tau_rel ·`` the RMS entry of the adapted layer's shift
``Δ_0 = W_{t,0} − W0_0`` (``synthetic.channel.adapted_shift_rms``), fixed before any data.
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
from synthetic.mlp.learners import mlp_supersample
from synthetic.mlp.engine import MLPTask
from theory.variants import VARIANTS

NAME = "bounds_vs_n_mlp"
#: Spectrum of the inputs of the adapted layer 0 (``MLPTask.input_dist``), as in ``MLPTask.paper_regime``.
INPUT_DIST = "powerlaw:2"
DESCRIPTION = "Gaps vs n of each variant (MLP, 0-1 loss) beside Lemma 4.5, Gaussian-channel and CMI bounds."


@dataclass(frozen=True)
class Config:
    """The MLP task, rank, sizes, training, channel trials and supersample sizes per ``n``."""

    widths: tuple[int, ...] = (8, 16, 16, 16)
    rank: int = 2
    ns: tuple[int, ...] = (32, 64, 128, 256)
    q_bits: int = 8
    steps: int = 100
    lr: float = 1e-2
    test_size: int = 2000
    trials: int = 120
    tau_rel: float = 0.5
    k_z: int = 40
    k_u: int = 4
    eval_points: int = 256
    n_boot: int = 100

    @classmethod
    def quick(cls) -> "Config":
        """The quick preset (``lora-asym figures``): Figure 5 at the defaults (Section 4.2; docs/THEORY.md §2, §5)."""
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Figure 5 at seconds size (Section 4.2; docs/THEORY.md §2, §5), for smoke tests."""
        return cls(widths=(4, 6, 6, 3), rank=1, ns=(8, 16), steps=5, test_size=100, trials=10, k_z=3, k_u=2,
                   eval_points=4, n_boot=20)

    @classmethod
    def full(cls) -> "Config":
        """The full preset (``lora-asym figures --full``): Figure 5 at larger sizes (Section 4.2; docs/THEORY.md §2, §5)."""
        return cls(ns=(32, 64, 128, 256, 512), trials=300, k_z=100, eval_points=512)


def task(config: Config) -> MLPTask:
    """The classifier: adapt and perturb layer 0, inputs ``"powerlaw:2"``, a shift of full rank.

    ``MLPTask.paper_regime`` scaled down (docs/THEORY.md §1b and §5).

    Parameters
    ----------
    config : Config

    Returns
    -------
    MLPTask
    """
    return MLPTask(
        widths=config.widths, adapted_layers=(0,), perturbed_layers=(0,), input_dist=INPUT_DIST,
        perturbation_rank=min(config.widths[:2]), steps=config.steps, lr=config.lr, test_size=config.test_size,
    )


def channel_unit(config: Config, variant: str, n: int, seed: int) -> dict[str, np.ndarray]:
    """``channel_point`` of ``variant`` at ``n`` on the 0-1 loss, with ``τ = tau_rel ·`` the RMS
    entry of ``Δ`` (Section 4.2 of Zhu et al.; docs/THEORY.md §2.3–§2.5)."""
    t = task(config)
    return channel_point(t, variant, config.rank, n, config.trials, tau=config.tau_rel * adapted_shift_rms(t),
                         loss="zero_one", scale=1.0, q_bits=config.q_bits, n_boot=config.n_boot, seed=seed,
                         rng=point_rng(seed, VARIANTS.index(variant), n, 0))


def cmi_unit(config: Config, variant: str, n: int, seed: int) -> dict[str, np.ndarray]:
    """``supersample_point`` of ``synthetic.mlp_supersample`` for ``variant`` at ``n`` (docs/THEORY.md §2.6)."""
    ss = mlp_supersample(task(config), variant, config.rank, n, config.k_z, config.k_u, q_bits=config.q_bits,
                         eval_points=min(config.eval_points, n), seed=seed)
    return supersample_point(ss, config.n_boot, point_rng(seed, VARIANTS.index(variant), n, 1))


def units(config: Config, seed: int) -> list[Unit]:
    """Per (variant, n): a ``channel_unit`` and a ``cmi_unit`` (the figure's cache entries; ``figures.parallel``)."""
    return grid_units(NAME, config, seed, channel_unit, cmi_unit)


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """Per variant, every gap and bound over ``config.ns``; plus ``n`` and ``tau``.

    Per (variant, n): ``channel_unit`` and ``cmi_unit`` (the results of ``units``, cached, each on
    one torch thread), then ``assemble`` (``figures.bounds_vs_n_common``; Section 4.2 of Zhu et al.;
    docs/THEORY.md §2).

    Parameters
    ----------
    config : Config; seed : int; cache_dir : Path or None; force : bool, recompute cached entries.

    Returns
    -------
    dict
        ``n`` (len(ns),), ``tau`` (0-d), and per variant the arrays of ``assemble``.
    """
    results = iter(run_units(units(config, seed), cache_dir, force=force,
                             desc=f"{NAME}: training channel trials and supersamples"))
    out: dict = {"n": np.array(config.ns), "tau": np.array(config.tau_rel * adapted_shift_rms(task(config)))}
    for v in VARIANTS:
        pairs = [(next(results), next(results)) for _ in config.ns]
        out[v] = assemble(config.ns, [c for c, _ in pairs], [m for _, m in pairs])
    return out


def bound_checks(config: Config, data: dict) -> list[dict]:
    """Every bound against the 0-1 gap it is about (``figures.bounds_vs_n_common.pair_checks``).

    docs/THEORY.md §2.7.

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    list of dict
    """
    return pair_checks(data, {
        "gap": "0-1 loss of the quantized network", "perturbed_gap": "0-1 loss of W + N",
        "cmi_gap": "0-1 loss, supersample runs",
    })


def caption(config: Config, data: dict) -> str:
    """The setting, then the measured gaps and bounds at the largest n.

    The setting of Section 4.2's comparison on the MLP (docs/THEORY.md §2), then ``summary``.

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    str
    """
    widths = "-".join(map(str, config.widths))
    t = task(config)
    return (
        f"MLP classifier ({widths} tanh teacher, adapted and perturbed layer 0 ({config.widths[1]}x"
        f"{config.widths[0]}), inputs {t.input_dist}, random-orientation shift of rank {t.perturbation_rank}), rank "
        f"{config.rank}, {config.steps} full-batch Adam steps from one shared init, trained tensors quantized to "
        f"{config.q_bits} bits; 0-1 loss throughout: Lemma 4.5 and the Gaussian channel (W + N, "
        f"τ = {float(data['tau']):.3g} = {config.tau_rel:g} x RMS entry of the layer's shift) over {config.trials} "
        f"training sets per point, the CMI bounds over {config.k_z}x{config.k_u} supersample runs "
        f"(up to {config.eval_points} evaluated pairs each, MI pooled over them); markers are measured gaps with "
        f"95% intervals, lines the bounds with bootstrap intervals. " + summary(data, bound_checks(config, data))
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for Figure 5 (Section 4.2; docs/THEORY.md §2, §5).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return dict(nrows=2, ncols=2, figsize=(11, 8.5), sharex=True, sharey=True)


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` of Figure 5 on the axes made with ``SUBPLOTS`` (Section 4.2; docs/THEORY.md §2, §5).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    plot(data, axes, loss_label="0-1 loss", gap_labels={"gap": "0-1 gap of the quantized model"})
    legend(fig, axes[0, 0])


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 5 (Section 4.2; docs/THEORY.md §2, §5): PNG, PDF, JSON data, caption.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
