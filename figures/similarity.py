r"""Figure 7: CCA similarity of learned A's and B's over a task × init-seed grid.

A miniature of Figure 1 of Zhu et al. (ICML 2024): ``lora`` is trained on the MLP task
``synthetic.MLPTask.paper_regime`` (the paper's regime, docs/THEORY.md §1b and §5: adapted
square 64x64 layer 0 with inputs of decaying spectrum, read by a wide map, random-orientation
shift of full rank 64) for every pair (target task, init seed of A), and the learned factors are compared with
``theory.cca_similarity`` (row spaces for A, column spaces for B; docs/THEORY.md §3). The paper
found B similar across seeds on the same task, and A similar whenever the init is shared. The
grid is run at two Adam step sizes, because how far A travels from its init decides what A
clusters by.
"""

from __future__ import annotations

import sys

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from figures.parallel import Unit, run_units
from figures.output import render
from synthetic.mlp.engine import MLPTask
from synthetic.mlp.similarity import similarity_grid

NAME = "similarity"
DESCRIPTION = "CCA similarity heatmaps of learned A's and B's over tasks x init seeds (Figure 1 in miniature)."


@dataclass(frozen=True)
class Config:
    """Grid of target tasks × init seeds, LoRA rank, samples, and the step sizes compared."""

    tasks: tuple[int, ...] = (0, 1, 2)
    inits: tuple[int, ...] = (0, 1, 2)
    rank: int = 4
    n: int = 1024
    steps: int = 300
    lrs: tuple[float, ...] = (3e-4, 3e-3)

    @classmethod
    def quick(cls) -> "Config":
        """The quick preset (``lora-asym figures``): Figure 7 at the defaults (docs/THEORY.md §3)."""
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Figure 7 at seconds size (docs/THEORY.md §3), for smoke tests."""
        return cls(tasks=(0, 1), inits=(0, 1), rank=2, n=64, steps=5)

    @classmethod
    def full(cls) -> "Config":
        """The full preset (``lora-asym figures --full``): Figure 7 at larger sizes (docs/THEORY.md §3)."""
        return cls(tasks=(0, 1, 2, 3), inits=(0, 1, 2, 3), n=2048, steps=1000)


def grid_task(config: Config, lr: float) -> MLPTask:
    """``MLPTask.paper_regime`` with the configured Adam steps and step size ``lr`` (docs/THEORY.md §1b, §5).

    Parameters
    ----------
    config : Config; lr : float, Adam's step size.

    Returns
    -------
    MLPTask
    """
    return MLPTask.paper_regime(steps=config.steps, lr=lr)


def grid(config: Config, lr: float, seed: int) -> dict[str, np.ndarray]:
    """One grid's similarity matrices and verdict numbers (the task's adapted layer).

    ``synthetic.similarity_grid``: lora trained per (task, init seed), learned factors compared by
    ``theory.cca_similarity`` (docs/THEORY.md §3; Figure 1 of Zhu et al.).

    Parameters
    ----------
    config : Config; lr : float; seed : int, the data seed.

    Returns
    -------
    dict of ndarray
        ``a``, ``b`` (cells, cells) similarities, ``objective`` and the grouped means of the verdict.
    """
    task = grid_task(config, lr)
    out = similarity_grid(config.tasks, config.inits, task=task, rank=config.rank, n=config.n, data_seed=seed)
    layer = task.adapted_layers[0]
    verdict = {k: np.array(float(v)) for k, v in out.verdict[layer].items()}
    return {"a": out.a_similarity[layer], "b": out.b_similarity[layer], "objective": out.train_objective, **verdict}


def units(config: Config, seed: int) -> list[Unit]:
    """One unit per step size: its ``grid`` (the figure's cache entries; ``figures.parallel``)."""
    return [Unit(NAME, {"config": asdict(config), "lr": lr, "seed": seed}, grid, (config, lr, seed))
            for lr in config.lrs]


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """Per step size: ``a`` and ``b`` (cells, cells) similarities and the grouped means.

    ``grid`` per step size (the results of ``units``, cached) (docs/THEORY.md §3).

    Parameters
    ----------
    config : Config; seed : int; cache_dir : Path or None; force : bool, recompute cached entries.

    Returns
    -------
    dict
        ``cells`` (task, init) pairs and one ``lr=<lr>`` entry per step size.
    """
    out: dict = {"cells": np.array([(t, i) for t in config.tasks for i in config.inits])}
    results = run_units(units(config, seed), cache_dir, force=force, desc=f"{NAME}: training the task x init grid")
    for lr, result in zip(config.lrs, results):
        out[f"lr={lr:g}"] = result
    return out


def plot(sim: np.ndarray, cells: np.ndarray, ax=None, title: str = ""):
    """One (cells, cells) similarity heatmap with (task, init) labels, on ``[0, 1]`` (docs/THEORY.md §3).

    Parameters
    ----------
    sim : ndarray, (cells, cells); cells : ndarray, their (task, init) pairs.
    ax : matplotlib Axes, optional (the current axes); title : str.

    Returns
    -------
    tuple, the axes and the image (for a colour bar).
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    image = ax.imshow(sim, vmin=0, vmax=1, cmap="viridis")
    labels = [f"t{t} i{i}" for t, i in cells]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.grid(False)
    ax.set_title(title)
    return ax, image


def caption(config: Config, data: dict) -> str:
    """The setting, then the grouped mean similarities at each step size.

    Same-init against same-task means for A and B beside the random-subspace levels ``r/d_in`` and
    ``r/d_out`` (docs/THEORY.md §3).

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    str
    """
    task = grid_task(config, config.lrs[0])
    (layer,) = task.adapted_layers
    d_out, d_in = task.layer_shapes[layer]
    widths = "-".join(map(str, task.widths))
    parts = []
    for lr in config.lrs:
        d = data[f"lr={lr:g}"]
        parts.append(
            f"At lr {lr:g}, A: same init {float(d['a_same_init']):.2f} vs same task {float(d['a_same_task']):.2f}, "
            f"B: same task {float(d['b_same_task']):.2f} vs same init {float(d['b_same_init']):.2f}"
        )
    return (
        f"lora at rank {config.rank} on the MLP task paper_regime ({widths} tanh classifier, adapted and perturbed "
        f"layer {layer} ({d_out}x{d_in}), inputs {task.input_dist}, random-orientation shift of rank "
        f"{task.perturbation_rank}), {len(config.tasks)} target tasks x {len(config.inits)} init seeds, "
        f"n = {config.n}, {config.steps} full-batch Adam steps; CCA similarity of learned A (row spaces) and B "
        f"(column spaces), random-subspace levels r/d_in = {config.rank / d_in:.3f} (A) and "
        f"r/d_out = {config.rank / d_out:.3f} (B). "
        + ". ".join(parts) + "."
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for Figure 7 (docs/THEORY.md §3).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return dict(nrows=len(config.lrs), ncols=2, figsize=(8.5, 4.2 * len(config.lrs)), squeeze=False)


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` of Figure 7 on the axes made with ``SUBPLOTS`` (docs/THEORY.md §3).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    for row, lr in zip(axes, config.lrs):
        d = data[f"lr={lr:g}"]
        plot(d["a"], data["cells"], ax=row[0], title=f"learned A, lr {lr:g}")
        _, image = plot(d["b"], data["cells"], ax=row[1], title=f"learned B, lr {lr:g}")
    fig.colorbar(image, ax=axes, shrink=0.6, label="CCA similarity")


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 7 (docs/THEORY.md §3): PNG, PDF, JSON data, caption.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
