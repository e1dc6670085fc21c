"""Result types: no estimate or estimated bound ever leaves ``bounds`` as a bare number.

A Monte Carlo estimate carries its interval and the number of independent draws it rests on,
so a reader can tell a well-measured value from a lucky one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """An estimated quantity (a mutual information in nats, say) with its interval.

    Attributes
    ----------
    value : float
        The point estimate.
    low, high : float
        The interval; each function that returns an ``Estimate`` says in its docstring how
        the interval is computed (e.g. a bootstrap percentile interval) and at what level.
    draws : int
        The number of independent draws (trials, samples) the estimate rests on.
    """

    value: float
    low: float
    high: float
    draws: int

    def covers(self, truth: float) -> bool:
        """Whether ``low <= truth <= high``: the interval check of the calibration tests (docs/THEORY.md §2.6).

        Parameters
        ----------
        truth : float
            The true value, in the units of the estimate.

        Returns
        -------
        bool
        """
        return self.low <= truth <= self.high


@dataclass(frozen=True)
class BoundResult:
    """An estimated generalization bound for a loss with values in ``[0, 1]``.

    Attributes
    ----------
    value : float
        Point estimate of the bound on the expected generalization gap
        ``E[L_mu(W) - L_S(W)]``, capped at the trivial bound (see ``vacuous``).
    low, high : float
        Basic bootstrap interval of the bound (:func:`basic_bootstrap_interval`; the function's
        docstring gives the level and what is resampled), clipped at 0 and capped likewise.
    draws : int
        Number of independent training runs the estimate rests on.
    vacuous : bool
        True when the uncapped point estimate is at least the trivial bound
        ``1 - E[L_S(W)]`` (a loss in ``[0, 1]`` has ``L_mu <= 1``), or when the bound does not
        apply to the algorithm measured; ``value`` is then the trivial bound itself.
    """

    value: float
    low: float
    high: float
    draws: int
    vacuous: bool

    def covers(self, truth: float) -> bool:
        """Whether ``low <= truth <= high`` (docs/THEORY.md §2.6).

        Parameters
        ----------
        truth : float
            The true value, in loss units.

        Returns
        -------
        bool
        """
        return self.low <= truth <= self.high


@dataclass(frozen=True)
class HighProbabilityBound:
    """A bound on the population risk of one trained hypothesis that holds with probability
    at least ``1 - delta`` over the draw of the training set.

    Attributes
    ----------
    value : float
        Upper bound on ``L_mu(h)`` for a loss in ``[0, 1]``, capped at 1.
    budget_nats : float
        The complexity term ``(bits ln 2 + ln(1/delta)) / n`` the bound spends, in nats.
    delta : float
        Failure probability.
    vacuous : bool
        True when the bound is 1, the trivial bound for a loss in ``[0, 1]``.
    """

    value: float
    budget_nats: float
    delta: float
    vacuous: bool


def basic_bootstrap_interval(value: float, replicates: np.ndarray, level: float) -> tuple[float, float]:  # (B,)
    r"""Basic (reverse-percentile) bootstrap interval ``[2 v - q_{1-a/2}, 2 v - q_{a/2}]``,
    widened where needed to contain ``v``.

    ``v`` is the estimate from the data, ``q`` the quantiles of the bootstrap replicates and
    ``a = 1 - level``. Reflecting the quantiles about ``v`` removes the estimator's first-order
    bias as the bootstrap sees it (Davison & Hinkley, "Bootstrap methods and their application",
    1997, Section 5.2). Plug-in information estimates are biased (upwards for discrete MI,
    downwards for log-determinants), and resampling adds the same bias again, so a plain
    percentile interval would sit off to one side. When the bias exceeds the sampling noise the
    reflected interval would exclude ``v`` itself; it is then stretched to reach ``v``, so an
    interval much wider on one side of its estimate is the sign that more draws are needed
    (docs/THEORY.md §2.6).

    Parameters
    ----------
    value : float
        The estimate ``v`` from the data.
    replicates : ndarray
        (B,) the estimate recomputed on ``B`` bootstrap resamples.
    level : float
        The interval's level, in ``(0, 1)``.

    Returns
    -------
    tuple of float
        ``(low, high)`` with ``low <= value <= high``.
    """
    alpha = (1.0 - level) / 2.0
    q_lo, q_hi = np.quantile(replicates, [alpha, 1.0 - alpha])
    return min(2.0 * value - float(q_hi), value), max(2.0 * value - float(q_lo), value)
