"""Closed forms of Section 4.1 of Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models"."""

from theory.captured import captured_fraction, effective_rank
from theory.expectations import (
    asymmetry_gap,
    expected_loss_a_only,
    expected_loss_a_only_mc,
    expected_loss_b_only,
    loss_a_only_draws,
    loss_b_only_draws,
)
from theory.linear import loss_a_only, loss_b_only, loss_full, loss_lora, population_loss, sqrtm_psd
from theory.optima import best_rank_update, optimal_a, optimal_b
from theory.random import haar_stiefel
from theory.similarity import cca_similarity

__all__ = [
    "asymmetry_gap",
    "best_rank_update",
    "captured_fraction",
    "cca_similarity",
    "effective_rank",
    "expected_loss_a_only",
    "expected_loss_a_only_mc",
    "expected_loss_b_only",
    "haar_stiefel",
    "loss_a_only",
    "loss_a_only_draws",
    "loss_b_only",
    "loss_b_only_draws",
    "loss_full",
    "loss_lora",
    "optimal_a",
    "optimal_b",
    "population_loss",
    "sqrtm_psd",
]
