"""The analyses behind the foundation figures: directional fractions, tables, similarity, scorecards."""

from __future__ import annotations

import numpy as np
import pytest

from peft_bridge.foundation import agreement, directional_fractions, factor_similarity, variant_table
from theory import captured_fraction

#: Monte Carlo slack (standard errors) of the statistical checks.
Z = 4.0


def _psd(d: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.arange(1, d + 1) ** -decay) @ q.T


def test_directional_fractions_average_to_f_over_random_shifts():
    """docs/THEORY.md §1b, eq. (5): for Δ of random orientation, E_Δ[φ_b] = f(Σ, r) and E_Δ[φ_a] = f(G, r)
    (ratio of expectations: the shift's loss Tr[GΔΣΔᵀ] is weighted, so average numerator and denominator)."""
    rng = np.random.default_rng(0)
    d_out, d_in, r = 6, 8, 2
    sigma, metric = _psd(d_in, 1.5, rng), _psd(d_out, 0.7, rng)
    removed_b, removed_a, totals = [], [], []
    for _ in range(400):
        delta = rng.standard_normal((d_out, d_in))
        total = np.trace(metric @ delta @ sigma @ delta.T)
        phi_b, phi_a = directional_fractions(delta, sigma, metric, r, draws=16, rng=rng)
        removed_b.append(phi_b * total)
        removed_a.append(phi_a * total)
        totals.append(total)
    f_sigma, se_s = captured_fraction(sigma, r, draws=4000, rng=rng)
    f_metric, se_m = captured_fraction(metric, r, draws=4000, rng=rng)
    est_b, est_a = np.mean(removed_b) / np.mean(totals), np.mean(removed_a) / np.mean(totals)
    spread = np.std(np.array(removed_b) / np.mean(totals)) / np.sqrt(400)
    assert est_b == pytest.approx(f_sigma, abs=Z * (spread + se_s))
    spread = np.std(np.array(removed_a) / np.mean(totals)) / np.sqrt(400)
    assert est_a == pytest.approx(f_metric, abs=Z * (spread + se_m))


def test_isotropic_geometry_gives_r_over_d_for_any_shift():
    """With Σ = I and G = I the Haar average of a projector is (r/d) I, so φ_b = r/d_in and φ_a = r/d_out
    for every Δ, random or not."""
    rng = np.random.default_rng(1)
    delta = np.outer(np.arange(1.0, 6.0), np.ones(7))  # rank one, far from random
    phi_b, phi_a = directional_fractions(delta, np.eye(7), np.eye(5), 2, draws=20000, rng=rng)
    assert phi_b == pytest.approx(2 / 7, abs=0.01)
    assert phi_a == pytest.approx(2 / 5, abs=0.01)


def test_shift_inside_the_frozen_span_is_removed_whole():
    """A shift whose rows lie in a rank-r Σ's range is removed entirely by b_only (f = 1 when rank Σ <= r)."""
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.standard_normal((6, 2)))[0]
    sigma = basis @ basis.T
    delta = rng.standard_normal((4, 6))
    phi_b, _ = directional_fractions(delta, sigma, np.eye(4), 2, draws=64, rng=rng)
    assert phi_b == pytest.approx(1.0, abs=1e-9)


def test_variant_table_pairs_seeds():
    """Comparisons are taken seed by seed: a constant offset between two arms has zero standard error."""
    arms = [("qv", "full", 0), ("qv", "lora", 2), ("qv", "b_only", 2), ("qv", "b_only", 4), ("qv", "a_only", 2),
            ("qv", "a_only", 4)]
    base = np.array([0.5, 0.7, 0.6])
    metric = np.stack([base + k * 0.01 for k in range(6)])
    res = {"metric": metric, "ood_metric": np.full((6, 3), np.nan), "loss": metric, "ood_loss": metric,
           "pretrained": np.array([1.0, 0.4, np.nan, np.nan])}
    table = variant_table(arms, 2, {"polarity": res})["polarity"]
    c = table["comparisons"]["b_only_vs_a_only"]["metric"]
    assert c["mean"] == pytest.approx(-0.02) and c["se"] == pytest.approx(0.0, abs=1e-12) and c["resolved"]
    assert "ood_metric" not in table["comparisons"]["b_only_vs_a_only"]
    lm = variant_table(arms, 2, {"new_domain_lm": res})["new_domain_lm"]  # nats: lower is better
    assert lm["comparisons"]["b_only_vs_a_only"]["metric"]["mean"] == pytest.approx(0.02)


def test_factor_similarity_of_identical_and_orthogonal_factors():
    """Shared factors have similarity 1; factors on orthogonal subspaces 0 (docs/THEORY.md §3)."""
    e = np.eye(4)
    res = {"t1": {"lora_A/0": np.stack([e[:2], e[2:]]), "lora_B/0": np.stack([e[:, :2], e[:, :2]])},
           "t2": {"lora_A/0": np.stack([e[:2], e[2:]]), "lora_B/0": np.stack([e[:, 2:], e[:, 2:]])}}
    sim = factor_similarity(res, 1)
    groups = sim["groups"]
    assert groups["shared_init_other_task"]["A"]["mean"] == pytest.approx(1.0)
    assert groups["other_init_same_task"]["A"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert groups["other_init_same_task"]["B"]["mean"] == pytest.approx(1.0)
    assert groups["shared_init_other_task"]["B"]["mean"] == pytest.approx(0.0, abs=1e-12)


def test_agreement_counts_only_resolved_points():
    """Sign agreement is over the points measured beyond 2 s.e.; a miss is listed by index."""
    points = [{"rule": 0.1, "measured": 0.2, "resolved": True}, {"rule": 0.1, "measured": -0.2, "resolved": True},
              {"rule": -0.1, "measured": 0.05, "resolved": False}]
    out = agreement(points, "rule")
    assert (out["agree"], out["resolved"], out["total"], out["misses"]) == (1, 2, 3, [1])


@pytest.mark.parametrize(("delta", "rank", "match"), [(np.ones(3), 1, "delta"), (np.ones((3, 4)), 4, "rank"),
                                                       (np.zeros((3, 4)), 1, "zero")])
def test_directional_fractions_refuse_bad_input(delta, rank, match):
    """A shift that is not a matrix, a rank above min(d_in, d_out), or a shift of zero loss is a ValueError."""
    d_out, d_in = (3, 4)
    with pytest.raises(ValueError, match=match):
        directional_fractions(delta, np.eye(d_in), np.eye(d_out), rank, draws=4, rng=np.random.default_rng(0))
