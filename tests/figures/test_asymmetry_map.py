"""Figure 3's random-orientation row: measured against f(Σ, r) − r/d_out, its sign, its caption count."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from figures import asymmetry_map
from tests.tolerances import MC_SIGMAS

#: Small enough for a second, large enough that MC_SIGMAS standard errors are a sharp test.
SMALL = asymmetry_map.Config(
    d=12, rank=3, delta_rank=2, alphas=(1.0, 2.0), alignments=(1.0,), draws=8, delta_draws=512,
    fraction_draws=20_000,
)
#: The tiny preset with two more decays, for the sign of the row.
TINY_ROW = replace(asymmetry_map.Config.tiny(), alphas=(0.0, 0.5, 1.0, 2.0), delta_draws=256)


@pytest.mark.parametrize("alpha", SMALL.alphas)
def test_random_orientation_gap_matches_captured_fraction(alpha):
    """For Δ = UVᵀ of random orientation, E[L_a − L_b] / E[Tr ΔΣΔᵀ] = f(Σ, r) − r/d_out.

    docs/THEORY.md §1b, eq. (5) with G = I (Theorem 4.3's setting of Zhu et al., ICML 2024).

    The measured ratio of means (Monte Carlo over Δ and Haar A, losses from theory.expected_loss_*)
    and eq. (5) (theory.captured_fraction, an independent stream) agree within MC_SIGMAS combined
    standard errors, and that band is narrower than a fifth of the value it checks.
    """
    out = asymmetry_map.random_orientation_column(SMALL, alpha, seed=0)
    band = MC_SIGMAS * np.hypot(out["gap_se"], out["predicted_se"])
    assert out["gap_se"] > 0 and band < 0.2 * out["predicted"]
    assert abs(out["gap"] - out["predicted"]) <= band


def test_random_orientation_row_favours_b_only_except_isotropic():
    """Theorem 4.3's setting: b_only wins (gap > 2 s.e.) at every α > 0; at α = 0 (square layer) the gap is 0.

    At α = 0 the prediction is exactly 0 (f(I, r) = r/d) and the measured gap lies within MC_SIGMAS
    standard errors of it, with an interval narrower than the smallest α > 0 gap.
    """
    data = asymmetry_map.compute(TINY_ROW, seed=0, cache_dir=None)
    gap, se, alphas = data["random_gap"], data["random_gap_se"], data["alphas"]
    assert np.all(gap[alphas > 0] > 2 * se[alphas > 0]), (gap, se)
    assert data["predicted_gap"][alphas == 0] == 0.0
    assert abs(gap[alphas == 0][0]) <= MC_SIGMAS * se[alphas == 0][0]
    assert MC_SIGMAS * se[alphas == 0][0] < gap[alphas > 0].min()


def test_caption_counts_random_row_apart_from_alignment_cells(tmp_path):
    """The caption counts b_only's random-orientation wins apart from its alignment-cell losses.

    Hand-made data: 2 of 3 random-orientation columns are wins and one is a significant loss; 3 of 9
    alignment cells are losses. Pooling the row with the grid would give 4 of 12. The tiny figure's
    JSON records the row and its prediction per α.
    """
    config = replace(asymmetry_map.Config.tiny(), alphas=(0.0, 1.0, 2.0), alignments=(0.0, 0.5, 1.0))
    data = {
        "alphas": np.array(config.alphas), "alignments": np.array(config.alignments),
        "gap": np.array([[-0.5] * 3, [0.0] * 3, [0.2] * 3]), "gap_se": np.full((3, 3), 0.01),
        "random_gap": np.array([-0.3, 0.3, 0.5]), "random_gap_se": np.full(3, 0.01),
        "predicted_gap": np.array([0.0, 0.3, 0.5]), "predicted_gap_se": np.zeros(3),
    }
    text = asymmetry_map.caption(config, data)
    assert re.search(r"for Δ of random orientation .*b_only wins \(gap > 2 s\.e\.\) in 2 of 3 columns", text)
    assert re.search(r"for Δ placed by alignment .*b_only loses \(gap < −2 s\.e\.\) in 3 of 9 cells", text)

    made = json.loads(asymmetry_map.make(tmp_path, config=asymmetry_map.Config.tiny())["json"].read_text())
    n_alphas = len(asymmetry_map.Config.tiny().alphas)
    for key in ("random_gap", "random_gap_se", "predicted_gap", "predicted_gap_se"):
        assert len(made["data"][key]) == n_alphas
    assert f"of {n_alphas} columns" in made["caption"] and f"of {2 * n_alphas} cells" in made["caption"]
