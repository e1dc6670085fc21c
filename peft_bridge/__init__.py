"""PEFT's LoRA adapters in the toolkit's terms: freeze a factor as the paper does, read saved
adapters, compare them (Figure 1), and predict the asymmetry of each adapted module (docs/THEORY.md
§1b). Needs the ``[peft]`` extra (peft, transformers, safetensors) for models and saved adapters."""

from peft_bridge.adapters import adapter_similarity, load_adapter
from peft_bridge.geometry import LOSSES, layer_geometry, predict_asymmetry
from peft_bridge.layers import FROZEN_VARIANT, INITS, freeze_factor, layer_shapes, lora_modules, trainable_lora_params

__all__ = [
    "FROZEN_VARIANT",
    "INITS",
    "LOSSES",
    "adapter_similarity",
    "freeze_factor",
    "layer_geometry",
    "layer_shapes",
    "load_adapter",
    "lora_modules",
    "predict_asymmetry",
    "trainable_lora_params",
]
