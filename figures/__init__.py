"""Every theory figure, one module each, and the ``lora-asym`` command line."""
