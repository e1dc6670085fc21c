r"""The supersample experiment of conditional-mutual-information bounds.

Steinke & Zakynthinou ("Reasoning about generalization via conditional mutual information",
COLT 2020) draw a supersample ``Z~`` of ``n x 2`` i.i.d. points and a selector
``U in {0, 1}^n`` of fair coins; the training set is ``S = (Z~_{i, U_i})_i`` and the
unselected points ``Z~_{i, 1 - U_i}`` are fresh test points, so the expected gap of the
supersample is the expected generalization gap:

.. math::

    \mathrm{gen} = \frac1n \sum_i E\big[\ell(W, \tilde Z_{i, 1-U_i}) - \ell(W, \tilde Z_{i, U_i})\big]
                 = \frac1n \sum_i E\big[(-1)^{U_i} \Delta L_i\big],
    \qquad \Delta L_i = \ell(W, \tilde Z_{i,1}) - \ell(W, \tilde Z_{i,0}).

This module runs that experiment for any learner over a ``k_z x k_u`` grid — ``k_z``
independent supersamples, ``k_u`` independent selectors (and trainings) on each — and records
the loss pairs ``L~_i = (l(W, Z~_{i,0}), l(W, Z~_{i,1}))``. The bounds in :mod:`bounds.cmi`
need only the mutual information between these low-dimensional losses and the selector bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bounds.discrete_mi import as_confidence
from bounds.results import Estimate, basic_bootstrap_interval
from theory.validation import as_array, as_generator, as_int

#: Most distinct loss values a supersample may hold; plug-in MI needs a small alphabet.
MAX_LOSS_LEVELS = 32


@dataclass(frozen=True)
class SupersampleConfig:
    """Sizes of a supersample experiment.

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


@dataclass(frozen=True)
class Supersample:
    """Recorded losses of a supersample experiment, for losses with values in ``[0, 1]``.

    Attributes
    ----------
    losses : ndarray
        (k_z, k_u, n, 2) ``l(W, Z~_{i, j})`` of the model trained with selector ``(k_z, k_u)``.
    selectors : ndarray
        (k_z, k_u, n) int ``U_i in {0, 1}``: the training set takes ``Z~_{i, U_i}``.
    """

    losses: np.ndarray
    selectors: np.ndarray

    def __post_init__(self) -> None:
        losses = as_array(self.losses, "losses")
        if losses.ndim != 4 or losses.shape[-1] != 2:
            raise ValueError(f"losses must have shape (k_z, k_u, n, 2), got {losses.shape}")
        if losses.shape[0] < 2:
            raise ValueError(f"losses must hold k_z >= 2 supersamples, got k_z = {losses.shape[0]}")
        if losses.min() < 0.0 or losses.max() > 1.0:
            raise ValueError(
                f"losses must lie in [0, 1] for a CMI bound, got range [{losses.min():.6g}, {losses.max():.6g}]"
            )
        levels = np.unique(losses).size
        if levels > MAX_LOSS_LEVELS:
            raise ValueError(
                f"losses takes {levels} distinct values; at most {MAX_LOSS_LEVELS} are supported by the "
                f"plug-in MI estimate. Round the loss to a grid (e.g. np.ceil(loss * k) / k) and compare "
                f"the bound with the gap of that same rounded loss"
            )
        try:
            selectors = np.asarray(self.selectors)
        except (TypeError, ValueError) as exc:  # a ragged nested sequence
            raise ValueError(f"selectors must be an array of shape {losses.shape[:3]}, got {self.selectors!r}") from exc
        if selectors.shape != losses.shape[:3]:
            raise ValueError(f"selectors must have shape {losses.shape[:3]} to match losses, got {selectors.shape}")
        if not np.all((selectors == 0) | (selectors == 1)):
            raise ValueError("selectors must contain only 0 and 1")
        object.__setattr__(self, "losses", losses)
        object.__setattr__(self, "selectors", selectors.astype(np.int64))

    @property
    def n(self) -> int:
        return self.losses.shape[2]

    @property
    def draws(self) -> int:
        """Number of training runs, ``k_z * k_u``."""
        return self.losses.shape[0] * self.losses.shape[1]

    @property
    def train_losses(self) -> np.ndarray:  # (k_z, k_u, n)
        """``l(W, Z~_{i, U_i})``, the loss on each training point."""
        return np.take_along_axis(self.losses, self.selectors[..., None], axis=-1)[..., 0]

    @property
    def test_losses(self) -> np.ndarray:  # (k_z, k_u, n)
        """``l(W, Z~_{i, 1 - U_i})``, the loss on each unselected (fresh) point."""
        return np.take_along_axis(self.losses, 1 - self.selectors[..., None], axis=-1)[..., 0]

    def measured_gap(self, rng: np.random.Generator, *, n_boot: int = 200, confidence: float = 0.95) -> Estimate:
        """Mean of ``test - train`` loss over all runs and points: an unbiased estimate of ``gen``.

        Interval: basic bootstrap interval (:func:`~bounds.results.basic_bootstrap_interval`)
        over supersamples, each resampled with all its selectors, at level ``confidence``.
        ``draws`` is the number of training runs.
        """
        rng = as_generator(rng)
        n_boot = as_int(n_boot, "n_boot", minimum=1)
        level = as_confidence(confidence)
        per_supersample = (self.test_losses - self.train_losses).mean(axis=(1, 2))
        picks = bootstrap_supersamples(rng, self.losses.shape[0], n_boot)
        boot = per_supersample[picks].mean(axis=1)
        value = float(per_supersample.mean())
        low, high = basic_bootstrap_interval(value, boot, level)
        return Estimate(value, low, high, self.draws)


def redraw_selectors(supersample: Supersample, rng: np.random.Generator) -> Supersample:
    r"""The same losses with fresh fair selectors drawn independently of them: the reference of a
    learner that ignores its selector.

    The recorded selectors are replaced by ``U'`` independent of everything else, so
    ``I(L~_i; U'_i) = I(Delta L_i; U'_i) = 0`` exactly, while the law of the loss pairs is that of
    ``supersample``. A CMI bound estimated on the result reads the floor of its estimator at the
    same sizes and loss values (docs/THEORY.md §2.4): what the estimate shows when the losses say
    nothing about the selector. Its training loss is that of the redrawn selection.

    Parameters
    ----------
    supersample : Supersample
    rng : numpy.random.Generator
        Source of the new selector bits.

    Returns
    -------
    Supersample
        ``losses`` unchanged (k_z, k_u, n, 2); ``selectors`` (k_z, k_u, n) fresh fair bits.
    """
    if not isinstance(supersample, Supersample):
        raise ValueError(f"supersample must be a Supersample, got {type(supersample).__name__}")
    rng = as_generator(rng)
    return Supersample(losses=supersample.losses, selectors=rng.integers(0, 2, size=supersample.selectors.shape))


def bootstrap_supersamples(rng: np.random.Generator, k_z: int, n_boot: int) -> np.ndarray:  # -> (n_boot, k_z)
    """Indices of ``n_boot`` resamples (with replacement) of the ``k_z`` supersamples."""
    return rng.integers(0, k_z, size=(n_boot, k_z))


def run_supersample(
    train: Callable[[Any, np.random.Generator], Any],
    loss: Callable[[Any, Any], np.ndarray],
    sample: Callable[[np.random.Generator, int], Any],
    config: SupersampleConfig,
    rng: np.random.Generator,
) -> Supersample:
    r"""Run the supersample experiment for any learner.

    For each of ``k_z`` supersamples, ``sample(rng, 2n)`` draws ``2n`` i.i.d. points;
    ``Z~_{i, j}`` is point ``2i + j``. For each of ``k_u`` fair selectors ``U``, the learner is
    trained on the ``n`` points ``Z~_{i, U_i}`` and evaluated on all ``2n``.

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
