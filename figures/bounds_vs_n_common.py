r"""What figures 4 and 5 (``bounds_vs_n_linear``, ``bounds_vs_n_mlp``) share: the computation of
each grid point and the plotting and caption helpers. Not a figure (no ``NAME``, no ``make``; not
in ``figures.registry.FIGURES``): the two figure modules import it, and neither imports the other.

Each grid point ``(variant, n)`` of those figures pairs three bounds with the measured gap of the
loss and algorithm each is about (docs/THEORY.md §2; Zhu et al., "Asymmetry in Low-Rank Adapters
of Foundation Models", ICML 2024, Section 4.2):

* ``channel_point``: per-trial losses of ``W`` and of ``W + N`` (``synthetic.channel``), the
  storage bits of Lemma 4.5 (docs/THEORY.md §2.2) and the Gaussian-channel MI
  ``I(W + N; S) <= ½ log det(I + Cov(W)/τ²)`` (``bounds.gaussian_channel_mi``, §2.5);
* ``supersample_point``: the supersample gap (``bounds.supersample_gap``) and the CMI bounds of
  ``CMI_BOUNDS`` with their estimator floors (``bounds.cmi.selector_blind_floor``, §2.4) on the
  arrays of one ``synthetic.Supersample``;
* ``assemble``: one variant's arrays over ``n``, with the Xu–Raginsky map ``sqrt(2 σ² I / n)``
  (Lemma 4.4, §2.1) applied to the bits and the channel MI, and the vacuous, resolved and
  violated flags (``figures.checks``, §2.7).
"""

from __future__ import annotations

import math

import numpy as np

import bounds
from bounds.cmi import selector_blind_floor
from figures.checks import BOOTSTRAP, T_INTERVAL, array_checks, caption_sentence, resolved_flags, warned
from synthetic.channel import perturbed_trial_losses
from synthetic.montecarlo import mean_interval
from synthetic.supersample import Supersample
from theory.variants import VARIANTS

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


def point_rng(seed: int, *key: int) -> np.random.Generator:
    """The bootstrap generator of one grid point: ``default_rng(SeedSequence([seed, *key]))``.

    Its own stream per grid point and role, so a cached point does not shift another's draws
    (docs/THEORY.md §2.6).

    Parameters
    ----------
    seed : int, the figure's seed; *key : int, the point and role, e.g. ``(variant index, n, 0)``.

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def channel_point(
    task, variant: str, rank: int, n: int, trials: int, *, tau: float, loss: str, scale: float,
    q_bits: int, n_boot: int, seed: int, rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    r"""The Lemma 4.5 and Gaussian-channel half of one grid point.

    Runs ``synthetic.channel.perturbed_trial_losses`` (the trained ``W`` of each trial, and ``W + N``
    with ``N ~ N(0, τ² I)``) and estimates ``I(W + N; S) <= ½ log det(I + Cov(W)/τ²)`` across the
    trials with ``bounds.gaussian_channel_mi`` (docs/THEORY.md §2.5) when ``trials > p``, the
    number of trained parameters; otherwise the MI is NaN.

    Parameters
    ----------
    task, variant, rank, n, trials, tau, loss, q_bits, seed
        As in ``perturbed_trial_losses`` (``loss`` is ``"clipped"`` or ``"zero_one"``).
    scale : float
        Losses are divided by it (the clip ``c``, or 1).
    n_boot : int
        Bootstrap replicates of the MI.
    rng : numpy.random.Generator
        Source of the MI's bootstrap (``point_rng``).

    Returns
    -------
    dict of ndarray
        ``train``/``test`` and ``train_perturbed``/``test_perturbed`` (trials,) per-trial losses in
        units of ``scale``; ``storage_bits`` (Lemma 4.5's ``q N + 32`` per tensor), ``params`` ``p``;
        ``mi_nats`` (value, low, high) in nats; ``channel_may_be_low`` 1.0 when the estimate warned
        it may lie below the truth (``bounds.EstimateMayBeLowWarning``: too few trials for its
        interval to cover), else 0.0.
    """
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


def supersample_point(ss: Supersample, n_boot: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The CMI half of one grid point: the measured gap and every CMI bound of one supersample.

    The gap is ``bounds.supersample_gap``, the mean of test minus training loss over all runs
    (Steinke & Zakynthinou 2020); each bound of ``CMI_BOUNDS`` is estimated with ``CMI_ESTIMATOR``
    and read beside its estimator's floor, the 95th percentile of the same estimate for selectors
    redrawn independently of the losses (``bounds.cmi.selector_blind_floor``; docs/THEORY.md §2.4).

    Parameters
    ----------
    ss : synthetic.Supersample
        The recorded losses and selectors.
    n_boot : int
        Bootstrap replicates of every interval.
    rng : numpy.random.Generator
        Source of the bootstraps and the null tables, drawn in this order: gap, then per bound
        its estimate and its floor.

    Returns
    -------
    dict of ndarray
        ``cmi_gap`` and each bound key: (value, low, high) in loss units; ``<key>_vacuous`` 1.0 when
        the bound is at the trivial level ``1 - R^``; ``<key>_floor`` the floor in loss units.
    """
    gap = bounds.supersample_gap(ss.losses, ss.selectors, rng, n_boot=n_boot)
    out = {"cmi_gap": np.array([gap.value, gap.low, gap.high])}
    for key, bound in CMI_BOUNDS.items():
        res = bound(ss.losses, ss.selectors, rng, n_boot=n_boot, **CMI_ESTIMATOR)
        out[key] = np.array([res.value, res.low, res.high])
        out[f"{key}_vacuous"] = np.array(float(res.vacuous))
        floor = selector_blind_floor(ss.losses, ss.selectors, rng, bound=bound, **CMI_ESTIMATOR)  # 95th percentile
        out[f"{key}_floor"] = np.array(floor)
    return out


def assemble(ns: tuple[int, ...], channel: list[dict], cmi: list[dict]) -> dict[str, np.ndarray]:
    r"""One variant's arrays over ``ns``: each gap and bound with its low/high, the CMI floors, and flags.

    Gaps: the mean test minus training loss of ``W`` (``gap``) and of ``W + N``
    (``perturbed_gap``) with 95 % Student-t intervals (``synthetic.montecarlo.mean_interval``), and
    the supersample gap (``cmi_gap``). Bounds: Lemma 4.5 ``sqrt(2 σ² · storage_bits · ln 2 / n)``
    and the channel ``sqrt(2 σ² I(W + N; S) / n)`` through the Xu–Raginsky map
    (``bounds.xu_raginsky``; Lemma 4.4, docs/THEORY.md §2.1–§2.2, §2.5) with ``σ = SIGMA``, and the
    CMI bounds as estimated. Flags (docs/THEORY.md §2.7): ``<bound>_vacuous`` (at or above 1, or as
    the CMI estimate says), ``<bound>_resolved`` (``figures.checks.resolved_flags``; a channel
    estimate that may be low is unresolved) and ``<bound>_violated`` (bound high < gap low, per
    ``PAIRS``).

    Parameters
    ----------
    ns : tuple of int, the training-set sizes.
    channel, cmi : list of dict, ``channel_point`` and ``supersample_point`` per ``n``.

    Returns
    -------
    dict of ndarray
        (len(ns),) arrays by key.
    """
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



# --- plotting and captions ------------------------------------------------------------------

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
    """One log–log panel per variant: each measured gap (markers, 95 % interval) beside its bounds.

    Lemma 4.5, the Gaussian channel and the CMI bounds (docs/THEORY.md §2.2, §2.5, §2.4) are drawn
    in the colour of the gap they bound; estimated bounds get markers, hollow where unresolved
    (§2.7), and the ld-CMI estimator's floor is a dotted grey line.

    Parameters
    ----------
    data : dict
        ``compute``'s output: ``n`` and, per variant, the arrays of ``assemble``.
    axes : array of matplotlib Axes, optional
        Four panels, one per variant of ``theory.variants.VARIANTS``; made when None.
    loss_label : str, the unit of the y axis; gap_labels : dict, optional, legend labels of the gaps.

    Returns
    -------
    The axes drawn on.
    """
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
    """One legend under the panels: each measured gap above the bounds about it, family by family.

    Lemma 4.5, the Gaussian channel and the CMI bounds (docs/THEORY.md §2.2, §2.5, §2.4), then the
    ld-CMI floor, the trivial level and the hollow marker of an unresolved estimate (§2.7).

    Parameters
    ----------
    fig : matplotlib Figure
    ax : matplotlib Axes
        A panel drawn by ``plot``, whose handles and labels the legend takes.
    """
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
    """A record per (variant, n, bound in ``PAIRS``) against its gap, whose loss ``losses`` names.

    Each record is ``figures.checks.bound_check``'s: the bound held when ``bound_high >= gap_low``
    (docs/THEORY.md §2.7).

    Parameters
    ----------
    data : dict
        ``compute``'s output.
    losses : dict of str
        The loss of each gap key (``gap``, ``perturbed_gap``, ``cmi_gap``), as the records name it.

    Returns
    -------
    list of dict
        ``figures.checks.array_checks``' records.
    """
    return array_checks(data, VARIANTS, PAIRS, BOUND_NAME, losses, GAP_INTERVAL)


def summary(data: dict, checks: list[dict]) -> str:
    """The caption's findings: at the largest n, per variant, each gap beside its bound.

    Per variant the gap of the quantized model beside Lemma 4.5, that of ``W + N`` beside the
    channel, and the supersample gap beside the tightest CMI bound, unresolved estimates marked
    (docs/THEORY.md §2.7); then where the channel estimate may be low, the largest increase of test
    loss the channel caused, the range of the ld-CMI estimator's floor (§2.4), and
    ``figures.checks.caption_sentence`` of ``checks``.

    Parameters
    ----------
    data : dict, ``compute``'s output; checks : list of dict, the figure's ``bound_checks``.

    Returns
    -------
    str
    """
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

