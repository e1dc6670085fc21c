r"""The arrays of a supersample experiment, as the conditional-MI bounds read them, and its gap.

Steinke & Zakynthinou ("Reasoning about generalization via conditional mutual information",
COLT 2020) draw a supersample ``Z~`` of ``n x 2`` i.i.d. points and a selector
``U in {0, 1}^n`` of fair coins; the training set is ``S = (Z~_{i, U_i})_i`` and the
unselected points ``Z~_{i, 1 - U_i}`` are fresh test points, so the expected gap of the
supersample is the expected generalization gap (docs/THEORY.md §2.4):

.. math::

    \mathrm{gen} = \frac1n \sum_i E\big[\ell(W, \tilde Z_{i, 1-U_i}) - \ell(W, \tilde Z_{i, U_i})\big]
                 = \frac1n \sum_i E\big[(-1)^{U_i} \Delta L_i\big],
    \qquad \Delta L_i = \ell(W, \tilde Z_{i,1}) - \ell(W, \tilde Z_{i,0}).

An experiment over a ``k_z x k_u`` grid — ``k_z`` independent supersamples, ``k_u`` independent
selectors (and trainings) on each — is two arrays: ``losses`` (k_z, k_u, n, 2), the loss pairs
``L~_i = (l(W, Z~_{i,0}), l(W, Z~_{i,1}))`` of every run, and ``selectors`` (k_z, k_u, n), its
bits ``U_i``. Every function of :mod:`bounds.cmi` and this module takes these two arrays and
validates them once, at entry (``_supersample``); the experiments that record them live in
``synthetic`` (``synthetic.run_supersample`` for any learner, ``synthetic.linear_supersample`` and
``synthetic.mlp_supersample`` batched), which ``bounds`` never imports.
"""

from __future__ import annotations

import numpy as np

from bounds.discrete_mi import as_confidence
from bounds.results import Estimate, basic_bootstrap_interval
from theory.supersample import MAX_LOSS_LEVELS, Supersample  # noqa: F401 - MAX_LOSS_LEVELS re-exported
from theory.validation import as_generator, as_int

def _supersample(losses: object, selectors: object) -> Supersample:
    """``losses`` and ``selectors`` checked once (``theory.supersample.Supersample``): shapes, losses
    in ``[0, 1]`` on at most ``MAX_LOSS_LEVELS`` values, ``k_z >= 2``, selector bits."""
    return Supersample(losses=losses, selectors=selectors)


def bootstrap_supersamples(rng: np.random.Generator, k_z: int, n_boot: int) -> np.ndarray:  # -> (n_boot, k_z)
    """Indices of ``n_boot`` resamples, with replacement, of the ``k_z`` supersamples.

    The resampling unit of every supersample interval (docs/THEORY.md §2.6): a supersample is
    drawn with all its selectors, since the runs on one supersample share its points.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the indices (``rng.integers(0, k_z, size=(n_boot, k_z))``).
    k_z : int
        Number of supersamples.
    n_boot : int
        Number of resamples.

    Returns
    -------
    ndarray
        (n_boot, k_z) int indices into the supersample axis.
    """
    return rng.integers(0, k_z, size=(n_boot, k_z))


def supersample_gap(
    losses: np.ndarray, selectors: np.ndarray, rng: np.random.Generator, *, n_boot: int = 200, confidence: float = 0.95
) -> Estimate:
    r"""The measured supersample gap: the mean of ``test - train`` loss over all runs and points.

    ``(1 / (k_z k_u n)) sum (l(W, Z~_{i, 1-U_i}) - l(W, Z~_{i, U_i}))``, an unbiased estimate of
    ``gen`` (Steinke & Zakynthinou, COLT 2020; docs/THEORY.md §2.4). Interval: the basic bootstrap
    interval (:func:`~bounds.results.basic_bootstrap_interval`) over supersamples, each resampled
    with all its selectors (:func:`bootstrap_supersamples`), at level ``confidence``.

    Parameters
    ----------
    losses : ndarray
        (k_z, k_u, n, 2) ``l(W, Z~_{i, j})`` of the model trained with selector ``(k_z, k_u)``,
        values in ``[0, 1]`` (at most ``MAX_LOSS_LEVELS`` distinct), ``k_z >= 2``.
    selectors : ndarray
        (k_z, k_u, n) bits ``U_i in {0, 1}``: the training set takes ``Z~_{i, U_i}``.
    rng : numpy.random.Generator
        Source of the bootstrap resampling.
    n_boot : int
        Bootstrap replicates, ``>= 1``.
    confidence : float
        Interval level in ``(0, 1)``.

    Returns
    -------
    Estimate
        The gap in loss units with its interval; ``draws`` is the number of training runs ``k_z k_u``.
    """
    ss = _supersample(losses, selectors)
    rng = as_generator(rng)
    n_boot = as_int(n_boot, "n_boot", minimum=1)
    level = as_confidence(confidence)
    per_supersample = (ss.test_losses - ss.train_losses).mean(axis=(1, 2))
    picks = bootstrap_supersamples(rng, ss.k_z, n_boot)
    boot = per_supersample[picks].mean(axis=1)
    value = float(per_supersample.mean())
    low, high = basic_bootstrap_interval(value, boot, level)
    return Estimate(value, low, high, ss.draws)


def redraw_selectors(
    losses: np.ndarray, selectors: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    r"""The same losses with fresh fair selectors drawn independently of them: the reference of a
    learner that ignores its selector.

    The recorded selectors are replaced by ``U'`` independent of everything else, so
    ``I(L~_i; U'_i) = I(Delta L_i; U'_i) = 0`` exactly, while the law of the loss pairs is that of
    the experiment. A CMI bound estimated on the result reads the floor of its estimator at the
    same sizes and loss values (docs/THEORY.md §2.4): what the estimate shows when the losses say
    nothing about the selector. Its training loss is that of the redrawn selection.

    Parameters
    ----------
    losses, selectors : ndarray
        (k_z, k_u, n, 2) and (k_z, k_u, n), as in :func:`supersample_gap`.
    rng : numpy.random.Generator
        Source of the new selector bits (``rng.integers(0, 2, size=(k_z, k_u, n))``).

    Returns
    -------
    tuple of ndarray
        ``(losses, selectors)``: the validated losses (k_z, k_u, n, 2) float64, unchanged, and
        fresh fair bits (k_z, k_u, n) int64.
    """
    ss = _supersample(losses, selectors)
    rng = as_generator(rng)
    return ss.losses, rng.integers(0, 2, size=ss.selectors.shape).astype(np.int64)
