r"""Figure 9: does ``f(Σ, r) − f(G, r)`` predict which single factor wins on an MLP?

docs/THEORY.md §1b (derived; not in Zhu et al., ICML 2024) predicts, for a layer inside a
network and a shift of random orientation, that ``b_only`` (frozen Haar A) removes the fraction
``f(Σ, r)`` of the shift's loss and ``a_only`` (frozen Haar B) the fraction ``f(G, r)``, with
``Σ`` the second moment of the adapted layer's inputs and ``G`` its Gauss–Newton output metric
at the pretrained weights (``synthetic.predict_asymmetry``). Each point of the figure is one
MLP configuration of ``GRID``: x is the predicted advantage ``f(Σ, r) − f(G, r)``, y the measured
one, ``(L_a_only − L_b_only) / (L_pretrained − L_full)`` of the test losses of the training
objective (``synthetic.measure_advantage``). The grid is fixed here, before any result, by a
rotation over its factors, and no configuration is dropped: the caption names every point whose
measured sign (beyond 2 s.e.) disagrees with the prediction.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from figures.parallel import Unit, run_units
from figures.output import render
from synthetic.mlp.advantage import measure_advantage
from synthetic.mlp.geometry import predict_asymmetry
from synthetic.mlp.task import MLPTask

NAME = "asymmetry_predictor"
DESCRIPTION = "Predicted f(Σ,r) − f(G,r) against the measured b_only-over-a_only advantage on 28 MLPs."

#: Read-outs: (task kind, number of classes or regression outputs).
READOUTS = (("classification", 4), ("classification", 10), ("classification", 32), ("classification", 128),
            ("regression", 8), ("regression", 32), ("regression", 128))
#: Inputs of the network: isotropic x ∈ R^32, power-law x ∈ R^32 (variances ∝ j^-2), a narrow x ∈ R^8.
INPUTS = ("isotropic", "powerlaw", "narrow")
#: Position of the adapted (and perturbed) layer in the 3-layer network d0 → 64 → 64 → read-out.
POSITIONS = ("first", "hidden", "last")
ACTIVATIONS = ("tanh", "relu")
RANKS = (1, 2, 4, 8)
#: Hidden width of every network of the grid.
HIDDEN = 64


def _grid() -> tuple[dict, ...]:
    """Four configurations per read-out; the other factors rotate with the index ``k``.

    Input ``k mod 3``, position ``(k div 3) mod 3`` (every input meets every position within nine
    points), activation ``k mod 2``, rank ``(k div 2) mod 4``, clipped to the adapted layer.
    """
    rows = []
    for k in range(4 * len(READOUTS)):
        kind, width = READOUTS[k // 4]
        inputs, position = INPUTS[k % 3], POSITIONS[(k // 3) % 3]
        widths = (8 if inputs == "narrow" else 32, HIDDEN, HIDDEN, width)
        layer = POSITIONS.index(position)
        rank = min(RANKS[(k // 2) % 4], widths[layer], widths[layer + 1])
        rows.append({"kind": kind, "readout": width, "inputs": inputs, "position": position,
                     "activation": ACTIVATIONS[k % 2], "rank": rank})
    return tuple(rows)


#: The 28 configurations, fixed before any result was seen.
GRID = _grid()


@dataclass(frozen=True)
class Config:
    """Which grid points, training-set size, trials, Adam steps, test samples, and the predictor's sizes."""

    points: tuple[int, ...] = tuple(range(len(GRID)))
    n: int = 1024
    trials: int = 3
    steps: int = 300
    test_size: int = 4096
    samples: int = 4096
    draws: int = 400

    @classmethod
    def quick(cls) -> "Config":
        """The quick preset (``lora-asym figures``): Figure 9 at the defaults (docs/THEORY.md §1b.5–§1b.6)."""
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Figure 9 at seconds size (docs/THEORY.md §1b.5–§1b.6), for smoke tests: three grid points, tiny sizes."""
        return cls(points=(0, 5, 13), n=64, trials=2, steps=5, test_size=128, samples=128, draws=8)

    @classmethod
    def full(cls) -> "Config":
        """The full preset (``lora-asym figures --full``): Figure 9 at larger sizes (docs/THEORY.md §1b.5–§1b.6)."""
        return cls(n=4096, trials=8, steps=1000, test_size=20_000, samples=16_384, draws=2000)


def task(config: Config, row: dict) -> MLPTask:
    """The MLP of one grid row: adapt and perturb one layer, shift of full rank and random orientation.

    Widths ``(8 or 32, HIDDEN, HIDDEN, readout)``; the row picks the inputs, the adapted layer, the
    loss and the activation (docs/THEORY.md §1b.5 and §5).

    Parameters
    ----------
    config : Config; row : dict, an entry of ``GRID``.

    Returns
    -------
    MLPTask
    """
    widths = (8 if row["inputs"] == "narrow" else 32, HIDDEN, HIDDEN, row["readout"])
    layer = POSITIONS.index(row["position"])
    return MLPTask(
        widths=widths, adapted_layers=(layer,), perturbed_layers=(layer,),
        perturbation_rank=min(widths[layer], widths[layer + 1]), kind=row["kind"], activation=row["activation"],
        input_dist="powerlaw:2" if row["inputs"] == "powerlaw" else "isotropic",
        test_size=config.test_size, steps=config.steps,
    )


def point(config: Config, row: dict, seed: int) -> dict[str, np.ndarray]:
    """Predicted and measured advantage (with standard errors) and the four mean test losses of one row.

    Predicted: ``f(Σ, r) − f(G, r)`` (``synthetic.predict_asymmetry``, docs/THEORY.md §1b.5–§1b.6);
    measured: ``(L_a_only − L_b_only) / (L_pretrained − L_full)`` over ``trials`` training sets
    (``synthetic.measure_advantage``).

    Parameters
    ----------
    config : Config; row : dict, an entry of ``GRID``; seed : int.

    Returns
    -------
    dict of 0-d ndarray
        ``predicted``, ``predicted_se``, ``b_only_fraction``, ``a_only_fraction``, ``measured``,
        ``measured_se`` and ``loss_<variant>`` for pretrained, full, b_only and a_only.
    """
    t = task(config, row)
    pred = predict_asymmetry(t, row["rank"], samples=config.samples, draws=config.draws, seed=seed)
    meas = measure_advantage(t, row["rank"], config.n, config.trials, seed=seed)
    return {
        "predicted": np.array(pred.advantage), "predicted_se": np.array(pred.advantage_stderr),
        "b_only_fraction": np.array(pred.b_only_fraction), "a_only_fraction": np.array(pred.a_only_fraction),
        "measured": np.array(meas.advantage), "measured_se": np.array(meas.advantage_stderr),
        **{f"loss_{k}": np.array(v.mean()) for k, v in meas.losses.items()},
    }


def units(config: Config, seed: int) -> list[Unit]:
    """One unit per row of ``GRID`` in ``config.points``: its ``point`` (the figure's cache entries;
    ``figures.parallel``)."""
    return [Unit(NAME, {"config": asdict(config), "row": GRID[i], "seed": seed}, point, (config, GRID[i], seed))
            for i in config.points]


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """Per grid point: predicted and measured advantage; the sign agreement and Spearman correlation.

    ``point`` per row of ``GRID`` in ``config.points`` (the results of ``units``, cached), then
    ``agreement`` (docs/THEORY.md §1b.5–§1b.6).

    Parameters
    ----------
    config : Config; seed : int; cache_dir : Path or None; force : bool, recompute cached entries.

    Returns
    -------
    dict
        ``points`` (one record each), ``sign_agreement`` and ``spearman``.
    """
    rows = [GRID[i] for i in config.points]
    results = run_units(units(config, seed), cache_dir, force=force,
                        desc=f"{NAME}: predicting and training per configuration")
    points = [{"config": row, "predicted_advantage": float(r["predicted"]),
               "predicted_stderr": float(r["predicted_se"]), "measured_advantage": float(r["measured"]),
               "measured_stderr": float(r["measured_se"]),
               "fractions": {"b_only": float(r["b_only_fraction"]), "a_only": float(r["a_only_fraction"])},
               "test_losses": {k: float(r[f"loss_{k}"]) for k in ("pretrained", "full", "b_only", "a_only")}}
              for row, r in zip(rows, results)]
    return {"points": points, **agreement(points)}


def agreement(points: list[dict]) -> dict:
    """Sign agreement among the points measured beyond 2 s.e. of zero, and Spearman's rank correlation.

    A point is resolved when ``|measured| > 2 s.e.``; it agrees when the predicted sign of
    ``f(Σ, r) − f(G, r)`` is the measured one (docs/THEORY.md §1b.5).

    Parameters
    ----------
    points : list of dict, ``compute``'s point records.

    Returns
    -------
    dict
        ``sign_agreement`` (``agree``, ``resolved``, ``total``, ``misses``: indices) and ``spearman``
        (NaN with fewer than three points).
    """
    pred = np.array([p["predicted_advantage"] for p in points])
    meas = np.array([p["measured_advantage"] for p in points])
    resolved = np.abs(meas) > 2 * np.array([p["measured_stderr"] for p in points])
    agree = resolved & (np.sign(pred) == np.sign(meas))
    rho = float(spearmanr(pred, meas).statistic) if len(points) > 2 else float("nan")
    misses = [i for i in range(len(points)) if resolved[i] and not agree[i]]
    return {"sign_agreement": {"agree": int(agree.sum()), "resolved": int(resolved.sum()), "total": len(points),
                               "misses": misses},
            "spearman": rho}


def label(row: dict) -> str:
    """A short name of a grid row, e.g. ``cls10 powerlaw hidden tanh r2``: loss and read-out width, inputs,
    adapted layer, activation and rank (the factors of ``GRID``, docs/THEORY.md §1b.5).

    Parameters
    ----------
    row : dict, an entry of ``GRID``.

    Returns
    -------
    str
    """
    head = ("cls" if row["kind"] == "classification" else "reg") + str(row["readout"])
    return f"{head} {row['inputs']} {row['position']} {row['activation']} r{row['rank']}"


def plot(points: list[dict], misses: tuple[int, ...] = (), ax=None):
    """Measured against predicted advantage, ±2 s.e.; the diagonal, both axes through zero, and the
    points of ``misses`` (indices into ``points``) labelled (docs/THEORY.md §1b.5–§1b.6).

    Parameters
    ----------
    points : list of dict; misses : tuple of int; ax : matplotlib Axes, optional (the current axes).

    Returns
    -------
    The axes drawn on.
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    styles = {"first": "o", "hidden": "s", "last": "^"}
    colors = {"classification": "tab:blue", "regression": "tab:orange"}
    for p in points:
        row = p["config"]
        ax.errorbar(p["predicted_advantage"], p["measured_advantage"], xerr=2 * p["predicted_stderr"],
                    yerr=2 * p["measured_stderr"], fmt=styles[row["position"]], color=colors[row["kind"]],
                    ms=5, capsize=2, alpha=0.85)
    for i in misses:
        p = points[i]
        ax.annotate(f"sign miss: {label(p['config'])}", (p["predicted_advantage"], p["measured_advantage"]),
                    xytext=(8, -14), textcoords="offset points", fontsize=7)
    values = [v for p in points for v in (p["predicted_advantage"], p["measured_advantage"])]
    lo, hi = min(values + [0.0]) - 0.05, max(values + [0.0]) + 0.05
    ax.plot([lo, hi], [lo, hi], "--", color="grey", lw=1, label="measured = predicted")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    for kind, color in colors.items():
        ax.plot([], [], "o", color=color, label=kind)
    for position, marker in styles.items():
        ax.plot([], [], marker, color="grey", label=f"{position} layer adapted")
    ax.set_xlabel("predicted advantage f(Σ, r) − f(G, r)")
    ax.set_ylabel("measured (L_a_only − L_b_only) / (L_pretrained − L_full)")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def caption(config: Config, data: dict) -> str:
    """The setting, the sign agreement and Spearman correlation as measured, and the points that disagree.

    Tests the prediction rule of docs/THEORY.md §1b.5 on the grid, as measured.

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    str
    """
    sign = data["sign_agreement"]
    misses = [label(data["points"][i]["config"]) for i in sign["misses"]]
    named = "; ".join(misses) if misses else "none"
    return (
        f"{sign['total']} MLP configurations (read-outs of 4 to 128 classes or 8 to 128 regression outputs; "
        f"isotropic, power-law or narrow inputs; first, hidden or last layer adapted; tanh or ReLU; ranks 1 to 8; "
        f"each shift of full rank and random orientation), fixed before any result. x: f(Σ, r) − f(G, r) from Σ and "
        f"the Gauss–Newton metric G at the pretrained weights ({config.samples} samples, {config.draws} Haar draws); "
        f"y: (L_a_only − L_b_only) / (L_pretrained − L_full), test losses of the training objective after "
        f"{config.steps} Adam steps on n = {config.n}, {config.trials} training sets, ±2 s.e. "
        f"The predicted sign agrees with the measured one in {sign['agree']} of the {sign['resolved']} points measured "
        f"beyond 2 s.e. of zero; Spearman's rank correlation over all {sign['total']} points is "
        f"{data['spearman']:.2f}. Points whose measured sign disagrees: {named}."
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for Figure 9 (docs/THEORY.md §1b.5–§1b.6).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return dict(figsize=(7.5, 6))


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` of Figure 9 on the axes made with ``SUBPLOTS`` (docs/THEORY.md §1b.5–§1b.6).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    plot(data["points"], tuple(data["sign_agreement"]["misses"]), ax=axes)


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 9 (docs/THEORY.md §1b.5–§1b.6): PNG, PDF, JSON data, caption.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
