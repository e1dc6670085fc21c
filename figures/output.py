"""Writing a figure's files: PNG and PDF, the numbers behind it (JSON) and its caption.

Every file is replaced atomically; the JSON records the versions of the toolkit and libraries.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

from figures.cache import code_fingerprint
from figures.checks import NO_BOUND_NOTE
from synthetic.provenance import environment, json_bytes, write_atomic


def save_figure(fig, out_dir: Path, name: str, data: dict, caption: str) -> dict[str, Path]:
    """Save ``name``.png/.pdf, ``name``.json (config, seed, arrays) and ``name``.txt (caption).

    Each file is replaced atomically; the JSON adds the ``environment`` (versions) of
    ``synthetic.provenance`` and the ``code_fingerprint`` of the toolkit that computed it
    (``figures.cache.code_fingerprint``; README.md, "Figures").

    Parameters
    ----------
    fig : matplotlib Figure; out_dir : Path; name : str, the figure's ``NAME``.
    data : dict, JSON-serialisable payload; caption : str.

    Returns
    -------
    dict of Path, the ``png``, ``pdf``, ``json`` and ``txt`` files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("png", "pdf", "json", "txt")}
    for ext in ("png", "pdf"):
        tmp = out_dir / f".{name}.tmp.{ext}"
        fig.savefig(tmp)
        os.replace(tmp, paths[ext])
    payload = {"figure": name, "environment": environment(), "code_fingerprint": code_fingerprint(),
               "caption": caption, **data}
    write_atomic(paths["json"], json_bytes(payload))
    write_atomic(paths["txt"], (caption.strip() + "\n").encode())
    return paths


def bound_check_fields(figure: ModuleType, config, data: dict) -> dict:
    """``{"bound_checks": [...]}`` from the module's ``bound_checks``, or the empty list and a note.

    The records of ``figures.checks.bound_check`` (docs/THEORY.md §2.7).

    Parameters
    ----------
    figure : module; config : its Config; data : dict, its ``compute`` output.

    Returns
    -------
    dict
    """
    if not hasattr(figure, "bound_checks"):
        return {"bound_checks": [], "bound_checks_note": NO_BOUND_NOTE}
    return {"bound_checks": list(figure.bound_checks(config, data))}


def render(figure: ModuleType, out_dir: Path | str, quick: bool, seed: int, *, force: bool, config) -> dict[str, Path]:
    """The shared body of every figure's ``make``: compute (cached), draw in the shared style, save.

    ``figure`` is a figure module with ``NAME``, ``Config`` (``quick()``/``full()``), ``compute(config,
    seed, cache_dir, force)``, ``caption(config, data)``, ``SUBPLOTS(config)`` (keyword arguments of
    ``plt.subplots``) and ``draw(fig, axes, data, config)``, and optionally ``bound_checks(config,
    data)`` (``figures.checks.bound_check`` records). ``config`` overrides the preset.

    The JSON gets a top-level ``bound_checks`` list: the module's records, or an empty list and a
    ``bound_checks_note`` when the figure compares no bound with a measured gap (docs/THEORY.md §2.7;
    README.md, "Figures").

    Parameters
    ----------
    figure : module; out_dir : folder of the files and of the cache ``out_dir/.cache``.
    quick : bool, the quick preset, else the full one; seed : int; force : bool, recompute cached
    entries; config : the module's Config, or None for the preset.

    Returns
    -------
    dict of Path, as :func:`save_figure`.
    """
    import matplotlib.pyplot as plt

    from figures.style import style

    config = config or (figure.Config.quick() if quick else figure.Config.full())
    data = figure.compute(config, seed, Path(out_dir) / ".cache", force)
    with style():
        fig, axes = plt.subplots(**figure.SUBPLOTS(config))
        try:
            figure.draw(fig, axes, data, config)
            checks = bound_check_fields(figure, config, data)
            payload = {"config": asdict(config), "seed": seed, "data": data, **checks}
            return save_figure(fig, Path(out_dir), figure.NAME, payload, figure.caption(config, data))
        finally:
            plt.close(fig)
