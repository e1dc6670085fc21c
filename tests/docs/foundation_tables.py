"""The README's foundation-model tables, rendered from the full run's JSON (``docs/gallery/full``).

``tests/docs/test_claims.py`` checks that each rendered table stands in README.md word for word, so
a table can only change with the JSON it reports.
"""

from __future__ import annotations

from tests.docs.claims import figure_json

#: The full run of figure 10 committed beside the gallery.
FULL_VARIANTS = "full/foundation_variants"
METRIC_NAMES = {"classification": "accuracy", "regression": "R²", "lm": "nats/token"}


def _cell(mean: float | None, se: float | None) -> str:
    return "—" if mean is None else f"{mean:.3f} ± {se:.3f}"


def _label(arm: dict, first: str) -> str:
    name = "full" if arm["variant"] == "full" else f"`{arm['variant']}` r={arm['rank']}"
    return name if arm["targets"] == first or arm["variant"] == "full" else f"{name} ({arm['targets']})"


def variant_table(key: str = "metric") -> str:
    """Markdown: one row per task (with the OOD split, for ``ood_metric``), one column per arm, mean ±
    s.e. over seeds of the test metric; the pretrained model first."""
    from peft_bridge.foundation import TASKS

    d = figure_json(FULL_VARIANTS)
    table, first = d["data"]["table"], d["config"]["target_sets"][0]
    tasks = [t for t, e in table.items() if e["arms"][0][key] is not None]
    arms = table[tasks[0]]["arms"]
    head = "| task (metric) | pretrained | " + " | ".join(_label(a, first) for a in arms) + " |"
    rule = "|---|" + "---:|" * (len(arms) + 1)
    rows = []
    for t in tasks:
        metric = METRIC_NAMES[TASKS[t][0]]
        cells = [f"{table[t]['pretrained'][key]:.3f}"] + [_cell(a[key], a[f"{key}_se"]) for a in table[t]["arms"]]
        rows.append(f"| `{t}` ({metric}) | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])


def erank_table() -> str:
    """Markdown: the effective rank of Σ of each linear map's input per block (its width in the head),
    maps that read the same input in one column (q, k and v; gate and up)."""
    from peft_bridge.foundation import TARGET_SETS

    p = figure_json(FULL_VARIANTS)["data"]["pretraining"]
    maps = TARGET_SETS["all"]
    layers = len(p["erank"]) // len(maps)
    columns = (("q, k, v", "self_attn.q_proj"), ("o", "self_attn.o_proj"), ("gate, up", "mlp.gate_proj"),
               ("down", "mlp.down_proj"))
    head = "| block | " + " | ".join(f"{name} (width {p['width'][maps.index(m)]})" for name, m in columns) + " |"
    rows = [f"| {l} | " + " | ".join(f"{p['erank'][l * len(maps) + maps.index(m)]:.1f}" for _, m in columns) + " |"
            for l in range(layers)]
    return "\n".join([head, "|---:|" + "---:|" * len(columns), *rows])
