"""Argument checks shared by the bound learners (``synthetic.linear.learners``, ``synthetic.mlp.learners``)
and the channel (``synthetic.channel``); those that know the MLP live in ``synthetic.mlp.checks``.

Each check returns the validated value or raises ``ValueError`` naming the argument and its value
(``theory.validation`` holds the general ones; these know the learners' conventions).
"""

from __future__ import annotations

from theory.validation import as_int

#: Most levels of a discretized loss: ``levels + 1`` values must fit ``theory.supersample.MAX_LOSS_LEVELS`` (the plug-in MI of the CMI bounds).
MAX_LEVELS = 31


def check_eval_points(eval_points: object, n: int) -> int:
    """The number ``m`` of supersample points whose loss pairs are evaluated, in ``[1, n]``.

    Evaluating only the first ``m`` of ``n`` points is valid because, for i.i.d. data and a
    learner invariant to the order of its samples, every point's ``(L~_i, U_i)`` has the same law
    (docs/THEORY.md §2.6, "Discrete MI"; the supersample of Steinke & Zakynthinou, COLT 2020).

    Parameters
    ----------
    eval_points : int or None
        Requested number of evaluated points; None means all ``n``.
    n : int
        Training-set size (points per supersample).

    Returns
    -------
    int
        ``m``; a ``ValueError`` naming ``eval_points`` if it is below 1 or above ``n``.
    """
    if eval_points is None:
        return n
    m = as_int(eval_points, "eval_points", minimum=1)
    if m > n:
        raise ValueError(f"eval_points {m} exceeds n = {n}")
    return m


def check_levels(levels: object) -> int:
    """The number of levels ``L`` of a discretized loss, in ``[1, MAX_LEVELS]``.

    A clipped loss is mapped to ``ceil(L * l / c) / L`` (docs/THEORY.md §2.4), which takes the
    ``L + 1`` values ``0, 1/L, ..., 1``; the CMI estimators accept at most
    ``theory.supersample.MAX_LOSS_LEVELS`` = 32 values, hence ``L <= 31``.

    Returns
    -------
    int
        ``L``; a ``ValueError`` naming ``levels`` if it is not an integer in ``[1, 31]``.
    """
    levels = as_int(levels, "levels", minimum=1)
    if levels > MAX_LEVELS:
        raise ValueError(f"levels must be <= {MAX_LEVELS} (levels + 1 loss values), got {levels}")
    return levels
