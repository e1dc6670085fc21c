r"""Figure 8: b_only at rank 2r against lora at rank r (equal parameter count on a square layer), in two regimes.

For square layers, Lemma 4.5 of Zhu et al. (ICML 2024) as stated gives ``b_only`` at rank ``2r``
the bound of ``lora`` at rank ``r`` (both train ``2 r d`` parameters; counting every stored bit,
``lora``'s second float32 scale makes its bound slightly larger), and the paper reports
that ``b_only`` at ``2r`` often matches or beats ``lora`` at ``r`` on real tasks. Here both are
trained on MLP classification tasks of ``synthetic.MLPTask`` (0-1 loss, parameters quantized to
``q_bits``), with ``a_only`` at ``2r`` for comparison, in two regimes (``REGIMES``):

- ``MLPTask.paper_regime``: the adapted layer's inputs have a decaying spectrum, the layer is
  read by a wide map and the shift has random orientation and a rank above every rank compared;
- ``MLPTask.narrow_readout``: a layer read through a 10-class head right after its tanh, whose
  output metric ``G`` is concentrated on few directions; the network's inputs are isotropic, the
  layer reads the tanh features of the layer below, and the shift has rank 4.

A control (``readout_control``, the last panel) keeps the narrow read-out's adapted layer, its
inputs and its shift and widens only the read-out (64 classes, 64 regression outputs): the cause
the rule names (``f(G, r) > f(Σ, r)``) goes, and the measured advantage of ``a_only`` with it.

Each row is titled with the prediction of docs/THEORY.md §1b (derived; not in the paper):
``b_only`` removes the fraction ``f(Σ, 2r)`` of a random-orientation shift's loss and ``a_only``
the fraction ``f(G, 2r)`` (eq. (5), ``synthetic.predict_asymmetry`` at the rank ``2r`` both are
trained at, for the largest base rank ``r``). Panels: test error, generalization gap (Monte
Carlo over training sets, ±2 s.e.) and the Lemma 4.5 bound of the quantized model,
``sqrt(2 σ² ln2 · storage_bits / n)`` with every stored bit (``q N + 32`` per trained tensor:
``bounds.lora_mi_bound(..., scale_bits=32)``)
and ``σ = 1/2`` for the 0-1 loss in ``[0, 1]`` (Lemma 4.4, Xu & Raginsky 2017). Both regimes
adapt a square 64x64 layer, so ``b_only`` at ``2r``, ``lora`` at ``r`` and ``a_only`` at ``2r``
all train ``128 r`` parameters (the caption states the counts). Each bound is checked against the measured
0-1 gap of its own arm (``bound_checks``: held when the bound is at least the gap's lower end,
mean − 2 s.e.); it is vacuous at or above 1.
"""

from __future__ import annotations

import sys

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bounds import trainable_params
from figures.parallel import Unit, run_units
from figures.checks import TWO_SE, bound_check, caption_sentence
from figures.output import render
from figures.rank_doubling_arms import (
    ARMS,
    READOUTS,
    REGIMES,
    arm,
    lemma45,
    prediction,
    readout_control,
    regime_task,
    setting,
    summarize,
)

NAME = "rank_doubling"
DESCRIPTION = "b_only at rank 2r vs lora at rank r, in two regimes: test error, gap and bound."


@dataclass(frozen=True)
class Config:
    """Regimes, base ranks, samples, trials, quantization, the predictor's samples and draws, and the
    read-out control's rank, samples and training sets."""

    regimes: tuple[str, ...] = tuple(REGIMES)
    ranks: tuple[int, ...] = (1, 2, 4)
    n: int = 1024
    trials: int = 12
    q_bits: int = 8
    steps: int = 300
    predictor_samples: int = 4096
    predictor_draws: int = 500
    control_rank: int = 4
    control_n: int = 2048
    control_trials: int = 4

    @classmethod
    def quick(cls) -> "Config":
        """The quick preset (``lora-asym figures``): Figure 8 at the defaults (Lemma 4.5; docs/THEORY.md §2.2)."""
        return cls()

    @classmethod
    def tiny(cls) -> "Config":
        """Figure 8 at seconds size (Lemma 4.5; docs/THEORY.md §2.2), for smoke tests."""
        return cls(ranks=(1, 2), n=64, trials=3, steps=5, predictor_samples=256, predictor_draws=20, control_rank=2,
                   control_n=64, control_trials=2)

    @classmethod
    def full(cls) -> "Config":
        """The full preset (``lora-asym figures --full``): Figure 8 at larger sizes (Lemma 4.5; docs/THEORY.md §2.2)."""
        return cls(ranks=(1, 2, 4, 8), n=2048, trials=32, steps=1000, control_n=4096, control_trials=8)


def units(config: Config, seed: int) -> list[Unit]:
    """Per regime: one unit per (arm, rank), its ``arm``, then one for the predictor's ``prediction``;
    then one ``readout_control`` per read-out of ``READOUTS`` (the figure's cache entries;
    ``figures.parallel``)."""
    out = []
    for regime in config.regimes:
        for variant, mult in ARMS:
            for r in config.ranks:
                params = {"config": asdict(config), "regime": regime, "variant": variant, "rank": mult * r,
                          "seed": seed}
                out.append(Unit(NAME, params, arm, (config, regime, variant, mult * r, seed)))
        params = {"config": asdict(config), "regime": regime, "seed": seed}
        out.append(Unit(f"{NAME}-prediction", params, prediction, (config, regime, seed)))
    for readout in READOUTS:
        params = {"config": asdict(config), "readout": readout, "seed": seed}
        out.append(Unit(f"{NAME}-control", params, readout_control, (config, readout, seed)))
    return out


def compute(config: Config, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """Per regime and arm: test error, gap (means and s.e.), stored bits and the Lemma 4.5 bound on
    the 0-1 loss, each (len(ranks),), and ``test_trials`` (len(ranks), trials); per regime also the
    predictor's ``prediction`` (Lemma 4.5; docs/THEORY.md §1b.5, §2.2); ``control``: per read-out of
    ``READOUTS``, the fractions, predicted and measured advantage and the inputs' effective rank of
    ``readout_control``. The results of ``units``, cached.

    Parameters
    ----------
    config : Config; seed : int; cache_dir : Path or None; force : bool, recompute cached entries.

    Returns
    -------
    dict
    """
    results = iter(run_units(units(config, seed), cache_dir, force=force, desc=f"{NAME}: training MLP adapters"))
    out: dict = {"ranks": np.array(config.ranks)}
    for regime in config.regimes:
        rows: dict[tuple[str, str], list[np.ndarray]] = {}
        for variant, mult in ARMS:
            for r in config.ranks:
                res = next(results)
                for name, value in summarize(res, lemma45(config, regime, variant, mult * r)).items():
                    rows.setdefault((f"{variant}@{mult}r", name), []).append(np.asarray(value, dtype=float))
        for (arm_key, name), values in rows.items():
            out.setdefault(regime, {}).setdefault(arm_key, {})[name] = np.array(values)
        pred = {k: float(v) for k, v in next(results).items()}
        pred["prefers"] = "b_only" if pred["b_only_fraction"] > pred["a_only_fraction"] else "a_only"
        out[regime]["prediction"] = pred
    out["control"] = {readout: {k: float(v) for k, v in next(results).items()} for readout in READOUTS}
    return out


def bound_checks(config: Config, data: dict) -> list[dict]:
    """Per (regime, arm, base rank): Lemma 4.5 against the measured 0-1 gap of that arm (mean ± 2 s.e.).

    ``figures.checks.bound_check`` records, vacuous at or above 1 (docs/THEORY.md §2.7).

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    list of dict
    """
    checks = []
    for regime in config.regimes:
        for variant, mult in ARMS:
            d = data[regime][f"{variant}@{mult}r"]
            for i, r in enumerate(data["ranks"]):
                half = 2 * d["gap_se"][i]
                where = {"regime": regime, "variant": variant, "rank": mult * int(r), "base_rank": int(r),
                         "n": config.n}
                checks.append(bound_check(
                    where, "Lemma 4.5", d["bound"][i], loss="0-1 loss of the quantized network", gap=d["gap"][i],
                    gap_low=d["gap"][i] - half, gap_high=d["gap"][i] + half, gap_interval=TWO_SE,
                    vacuous=d["bound"][i] >= 1.0,
                ))
    return checks


def prediction_text(pred: dict) -> str:
    """``f(Σ, 2r) = …, f(G, 2r) = …: predicts b_only`` (or ``a_only``): the call of docs/THEORY.md §1b.5, in words.

    Parameters
    ----------
    pred : dict, a regime's ``prediction`` with ``prefers``.

    Returns
    -------
    str
    """
    k = int(pred["rank"])
    return (f"f(Σ, {k}) = {pred['b_only_fraction']:.2f}, f(G, {k}) = {pred['a_only_fraction']:.2f}: "
            f"predicts {pred['prefers']}")


def plot(regime_data: dict, ranks: np.ndarray, axes=None, title: str = ""):
    """One regime's three panels: test error, gap (±2 s.e.) and Lemma 4.5 bound, against the base rank r.

    Parameters
    ----------
    regime_data : dict, ``compute``'s entry of one regime; ranks : ndarray, the base ranks.
    axes : three matplotlib Axes, optional (made when None); title : str, above the middle panel.

    Returns
    -------
    The axes drawn on.
    """
    import matplotlib.pyplot as plt

    from figures.style import VARIANT_STYLE

    if axes is None:
        _, axes = plt.subplots(1, 3)
    for variant, mult in ARMS:
        d = regime_data[f"{variant}@{mult}r"]
        style = {k: VARIANT_STYLE[variant][k] for k in ("color", "marker")}
        label = f"{variant} at rank {mult}r" if mult > 1 else f"{variant} at rank r"
        axes[0].errorbar(ranks, d["test"], yerr=2 * d["test_se"], capsize=3, label=label, **style)
        axes[1].errorbar(ranks, d["gap"], yerr=2 * d["gap_se"], capsize=3, label=label, **style)
        axes[2].plot(ranks, d["bound"], label=label, **style)
    for ax, name in zip(axes, ("test 0-1 error", "generalization gap", "Lemma 4.5 bound (q·N + 32 bits per tensor)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ranks, [str(r) for r in ranks])
        ax.set_xlabel("base rank r")
        ax.set_title(name)
    axes[0].legend(loc="best")
    if title:
        axes[1].text(0.5, 1.16, title, transform=axes[1].transAxes, ha="center", va="bottom", fontweight="bold")
    return axes


def paired_difference(one: dict, other: dict) -> tuple[float, float]:
    """Mean and 2 s.e. of ``one − other`` test error at the largest base rank, paired by trial
    (both arms' trial ``t`` trained on the same training set; docs/THEORY.md §7.4).

    Parameters
    ----------
    one, other : dict, the arms' ``compute`` entries.

    Returns
    -------
    tuple of float, ``(mean, 2 s.e.)``.
    """
    diff = np.asarray(one["test_trials"][-1]) - np.asarray(other["test_trials"][-1])  # (trials,)
    return float(diff.mean()), float(2 * diff.std(ddof=1) / math.sqrt(diff.size))


def _vacuous_note(values: list[float]) -> str:
    """``" (all vacuous: at or above 1, the range of the 0-1 loss)"`` (or ``k of 3``); empty if none is."""
    k = sum(b >= 1.0 for b in values)
    which = "all " if k == len(values) else f"{k} of {len(values)} "
    return f" ({which}vacuous: at or above 1, the range of the 0-1 loss)" if k else ""


def _regime_caption(config: Config, regime: str, d: dict) -> str:
    """One regime's setting, its measured comparison at the largest base rank and the predictor's call."""
    r = int(config.ranks[-1])
    lo, bo, ao = d["lora@1r"], d["b_only@2r"], d["a_only@2r"]

    def err(a: dict) -> str:
        return f"{a['test'][-1]:.3f} ± {2 * a['test_se'][-1]:.3f}"

    def diff(one: dict, other: dict) -> str:
        mean, half = paired_difference(one, other)
        return f"{mean:+.3f} ± {half:.3f}"

    task = regime_task(config, regime)
    shape = [task.layer_shapes[task.adapted_layers[0]]]
    counts = ", ".join(f"{v} {trainable_params(v, shape, m * r)}" for v, m in ARMS)
    return (
        f"{regime} ({setting(task)}; {REGIMES[regime]}). At r = {r} (trained parameters: {counts}), test error of b_only "
        f"at rank {2 * r} {err(bo)}, lora at rank {r} {err(lo)}, a_only at rank {2 * r} {err(ao)}; b_only − lora "
        f"{diff(bo, lo)}, b_only − a_only {diff(bo, ao)} (paired by training set); gaps {bo['gap'][-1]:.3f}, "
        f"{lo['gap'][-1]:.3f}, {ao['gap'][-1]:.3f}; Lemma 4.5 bounds {bo['bound'][-1]:.3f}, {lo['bound'][-1]:.3f}, "
        f"{ao['bound'][-1]:.3f}{_vacuous_note([bo['bound'][-1], lo['bound'][-1], ao['bound'][-1]])}. Predictor (docs/THEORY.md §1b, eq. (5)): {prediction_text(d['prediction'])}."
    )


def winner(advantage: float, stderr: float) -> str:
    """``"b_only wins"`` or ``"a_only wins"`` when the advantage is beyond 2 s.e. of zero, else
    ``"no winner at 2 s.e."``: the one threshold every caption uses for a win."""
    if advantage > 2 * stderr:
        return "b_only wins"
    if advantage < -2 * stderr:
        return "a_only wins"
    return "no winner at 2 s.e."


def control_caption(config: Config, control: dict) -> str:
    """The read-out control in words: per read-out, the two fractions and the measured advantage with
    its winner, and the effective rank of the adapted layer's inputs (docs/THEORY.md §1b.5–§1b.6).

    Parameters
    ----------
    config : Config; control : dict, ``compute``'s ``control`` entry.

    Returns
    -------
    str
    """
    r = config.control_rank
    parts = [f"{name}: f(Σ, {r}) = {c['b_only_fraction']:.3f}, f(G, {r}) = {c['a_only_fraction']:.3f}, measured "
             f"{c['measured']:+.3f} ± {2 * c['measured_se']:.3f} ({winner(c['measured'], c['measured_se'])})"
             for name, c in control.items()]
    eranks = sorted({round(c["input_erank"], 1) for c in control.values()})
    width = int(next(iter(control.values()))["width"])
    return (f"Control of the narrow read-out's reversal (narrow_readout at r = {r}, n = {config.control_n}, "
            f"{config.control_trials} training sets; advantage (L_a_only − L_b_only)/(L_pretrained − L_full) ± 2 s.e.), "
            f"the same layer, inputs and shift with only the read-out changed: {'; '.join(parts)}. The adapted "
            f"layer's inputs have effective rank {' / '.join(f'{e:.1f}' for e in eranks)} of {width}.")


def caption(config: Config, data: dict) -> str:
    """The common setting, each regime's setting, comparison and prediction, the read-out control,
    then the bound checks.

    Measured as Lemma 4.5's comparison of equal parameter counts (docs/THEORY.md §1b.5, §2.2, §2.7).

    Parameters
    ----------
    config : Config; data : dict, ``compute``'s output.

    Returns
    -------
    str
    """
    regimes = " ".join(_regime_caption(config, g, data[g]) for g in config.regimes)
    return (
        f"MLP classification, n = {config.n}, {config.trials} training sets per point, {config.steps} full-batch "
        f"Adam steps, parameters quantized to {config.q_bits} bits; 0-1 loss; intervals ± 2 s.e. {regimes} "
        f"{control_caption(config, data['control'])} Each arm's "
        f"measured 0-1 gap is checked against its Lemma 4.5 bound (every stored bit, σ = 1/2). "
        + caption_sentence(bound_checks(config, data))
    )


def SUBPLOTS(config: Config) -> dict:
    """Keyword arguments of ``plt.subplots`` for Figure 8 (Lemma 4.5; docs/THEORY.md §2.2): one row of
    three panels per regime, and a fourth column whose last panel is the read-out control.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    rows = len(config.regimes)
    return dict(nrows=rows, ncols=4, figsize=(18, 4.6 * rows), squeeze=False,
                gridspec_kw={"hspace": 0.6, "wspace": 0.38})


def plot_control(control: dict, rank: int, ax=None):
    """The read-out control: per read-out, the measured advantage of ``b_only`` over ``a_only`` (± 2
    s.e.) and the predicted ``f(Σ, r) − f(G, r)`` (hollow), with zero marked (docs/THEORY.md §1b.5).

    Parameters
    ----------
    control : dict, ``compute``'s ``control`` entry; rank : int, the control's rank; ax : Axes, optional.

    Returns
    -------
    The axes drawn on.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    names = list(control)
    x = np.arange(len(names))
    ax.errorbar(x, [control[k]["measured"] for k in names], yerr=[2 * control[k]["measured_se"] for k in names],
                fmt="o", capsize=3, color="black", label="measured (± 2 s.e.)")
    ax.plot(x + 0.1, [control[k]["predicted"] for k in names], "D", mfc="white", color="0.35",
            label="predicted f(Σ, r) − f(G, r)")
    ax.axhline(0.0, color="black", lw=0.8, ls=":")
    ax.set_xticks(x, [" ".join(k.split()[:2]).replace(" ", "\n") for k in names])
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylabel("b_only's advantage")
    ax.set_title(f"control: read-out widened (r = {rank})")
    ax.legend(loc="best", fontsize="small")
    return ax


def draw(fig, axes, data: dict, config: Config) -> None:
    """Draw the computed ``data`` of Figure 8 on the axes made with ``SUBPLOTS`` (Lemma 4.5; docs/THEORY.md §2.2).

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    for row, regime in zip(axes, config.regimes):
        title = f"{regime}: {prediction_text(data[regime]['prediction'])}"
        plot(data[regime], data["ranks"], row[:3], title=title)
    for row in axes[:-1]:
        row[3].set_axis_off()
    plot_control(data["control"], config.control_rank, axes[-1][3])


def make(
    out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False, config: Config | None = None
) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 8 (Lemma 4.5; docs/THEORY.md §2.2): PNG, PDF, JSON data, caption.

    One step of the figure protocol, documented at ``figures.output.render``.
    """
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
