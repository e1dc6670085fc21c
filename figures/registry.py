"""The figures the toolkit can regenerate, in the order ``lora-asym figures`` makes them."""

from __future__ import annotations

import importlib
from types import ModuleType

#: Figure name -> module under ``figures`` with ``NAME``, ``DESCRIPTION`` and ``make``.
FIGURES: tuple[str, ...] = (
    "asymmetry_vs_rank",
    "asymmetry_gap",
    "asymmetry_map",
    "bounds_vs_n_linear",
    "bounds_vs_n_mlp",
    "bound_ratios",
    "similarity",
    "rank_doubling",
    "asymmetry_predictor",
    "foundation_variants",
    "foundation_rule",
)


def load(name: str) -> ModuleType:
    """The module of figure ``name``; ``ValueError`` listing the known names otherwise.

    Only the names of ``FIGURES`` are figures (README.md, "Figures"); other modules of ``figures``
    (e.g. ``bounds_vs_n_common``) never are.

    Parameters
    ----------
    name : str

    Returns
    -------
    module
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known figures: {', '.join(FIGURES)}")
    return importlib.import_module(f"figures.{name}")
