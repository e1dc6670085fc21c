r"""The supersample experiment of the conditional-MI bounds: what the linear and MLP learners share.

Steinke & Zakynthinou ("Reasoning about generalization via conditional mutual information",
COLT 2020) draw a supersample ``Z~`` of ``n x 2`` i.i.d. points and fair selector bits
``U in {0, 1}^n``; the learner trains on ``Z~_{i, U_i}`` and the unselected points are fresh test
points. ``synthetic.linear.linear_supersample`` and ``synthetic.mlp.mlp_supersample`` run all
``k_z k_u`` trainings of the experiment as one batch and record the loss pairs
``L~_i = (l(W, Z~_{i,0}), l(W, Z~_{i,1}))`` with the selectors, which the CMI bounds of
``bounds.cmi`` take (docs/THEORY.md §2.4).

Evaluated points. The CMI bounds and the supersample gap are averages over the points ``i`` of
per-point terms (``(1/n) sum_i sqrt(2 I(Delta L_i; U_i))``, ``(1/n) sum_i E[(-1)^{U_i} Delta L_i]``).
With i.i.d. data, fair i.i.d. selectors and a learner that is invariant to the order of its
training samples (both least squares and full-batch Adam are), every point's pair
``(L~_i, U_i)`` has the same law, so the average over the first ``eval_points`` points has the
same expectation as the average over all ``n``. Evaluating fewer points costs nothing in
validity, only precision, and makes the plug-in MI estimates (one per point, each from all
``k_z k_u`` runs) affordable at large ``n``.
"""

from __future__ import annotations

import numpy as np

from bounds.supersample import Supersample  # noqa: F401 - the record every supersample learner returns
from synthetic.learner_checks import check_levels
from theory.validation import Array, as_array, as_real


def discretize(loss: Array, clip: float, levels: int) -> Array:  # (...) -> (...)
    r"""A loss in ``[0, c]`` mapped to ``[0, 1]`` and rounded *up* to the grid ``{0, 1/L, ..., 1}``.

    ``ceil(L · loss / c) / L``: at most ``L + 1`` distinct values, as the plug-in MI of the CMI
    bounds needs (``bounds.supersample.MAX_LOSS_LEVELS``). A CMI bound on this loss is compared
    with the gap of this same discretized loss, never with the gap of the raw loss.

    Parameters
    ----------
    loss : array of any shape (at least one axis), finite, every entry in ``[0, clip]``
        (``_clipped_sample_losses``).
    clip : float ``> 0``, the level ``c`` at which the loss was clipped.
    levels : int in ``[1, 31]``, the ``L`` of the grid.

    Returns
    -------
    ndarray, the shape of ``loss``, float64 values on the grid.
    """
    levels = check_levels(levels)
    clip = as_real(clip, "clip", positive=True)
    loss = as_array(loss, "loss")
    low, high = float(loss.min()), float(loss.max())
    if low < 0 or high > clip:
        raise ValueError(f"loss must lie in [0, clip] = [0, {clip}], got values in [{low:g}, {high:g}]")
    return np.ceil(levels * loss / clip) / levels
