r"""Figure 11: does ``f(Σ, r) − f(G, r)`` say which factor to train, module by module, on the
decoder pretrained here?

docs/THEORY.md §1b predicts that, for a shift of random orientation, ``b_only`` (frozen Haar
``A``) removes the fraction ``f(Σ, r)`` of the shift's loss and ``a_only`` the fraction
``f(G, r)``, ``Σ`` and ``G`` the adapted layer's input second moment and Gauss–Newton output
metric at the pretrained weights (``peft_bridge.predict_asymmetry``). Each point is one module of
``rule_modules`` on one task of the suite (``peft_bridge.foundation``; docs/THEORY.md §8.5): x the
prediction, y the measured ``(L_a_only − L_b_only) / (L_pretrained − L_full)`` of the test losses
of the training objective when only that module is adapted. The right panel is the control: the
same prediction for the shift ``full`` actually learned in that module (``Δ`` fixed, Haar
factors averaged; ``peft_bridge.foundation.directional_fractions``), which removes the
random-orientation assumption and nothing else. The modules were fixed before any result.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path

from figures.output import render
from figures.parallel import Unit, run_units
from peft_bridge.foundation import FoundationConfig, arms, pretraining_summary, rule_points, rule_runs, variant_runs
from theory.captured import effective_rank

NAME = "foundation_rule"
DESCRIPTION = "Predicted f(Σ,r) − f(G,r) against the measured b_only-over-a_only advantage, per module, on a decoder pretrained here."
#: The figure's configuration: the experiment's (presets ``quick``, ``full``, ``tiny``).
Config = FoundationConfig
#: Labels of the predictions the figure scores against the measurement.
PREDICTORS = {"rule": "random orientation: f(Σ, r) − f(G, r)", "full_shift": "full's learned shift",
              "gradient": "gradient at W0"}


def units(config: FoundationConfig, seed: int) -> list[Unit]:
    """The pretraining summary and each task's variant table (shared with ``figures.foundation_variants``,
    run once), then each task's rule runs."""
    c = replace(config, seed=seed)
    params = asdict(c)
    return [Unit("foundation_pretraining", {"config": params}, pretraining_summary, (c,)),
            *(Unit("foundation_variants", {"config": params, "task": t}, variant_runs, (c, t), waits=True)
              for t in c.tasks),
            *(Unit("foundation_rule", {"config": params, "task": t}, rule_runs, (c, t), waits=True) for t in c.tasks)]


def compute(config: FoundationConfig, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """The rule's points and scorecard (``peft_bridge.foundation.rule_points``) and the effective rank
    of ``Σ`` of each rule module per task.

    Returns
    -------
    dict with ``points``, ``rule``, ``full_shift``, ``gradient`` (sign agreement, misses, Spearman)
    and ``erank`` {task: [per module]}.
    """
    c = replace(config, seed=seed)
    results = run_units(units(config, seed), cache_dir, force=force, desc=f"{NAME}: predicting and fine-tuning")
    k = len(c.tasks)
    tables, rule = dict(zip(c.tasks, results[1:1 + k])), dict(zip(c.tasks, results[1 + k:]))
    full_row = [i for i, (_, v, _) in enumerate(arms(c)) if v == "full"][0]
    out = rule_points(list(c.tasks), list(c.rule_modules), c.rank, rule, tables, full_row, draws=c.draws, seed=seed)
    out["erank"] = {t: [effective_rank(rule[t][f"sigma/{m}"]) for m in range(len(c.rule_modules))] for t in c.tasks}
    return out


def plot(points: list[dict], key: str, ax=None, title: str = ""):
    """Prediction ``key`` of each point against its measured advantage (±2 s.e.), one colour per task."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    tasks = list(dict.fromkeys(p["task"] for p in points))
    for i, task in enumerate(tasks):
        mine = [p for p in points if p["task"] == task]
        ax.errorbar([p[key] for p in mine], [p["measured"] for p in mine], yerr=[2 * p["measured_se"] for p in mine],
                    fmt="o", color=f"C{i}", label=task, ms=4)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_xlabel(f"predicted: {PREDICTORS[key]}")
    ax.set_ylabel("measured (L_a_only − L_b_only) / (L_pretrained − L_full)")
    ax.set_title(title, fontsize=9)
    return ax


def _score(data: dict, key: str) -> str:
    s = data[key]
    return (f"{s['agree']} of {s['resolved']} resolved points agree in sign, Spearman {s['spearman']:.2f} "
            f"over {s['total']}")


def caption(config: FoundationConfig, data: dict) -> str:
    """The setting and, for the rule and both controls, the sign agreement and Spearman as measured."""
    misses = "; ".join(f"{data['points'][i]['task']} {data['points'][i]['module']}" for i in data["rule"]["misses"])
    return (
        f"{len(data['points'])} module × task points ({len(config.rule_modules)} modules of a "
        f"{config.model.layers}-layer decoder pretrained here, {len(config.tasks)} tasks), rank {config.rank}, "
        f"{config.seeds} seeds, {config.schedule.steps} Adam steps, fixed before any result. Rule f(Σ, r) − f(G, r): "
        f"{_score(data, 'rule')}; misses: {misses or 'none'}. Control with full's learned shift in place of a random "
        f"one: {_score(data, 'full_shift')}. With the gradient at W0: {_score(data, 'gradient')}."
    )


def SUBPLOTS(config: FoundationConfig) -> dict:
    """Keyword arguments of ``plt.subplots`` (figure protocol, ``figures.output.render``)."""
    return dict(ncols=2, figsize=(12, 5.5))


def draw(fig, axes, data: dict, config: FoundationConfig) -> None:
    """The rule and the learned-shift control (figure protocol, ``figures.output.render``)."""
    plot(data["points"], "rule", ax=axes[0], title="the rule (random-orientation shift)")
    axes[0].legend(fontsize=8)
    plot(data["points"], "full_shift", ax=axes[1], title="control: the shift full learned")


def make(out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False,
         config: FoundationConfig | None = None) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 11: PNG, PDF, JSON data, caption."""
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
