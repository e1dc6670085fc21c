r"""Lemma 4.5 against measured gaps of the quantized linear models (Zhu et al., Section 4.2).

For a loss clipped to ``[0, c]`` (``c/2``-sub-Gaussian) and trained parameters stored with
``q`` bits, ``|gen| <= sqrt(2 (c/2)² ln2 · H_bits / n)``. The quantized model also stores one
float32 scale per trained tensor, so ``H_bits = q N + 32 · tensors`` (``storage_bits``):
that is the bound the quantized model obeys; ``bounds.lora_mi_bound`` counts ``q N`` only.
"""

import math

import pytest

from bounds import lora_mi_bound, xu_raginsky
from synthetic.linear.engine import LinearTask, linear_trial_losses
from tests.tolerances import MC_SIGMAS

TASK = LinearTask(d_in=8, d_out=8, spectrum="powerlaw:1", delta_rank=4, delta_singular_values=1.5, noise_var=0.25, clip=4.0, n_test=4000)
RANK, N, Q_BITS, TRIALS = 2, 256, 4, 200


@pytest.mark.parametrize("variant", ["b_only", "a_only", "lora", "full"])
def test_measured_gap_of_the_quantized_clipped_loss_obeys_lemma_4_5(variant):
    """Lemma 4.5: |E[L_test − L_train]| <= sqrt(2 σ² ln2 H_bits / n), σ = c/2, for the quantized
    model (no statistically significant violation: mean − MC_SIGMAS·stderr stays below). The
    bound is below c here, so the comparison is not vacuous."""
    out = linear_trial_losses(TASK, variant, RANK, N, TRIALS, loss="clipped", q_bits=Q_BITS, seed=8)
    sigma = TASK.clip / 2
    bits = int(out["storage_bits"][0])
    bound = xu_raginsky(bits * math.log(2), sigma, N)
    papers = lora_mi_bound(variant, [(TASK.d_out, TASK.d_in)], RANK, Q_BITS, sigma, N)
    scale_term = 2 * sigma**2 * math.log(2) * (bits - Q_BITS * int(out["n_params"][0])) / N
    assert bound == pytest.approx(math.sqrt(papers**2 + scale_term), rel=1e-12)
    assert bound < TASK.clip
    gap = out["test_loss"] - out["train_loss"]
    stderr = gap.std(ddof=1) / math.sqrt(TRIALS)
    assert abs(gap.mean()) - MC_SIGMAS * stderr <= bound
