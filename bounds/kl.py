r"""Binary relative entropy and its inverses, the workhorses of kl-type bounds.

``kl(p || q) = p log(p/q) + (1-p) log((1-p)/(1-q))`` in nats, the relative entropy between
Bernoulli(p) and Bernoulli(q), with ``0 log 0 = 0``. Its inverses turn a budget ``c`` on
``kl(p_hat || q)`` into the largest (or smallest) ``q`` consistent with it; they are monotone,
so a bootstrap interval on ``p_hat`` or ``c`` maps to an interval on ``q``.
"""

from __future__ import annotations

import math

from theory.validation import as_real

#: Bisection stops once the bracket is this narrow relative to its ends; the infeasible end is returned.
_RESOLUTION = 4.0 * 2.0**-52


def binary_kl(p: float, q: float) -> float:
    r"""Binary relative entropy ``kl(p || q)`` in nats; ``inf`` when ``q in {0, 1}`` and ``p != q``.

    .. math:: \mathrm{kl}(p\|q) = p\log\frac{p}{q} + (1-p)\log\frac{1-p}{1-q}

    The relative entropy between Bernoulli(p) and Bernoulli(q) (Cover & Thomas, "Elements of
    Information Theory", 2006, Ch. 2), the divergence of the binary-kl and Occam bounds
    (docs/THEORY.md §2.4 and §6).

    Parameters
    ----------
    p, q : float
        Probabilities in ``[0, 1]``.

    Returns
    -------
    float
        ``kl(p || q) >= 0`` in nats (``inf`` allowed, never NaN).
    """
    p = as_real(p, "p", minimum=0.0, maximum=1.0)
    q = as_real(q, "q", minimum=0.0, maximum=1.0)
    return _kl(p, q)


def _kl(p: float, q: float) -> float:
    """``kl(p || q)`` with ``log1p`` for the ``1 - p``, ``1 - q`` terms (accurate near 0 and 1)."""
    out = 0.0
    if p > 0.0:
        if q <= 0.0:
            return math.inf
        out += p * (math.log(p) - math.log(q))
    if p < 1.0:
        if q >= 1.0:
            return math.inf
        out += (1.0 - p) * (math.log1p(-p) - math.log1p(-q))
    return max(out, 0.0)


def kl_inverse(p_hat: float, budget: float, *, side: str = "upper") -> float:
    r"""Invert the binary kl: the largest (``upper``) or smallest (``lower``) ``q`` with
    ``kl(p_hat || q) <= budget``.

    .. math::

        \mathrm{kl}^{-1}_{+}(\hat p, c) = \sup\{q \in [\hat p, 1] : \mathrm{kl}(\hat p\|q) \le c\},
        \qquad
        \mathrm{kl}^{-1}_{-}(\hat p, c) = \inf\{q \in [0, \hat p] : \mathrm{kl}(\hat p\|q) \le c\}.

    ``q -> kl(p_hat || q)`` is continuous and monotone on each side of ``p_hat``, so bisection
    finds the boundary to a few units in the last place; the end of the final bracket that
    fails the budget is returned (outward rounding), so up to the float rounding of ``kl``
    itself the ``upper`` value is not below the true supremum and the ``lower`` value not above
    the true infimum. Used by the kl form of Chernoff's
    bound (Langford, "Tutorial on practical prediction theory for classification", JMLR 2005)
    and by PAC-Bayes-kl bounds (Seeger 2002; Maurer 2004).

    Parameters
    ----------
    p_hat : float
        Observed frequency or mean in ``[0, 1]``.
    budget : float
        ``c >= 0`` in nats.
    side : {"upper", "lower"}

    Returns
    -------
    float
        ``q`` in ``[0, 1]``.
    """
    p_hat = as_real(p_hat, "p_hat", minimum=0.0, maximum=1.0)
    budget = as_real(budget, "budget", minimum=0.0)
    if side not in ("upper", "lower"):
        raise ValueError(f"side must be 'upper' or 'lower', got {side!r}")
    return _kl_inverse(p_hat, budget, side)


def _kl_inverse(p_hat: float, budget: float, side: str) -> float:
    """:func:`kl_inverse` on checked arguments (floats in range, ``side`` a known name)."""
    if budget == 0.0:
        return p_hat
    if side == "upper":
        if _kl(p_hat, 1.0) <= budget:
            return 1.0
        feasible, infeasible = p_hat, 1.0
    else:
        if _kl(p_hat, 0.0) <= budget:
            return 0.0
        feasible, infeasible = p_hat, 0.0
    while True:
        mid = 0.5 * (feasible + infeasible)
        narrow = abs(infeasible - feasible) <= _RESOLUTION * max(feasible, infeasible)
        if mid == feasible or mid == infeasible or narrow:
            return infeasible
        if _kl(p_hat, mid) <= budget:
            feasible = mid
        else:
            infeasible = mid
