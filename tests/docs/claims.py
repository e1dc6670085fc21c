"""The prose's claims about measured results, each tied to the figure JSON it is about.

A ``Claim`` is a sentence of a document (README.md, docs/THEORY.md, a markdown cell of
paper_figs.ipynb) written as a template: its numbers are ``{placeholders}`` that ``values`` computes
from a figure's JSON in ``docs/gallery`` (the quick preset, the numbers the gallery shows), at the
precision the sentence states. ``values`` also asserts the directions the sentence states (who
wins, which is larger). ``tests/docs/test_claims.py`` renders each template and finds it in its
document, so a figure whose numbers move, or a sentence that is edited, fails the suite until the
two agree again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import theory
from figures import rank_doubling
from figures.rank_doubling import paired_difference

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ROOT / "docs" / "gallery"


@dataclass(frozen=True)
class Claim:
    """A sentence of ``document`` whose numbers come from ``figure``'s JSON."""

    document: str
    figure: str
    template: str
    values: Callable[[dict], dict[str, str]]

    def render(self) -> str:
        """The sentence with its numbers from the committed JSON (directions asserted on the way)."""
        return self.template.format(**self.values(figure_json(self.figure)))


def figure_json(name: str) -> dict:
    """The committed quick-preset JSON of figure ``name``."""
    return json.loads((GALLERY / f"{name}.json").read_text())


def f2(x: float) -> str:
    return f"{x:.2f}"


def f3(x: float) -> str:
    return f"{x:.3f}"


def signed(x: float) -> str:
    """``+0.052`` / ``−0.106``: a signed number as the prose writes it (a true minus sign)."""
    return f"{x:+.3f}".replace("-", "−")


def winner(advantage: float, stderr: float) -> str:
    """Who wins, as the prose writes it: figure 8's call (beyond 2 s.e., the one threshold of every win)."""
    call = rank_doubling.winner(advantage, stderr)
    return call if call.startswith("no") else f"`{call.split()[0]}` wins"


# --- figure 3: asymmetry_map ---------------------------------------------------------------------

def _random_row(d: dict) -> dict[str, str]:
    data, config = d["data"], d["config"]
    alphas = np.array(data["alphas"])
    gap, se = np.array(data["random_gap"]), np.array(data["random_gap_se"])
    wins = gap > 2 * se
    assert not wins[alphas == 0].any() and wins[alphas > 0].all(), "b_only must win at every α > 0, and only there"
    z = np.abs(gap - np.array(data["predicted_gap"])) / np.hypot(se, np.array(data["predicted_gap_se"]))
    at = {a: gap[list(alphas).index(a)] for a in (0.5, 1.0, 2.0)}
    return {"wins": str(int(wins.sum())), "cols": str(alphas.size), "g05": f3(at[0.5]), "g1": f3(at[1.0]),
            "g2": f3(at[2.0]), "z": f"{z.max():.1f}", "d": str(config["d"]), "r": str(config["rank"])}


def _grid(d: dict) -> dict[str, str]:
    gap, se = np.array(d["data"]["gap"]), np.array(d["data"]["gap_se"])
    return {"neg": str(int(np.sum(gap < -2 * se))), "cells": str(gap.size)}


# --- figure 8: rank_doubling ---------------------------------------------------------------------

def _err(arm: dict) -> str:
    return f"{arm['test'][-1]:.3f} ± {2 * arm['test_se'][-1]:.3f}"


def _paper_regime(d: dict) -> dict[str, str]:
    data, config = d["data"], d["config"]
    reg, pred = data["paper_regime"], data["paper_regime"]["prediction"]
    lo, bo, ao = reg["lora@1r"], reg["b_only@2r"], reg["a_only@2r"]
    assert pred["b_only_fraction"] > pred["a_only_fraction"], "the rule must predict b_only"
    diff, half = paired_difference(bo, lo)
    assert diff < -half, "b_only at 2r must beat lora at r beyond 2 s.e. (paired)"
    assert bo["test"][-1] < ao["test"][-1] - 2 * ao["test_se"][-1], "b_only must beat a_only"
    assert lo["bound"][-1] > bo["bound"][-1], "lora's second scale must make its bound the larger"
    r = config["ranks"][-1]
    eig = np.arange(1, 65.0) ** -2
    return {"fs": f2(pred["b_only_fraction"]), "fg": f2(pred["a_only_fraction"]), "n": str(config["n"]),
            "trials": str(config["trials"]), "r": str(r), "r2": str(2 * r), "b": _err(bo), "l": _err(lo),
            "a": _err(ao), "diff": signed(diff), "half": f3(half), "params": str(128 * r),
            "lb": f3(lo["bound"][-1]), "bb": f3(bo["bound"][-1]), "erank": f2(theory.effective_rank(np.diag(eig)))}


def _full_paper_regime(d: dict) -> dict[str, str]:
    values = _paper_regime(d)
    return {**values, "steps": str(d["config"]["steps"])}


def _narrow_regime(d: dict) -> dict[str, str]:
    reg = d["data"]["narrow_readout"]
    pred = reg["prediction"]
    lo, bo, ao = reg["lora@1r"], reg["b_only@2r"], reg["a_only@2r"]
    assert pred["a_only_fraction"] > pred["b_only_fraction"], "the rule must predict a_only"
    diff, half = paired_difference(bo, ao)
    assert diff > half, "a_only must beat b_only beyond 2 s.e. (paired)"
    assert lo["test"][-1] + 2 * lo["test_se"][-1] < ao["test"][-1] - 2 * ao["test_se"][-1], "lora far ahead"
    return {"b": _err(bo), "l": _err(lo), "a": _err(ao), "fs": f2(pred["b_only_fraction"]),
            "fg": f2(pred["a_only_fraction"]), "diff": signed(diff), "half": f3(half)}


def _control(d: dict) -> dict[str, str]:
    control, config = d["data"]["control"], d["config"]
    ten, wide, reg = control["10 classes"], control["64 classes"], control["64 regression outputs"]
    assert ten["a_only_fraction"] > ten["b_only_fraction"] and ten["measured"] < -2 * ten["measured_se"]
    assert reg["a_only_fraction"] < reg["b_only_fraction"] and reg["measured"] > 2 * reg["measured_se"]
    assert len({round(c["b_only_fraction"], 3) for c in control.values()}) == 1, "f(Σ, r) must not move"
    out = {"r": str(config["control_rank"]), "n": str(config["control_n"]), "trials": str(config["control_trials"]),
           "fs": f3(ten["b_only_fraction"]), "erank": f"{ten['input_erank']:.1f}", "width": str(int(ten["width"]))}
    for key, c in (("10", ten), ("64", wide), ("reg", reg)):
        out.update({f"fg{key}": f3(c["a_only_fraction"]), f"m{key}": signed(c["measured"]),
                    f"s{key}": f3(2 * c["measured_se"]), f"w{key}": winner(c["measured"], c["measured_se"])})
    return out


# --- figure 9: asymmetry_predictor ---------------------------------------------------------------

def _predictor(d: dict) -> dict[str, str]:
    data, config = d["data"], d["config"]
    sign = data["sign_agreement"]
    (miss,) = sign["misses"]
    p = data["points"][miss]
    row = p["config"]
    assert (row["kind"], row["readout"], row["inputs"], row["position"], row["rank"]) == \
        ("classification", 32, "isotropic", "first", 1), "the one miss the prose describes"
    big = next(q for q in data["points"] if (q["config"]["kind"], q["config"]["readout"], q["config"]["activation"],
                                             q["config"]["inputs"]) == ("classification", 128, "relu", "powerlaw"))
    return {"agree": str(sign["agree"]), "resolved": str(sign["resolved"]), "total": str(sign["total"]),
            "rho": f2(data["spearman"]), "n": str(config["n"]), "trials": str(config["trials"]),
            "steps": str(config["steps"]), "pm": signed(p["predicted_advantage"]),
            "mm": signed(p["measured_advantage"]), "ms": f3(2 * p["measured_stderr"]),
            "bp": f"{big['predicted_advantage']:+.2f}", "bm": f"{big['measured_advantage']:+.2f}"}


# --- figures 2, 4, 6, 7 ---------------------------------------------------------------------------

def _both_regimes(d: dict) -> dict[str, str]:
    _paper_regime(d)
    _narrow_regime(d)
    return {}


def _gap_wins(d: dict) -> dict[str, str]:
    data = d["data"]
    x = np.array(data["d_over_r"])
    for kind in ("lowrank", "powerlaw"):
        assert np.all(np.array(data[kind]["win_fraction"])[x >= 8] == 1.0), kind
    iso = np.array(data["isotropic"]["win_fraction"])
    assert np.all(np.abs(iso - 0.5) <= 0.1), "about half for isotropic Σ"
    return {}


def _bounds_linear(d: dict) -> dict[str, str]:
    checks, data = d["bound_checks"], d["data"]
    assert all(c["held"] for c in checks), "no bound below its gap"
    assert all(data[v]["lemma45_vacuous"][0] == 1 for v in ("full", "lora", "b_only", "a_only"))
    unresolved = [data[v][f"{b}_resolved"][-1] == 0 for v in ("b_only", "a_only")
                  for b in ("ld_cmi", "ecmi", "binary_kl", "fast_rate")]
    assert any(unresolved), "some CMI estimate at the largest n is unresolved"
    return {}


def _floors(d: dict) -> dict[str, str]:
    data = d["data"]
    floors = np.array([data[v]["ld_cmi_floor"] for v in ("full", "lora", "b_only", "a_only")])
    last = np.array([data[v]["ld_cmi"][-1] for v in ("full", "lora", "b_only", "a_only")])
    unresolved = {v: [b for b in ("ld_cmi", "ecmi", "binary_kl", "fast_rate") if data[v][f"{b}_resolved"][-1] == 0]
                  for v in ("full", "lora", "b_only", "a_only")}
    assert unresolved == {"full": [], "lora": [], "b_only": ["ecmi", "binary_kl", "fast_rate"],
                          "a_only": ["ld_cmi", "ecmi", "binary_kl", "fast_rate"]}, unresolved
    return {"lo": f3(floors[:, 1:].min()), "hi": f3(floors[:, 1:].max()), "lo16": f3(floors[:, 0].min()),
            "hi16": f3(floors[:, 0].max()), "n16": str(d["data"]["n"][0]), "clo": f3(last.min()),
            "chi": f3(last.max()), "nmax": str(d["data"]["n"][-1])}


def _ratios(d: dict) -> dict[str, str]:
    data = d["data"]
    assert np.all(np.array(data["gap_lora_low"]) > np.array(data["bound_lora"])), "gap ratio above the bound ratio"
    gap = np.log(np.array(data["gap_lora"]))
    assert np.mean(np.abs(gap - np.log(data["params_lora"]))) < np.mean(np.abs(gap - np.log(data["bound_lora"])))
    assert np.allclose(data["bound_lora"], np.sqrt(1 + 1 / np.array(data["d_out_over_d_in"])))
    return {}


def _similarity(d: dict) -> dict[str, str]:
    lrs = sorted((float(k.split("=")[1]), v) for k, v in d["data"].items() if k.startswith("lr="))
    (_, small), (_, large) = lrs[0], lrs[-1]
    assert small["a_same_init"] > small["a_same_task"] and large["a_same_task"] > large["a_same_init"]
    assert all(v["b_same_task"] > v["b_same_init"] for _, v in lrs), "B clusters by task at every step size"
    return {}


README = "README.md"
THEORY = "docs/THEORY.md"
NOTEBOOK = "paper_figs.ipynb"

CLAIMS: tuple[Claim, ...] = (
    # README, "Where the asymmetry holds, and where it fails"
    Claim(README, "asymmetry_map",
          "`b_only` wins at every spectral decay α > 0 of Σ = diag(i^-α) ({wins} of {cols} columns, all but "
          "the isotropic one), by {g05} of Tr[ΔΣΔᵀ] at α = 0.5, {g1} at α = 1 and {g2} at α = 2, each within "
          "{z} standard errors of f(Σ, r) − r/d_out (square {d} × {d} layer, rank {r}).", _random_row),
    Claim(README, "asymmetry_map", "(`b_only` loses in {neg} of its {cells} cells)", _grid),
    Claim(README, "rank_doubling",
          "f(G, {r}) = {fg10} against f(Σ, {r}) = {fs}, so the rule predicts `a_only`, and `a_only` wins", _control),
    Claim(README, "rank_doubling",
          "(figure 8's control: r = {r}, n = {n}, {trials} training sets, advantage (L_a_only − L_b_only)/"
          "(L_pretrained − L_full) ± 2 s.e.): with 10 classes it is {m10} ± {s10} ({w10}); with 64 classes "
          "f(G, {r}) = {fg64} and {m64} ± {s64} ({w64}); with 64 regression outputs f(G, {r}) = {fgreg} and "
          "{mreg} ± {sreg} ({wreg}). The layer's inputs (effective rank {erank} of {width}) are the same in "
          "all three.", _control),
    Claim(README, "rank_doubling",
          "inputs with Σ_j ∝ j^-2 (effective rank {erank}), a 64-class head two layers up, a shift of full "
          "rank 64 and random orientation), the rule predicts `b_only` (f(Σ, {r2}) = {fs} against "
          "f(G, {r2}) = {fg}) and the paper's claims hold (figure 8, top row; n = {n}, {trials} training sets, "
          "0-1 error ± 2 s.e.): at base rank {r}, `b_only` at rank {r2} reaches {b}, `lora` at rank {r} {l} "
          "(paired difference {diff} ± {half}: `b_only` is ahead) with the same {params} trained parameters, and "
          "`a_only` at rank {r2} {a}. Lemma 4.5 as stated gives `b_only` at rank {r2} and `lora` at rank {r} the same "
          "bound; counting every stored bit, `lora`'s second scale makes its bound {lb} against {bb}.",
          _paper_regime),
    Claim(README, "rank_doubling",
          "On the narrow read-out the quick comparison gives {b}, {l} and {a} for `b_only` at rank 8, `lora` "
          "at rank 4 and `a_only` at rank 8: `lora` is far ahead, and `a_only` beats `b_only` (paired "
          "difference {diff} ± {half}), as predicted (f(G, 8) = {fg} > f(Σ, 8) = {fs}).", _narrow_regime),
    Claim(README, "asymmetry_predictor",
          "the predicted sign agrees with the measured one in {agree} of the {resolved} points measured beyond "
          "2 s.e. of zero, and Spearman's rank correlation between predicted and measured advantage is {rho} "
          "(quick preset: n = {n}, {trials} training sets, {steps} Adam steps)", _predictor),
    Claim(README, "asymmetry_predictor",
          "has a predicted advantage of {pm} and a measured one of {mm} ± {ms} (2 s.e.)", _predictor),
    Claim(README, "asymmetry_predictor", "such as a 128-class ReLU classifier predicted at {bp} and measured at {bm}",
          _predictor),
    Claim(README, "similarity", "**Learned A clusters by task, not by init**, once Adam has moved it far from its "
          "init (figure 7); the paper's finding (A similar whenever the init is shared) appears only at a small "
          "step size.", _similarity),
    Claim(README, "bound_ratios", "the measured gaps separate `lora` from `b_only` by more than the √2 of the "
          "bounds — nearer the parameter-count ratio (figure 6).", _ratios),
    # README, "Figures"
    Claim(README, "asymmetry_gap", "`b_only` wins in every draw for low-rank and power-law Σ at d/r ≥ 8, in "
          "about half for isotropic Σ.", _gap_wins),
    Claim(README, "bounds_vs_n_linear", "no bound falls below its gap, but Lemma 4.5 is vacuous at small n and "
          "the CMI estimates that cannot be told from their estimator's floor (at the largest n) are drawn "
          "hollow and named as unresolved.", _bounds_linear),
    Claim(README, "rank_doubling", "in the paper's regime `b_only` at 2r beats `lora` at r; behind a narrow "
          "read-out `a_only` beats `b_only`", _both_regimes),
    # README, the full preset's numbers, against the full run committed beside the gallery
    Claim(README, "full/rank_doubling",
          "In the full preset (n = {n}, {trials} training sets, {steps} steps; `docs/gallery/full/rank_doubling.json`) "
          "`b_only` at rank {r2} beats `lora` at rank {r} by more: {b} against {l} (paired {diff} ± {half}; "
          "`a_only` {a}), as the paper reports on real tasks.", _full_paper_regime),
    Claim(README, "full/asymmetry_predictor",
          "in the full preset (n = {n}, {trials} training sets, {steps} steps; "
          "`docs/gallery/full/asymmetry_predictor.json`) it is {agree} of {resolved} and {rho}, with the same miss",
          _predictor),
    # docs/THEORY.md
    Claim(THEORY, "asymmetry_predictor",
          "the quick preset (`n = {n}`, {trials} training sets, {steps} Adam steps) gives the predicted sign in "
          "{agree} of the {resolved} points measured beyond 2 s.e. of zero and a Spearman correlation of {rho} "
          "between predicted and measured advantage; the one miss has a predicted advantage of {pm}.",
          _predictor),
    Claim(THEORY, "asymmetry_predictor", "(a 128-class ReLU classifier: predicted {bp}, measured {bm})", _predictor),
    Claim(THEORY, "rank_doubling",
          "`f(G, {r}) = {fg10} > f(Σ, {r}) = {fs}` and `a_only` wins beyond 2 s.e.; widening only the read-out to "
          "64 regression outputs gives `f(G, {r}) = {fgreg}` and `b_only` wins beyond 2 s.e.", _control),
    Claim(THEORY, "bounds_vs_n_linear",
          "the ld-CMI floor is {lo}–{hi} at n ≥ 64 ({lo16}–{hi16} at n = {n16}, where only {n16} points exist), "
          "and the ld-CMI at n = {nmax} reads {clo}–{chi}; only ld-CMI for `a_only` and the other CMI bounds "
          "for `b_only` and `a_only` stay unresolved at n = {nmax}.", _floors),
    # paper_figs.ipynb
    Claim(NOTEBOOK, "similarity", "Here B clusters by task at both step sizes; A clusters by its init only while "
          "it has moved little from it (the small step size).", _similarity),
    Claim(NOTEBOOK, "bound_ratios", "the measured gaps separate them by more than the square root of the "
          "parameter ratio", _ratios),
)
