r"""The supersample experiment of the conditional-MI bounds: its record, a runner for any learner,
and what the linear and MLP learners share.

Steinke & Zakynthinou ("Reasoning about generalization via conditional mutual information",
COLT 2020) draw a supersample ``Z~`` of ``n x 2`` i.i.d. points and fair selector bits
``U in {0, 1}^n``; the learner trains on ``Z~_{i, U_i}`` and the unselected points are fresh test
points. :func:`run_supersample` runs the experiment for any learner, one training at a time;
``synthetic.linear.linear_supersample`` and ``synthetic.mlp.mlp_supersample`` run all
``k_z k_u`` trainings as one batch. Each records the loss pairs
``L~_i = (l(W, Z~_{i,0}), l(W, Z~_{i,1}))`` with the selectors in a :class:`Supersample`, whose
two arrays are the input of the CMI bounds of ``bounds.cmi`` and of the measured gap
``bounds.supersample_gap`` (docs/THEORY.md §2.4), e.g.
``bounds.ld_cmi_bound(ss.losses, ss.selectors, rng)``. This module does not import ``bounds``.

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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthetic.learner_checks import check_levels
from theory.supersample import MAX_LOSS_LEVELS, Supersample  # noqa: F401 - the record this module's runners return
from theory.validation import Array, as_array, as_generator, as_int, as_real



def discretize(loss: Array, clip: float, levels: int) -> Array:  # (...) -> (...)
    r"""A loss in ``[0, c]`` mapped to ``[0, 1]`` and rounded *up* to the grid ``{0, 1/L, ..., 1}``.

    ``ceil(L · loss / c) / L``: at most ``L + 1`` distinct values, as the plug-in MI of the CMI
    bounds needs (:data:`MAX_LOSS_LEVELS`). A CMI bound on this loss is compared
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


@dataclass(frozen=True)
class SupersampleConfig:
    """Sizes of a supersample experiment (Steinke & Zakynthinou, COLT 2020; docs/THEORY.md §2.4).

    Attributes
    ----------
    n : int
        Training-set size (the supersample has ``2n`` points), ``>= 1``.
    k_z : int
        Independent supersamples, ``>= 2`` (the bootstrap resamples them).
    k_u : int
        Independent selectors, each with its own training run, per supersample, ``>= 1``.
    """

    n: int
    k_z: int
    k_u: int

    def __post_init__(self) -> None:
        as_int(self.n, "n", minimum=1)
        as_int(self.k_z, "k_z", minimum=2)
        as_int(self.k_u, "k_u", minimum=1)

    @classmethod
    def quick(cls, n: int = 20) -> SupersampleConfig:
        """300 training runs: enough for a CMI estimate of a cheap learner in seconds."""
        return cls(n=n, k_z=75, k_u=4)

    @classmethod
    def full(cls, n: int = 100) -> SupersampleConfig:
        """4000 training runs."""
        return cls(n=n, k_z=1000, k_u=4)

    @property
    def draws(self) -> int:
        """Number of training runs, ``k_z * k_u``."""
        return self.k_z * self.k_u


def run_supersample(
    train: Callable[[Any, np.random.Generator], Any],
    loss: Callable[[Any, Any], np.ndarray],
    sample: Callable[[np.random.Generator, int], Any],
    config: SupersampleConfig,
    rng: np.random.Generator,
) -> Supersample:
    r"""Run the supersample experiment (Steinke & Zakynthinou, COLT 2020) for any learner.

    For each of ``k_z`` supersamples, ``sample(rng, 2n)`` draws ``2n`` i.i.d. points;
    ``Z~_{i, j}`` is point ``2i + j``. For each of ``k_u`` fair selectors ``U`` (``rng.integers(0, 2,
    size=n)``), the learner is trained on the ``n`` points ``Z~_{i, U_i}`` and evaluated on all ``2n``
    (docs/THEORY.md §2.4).

    Parameters
    ----------
    train : callable ``(z_train, rng) -> model``
        The learning algorithm; ``z_train`` holds the ``n`` selected points along axis 0. Its
        randomness must come from ``rng``.
    loss : callable ``(model, z) -> ndarray``
        Loss of ``model`` on each of ``len(z)`` points, values in ``[0, 1]``, few distinct
        values (at most ``MAX_LOSS_LEVELS`` over the whole experiment).
    sample : callable ``(rng, size) -> z``
        ``size`` i.i.d. points from the data distribution, stacked along axis 0 (a NumPy
        array, e.g. ``(size, d + 1)`` for inputs with a label).
    config : SupersampleConfig
    rng : numpy.random.Generator

    Returns
    -------
    Supersample
    """
    if not isinstance(config, SupersampleConfig):
        raise ValueError(f"config must be a SupersampleConfig, got {config!r}")
    for name, fn in (("train", train), ("loss", loss), ("sample", sample)):
        if not callable(fn):
            raise ValueError(f"{name} must be callable, got {fn!r}")
    rng = as_generator(rng)
    n = config.n
    losses = np.empty((config.k_z, config.k_u, n, 2))
    selectors = np.empty((config.k_z, config.k_u, n), dtype=np.int64)
    for kz in range(config.k_z):
        points = np.asarray(sample(rng, 2 * n))
        if points.ndim == 0 or points.shape[0] != 2 * n:
            raise ValueError(f"sample(rng, {2 * n}) must return {2 * n} points along axis 0, got shape {points.shape}")
        for ku in range(config.k_u):
            u = rng.integers(0, 2, size=n)
            model = train(points[2 * np.arange(n) + u], rng)
            values = np.asarray(loss(model, points), dtype=np.float64)
            if values.shape != (2 * n,):
                raise ValueError(f"loss(model, z) must return shape ({2 * n},) for {2 * n} points, got {values.shape}")
            losses[kz, ku] = values.reshape(n, 2)
            selectors[kz, ku] = u
    return Supersample(losses=losses, selectors=selectors)
