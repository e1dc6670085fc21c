"""Information-theoretic generalization bounds for every LoRA tuning variant."""
