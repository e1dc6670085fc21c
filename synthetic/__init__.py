"""Monte Carlo experiments that measure the A/B asymmetry and generalization gaps."""

from synthetic.channel import adapted_shift_rms, perturbed_trial_losses
from synthetic.linear.fit import fit_a_only, fit_b_only, fit_full, fit_lora, frozen_factor
from synthetic.linear.gd import GDConfig, gd_fit, gd_vs_closed_form
from synthetic.linear.learners import linear_supersample
from synthetic.mlp.learners import mlp_fit, mlp_supersample
from synthetic.supersample import discretize
from synthetic.supersample import Supersample, SupersampleConfig, run_supersample
from synthetic.linear.task import LinearTask
from synthetic.linear.engine import (
    clipped_test_losses,
    frozen_factors,
    linear_trial_losses,
    population_losses,
    sample_training_sets,
)
from synthetic.linear.lstsq import lstsq_batched
from synthetic.mlp.engine import mlp_trial_losses
from synthetic.mlp.task import MLPTask
from synthetic.mlp.advantage import AdvantageMeasurement, measure_advantage
from synthetic.mlp.geometry import AsymmetryPrediction, layer_geometry, predict_asymmetry
from synthetic.montecarlo import GapResult, GapSummary, mean_interval, measure_gap, summarize
from synthetic.quantize import Quantized, quantize
from synthetic.mlp.similarity import similarity_grid

__all__ = [
    "AdvantageMeasurement",
    "AsymmetryPrediction",
    "GDConfig",
    "GapResult",
    "GapSummary",
    "LinearTask",
    "MLPTask",
    "Quantized",
    "Supersample",
    "SupersampleConfig",
    "adapted_shift_rms",
    "clipped_test_losses",
    "discretize",
    "fit_a_only",
    "fit_b_only",
    "fit_full",
    "fit_lora",
    "frozen_factor",
    "frozen_factors",
    "gd_fit",
    "gd_vs_closed_form",
    "layer_geometry",
    "linear_supersample",
    "linear_trial_losses",
    "lstsq_batched",
    "mean_interval",
    "measure_advantage",
    "measure_gap",
    "mlp_fit",
    "mlp_supersample",
    "mlp_trial_losses",
    "perturbed_trial_losses",
    "population_losses",
    "predict_asymmetry",
    "quantize",
    "run_supersample",
    "sample_training_sets",
    "similarity_grid",
    "summarize",
]
