"""Drawing figures 4 and 5 (``bounds_vs_n_linear``, ``bounds_vs_n_mlp``): each variant's measured gaps
beside the bounds about them, on log axes, with one legend. Not a figure (no ``NAME``, no ``make``):
the two figure modules import it; their numbers come from ``figures.bounds_vs_n_common``.
"""

from __future__ import annotations

import numpy as np

from figures.bounds_vs_n_common import CMI_BOUNDS, CMI_LABEL
from theory.variants import VARIANTS

FAMILY_COLOUR = {"lemma45": "#0072B2", "channel": "#D55E00", "cmi": "#009E73"}
CMI_STYLE = {"ld_cmi": "-", "ecmi": "--", "binary_kl": "-.", "fast_rate": ":"}
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
