r"""From the foundation model's runs to the paper's four findings and the rule's scorecard.

Pure functions of the arrays that ``peft_bridge.foundation.variant_runs`` and ``rule_runs`` return
(docs/THEORY.md §8.3–§8.6):

- :func:`variant_table`: mean ± s.e. over seeds of each arm's test metric, in and out of
  distribution, and the paired differences behind findings 1, 2 and 4 of Zhu et al.,
  "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024);
- :func:`factor_similarity`: Figure 1's CCA similarity of the learned ``A`` and ``B`` of ``lora``
  across tasks and seeds, split by whether the two runs shared their init (finding 3);
- :func:`rule_points`: predicted ``f(Σ, r) − f(G, r)`` against the measured
  ``(L_a_only − L_b_only) / (L_pretrained − L_full)`` per module and task, with the two controls
  that replace the random-orientation shift by the shift ``full`` learned and by the negative
  gradient at ``W0`` (:func:`directional_fractions`).

A *score* is the task metric oriented so that higher is better (``−nats`` for language
modelling). Seeds pair runs: two variants at one seed saw the same minibatches, so differences are
taken seed by seed, and their standard error is ``std / √seeds``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from peft_bridge.foundation.tasks import KINDS, TASKS
from theory.expectations import loss_a_only_draws, loss_b_only_draws
from theory.linear import population_loss
from theory.random import haar_stiefel
from theory.similarity import cca_similarity
from theory.validation import Array, as_int

#: Comparisons of the tables: name -> (arm, arm); the first minus the second, in score.
COMPARISONS = {"b_only_vs_a_only": (("b_only", 1), ("a_only", 1)), "b_only_vs_lora": (("b_only", 1), ("lora", 1)),
               "b_only_2r_vs_lora": (("b_only", 2), ("lora", 1)), "a_only_2r_vs_lora": (("a_only", 2), ("lora", 1))}


def _mean_se(values: Array) -> tuple[float, float]:
    """Mean and standard error over the last axis (NaN-free input)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


def score_sign(task: str) -> float:
    """+1 where the task metric is higher-is-better, −1 otherwise (``KINDS``)."""
    return 1.0 if KINDS[TASKS[task][0]][2] else -1.0


def variant_table(arms: list[tuple[str, str, int]], rank: int, results: dict[str, dict[str, Array]]) -> dict:
    r"""Per task and arm, mean ± s.e. of the metric (``metric``, ``ood_metric``) and of the test loss;
    per task and comparison of ``COMPARISONS``, the paired score difference in and out of
    distribution, mean ± s.e. over seeds, and whether it is resolved (``|mean| > 2 s.e.``): on the
    first target set under the comparison's name, on a further set ``t`` (where its arms ran) as
    ``<name>_<t>``.

    Parameters
    ----------
    arms : (target set, variant, rank) of every row (``experiment.arms``); rank : ``r``.
    results : {task: ``variant_runs`` arrays}.

    Returns
    -------
    dict {task: {"arms": [...], "pretrained": {...}, "comparisons": {...}}}
    """
    out = {}
    for task, res in results.items():
        rows = []
        for i, (targets, variant, r) in enumerate(arms):
            row = {"targets": targets, "variant": variant, "rank": r}
            for key in ("metric", "ood_metric", "loss", "ood_loss"):
                vals = res[key][i]
                row[key], row[f"{key}_se"] = _mean_se(vals) if np.all(np.isfinite(vals)) else (None, None)
            rows.append(row)
        pre = res["pretrained"]
        comparisons = {}
        sign = score_sign(task)
        full = [i for i, a in enumerate(arms) if a[1] == "full"][0]
        for targets in dict.fromkeys(a[0] for a in arms):
            index = {(v, r): i for i, (t, v, r) in enumerate(arms) if t == targets}
            index[("full", 0)] = full
            for name, (one, other) in COMPARISONS.items():
                keys = [(arm[0], arm[1] * rank) for arm in (one, other)]
                if all(k in index for k in keys):
                    label = name if targets == arms[0][0] else f"{name}_{targets}"
                    comparisons[label] = _paired(res, index[keys[0]], index[keys[1]], sign)
        bayes = res.get("bayes", np.full(2, np.nan))
        out[task] = {"arms": rows, "comparisons": comparisons,
                     "pretrained": {"loss": float(pre[0]), "metric": float(pre[1]),
                                    "ood_loss": None if np.isnan(pre[2]) else float(pre[2]),
                                    "ood_metric": None if np.isnan(pre[3]) else float(pre[3])},
                     "bayes": {"metric": None if np.isnan(bayes[0]) else float(bayes[0]),
                               "ood_metric": None if np.isnan(bayes[1]) else float(bayes[1])}}
    return out


def _paired(res: dict[str, Array], i: int, j: int, sign: float) -> dict:
    """The paired score difference of rows ``i`` and ``j``, in and out of distribution."""
    entry = {}
    for key in ("metric", "ood_metric"):
        diff = sign * (res[key][i] - res[key][j])
        if np.all(np.isfinite(diff)):
            mean, se = _mean_se(diff)
            entry[key] = {"mean": mean, "se": se, "resolved": bool(abs(mean) > 2 * se)}
    return entry


def finding_counts(table: dict, comparison: str, key: str = "metric") -> dict:
    """Over tasks: how many resolve the comparison in favour of its first arm (``wins``), of its
    second (``losses``), or not at all (``ties``), and the tasks of each."""
    out = {"wins": [], "losses": [], "ties": []}
    for task, entry in table.items():
        c = entry["comparisons"][comparison].get(key)
        if c is None:
            continue
        out["ties" if not c["resolved"] else "wins" if c["mean"] > 0 else "losses"].append(task)
    return out


def factor_similarity(factors: dict[str, dict[str, Array]], modules: int) -> dict:
    r"""CCA similarity (``theory.cca_similarity``; docs/THEORY.md §3) of the ``lora`` factors of every
    pair of (task, seed) runs, averaged over modules; pairs grouped as *shared init, other task*
    (same seed), *other init, same task* and *other init, other task*.

    Parameters
    ----------
    factors : {task: ``variant_runs`` arrays} (their ``lora_A/<m>``, ``lora_B/<m>``).
    modules : number of modules ``m``.

    Returns
    -------
    dict: ``labels`` [(task, seed)], ``A`` and ``B`` (runs, runs) matrices, and per group the mean
    ± s.e. over pairs of each side.
    """
    labels, a_stack, b_stack = [], [], []
    for task, res in factors.items():
        seeds = res["lora_A/0"].shape[0]
        for s in range(seeds):
            labels.append((task, s))
            a_stack.append([res[f"lora_A/{m}"][s] for m in range(modules)])
            b_stack.append([res[f"lora_B/{m}"][s] for m in range(modules)])
    n = len(labels)
    sims = {"A": np.eye(n), "B": np.eye(n)}
    for i in range(n):
        for j in range(i + 1, n):
            for side, stack, cca_side in (("A", a_stack, "row"), ("B", b_stack, "col")):
                value = np.mean([cca_similarity(stack[i][m], stack[j][m], cca_side) for m in range(modules)])
                sims[side][i, j] = sims[side][j, i] = value
    groups = {"shared_init_other_task": lambda p, q: p[1] == q[1] and p[0] != q[0],
              "other_init_same_task": lambda p, q: p[1] != q[1] and p[0] == q[0],
              "other_init_other_task": lambda p, q: p[1] != q[1] and p[0] != q[0]}
    summary = {}
    for name, test in groups.items():
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if test(labels[i], labels[j])]
        summary[name] = {side: dict(zip(("mean", "se"), _mean_se([sims[side][i, j] for i, j in pairs])))
                         for side in ("A", "B")} if len(pairs) > 1 else None
    return {"labels": [list(x) for x in labels], "A": sims["A"].tolist(), "B": sims["B"].tolist(), "groups": summary}


def directional_fractions(delta: Array, sigma: Array, metric: Array, rank: int, *, draws: int,
                          rng: np.random.Generator) -> tuple[float, float]:
    r"""Fractions of the loss of one given shift ``Δ`` that ``b_only`` and ``a_only`` remove, on average
    over the frozen Haar factor (docs/THEORY.md §1b, eqs. (1G)–(5), with ``Δ`` fixed):

    .. math:: \phi_b = 1 - \frac{E_Q L_G(B^* Q^T)}{L_G(0)}, \qquad
              \phi_a = 1 - \frac{E_U L_G(U A^*)}{L_G(0)}, \qquad L_G(M) = \operatorname{Tr}[G (Δ − M) Σ (Δ − M)^T],

    ``Q`` Haar on ``St(d_in, r)``, ``U`` on ``St(d_out, r)`` (``theory.loss_b_only_draws``,
    ``loss_a_only_draws`` with the metric, no noise). For ``Δ`` of random orientation their
    expectations are ``f(Σ, r)`` and ``f(G, r)``; a learned shift need not be random.

    Parameters
    ----------
    delta : (d_out, d_in); sigma : (d_in, d_in); metric : (d_out, d_out); rank : int; draws : int;
    rng : Generator.

    Returns
    -------
    (phi_b, phi_a)
    """
    delta = np.asarray(delta, dtype=float)
    if delta.ndim != 2:
        raise ValueError(f"delta must be a (d_out, d_in) matrix, got shape {delta.shape}")
    d_out, d_in = delta.shape
    rank = as_int(rank, "rank", minimum=1, maximum=min(d_in, d_out))
    total = population_loss(delta, np.zeros_like(delta), sigma, 0.0, metric=metric)
    if total <= 0:
        raise ValueError("the shift's loss Tr[G Δ Σ Δᵀ] is zero: the fractions of it are undefined")
    q = haar_stiefel(d_in, rank, rng, draws=draws)
    u = haar_stiefel(d_out, rank, rng, draws=draws)
    b = loss_b_only_draws(delta, sigma, q, 0.0, metric=metric).mean()
    a = loss_a_only_draws(delta, sigma, u, 0.0, metric=metric).mean()
    return float(1 - b / total), float(1 - a / total)


def rule_points(tasks: list[str], modules: list[str], rank: int, rule: dict[str, dict[str, Array]],
                tables: dict[str, dict[str, Array]], full_row: int, *, draws: int, seed: int) -> dict:
    r"""The rule against the measurement, one point per (task, module), with both controls.

    Measured advantage: ``(L_a_only − L_b_only) / (L_pretrained − L_full)`` of the test losses of
    the training objective, ``L_full`` the mean over ``full``'s seeds; its s.e. from the per-seed
    paired differences. Predicted: ``f(Σ, r) − f(G, r)``. Controls: ``φ_b − φ_a``
    (:func:`directional_fractions`) for ``Δ`` the shift ``full`` learned in that module (mean over
    seeds) and for ``Δ = −∇_W L`` at ``W0``.

    Returns
    -------
    dict: ``points`` (one record each) and, for ``rule``, ``full_shift``, ``gradient``, the sign
    agreement among the resolved points and Spearman's correlation with the measurement.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(9,)))
    points = []
    for task in tasks:
        res, tab = rule[task], tables[task]
        l0, lfull = float(tab["pretrained"][0]), float(np.mean(tab["loss"][full_row]))
        scale = l0 - lfull
        for k, module in enumerate(modules):
            diff = (res["loss"][k, 1] - res["loss"][k, 0]) / scale
            mean, se = _mean_se(diff)
            sigma, metric = res[f"sigma/{k}"], res[f"metric/{k}"]
            shift = tab[f"delta/{k}"].mean(axis=0)
            controls = {name: directional_fractions(d, sigma, metric, rank, draws=draws, rng=rng)
                        for name, d in (("full_shift", shift), ("gradient", -res[f"gradient/{k}"]))}
            points.append({
                "task": task, "module": module, "l_pretrained": l0, "l_full": lfull,
                "l_b_only": float(res["loss"][k, 0].mean()), "l_a_only": float(res["loss"][k, 1].mean()),
                "measured": mean, "measured_se": se, "resolved": bool(abs(mean) > 2 * se and scale > 0),
                "f_sigma": float(res["b_only_fraction"][k]), "f_metric": float(res["a_only_fraction"][k]),
                "rule": float(res["b_only_fraction"][k] - res["a_only_fraction"][k]),
                "rule_se": float(np.hypot(res["b_only_stderr"][k], res["a_only_stderr"][k])),
                **{name: phi_b - phi_a for name, (phi_b, phi_a) in controls.items()},
                **{f"{name}_fractions": [phi_b, phi_a] for name, (phi_b, phi_a) in controls.items()},
            })
    return {"points": points, **{name: agreement(points, name) for name in ("rule", "full_shift", "gradient")}}


def agreement(points: list[dict], key: str) -> dict:
    """Sign agreement of ``key`` with the measured advantage among the resolved points, the misses
    (indices), and Spearman's rank correlation over all points (NaN below three)."""
    resolved = [i for i, p in enumerate(points) if p["resolved"]]
    agree = [i for i in resolved if np.sign(points[i][key]) == np.sign(points[i]["measured"])]
    pred = [p[key] for p in points]
    meas = [p["measured"] for p in points]
    rho = float(spearmanr(pred, meas).statistic) if len(points) >= 3 else float("nan")
    return {"agree": len(agree), "resolved": len(resolved), "total": len(points),
            "misses": [i for i in resolved if i not in agree], "spearman": rho}
