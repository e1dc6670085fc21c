"""Information-theoretic generalization bounds for every LoRA tuning variant."""

from bounds.cmi import binary_kl_bound, ecmi_bound, fast_rate_bound, interpolation_bound, ld_cmi_bound
from bounds.cmi_risk import binary_kl_risk, fast_rate_risk
from bounds.coding import code_length_bits, occam_bound
from bounds.discrete_mi import discrete_mi
from bounds.gaussian_channel import EstimateMayBeLowWarning, gaussian_channel_mi
from bounds.kl import binary_kl, kl_inverse
from bounds.mi import individual_sample_bound, lora_mi_bound, lora_mi_nats, subgaussian_sigma, xu_raginsky
from bounds.params import VARIANTS, trainable_params, trained_tensors
from bounds.results import BoundResult, Estimate, HighProbabilityBound
from bounds.supersample import redraw_selectors, supersample_gap

__all__ = [
    "VARIANTS",
    "BoundResult",
    "EstimateMayBeLowWarning",
    "Estimate",
    "HighProbabilityBound",
    "binary_kl",
    "binary_kl_bound",
    "binary_kl_risk",
    "code_length_bits",
    "discrete_mi",
    "ecmi_bound",
    "fast_rate_bound",
    "fast_rate_risk",
    "gaussian_channel_mi",
    "individual_sample_bound",
    "interpolation_bound",
    "kl_inverse",
    "ld_cmi_bound",
    "lora_mi_bound",
    "lora_mi_nats",
    "occam_bound",
    "redraw_selectors",
    "subgaussian_sigma",
    "supersample_gap",
    "trainable_params",
    "trained_tensors",
    "xu_raginsky",
]
