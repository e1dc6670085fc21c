"""Argument checks of the MLP learners (``synthetic.mlp.learners``) and the MLP channel (``synthetic.channel``).

Each check returns the validated value or raises ``ValueError`` naming the argument and its value.
"""

from __future__ import annotations

import numpy as np

from synthetic.mlp.task import MAX_SCALE, MLPTask
from theory.validation import Array, as_array, check_magnitude


def check_mlp_data(task: MLPTask, x: object, y: object) -> tuple[Array, np.ndarray]:
    """Check training data given to an MLP learner; return ``x`` as float64 and ``y`` as labels or targets.

    ``x`` (T, n, d_0) finite floats and ``y`` (T, n) class labels in ``[0, d_L)`` (int64) or
    (T, n, d_L) finite regression targets, or ``ValueError`` naming the one that is not. Inputs and
    regression targets are limited to ``MAX_SCALE`` in magnitude, as ``MLPTask``'s scale fields are
    (the model is trained in float32). Infrastructure: the data of docs/THEORY.md §5, "Data"
    (labels are the target's argmax, regression targets its outputs plus noise), checked at the
    door (README, "Use it from Python": bad arguments raise ``ValueError`` naming the argument).

    Returns
    -------
    x : (T, n, d_0) float64; y : (T, n) int64 labels or (T, n, d_L) float64 targets.
    """
    try:
        x = as_array(x, "x", (None, None, task.widths[0]))
    except ValueError as exc:
        raise ValueError(f"x must be a finite array of shape (T, n, {task.widths[0]}): {exc}") from None
    check_magnitude(x, "x", MAX_SCALE, "training runs in float32; the inputs scale every activation")
    labels = as_array(y, "y")
    if task.kind == "regression":
        check_magnitude(labels, "y", MAX_SCALE, "training runs in float32; the squared loss grows with y²")
    want = x.shape[:2] if task.kind == "classification" else (*x.shape[:2], task.widths[-1])
    if labels.shape != want:
        raise ValueError(f"y must have shape {want} to match x for a {task.kind} task, got {labels.shape}")
    if task.kind == "regression":
        return x, labels
    classes = task.widths[-1]
    if np.asarray(y).dtype.kind == "b":
        raise ValueError("y must hold integer class labels, got booleans")
    fractional = labels[labels != np.round(labels)]
    if fractional.size:
        raise ValueError(f"y must hold integer class labels, got {fractional[0]:g}")
    low, high = float(labels.min()), float(labels.max())
    if low < 0 or high >= classes:
        raise ValueError(f"y must hold class labels 0 .. {classes - 1} of a classification task, "
                         f"got labels in [{low:g}, {high:g}]")
    return x, labels.astype(np.int64)


def check_order_rngs(order_rngs: object, trials: int) -> list[np.random.Generator] | None:
    """None, or a list or tuple of ``trials`` Generators (the minibatch orders, one per trial).

    Infrastructure: the minibatch order of each trial comes from a generator of its own
    (docs/THEORY.md §7.4: a trial's numbers do not depend on the others). Returns the list, or
    None (full-batch training or the learner's own streams); ``ValueError`` naming ``order_rngs``
    otherwise.
    """
    if order_rngs is None:
        return None
    if isinstance(order_rngs, (list, tuple)):
        if len(order_rngs) == trials and all(isinstance(g, np.random.Generator) for g in order_rngs):
            return list(order_rngs)
        kinds = ", ".join(sorted({type(g).__name__ for g in order_rngs}))
        got = f"a {type(order_rngs).__name__} of {len(order_rngs)} ({kinds})"
    else:
        got = type(order_rngs).__name__
    raise ValueError(f"order_rngs must be None or hold one numpy.random.Generator per trial ({trials}), got {got}")
