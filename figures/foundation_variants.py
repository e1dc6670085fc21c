r"""Figure 10: the paper's variant tables, Figure 1 and Lemma 4.5 on a decoder pretrained here.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), find on
foundation models that (1) ``b_only`` with a frozen random ``A`` comes close to ``lora`` and beats
``a_only``; (2) ``b_only`` at rank ``2r`` matches or beats ``lora`` at ``r``; (3) learned ``A``'s are
similar across tasks when their init is shared and ``B``'s are task-specific (Figure 1); (4)
``b_only`` generalizes better out of distribution. This figure measures each on the toolkit's
own foundation model (``peft_bridge.foundation``; docs/THEORY.md §8): a 4-layer Llama-style
decoder pretrained on a synthetic language, fine-tuned on six tasks with every variant, three
seeds (two in the quick preset). Panels: the score of each arm as a fraction of ``full``'s gain
over the pretrained model, in distribution and on the held-out domain; the CCA similarity of
``lora``'s factors by init and task; Lemma 4.5 against the measured gap of the 0-1 loss.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from bounds import lora_mi_bound, trainable_params, xu_raginsky
from figures.checks import bound_check, caption_sentence
from figures.output import render
from figures.parallel import Unit, run_units
from peft_bridge.foundation import (
    FoundationConfig,
    arms,
    factor_similarity,
    finding_counts,
    pretraining_summary,
    table_modules,
    variant_runs,
    variant_table,
)
from peft_bridge.foundation.experiment import backbone_parameters, module_shapes

NAME = "foundation_variants"
DESCRIPTION = "Variant tables (in and out of distribution), Figure 1 and Lemma 4.5 on a decoder pretrained here."
#: The figure's configuration: the experiment's (presets ``quick``, ``full``, ``tiny``).
Config = FoundationConfig
#: Sub-Gaussian parameter of the 0-1 loss (values in [0, 1]; Lemma 4.4).
ZERO_ONE_SIGMA = 0.5
GAP_INTERVAL = "mean ± 2 s.e. over seeds"
#: The gains panels' y range; a bar beyond it is clipped and its value written at the edge.
GAIN_LIMITS = (-1.5, 1.5)


def units(config: FoundationConfig, seed: int) -> list[Unit]:
    """The pretraining summary, then one unit per task: its variant table (``figures.parallel``);
    ``figures.foundation_rule`` lists the same units, which run once."""
    c = replace(config, seed=seed)
    params = asdict(c)
    return [Unit("foundation_pretraining", {"config": params}, pretraining_summary, (c,)),
            *(Unit("foundation_variants", {"config": params, "task": t}, variant_runs, (c, t), waits=True)
              for t in c.tasks)]


def compute(config: FoundationConfig, seed: int, cache_dir: Path | None = None, force: bool = False) -> dict:
    """Pretraining summary, the table per task, the findings' counts, Figure 1's similarities, the bounds.

    Returns
    -------
    dict with ``pretraining``, ``table`` (``peft_bridge.foundation.variant_table``), ``findings``
    (``finding_counts`` of every comparison, in and out of distribution), ``similarity``
    (``factor_similarity``) and ``bounds`` (one record per arm of the bound task).
    """
    c = replace(config, seed=seed)
    results = run_units(units(config, seed), cache_dir, force=force, desc=f"{NAME}: pretraining and fine-tuning")
    summary, tables = results[0], dict(zip(c.tasks, results[1:]))
    table = variant_table(arms(c), c.rank, tables)
    findings = {name: {key: finding_counts(table, name, key) for key in ("metric", "ood_metric")}
                for name in next(iter(table.values()))["comparisons"]}
    pretraining = {k: float(summary[k]) for k in ("test_loss", "bayes_loss", "bayes_se", "unigram_loss",
                                                   "new_domain_loss", "new_domain_bayes")}
    pretraining["learned_fraction"] = (pretraining["unigram_loss"] - pretraining["test_loss"]) / (
        pretraining["unigram_loss"] - pretraining["bayes_loss"])
    pretraining["erank"] = summary["erank"].tolist()
    pretraining["width"] = summary["width"].tolist()
    pretraining["losses"] = summary["losses"][:: max(1, len(summary["losses"]) // 200)].tolist()
    return {"pretraining": pretraining, "table": table, "findings": findings,
            "similarity": factor_similarity(tables, len(table_modules(c, c.target_sets[0]))),
            "bounds": _bounds(c, tables.get(c.bound_task))}


def _bounds(c: FoundationConfig, res: dict | None) -> list[dict]:
    """Lemma 4.5 for each arm of the bound task's first target set, with the measured 0-1 gap."""
    if res is None:
        return []
    layers = module_shapes(c, c.target_sets[0])
    rows = []
    for i, (targets, variant, rank) in enumerate(arms(c)):
        if targets != c.target_sets[0] and variant != "full":
            continue
        if variant == "full":
            n_params = backbone_parameters(c)
            bound = xu_raginsky(c.q_bits * n_params * math.log(2), ZERO_ONE_SIGMA, c.n_train)
        else:
            n_params = trainable_params(variant, layers, rank)
            bound = lora_mi_bound(variant, layers, rank, c.q_bits, ZERO_ONE_SIGMA, c.n_train)
        gap = res["train_metric"][i] - res["metric"][i]  # test 0-1 error minus training 0-1 error
        mean, se = float(gap.mean()), float(gap.std(ddof=1) / np.sqrt(gap.size))
        rows.append({"variant": variant, "rank": rank, "trained_params": int(n_params), "bound": float(bound),
                     "gap": mean, "gap_se": se})
    return rows


def bound_checks(config: FoundationConfig, data: dict) -> list[dict]:
    """Lemma 4.5 against the measured expected gap of the 0-1 loss, per arm (``figures.checks``)."""
    return [bound_check({"task": config.bound_task, "variant": r["variant"], "rank": r["rank"]}, "Lemma 4.5",
                        r["bound"], loss="0-1 loss", gap=r["gap"], gap_low=r["gap"] - 2 * r["gap_se"],
                        gap_high=r["gap"] + 2 * r["gap_se"], gap_interval=GAP_INTERVAL, vacuous=r["bound"] >= 1.0)
            for r in data["bounds"]]


def gains(table: dict, key: str) -> tuple[list[str], list[str], np.ndarray]:
    """Tasks, arm labels and (tasks, arms) the arm's score gain over the pretrained model as a fraction
    of ``full``'s (NaN where the task has no such split)."""
    tasks = [t for t, e in table.items() if e["arms"][0][key] is not None]
    arms = table[tasks[0]]["arms"] if tasks else []
    first = arms[0]["targets"] if arms else None
    labels = [("full" if not a["rank"] else f"{a['variant']} r={a['rank']}")
              + ("" if a["targets"] == first or not a["rank"] else f" ({a['targets']})") for a in arms]
    out = np.full((len(tasks), len(labels)), np.nan)
    for i, t in enumerate(tasks):
        rows, pre = table[t]["arms"], table[t]["pretrained"][key]
        full = rows[0][key]
        for j, row in enumerate(rows):
            out[i, j] = (row[key] - pre) / (full - pre) if full != pre else np.nan
    return tasks, labels, out


def plot_gains(table: dict, key: str, ax=None, title: str = ""):
    """Grouped bars: per task, each arm's gain as a fraction of ``full``'s (1 = ``full``, 0 = pretrained),
    clipped to ``GAIN_LIMITS`` (a clipped bar's value is written at the edge)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    tasks, labels, values = gains(table, key)
    width = 0.8 / max(1, len(labels))
    low, high = GAIN_LIMITS
    for j, lab in enumerate(labels):
        x = np.arange(len(tasks)) + (j - (len(labels) - 1) / 2) * width
        ax.bar(x, np.clip(values[:, j], low, high), width, label=lab, color=f"C{j}")
        for xi, v in zip(x, values[:, j]):
            if np.isfinite(v) and not low <= v <= high:  # clipped: its value is written at the axis' edge
                ax.text(xi, low if v < low else high, f"{v:.0f}", ha="center", va="bottom" if v < low else "top",
                        fontsize=6, rotation=90)
    ax.set_ylim(low - 0.05, high + 0.05)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.axhline(1, color="0.3", lw=0.8, ls=":")
    ax.set_xticks(np.arange(len(tasks)), tasks, rotation=20, fontsize=8)
    ax.set_ylabel("gain / full's gain")
    ax.set_title(title, fontsize=9)
    return ax


def plot_similarity(similarity: dict, ax=None):
    """Bars: mean CCA similarity of A and B per pair group, ±2 s.e."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    groups = [g for g, v in similarity["groups"].items() if v is not None]
    for k, side in enumerate("AB"):
        means = [similarity["groups"][g][side]["mean"] for g in groups]
        errs = [2 * similarity["groups"][g][side]["se"] for g in groups]
        ax.bar(np.arange(len(groups)) + (k - 0.5) * 0.38, means, 0.38, yerr=errs, label=f"learned {side}")
    ax.set_xticks(np.arange(len(groups)), [g.replace("_", " ") for g in groups], fontsize=7)
    ax.set_ylabel("CCA similarity")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    return ax


def plot_bounds(rows: list[dict], ax=None):
    """Lemma 4.5 and the measured 0-1 gap (±2 s.e.) per arm, log scale; the loss's range dotted."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["bound"] for r in rows], 0.4, label="Lemma 4.5")
    ax.errorbar(x + 0.2, [max(r["gap"], 1e-4) for r in rows], yerr=[2 * r["gap_se"] for r in rows], fmt="o",
                color="k", label="measured gap")
    ax.axhline(1.0, color="0.3", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{r['variant']}\nr={r['rank']}" if r["rank"] else "full" for r in rows], fontsize=7)
    ax.set_ylabel("0-1 loss gap")
    ax.legend(fontsize=8)
    return ax


def _comparison_text(findings: dict, name: str, key: str) -> str:
    counts = findings[name][key]
    total = sum(len(v) for v in counts.values())
    wins, losses = len(counts["wins"]), len(counts["losses"])
    return (f"{wins} win{'' if wins == 1 else 's'}, {losses} loss{'' if losses == 1 else 'es'}, "
            f"{len(counts['ties'])} unresolved of {total}")


def _more_text(config: FoundationConfig, findings: dict) -> str:
    """The comparisons on the further target sets, if any."""
    parts = [f" On {t}: b_only − a_only at r: {_comparison_text(findings, f'b_only_vs_a_only_{t}', 'metric')}; "
             f"b_only − lora at r: {_comparison_text(findings, f'b_only_vs_lora_{t}', 'metric')}."
             for t in config.target_sets[1:]]
    return "".join(parts)


def caption(config: FoundationConfig, data: dict) -> str:
    """The setting, the pretraining's loss, and each finding as counted over tasks (beyond 2 s.e.)."""
    p, f, sim = data["pretraining"], data["findings"], data["similarity"]["groups"]
    shared, other = sim.get("shared_init_other_task"), sim.get("other_init_same_task")
    sim_text = ("" if shared is None or other is None else
                f" CCA similarity (Figure 1): learned A {shared['A']['mean']:.2f} across tasks with a shared init "
                f"against {other['A']['mean']:.2f} across inits on one task; learned B {shared['B']['mean']:.2f} "
                f"and {other['B']['mean']:.2f}.")
    return (
        f"A {config.model.layers}-layer Llama-style decoder (hidden {config.model.hidden}) pretrained here for "
        f"{config.model.steps} steps: held-out loss {p['test_loss']:.3f} nats/token against the generator's "
        f"{p['bayes_loss']:.3f} and the unigram {p['unigram_loss']:.3f}. {len(config.tasks)} tasks, "
        f"{config.seeds} seeds, rank r = {config.rank} on {', '.join(config.target_sets)} "
        f"({config.schedule.steps} Adam steps). Over tasks, paired score differences beyond 2 s.e.: "
        f"b_only − a_only at r: {_comparison_text(f, 'b_only_vs_a_only', 'metric')}; "
        f"b_only − lora at r: {_comparison_text(f, 'b_only_vs_lora', 'metric')}; "
        f"b_only at 2r − lora at r: {_comparison_text(f, 'b_only_2r_vs_lora', 'metric')}; "
        f"out of distribution, b_only − lora at r: {_comparison_text(f, 'b_only_vs_lora', 'ood_metric')}, "
        f"b_only − a_only at r: {_comparison_text(f, 'b_only_vs_a_only', 'ood_metric')}.{_more_text(config, f)}"
        f"{sim_text} {caption_sentence(bound_checks(config, data))}"
    )


def SUBPLOTS(config: FoundationConfig) -> dict:
    """Keyword arguments of ``plt.subplots`` (figure protocol, ``figures.output.render``)."""
    return dict(nrows=2, ncols=2, figsize=(12, 8))


def draw(fig, axes, data: dict, config: FoundationConfig) -> None:
    """Draw the four panels (figure protocol, ``figures.output.render``)."""
    plot_gains(data["table"], "metric", ax=axes[0, 0], title="in distribution")
    axes[0, 0].legend(fontsize=6, ncol=3, loc="lower left", framealpha=0.9)
    plot_gains(data["table"], "ood_metric", ax=axes[0, 1], title="held-out domain")
    plot_similarity(data["similarity"], ax=axes[1, 0])
    plot_bounds(data["bounds"], ax=axes[1, 1])


def make(out_dir: Path | str, quick: bool = True, seed: int = 0, *, force: bool = False,
         config: FoundationConfig | None = None) -> dict[str, Path]:
    """Compute (cached under ``out_dir/.cache``) and save Figure 10: PNG, PDF, JSON data, caption."""
    return render(sys.modules[__name__], out_dir, quick, seed, force=force, config=config)
