"""Argument checks shared by the bound learners (``synthetic.linear.learners``, ``synthetic.mlp.learners``)
and the channel (``synthetic.channel``); those that know the MLP live in ``synthetic.mlp.checks``.

Each check returns the validated value or raises ``ValueError`` naming the argument and its value
(``theory.validation`` holds the general ones; these know the learners' conventions).
"""

from __future__ import annotations

from theory.validation import as_int

#: Most levels of a discretized loss: ``levels + 1`` values must fit ``bounds.supersample.MAX_LOSS_LEVELS``.
MAX_LEVELS = 31


def check_eval_points(eval_points: object, n: int) -> int:
    """Evaluated pairs ``m`` in ``[1, n]``; None means all ``n``."""
    if eval_points is None:
        return n
    m = as_int(eval_points, "eval_points", minimum=1)
    if m > n:
        raise ValueError(f"eval_points {m} exceeds n = {n}")
    return m


def check_levels(levels: object) -> int:
    """Levels ``L`` of a discretized loss, in ``[1, MAX_LEVELS]``."""
    levels = as_int(levels, "levels", minimum=1)
    if levels > MAX_LEVELS:
        raise ValueError(f"levels must be <= {MAX_LEVELS} (levels + 1 loss values), got {levels}")
    return levels
