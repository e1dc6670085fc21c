r"""Figure 6: how much the Lemma 4.5 bound favours b_only, and how much the measured gap does.

Left: the Lemma 4.5 bound ratios ``lora / b_only = sqrt((d_in + d_out)/d_out)`` (``√2`` for square
layers) and ``a_only / b_only = sqrt(d_in/d_out)`` against ``d_out/d_in``, computed with
``bounds.lora_mi_bound`` (Zhu et al., ICML 2024, Lemma 4.5 and Section 4.2.1). Right, beside it:
the ratios of the *measured* expected generalization gaps of the same variants on the linear task
(clipped squared loss, trained parameters quantized to ``q_bits``, Monte Carlo over training sets,
95 % paired-bootstrap intervals), with the trained-parameter-count ratios for reference.

The ratios use ``bounds.lora_mi_bound`` (``q N`` bits, ``σ = 1/2``), whose units cancel. Each
measured gap is also checked against the bound on *its* loss (``bound_checks``): Lemma 4.5 with
Lemma 4.4 (Xu & Raginsky 2017) counting every stored bit, ``sqrt(2 σ² ln2 · storage_bits / n)``
with ``storage_bits = q N + 32`` per trained tensor (the float32 scales), which is
``bounds.lora_mi_bound(..., scale_bits=32)``, and ``σ = c/2`` for the
clipped loss in ``[0, c]`` (``bounds.subgaussian_sigma``), in the loss's own units, beside the
mean gap with its 95 % Student-t interval over training sets; it is vacuous at or above ``c``.
"""

from __future__ import annotations

import sys

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import bounds
from figures.parallel import Unit, run_units
from figures.checks import T_INTERVAL, bound_check, caption_sentence
from figures.output import render
from synthetic.linear.engine import LinearTask
from synthetic.montecarlo import mean_interval, measure_gap
from theory.variants import VARIANTS as ALL_VARIANTS

#: Bits stored per trained tensor besides its parameters: the float32 step of ``synthetic.quantize``.
SCALE_BITS = 32

NAME = "bound_ratios"
DESCRIPTION = "Lemma 4.5 bound ratio lora/b_only vs d_out/d_in (√2 at square) beside the measured gap ratio."
VARIANTS = tuple(v for v in ALL_VARIANTS if v != "full")  #: the adapters, beside full tuning


@dataclass(frozen=True)
class Config:
    """Layers ``d_out × d_in`` with ``d_in`` fixed; linear task, clipped loss, quantized fits."""

    d_in: int = 16
    d_outs: tuple[int, ...] = (4, 8, 16, 32, 64)
    rank: int = 2
    n: int = 64
    trials: int = 200
    q_bits: int = 8
    noise_var: float = 1.0
    clip_per_output: float = 4.0
    spectrum: str = "powerlaw:1"
    bootstrap: int = 2000

    @classmethod
    def quick(cls) -> "Config":
        """The quick preset (``lora-asym figures``): Figure 6 at the defaults (Lemma 4.5; docs/THEORY.md §2.2)."""
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Figure 6 at seconds size (Lemma 4.5; docs/THEORY.md §2.2), for smoke tests."""
        return cls(d_in=4, d_outs=(2, 4, 8), rank=1, n=16, trials=8, bootstrap=50)

    @classmethod
    def full(cls) -> "Config":
        """The full preset (``lora-asym figures --full``): Figure 6 at larger sizes (Lemma 4.5; docs/THEORY.md §2.2)."""
        return cls(d_outs=(2, 4, 8, 16, 32, 64, 128), trials=1000)


def task(config: Config, d_out: int) -> LinearTask:
    """The linear task at one layer shape; the clip level scales with ``d_out`` (summed outputs).

    Eq. (1)'s task with a ``d_out x d_in`` layer and the squared loss clipped at
    ``clip_per_output · d_out`` (docs/THEORY.md §1.1, §2.1).

    Parameters
    ----------
    config : Config; d_out : int.

    Returns
    -------
    LinearTask
    """
    return LinearTask(
        d_in=config.d_in, d_out=d_out, spectrum=config.spectrum, delta_rank=config.rank,
        noise_var=config.noise_var, clip=config.clip_per_output * d_out, n_test=4000,
    )


def point(config: Config, d_out: int, seed: int) -> dict[str, np.ndarray]:
    """Per-trial clipped-loss gaps ``v`` (trials,) of each variant at one ``d_out`` (same training
    sets for every variant) and the stored bits ``storage_bits_v`` (scalar) of its quantized fit.

    ``synthetic.measure_gap`` with the clipped loss and ``q_bits`` quantization: the gap Lemma 4.5
    bounds (docs/THEORY.md §2.1–§2.2, §7.4).

    Parameters
    ----------
    config : Config; d_out : int; seed : int.

    Returns
    -------
    dict of ndarray
    """
    t = task(config, d_out)
    out = {}
    for v in VARIANTS:
        records = measure_gap(t, v, config.rank, config.n, config.trials, loss="clipped", q_bits=config.q_bits,
                              seed=seed).records
        out[v] = np.array([row["gap"] for row in records])
        out[f"storage_bits_{v}"] = np.array(float(records[0]["storage_bits"]))
    return out


def ratio_interval(num: np.ndarray, den: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Ratio of mean gaps and its 95 % paired-bootstrap percentile interval (trials resampled jointly).

    ``mean(num) / mean(den)``, the measured counterpart of Lemma 4.5's bound ratio
    (docs/THEORY.md §2.2, §2.6).

    Parameters
    ----------
    num, den : ndarray
        (trials,) paired per-trial gaps.
    resamples : int
        Bootstrap resamples.
    rng : numpy.random.Generator

    Returns
    -------
    tuple of float
        ``(ratio, low, high)``.
    """
    idx = rng.integers(0, num.size, size=(resamples, num.size))
    boot = num[idx].mean(axis=1) / den[idx].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(num.mean() / den.mean()), float(low), float(high)


def units(config: Config, seed: int) -> list[Unit]:
    """One unit per ``d_out``: its ``point`` (the figure's cache entries; ``figures.parallel``)."""
    return [Unit(NAME, {"config": asdict(config), "d_out": d_out, "seed": seed, "format": 2}, point,
                 (config, d_out, seed)) for d_out in config.d_outs]


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """Bound ratios, measured gap ratios with intervals, parameter ratios; per variant the mean
    clipped-loss gap with its interval, the stored bits and the Lemma 4.5 bound on that loss
    (``lemma45_v``, same units as the gap); each (len(d_outs),).

    Bound ratios from ``bounds.lora_mi_bound`` (Lemma 4.5, ``σ = 1/2``; units cancel), gap ratios from
    ``point`` (the results of ``units``, cached) and ``ratio_interval``; Lemma 4.5 on the clipped
    loss counts every stored bit, ``σ = c/2`` (docs/THEORY.md §2.2).

    Parameters
    ----------
    config : Config; seed : int; cache_dir : Path or None; force : bool, recompute cached entries.

    Returns
    -------
    dict of ndarray
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 6]))
    rows: dict[str, list[float]] = {}
    results = run_units(units(config, seed), cache_dir, force=force, desc=f"{NAME}: measuring gaps per layer shape")
    for d_out, gaps in zip(config.d_outs, results):
        clip = config.clip_per_output * d_out
        layer = [(d_out, config.d_in)]
        bound = {v: bounds.lora_mi_bound(v, layer, config.rank, config.q_bits, 0.5, config.n) for v in VARIANTS}
        count = {v: bounds.trainable_params(v, layer, config.rank) for v in VARIANTS}
        for v in ("lora", "a_only"):
            ratio, low, high = ratio_interval(gaps[v], gaps["b_only"], config.bootstrap, rng)
            values = {
                f"bound_{v}": bound[v] / bound["b_only"],
                f"params_{v}": count[v] / count["b_only"],
                f"gap_{v}": ratio, f"gap_{v}_low": low, f"gap_{v}_high": high,
            }
            for key, value in values.items():
                rows.setdefault(key, []).append(value)
        for v in VARIANTS:
            mean, _, low, high = mean_interval(gaps[v])
            bits = float(gaps[f"storage_bits_{v}"])
            values = {
                f"mean_gap_{v}": mean, f"mean_gap_{v}_low": low, f"mean_gap_{v}_high": high,
                f"storage_bits_{v}": bits,
                f"lemma45_{v}": bounds.lora_mi_bound(v, layer, config.rank, config.q_bits,
                                                     bounds.subgaussian_sigma(0.0, clip), config.n,
                                                     scale_bits=SCALE_BITS),
            }
            for key, value in values.items():
                rows.setdefault(key, []).append(value)
    out = {k: np.array(v) for k, v in rows.items()}
    out["d_out_over_d_in"] = np.array(config.d_outs) / config.d_in
    return out


def bound_checks(config: Config, data: dict) -> list[dict]:
    """Per (d_out, variant): Lemma 4.5 (all stored bits, ``σ = c/2``) against the measured gap of
    the clipped squared loss, both in the loss's units; vacuous at or above ``c``.

    ``figures.checks.bound_check`` records (docs/THEORY.md §2.7).

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    list of dict
    """
    checks = []
    for i, d_out in enumerate(config.d_outs):
        clip = config.clip_per_output * d_out
        for v in VARIANTS:
            bound = data[f"lemma45_{v}"][i]
            checks.append(bound_check(
                {"variant": v, "d_out": int(d_out), "d_in": config.d_in, "n": config.n}, "Lemma 4.5", bound,
                loss=f"clipped squared loss (c = {clip:g}) of the quantized model", gap=data[f"mean_gap_{v}"][i],
                gap_low=data[f"mean_gap_{v}_low"][i], gap_high=data[f"mean_gap_{v}_high"][i],
                gap_interval=T_INTERVAL, vacuous=bound >= clip,
            ))
    return checks


def plot(data: dict, axes=None):
    """Left: bound ratios; right: measured gap ratios with intervals and parameter ratios.

    The ``√2`` line is Lemma 4.5's ``lora / b_only`` ratio for square layers (Section 4.2.1 of
    Zhu et al.; docs/THEORY.md §2.2).

    Parameters
    ----------
    data : dict, ``compute``'s output; axes : pair of matplotlib Axes, optional (made when None).

    Returns
    -------
    The axes drawn on.
    """
    import matplotlib.pyplot as plt

    from figures.style import VARIANT_STYLE

    if axes is None:
        _, axes = plt.subplots(1, 2, sharey=True)
    left, right = axes
    x = data["d_out_over_d_in"]
    for v in ("lora", "a_only"):
        style = {k: VARIANT_STYLE[v][k] for k in ("color", "marker")}
        left.plot(x, data[f"bound_{v}"], label=f"{v} / b_only", **style)
        yerr = [data[f"gap_{v}"] - data[f"gap_{v}_low"], data[f"gap_{v}_high"] - data[f"gap_{v}"]]
        right.errorbar(x, data[f"gap_{v}"], yerr=yerr, capsize=3, label=f"measured gap {v} / b_only", **style)
        right.plot(x, data[f"params_{v}"], ls=":", color=style["color"], label=f"parameter count {v} / b_only")
    left.axhline(np.sqrt(2), color="gray", lw=0.8, ls="--")
    left.annotate("√2", (1.0, np.sqrt(2)), textcoords="offset points", xytext=(4, 4), color="gray")
    for ax, title in ((left, "Lemma 4.5 bound ratio"), (right, "measured gap ratio")):
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("d_out / d_in")
        ax.set_title(title)
        ax.legend(loc="best")
    left.set_ylabel("ratio to b_only")
    return axes


def caption(config: Config, data: dict) -> str:
    """The setting, then the measured ratio at the square layer and which reference it is nearer.

    Nearer in mean ``|log|`` distance: the parameter-count ratio or Lemma 4.5's bound ratio
    (docs/THEORY.md §2.2); then the Lemma 4.5 checks (``figures.checks.caption_sentence``).

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    str
    """
    i = int(np.argmin(np.abs(data["d_out_over_d_in"] - 1.0)))
    log_gap = np.log(data["gap_lora"])
    near_params = np.mean(np.abs(log_gap - np.log(data["params_lora"])))
    near_bound = np.mean(np.abs(log_gap - np.log(data["bound_lora"])))
    nearer = "parameter-count ratio" if near_params < near_bound else "bound ratio"
    clip, bound = config.clip_per_output * config.d_outs[i], data["lemma45_b_only"][i]
    vacuous = f" (vacuous: at or above the clip c = {clip:g}, the loss's range)" if bound >= clip else ""
    return (
        f"Layers d_out x {config.d_in} at rank {config.rank}; linear task ({config.spectrum} Σ), n = {config.n}, "
        f"{config.trials} training sets per point, squared loss clipped at {config.clip_per_output:g}·d_out, "
        f"parameters quantized to {config.q_bits} bits. At d_out/d_in = {data['d_out_over_d_in'][i]:g} the bound ratio "
        f"lora/b_only is {data['bound_lora'][i]:.3f} while the measured gap ratio is {data['gap_lora'][i]:.2f} "
        f"(95% CI {data['gap_lora_low'][i]:.2f}-{data['gap_lora_high'][i]:.2f}); across shapes the measured lora/b_only "
        f"ratio is nearer (in log scale) to the {nearer} (mean |log| distance {min(near_params, near_bound):.2f} "
        f"vs {max(near_params, near_bound):.2f}). Each variant's measured clipped-loss gap is checked against "
        f"Lemma 4.5 on that loss, counting every stored bit (q·N + 32 per tensor: bounds.lora_mi_bound with "
        f"scale_bits=32; σ = c/2): "
        f"at d_out/d_in = {data['d_out_over_d_in'][i]:g} b_only's gap is {data['mean_gap_b_only'][i]:.3g} "
        f"against its bound {bound:.3g}{vacuous}. " + caption_sentence(bound_checks(config, data))
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for Figure 6 (Lemma 4.5; docs/THEORY.md §2.2).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return dict(ncols=2, figsize=(11, 4.2), sharey=True)


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` of Figure 6 on the axes made with ``SUBPLOTS`` (Lemma 4.5; docs/THEORY.md §2.2).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    plot(data, axes)


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 6 (Lemma 4.5; docs/THEORY.md §2.2): PNG, PDF, JSON data, caption.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
