"""One plotting style for every figure: readable in print and on a projector."""

from __future__ import annotations

import matplotlib as mpl

#: Colour and marker of each tuning variant, shared by all figures (colour-blind safe, Okabe–Ito).
VARIANT_STYLE = {
    "full": {"color": "#000000", "marker": "s", "label": "full"},
    "lora": {"color": "#0072B2", "marker": "o", "label": "lora (A and B)"},
    "b_only": {"color": "#D55E00", "marker": "^", "label": "b_only (A frozen)"},
    "a_only": {"color": "#009E73", "marker": "v", "label": "a_only (B frozen)"},
}

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "lines.linewidth": 2.0,
    "lines.markersize": 5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def style() -> "mpl.RcParams":
    """A context manager applying the shared style: ``with style(): ...``.

    ``matplotlib.rc_context(RC)``, used by ``figures.output.render`` for every figure of README.md,
    "Figures".

    Returns
    -------
    matplotlib.RcParams context manager
    """
    return mpl.rc_context(RC)
