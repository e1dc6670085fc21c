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

import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import bounds
from bounds.cmi import selector_blind_floor
from figures.cache import memo
from figures.checks import BOOTSTRAP, T_INTERVAL, array_checks, caption_sentence, resolved_flags, warned
from figures.output import render
from synthetic.channel import adapted_shift_rms, perturbed_trial_losses
from synthetic.linear.learners import linear_supersample
from synthetic.linear.engine import LinearTask
from synthetic.montecarlo import mean_interval
from theory.variants import VARIANTS

NAME = "bounds_vs_n_linear"
DESCRIPTION = "Gaps vs n of each variant (linear, clipped loss) beside Lemma 4.5, Gaussian-channel and CMI bounds."
#: The CMI bounds of ``bounds.cmi``, by the key they get in the data.
CMI_BOUNDS = {"ld_cmi": bounds.ld_cmi_bound, "ecmi": bounds.ecmi_bound, "binary_kl": bounds.binary_kl_bound,
              "fast_rate": bounds.fast_rate_bound}
#: Pairs (bound, the measured gap it is about) checked for violations: bound high < gap low.
PAIRS = (("lemma45", "gap"), ("channel", "perturbed_gap"), *((k, "cmi_gap") for k in CMI_BOUNDS))
GAP_INTERVAL = {"gap": T_INTERVAL, "perturbed_gap": T_INTERVAL, "cmi_gap": BOOTSTRAP}  #: the interval of each gap
SIGMA = 0.5  #: sub-Gaussian parameter of a loss in [0, 1] (the clipped loss in units of c, or the 0-1 loss)
#: How the CMI bounds estimate their MI: one plug-in from the pairs of all evaluated points,
#: without the Miller–Madow correction (biased up, never an exact 0 with a collapsed interval).
CMI_ESTIMATOR = {"pool_points": True, "correction": "none"}


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
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Seconds-sized, for smoke tests."""
        return cls(d=4, rank=1, ns=(16, 32), trials=8, n_test=200, k_z=4, k_u=2, eval_points=8, n_boot=20)

    @classmethod
    def full(cls) -> "Config":
        return cls(ns=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096), trials=300, k_z=250, eval_points=1024, n_boot=200)


def task(config: Config) -> LinearTask:
    """The linear task: ``c = 2 d s²``, twice the noise floor ``d_out s²``, so clipping only cuts the tail."""
    return LinearTask(
        d_in=config.d, d_out=config.d, spectrum=config.spectrum, delta_rank=min(config.delta_rank, config.d),
        noise_var=config.noise_var, clip=config.clip, n_test=config.n_test, frozen="shared",
    )


def point_rng(seed: int, *key: int) -> np.random.Generator:
    """The bootstrap generator of one grid point."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def channel_point(
    task, variant: str, rank: int, n: int, trials: int, *, tau: float, loss: str, scale: float,
    q_bits: int, n_boot: int, seed: int, rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Per-trial losses (in units of ``scale``) of ``W`` and ``W + N``, storage bits, ``p`` and
    ``I(W + N; S)`` (value, low, high) in nats, NaN when ``trials <= p``; ``channel_may_be_low`` is 1
    when the estimate warned that it may lie below the truth (``bounds.EstimateMayBeLowWarning``: too
    few trials for its interval to cover)."""
    out = perturbed_trial_losses(task, variant, rank, n, trials, tau=tau, loss=loss, q_bits=q_bits, seed=seed)
    p = out["params"].shape[1]
    mi = np.full(3, np.nan)
    may_be_low = False
    if trials > p:
        est, may_be_low = warned(bounds.EstimateMayBeLowWarning,
                                 lambda: bounds.gaussian_channel_mi(out["params"], tau, rng, n_boot=n_boot))
        mi = np.array([est.value, est.low, est.high])
    return {
        "train": out["train_loss_unperturbed"] / scale, "test": out["test_loss_unperturbed"] / scale,
        "train_perturbed": out["train_loss"] / scale, "test_perturbed": out["test_loss"] / scale,
        "storage_bits": np.array(float(out["storage_bits"][0])), "params": np.array(float(p)), "mi_nats": mi,
        "channel_may_be_low": np.array(float(may_be_low)),
    }


def supersample_point(ss: bounds.Supersample, n_boot: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The measured gap and every CMI bound of one supersample: (value, low, high) each, its
    estimator's floor (``selector_blind_floor``) and its vacuity flag."""
    gap = ss.measured_gap(rng, n_boot=n_boot)
    out = {"cmi_gap": np.array([gap.value, gap.low, gap.high])}
    for key, bound in CMI_BOUNDS.items():
        res = bound(ss, rng, n_boot=n_boot, **CMI_ESTIMATOR)
        out[key] = np.array([res.value, res.low, res.high])
        out[f"{key}_vacuous"] = np.array(float(res.vacuous))
        out[f"{key}_floor"] = np.array(selector_blind_floor(bound, ss, rng, **CMI_ESTIMATOR))  # 95th percentile
    return out


def assemble(ns: tuple[int, ...], channel: list[dict], cmi: list[dict]) -> dict[str, np.ndarray]:
    """One variant's arrays over ``ns``: each gap and bound with its low/high, the CMI floors, and
    flags: vacuous, resolved (estimated bounds) and violated."""
    rows: dict[str, list[float]] = {}

    def put(key: str, triple) -> None:
        for suffix, value in zip(("", "_low", "_high"), triple):
            rows.setdefault(key + suffix, []).append(float(value))

    for n, ch, ss in zip(ns, channel, cmi):
        put("gap", np.take(mean_interval(ch["test"] - ch["train"]), [0, 2, 3]))  # mean, 95 % t interval
        put("perturbed_gap", np.take(mean_interval(ch["test_perturbed"] - ch["train_perturbed"]), [0, 2, 3]))
        lemma = bounds.xu_raginsky(float(ch["storage_bits"]) * math.log(2.0), SIGMA, n)
        put("lemma45", (lemma, lemma, lemma))
        mi = ch["mi_nats"]
        put("channel", [bounds.xu_raginsky(m, SIGMA, n) if np.isfinite(m) else np.nan for m in mi])
        put("channel_mi_nats", mi)
        for key in ("test", "test_perturbed"):
            rows.setdefault(f"{key}_loss", []).append(float(ch[key].mean()))
        for key in ("params", "storage_bits", "channel_may_be_low"):
            rows.setdefault(key, []).append(float(ch[key]))
        for key in ("cmi_gap", *CMI_BOUNDS):
            put(key, ss[key])
        for key in CMI_BOUNDS:
            for flag in ("vacuous", "floor"):
                rows.setdefault(f"{key}_{flag}", []).append(float(ss[f"{key}_{flag}"]))
    out = {k: np.array(v) for k, v in rows.items()}
    for key in ("lemma45", "channel"):
        out[f"{key}_vacuous"] = (out[key] >= 1.0).astype(float)
    for k in ("channel", *CMI_BOUNDS):
        out[f"{k}_resolved"] = resolved_flags(out[k], out[f"{k}_low"], out[f"{k}_high"], out.get(f"{k}_floor"))
    out["channel_resolved"] = out["channel_resolved"] * (1.0 - out["channel_may_be_low"])  # may be low: unresolved
    for bound, gap in PAIRS:
        out[f"{bound}_violated"] = (out[f"{bound}_high"] < out[f"{gap}_low"]).astype(float)
    return out


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """Per variant, every gap and bound over ``config.ns``; plus ``n`` and ``tau``."""
    t = task(config)
    tau = config.tau_rel * adapted_shift_rms(t)
    jobs = [(v, n) for v in VARIANTS for n in config.ns]
    channel: dict[str, list] = {v: [] for v in VARIANTS}
    cmi: dict[str, list] = {v: [] for v in VARIANTS}
    for variant, n in tqdm(jobs, desc=f"{NAME}: channel trials and supersamples per (variant, n)", leave=False):
        i = VARIANTS.index(variant)
        params = {"config": asdict(config), "variant": variant, "n": n, "seed": seed}
        channel[variant].append(memo(cache_dir, f"{NAME}-channel", params, lambda: channel_point(
            t, variant, config.rank, n, config.trials, tau=tau, loss="clipped", scale=config.clip,
            q_bits=config.q_bits, n_boot=config.n_boot, seed=seed, rng=point_rng(seed, i, n, 0),
        ), force=force))
        cmi[variant].append(memo(cache_dir, f"{NAME}-cmi", params, lambda: supersample_point(linear_supersample(
            t, variant, config.rank, n, config.k_z, config.k_u, q_bits=config.q_bits, levels=config.levels,
            eval_points=min(config.eval_points, n), seed=seed,
        ), config.n_boot, point_rng(seed, i, n, 1)), force=force))
    out: dict = {"n": np.array(config.ns), "tau": np.array(tau)}
    for v in VARIANTS:
        out[v] = assemble(config.ns, channel[v], cmi[v])
    return out


# --- plotting (shared with figures.bounds_vs_n_mlp) --------------------------------------------

FAMILY_COLOUR = {"lemma45": "#0072B2", "channel": "#D55E00", "cmi": "#009E73"}
CMI_STYLE = {"ld_cmi": "-", "ecmi": "--", "binary_kl": "-.", "fast_rate": ":"}
CMI_LABEL = {"ld_cmi": "ld-CMI", "ecmi": "e-CMI", "binary_kl": "binary-kl CMI", "fast_rate": "fast-rate CMI"}
LEGEND_BOUNDS = ("Lemma 4.5 (q·N + 32 bits/tensor)", "Gaussian channel, τ as captioned", *CMI_LABEL.values())
FLOOR_LABEL = "ld-CMI estimator floor (selectors redrawn)"
UNRESOLVED_LABEL = "hollow: estimate not resolved"


def _positive(values: np.ndarray) -> np.ndarray:
    """Values for a log axis: non-positive (and NaN) entries are not drawn."""
    return np.where(np.asarray(values, dtype=float) > 0, np.asarray(values, dtype=float), np.nan)


def _gap(ax, x, d: dict, key: str, colour: str, label: str, marker: str, offset: float, floor: float) -> None:
    """A measured gap with its interval; a lower end at or below ``floor`` is drawn down to it."""
    y = _positive(d[key])
    low = np.maximum(np.asarray(d[f"{key}_low"]), floor)
    yerr = np.vstack([np.clip(y - low, 0, None), np.clip(d[f"{key}_high"] - y, 0, None)])
    ax.errorbar(x * offset, y, yerr=np.nan_to_num(yerr), fmt=marker, ms=5, capsize=2.5, color=colour,
                mfc="white", label=label)


def _limits(data: dict) -> tuple[float, float]:
    """The log axis: from a third of the smallest positive gap or bound to twice the largest."""
    keys = ("gap", "perturbed_gap", "cmi_gap", "lemma45", "channel", *CMI_BOUNDS)
    values = np.concatenate([np.ravel(data[v][k]) for v in VARIANTS for k in keys])
    positive = values[np.isfinite(values) & (values > 0)]
    return (float(positive.min()) / 3, max(2.0 * float(positive.max()), 2.0)) if positive.size else (1e-3, 2.0)


def _bound(ax, x, d: dict, key: str, colour: str, label: str, ls: str = "-", bars: float | None = None) -> None:
    """A bound as a line with its interval: a band, or (``bars``: x offset) thin vertical bars
    where several bounds share a colour. A low end at 0 reaches the bottom of the log axis."""
    y = _positive(d[key])
    low, high = np.asarray(d[f"{key}_low"], dtype=float), _positive(d[f"{key}_high"])
    ax.plot(x, y, ls=ls, color=colour, label=label)
    if f"{key}_resolved" in d:  # an estimate: a marker, filled where resolved, hollow where not
        resolved = np.asarray(d[f"{key}_resolved"]) > 0
        for mask, face in ((resolved, colour), (~resolved, "white")):
            ax.plot((x * (bars or 1.0))[mask], y[mask], "o", ms=3.5, mec=colour, mfc=face, mew=0.9, ls="")
    if bars is None:
        ax.fill_between(x, _positive(low), high, color=colour, alpha=0.15, lw=0)
        return
    bottom = np.where(low > 0, low, 1e-30)
    ax.vlines(x * bars, bottom, high, color=colour, lw=1.0, alpha=0.6)


def plot(data: dict, axes=None, *, loss_label: str = "loss / c", gap_labels: dict | None = None):
    """One log–log panel per variant: each measured gap (markers, 95 % interval) beside its bounds."""
    import matplotlib.pyplot as plt

    from figures.style import VARIANT_STYLE

    if axes is None:
        _, axes = plt.subplots(2, 2, sharex=True, sharey=True)
    labels = {"gap": "gap of the quantized model", "perturbed_gap": "gap of W + N", "cmi_gap": "gap, supersample",
              **(gap_labels or {})}
    x = np.asarray(data["n"], dtype=float)
    floor, top = _limits(data)
    for ax, variant in zip(np.ravel(axes), VARIANTS):
        d = data[variant]
        _gap(ax, x, d, "gap", FAMILY_COLOUR["lemma45"], labels["gap"], "o", 0.9, floor)
        _bound(ax, x, d, "lemma45", FAMILY_COLOUR["lemma45"], LEGEND_BOUNDS[0])
        _gap(ax, x, d, "perturbed_gap", FAMILY_COLOUR["channel"], labels["perturbed_gap"], "s", 0.95, floor)
        _bound(ax, x, d, "channel", FAMILY_COLOUR["channel"], LEGEND_BOUNDS[1])
        if not np.all(np.isfinite(d["channel"])):
            ax.text(0.02, 0.03, "Gaussian channel not estimated where trials <= p", transform=ax.transAxes,
                    color=FAMILY_COLOUR["channel"], fontsize=8)
        _gap(ax, x, d, "cmi_gap", FAMILY_COLOUR["cmi"], labels["cmi_gap"], "D", 1.0, floor)
        for j, (key, ls) in enumerate(CMI_STYLE.items()):
            _bound(ax, x, d, key, FAMILY_COLOUR["cmi"], CMI_LABEL[key], ls, bars=1.05 + 0.04 * j)
        ax.plot(x, _positive(d["ld_cmi_floor"]), color="0.45", lw=0.9, ls=(0, (1, 1.5)), label=FLOOR_LABEL)
        ax.axhline(1.0, color="black", lw=0.9, ls="--", label="trivial level")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_ylim(floor, top)
        ax.set_title(VARIANT_STYLE[variant]["label"])
        ax.set_xticks(x, [str(int(n)) for n in x])
    for ax in np.ravel(axes)[-2:]:
        ax.set_xlabel("training-set size n")
    for ax in np.ravel(axes)[::2]:
        ax.set_ylabel(f"gap or bound ({loss_label})")
    return axes


def legend(fig, ax) -> None:
    """One legend under the panels: each measured gap above the bounds about it, family by family."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    by_label = dict(zip(labels, handles))
    by_label[UNRESOLVED_LABEL] = Line2D([], [], marker="o", ls="", color="0.3", mfc="white", ms=5)
    gaps = [lab for lab in labels if lab not in (*LEGEND_BOUNDS, FLOOR_LABEL, "trivial level")]
    order = [gaps[0], LEGEND_BOUNDS[0], gaps[1], LEGEND_BOUNDS[1], gaps[2], *LEGEND_BOUNDS[2:], FLOOR_LABEL,
             "trivial level", UNRESOLVED_LABEL]
    fig.legend([by_label[k] for k in order], order, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.09))


BOUND_NAME = {"lemma45": "Lemma 4.5", "channel": "Gaussian channel", **CMI_LABEL}


def pair_checks(data: dict, losses: dict[str, str]) -> list[dict]:
    """A record per (variant, n, bound in ``PAIRS``) against its gap, whose loss ``losses`` names."""
    return array_checks(data, VARIANTS, PAIRS, BOUND_NAME, losses, GAP_INTERVAL)


def bound_checks(config: Config, data: dict) -> list[dict]:
    """Every bound against the gap of its own loss, in units of ``c`` (``pair_checks``)."""
    unit = f"clipped squared loss / c (c = {config.clip:g})"
    return pair_checks(data, {"gap": f"{unit} of the quantized model", "perturbed_gap": f"{unit} of W + N",
                              "cmi_gap": f"{unit} rounded up to a 1/{config.levels} grid, supersample runs"})


def summary(data: dict, checks: list[dict]) -> str:
    """At the largest n, per variant, each gap beside its bound (the tightest CMI one), unresolved
    estimates marked; the channel's cost; the CMI floor; then ``figures.checks.caption_sentence``."""
    i = -1

    def value(d: dict, key: str) -> str:
        return f"{d[key][i]:.2g}" + ("" if d[f"{key}_resolved"][i] > 0 else " (unresolved)")

    parts = []
    for v in VARIANTS:
        d = data[v]
        cmi = min(CMI_BOUNDS, key=lambda k: d[k][i])
        channel = value(d, "channel") if np.isfinite(d["channel"][i]) else "not estimated (trials <= p)"
        parts.append(
            f"{v} {d['gap'][i]:.2g} vs Lemma 4.5 {d['lemma45'][i]:.2g}, W + N {d['perturbed_gap'][i]:.2g} vs "
            f"channel {channel}, supersample {d['cmi_gap'][i]:.2g} vs {CMI_LABEL[cmi]} {value(d, cmi)}"
        )
    cost = max((data[v]["test_perturbed_loss"] - data[v]["test_loss"]).max() for v in VARIANTS)
    low = [f"{v} n = {int(n)}" for v in VARIANTS for n, flag in zip(data["n"], data[v]["channel_may_be_low"]) if flag]
    if low:
        parts.append("the channel estimate may be low (too few trials for its interval to cover; counted as "
                     "unresolved) at " + ", ".join(low))
    floors = sorted({f"{data[v]['ld_cmi_floor'][i]:.2g}" for v in VARIANTS}, key=float)
    return (
        f"At n = {int(data['n'][i])} the measured gaps and bounds are: " + "; ".join(parts)
        + f"; the channel raised the test loss by at most {cost:.2g}; the ld-CMI estimator's floor there (its "
        f"95th percentile for selectors redrawn independently of the losses, whose CMI is 0) is "
        f"{'-'.join(floors[::max(len(floors) - 1, 1)])}; hollow markers are estimates not above their floor or "
        "smaller than their interval's width. " + caption_sentence(checks)
    )


def caption(config: Config, data: dict) -> str:
    """The setting, then the measured gaps and bounds at the largest n, and the checks."""
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
    """Keyword arguments of ``plt.subplots`` for this figure."""
    return dict(nrows=2, ncols=2, figsize=(11, 8.5), sharex=True, sharey=True)


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` on the axes made with ``SUBPLOTS``."""
    plot(data, axes)
    legend(fig, axes[0, 0])


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save the figure, its data and caption.

    ``config`` overrides the ``quick``/``full`` preset (the tests use ``Config.tiny()``).
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
