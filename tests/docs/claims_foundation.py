"""The prose's claims about the foundation model (README.md, "A foundation model pretrained here"),
each tied to the full run committed beside the gallery (``docs/gallery/full/foundation_*.json``).

The same machinery as ``tests/docs/claims.py``: a template whose numbers come from the JSON at the
stated precision, with the directions it states asserted. The quick preset is a preview whose
numbers the prose does not quote.
"""

from __future__ import annotations

from tests.docs.claims import README, Claim, f3

VARIANTS, RULE = "full/foundation_variants", "full/foundation_rule"


def _pretraining(d: dict) -> dict[str, str]:
    p, config = d["data"]["pretraining"], d["config"]
    assert p["bayes_loss"] < p["test_loss"] < p["unigram_loss"]
    return {"steps": str(config["model"]["steps"]), "test": f3(p["test_loss"]), "bayes": f3(p["bayes_loss"]),
            "bayes2": f3(2 * p["bayes_se"]), "uni": f3(p["unigram_loss"]),
            "learned": f"{100 * p['learned_fraction']:.0f}", "lo": f"{min(p['erank']):.1f}",
            "hi": f"{max(p['erank']):.1f}", "new": f3(p["new_domain_loss"]), "newbayes": f3(p["new_domain_bayes"])}


def _count(d: dict, name: str, key: str = "metric") -> dict[str, str]:
    c = d["data"]["findings"][name][key]
    return {"wins": str(len(c["wins"])), "losses": str(len(c["losses"])), "ties": str(len(c["ties"])),
            "total": str(sum(len(v) for v in c.values()))}


def _finding1(d: dict) -> dict[str, str]:
    ba, bl = _count(d, "b_only_vs_a_only"), _count(d, "b_only_vs_lora")
    assert ba["losses"] == "0" and bl["wins"] == "0" and int(bl["losses"]) > int(bl["ties"])
    return {f"ba_{k}": v for k, v in ba.items()} | {f"bl_{k}": v for k, v in bl.items()}


def _finding2(d: dict) -> dict[str, str]:
    c = _count(d, "b_only_2r_vs_lora")
    assert c["wins"] == "0" and int(c["losses"]) > 0
    return c


def _finding4(d: dict) -> dict[str, str]:
    c = _count(d, "b_only_vs_lora", "ood_metric")
    assert c["wins"] == "0"
    return c


def _polarity(d: dict) -> dict[str, str]:
    t = d["data"]["table"]["polarity"]
    arms = {(a["targets"], a["variant"], a["rank"]): a for a in t["arms"]}
    lora, b, a, full = (arms[("qv", v, r)]["metric"] for v, r in (("lora", 4), ("b_only", 4), ("a_only", 4),
                                                                    ("full", 0)))
    assert full > lora > b and lora > a
    return {"pre": f3(t["pretrained"]["metric"]), "full": f3(full), "lora": f3(lora), "b": f3(b), "a": f3(a),
            "bayes": f3(t["bayes"]["metric"])}


def _similarity(d: dict) -> dict[str, str]:
    g = d["data"]["similarity"]["groups"]
    shared, same, other = g["shared_init_other_task"], g["other_init_same_task"], g["other_init_other_task"]
    assert shared["A"]["mean"] - 2 * shared["A"]["se"] > same["A"]["mean"] + 2 * same["A"]["se"]
    assert same["B"]["mean"] - 2 * same["B"]["se"] > shared["B"]["mean"] + 2 * shared["B"]["se"]
    return {"a_sh": f3(shared["A"]["mean"]), "a_sh2": f3(2 * shared["A"]["se"]), "a_same": f3(same["A"]["mean"]),
            "a_same2": f3(2 * same["A"]["se"]), "a_other": f3(other["A"]["mean"]),
            "b_same": f3(same["B"]["mean"]), "b_same2": f3(2 * same["B"]["se"]), "b_sh": f3(shared["B"]["mean"]),
            "b_sh2": f3(2 * shared["B"]["se"]), "b_other": f3(other["B"]["mean"])}


def _rule(d: dict) -> dict[str, str]:
    data = d["data"]
    out = {}
    for key in ("rule", "full_shift", "gradient"):
        s = data[key]
        out |= {f"{key}_agree": str(s["agree"]), f"{key}_resolved": str(s["resolved"]),
                f"{key}_rho": f"{s['spearman']:+.2f}".replace("-", "−")}
    out["total"] = str(data["rule"]["total"])
    out["unresolved"] = str(data["rule"]["total"] - data["rule"]["resolved"])
    assert abs(data["rule"]["spearman"]) < 0.3
    assert data["full_shift"]["misses"] == data["gradient"]["misses"] == data["rule"]["misses"]
    return out


def _all_maps(d: dict) -> dict[str, str]:
    c = _count(d, "b_only_vs_lora_all")
    ood = _count(d, "b_only_vs_lora_all", "ood_metric")
    form = {(a["targets"], a["variant"]): a for a in d["data"]["table"]["formality"]["arms"]}[("all", "lora")]
    assert form["metric"] < d["data"]["table"]["formality"]["pretrained"]["metric"]
    return {**c, "ood_wins": ood["wins"], "ood_losses": ood["losses"], "ood_ties": ood["ties"],
            "ood_total": ood["total"], "r2": f3(form["metric"]), "r2se": f3(form["metric_se"])}


def _bounds(d: dict) -> dict[str, str]:
    checks, rows = d["bound_checks"], d["data"]["bounds"]
    assert all(c["held"] and c["vacuous"] for c in checks)
    return {"k": str(len(checks)), "low": f"{min(r['bound'] for r in rows):.2f}",
            "high": f"{max(r['bound'] for r in rows):.1f}", "n": str(d["config"]["n_train"]),
            "gmax": f"{max(r['gap'] for r in rows):.3f}"}


CLAIMS = (
    Claim(README, VARIANTS, "pretrained for {steps} steps (full preset), it reaches a held-out loss of {test} nats "
          "per token, against the generator's own {bayes} ± {bayes2} and the unigram {uni}: {learned} % of the "
          "structure there is to learn", _pretraining),
    Claim(README, VARIANTS, "the effective rank of Σ of its linear maps is {lo} to {hi}", _pretraining),
    Claim(README, VARIANTS, "**1. `b_only` against `a_only` and `lora`** (full preset): `b_only` never loses to "
          "`a_only` beyond 2 s.e. ({ba_wins} win, {ba_ties} of {ba_total} tasks unresolved), but it does not come "
          "close to `lora`: it loses on {bl_losses} of {bl_total} tasks, and ties on {bl_ties}.", _finding1),
    Claim(README, VARIANTS, "On `polarity` the pretrained probe scores {pre}; `full` reaches {full}, `lora` {lora}, "
          "`b_only` {b} and `a_only` {a} (the generator's own accuracy is {bayes}).", _polarity),
    Claim(README, VARIANTS, "**2. `b_only` at 2r against `lora` at r** (full preset): {wins} wins, {losses} losses, "
          "{ties} unresolved of {total} tasks. The paper's finding does not hold on this model.", _finding2),
    Claim(README, VARIANTS, "**3. Figure 1** (full preset, mean ± 2 s.e. over pairs of `lora` runs): learned `A` "
          "has similarity {a_sh} ± {a_sh2} across tasks with a shared init, against {a_same} ± {a_same2} across "
          "inits on one task ({a_other} across both); learned `B` has {b_same} ± {b_same2} within a task across "
          "inits, against {b_sh} ± {b_sh2} across tasks with a shared init ({b_other} across both).", _similarity),
    Claim(README, VARIANTS, "**4. Out of distribution** (full preset), `b_only` − `lora` on the held-out domain: "
          "{wins} wins, {losses} losses, {ties} unresolved of {total} tasks.", _finding4),
    Claim(README, RULE, "**The rule, module by module** (full preset, {total} module × task points): the sign of "
          "f(Σ, r) − f(G, r) agrees with the measured one on {rule_agree} of the {rule_resolved} points resolved "
          "beyond 2 s.e., and Spearman's correlation is {rule_rho}.", _rule),
    Claim(README, RULE, "With `full`'s learned shift in place of a random one the control scores {full_shift_agree} "
          "of {full_shift_resolved} and {full_shift_rho}; with the gradient at W0, {gradient_agree} of "
          "{gradient_resolved} and {gradient_rho}. The controls miss the same points as the rule, so the misses "
          "do not come from the random-orientation assumption. {unresolved} of the {total} single-module "
          "measurements are within 2 s.e. of zero: one module at rank r moves the test loss little in 400 steps.",
          _rule),
    Claim(README, VARIANTS, "On every linear map of every block (\"all\", full preset), `b_only` − `lora` at r: "
          "{wins} wins, {losses} loss, {ties} unresolved of {total} tasks in distribution, and {ood_wins} win, "
          "{ood_losses} losses, {ood_ties} unresolved of {ood_total} out of distribution; there `lora` is unstable "
          "on `formality` (R² {r2} ± {r2se}, below the pretrained probe).", _all_maps),
    Claim(README, VARIANTS, "Lemma 4.5 (full preset) is vacuous for all {k} arms on `polarity`: from {low} "
          "(`b_only` and `a_only` at r) to {high} (`full`) for a 0-1 loss whose range is 1 (σ = ½, 16 bits per "
          "trained parameter, n = {n}); the measured gaps are at most {gmax}.", _bounds),
)
