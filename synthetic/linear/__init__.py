"""The linear task of Section 4.1: ``y = (W0 + Δ) x + ε``, tuned by exact least-squares fits.

- ``task``: ``LinearTask``, the data distribution (input spectrum, shift ``Δ``, noise);
- ``fit``, ``lstsq``: the exact solution of each tuning variant on a batch of training sets;
- ``suffstats``: the same from sufficient statistics, when ``n`` is large;
- ``engine``: Monte Carlo over training sets (``linear_trial_losses``, ``population_losses``);
- ``gd``: gradient descent from LoRA's start, beside the closed form;
- ``learners``: the supersample experiment of the CMI bounds.

docs/THEORY.md §1 (the closed forms these fits reach), §7 (the finite-sample fits, the
sufficient-statistics sampler and the Monte Carlo gaps) and §2 (the bounds the gaps are compared with).
"""

from synthetic.linear.engine import (
    clipped_test_losses,
    frozen_factors,
    linear_trial_losses,
    population_losses,
    sample_training_sets,
)
from synthetic.linear.fit import fit_a_only, fit_b_only, fit_full, fit_lora, frozen_factor
from synthetic.linear.gd import GDConfig, gd_fit, gd_vs_closed_form
from synthetic.linear.learners import linear_supersample
from synthetic.linear.lstsq import lstsq_batched
from synthetic.linear.task import LinearTask

__all__ = [
    "GDConfig",
    "LinearTask",
    "clipped_test_losses",
    "fit_a_only",
    "fit_b_only",
    "fit_full",
    "fit_lora",
    "frozen_factor",
    "frozen_factors",
    "gd_fit",
    "gd_vs_closed_form",
    "linear_supersample",
    "linear_trial_losses",
    "lstsq_batched",
    "population_losses",
    "sample_training_sets",
]
