"""Monte Carlo experiments that measure the A/B asymmetry and generalization gaps."""
