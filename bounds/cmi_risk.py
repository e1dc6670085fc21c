r"""Risk bounds from a training loss and an average conditional mutual information.

Both functions bound the population risk ``R = E[L_mu(W)]`` of a learner with losses in
``[0, 1]`` by the expected training loss ``R^ = E[L_S(W)]`` and the average
``I = (1/n) sum_i I(L~_i; U_i)`` of the supersample experiment (docs/THEORY.md §2.4; notation of
:mod:`bounds.cmi`). Both follow from the Donsker–Varadhan inequality
``E_P[g] <= D(P || Q) + log E_Q[exp g]`` with ``P`` the joint law of ``(L~_i, U_i)`` and
``Q = P_{L~_i} x Bernoulli(1/2)``. :mod:`bounds.cmi` evaluates them at estimated ``R^`` and ``I``
(``binary_kl_bound``, ``fast_rate_bound``).
"""

from __future__ import annotations

import math

import numpy as np

from bounds.kl import _kl_inverse
from theory.validation import as_real

# Grid of the fast-rate trade-off C >= 1 and, for each C, the largest eta with
# exp(eta) + exp(-C eta) <= 2 (see fast_rate_risk). Newton from eta = ln 2 (where the convex
# function exp(eta) + exp(-C eta) - 2 is positive) decreases monotonically to the root.
_C_GRID = 1.0 + np.geomspace(1e-3, 1e4, 2001)


def _eta_on_grid(c: np.ndarray) -> np.ndarray:
    """The largest ``eta`` with ``e^eta + e^{-C eta} <= 2`` for each ``C`` of ``c``, by Newton's method."""
    eta = np.full_like(c, math.log(2.0))
    for _ in range(200):
        f = np.expm1(eta) + np.expm1(-c * eta)
        step = f / (np.exp(eta) - c * np.exp(-c * eta))
        eta = eta - step
        if np.all(np.abs(step) <= 1e-15 * eta):
            break
    # Guard: never report an eta outside the feasible set (f <= 0) because of round-off.
    return eta * (1.0 - 1e-9)


_ETA_GRID = _eta_on_grid(_C_GRID)


def fast_rate_risk(train_loss: float, mi_nats: float) -> float:
    r"""Fast-rate risk bound ``R <= min_{C >= 1} (C R^ + I / eta(C))``, capped at 1.

    ``eta(C)`` is the largest ``eta > 0`` with ``e^eta + e^{-C eta} <= 2``; ``I`` is the
    average ``(1/n) sum_i I(L~_i; U_i)`` in nats. With ``R^ = 0`` the minimum is the limit
    ``C -> inf``, ``I / ln 2``. The minimum is taken over a fixed grid of ``C`` (every grid
    point gives a valid bound).

    Derivation (derived here, in the spirit of the fast-rate bounds of Wang & Mao, "Tighter
    information-theoretic generalization bounds from supersamples", ICML 2023): take
    ``g = eta (L~_{i,1-U_i} - C L~_{i,U_i})`` in Donsker–Varadhan. Under ``Q`` its exponential
    moment given ``L~_i = (a, b)`` is ``(e^{eta(b - Ca)} + e^{eta(a - Cb)})/2``, convex in
    ``(a, b)``, so its maximum over ``[0, 1]^2`` is at a vertex: 1 at ``(0, 0)``,
    ``e^{eta(1-C)} <= 1`` at ``(1, 1)`` and ``(e^eta + e^{-C eta})/2 <= 1`` at ``(1, 0)``. Hence
    ``eta (R_i - C R^_i) <= I(L~_i; U_i)``; average over ``i``.

    Parameters
    ----------
    train_loss : float
        ``R^`` in ``[0, 1]``.
    mi_nats : float
        ``I >= 0`` in nats.

    Returns
    -------
    float
        The bound on the population risk ``R``, in ``[0, 1]``.
    """
    train_loss = as_real(train_loss, "train_loss", minimum=0.0, maximum=1.0)
    return _fast_rate_risk(train_loss, as_real(mi_nats, "mi_nats", minimum=0.0))


def _fast_rate_risk(train_loss: float, mi_nats: float) -> float:
    """:func:`fast_rate_risk` on checked floats."""
    if train_loss == 0.0:
        return min(mi_nats / math.log(2.0), 1.0)
    return min(float(np.min(_C_GRID * train_loss + mi_nats / _ETA_GRID)), 1.0)


def binary_kl_risk(train_loss: float, mi_nats: float) -> float:
    r"""Binary-kl risk bound ``R <= 2 kl^{-1}_+(R^, I) - R^``, capped at 1.

    From ``kl(R^ || (R^ + R)/2) <= I`` with ``I = (1/n) sum_i I(L~_i; U_i)`` in nats.
    Derivation: with ``g = lambda L~_{i,U_i}``, the exponential moment under ``Q`` is
    ``E[(e^{lambda L~_{i,0}} + e^{lambda L~_{i,1}})/2] <= 1 + m_i (e^lambda - 1)`` for losses in
    ``[0, 1]`` (convexity of ``x -> e^{lambda x}``), ``m_i = (R^_i + R_i)/2``; the supremum over
    ``lambda`` of ``lambda R^_i - log(1 + m_i (e^lambda - 1))`` is ``kl(R^_i || m_i)``. Average over
    ``i`` with the joint convexity of kl. Source: Hellström & Durisi, "A new family of
    generalization bounds using samplewise evaluated CMI" (NeurIPS 2022).

    Parameters
    ----------
    train_loss : float
        ``R^`` in ``[0, 1]``.
    mi_nats : float
        ``I >= 0`` in nats.

    Returns
    -------
    float
        The bound on the population risk ``R``, in ``[0, 1]``.
    """
    train_loss = as_real(train_loss, "train_loss", minimum=0.0, maximum=1.0)
    return _binary_kl_risk(train_loss, as_real(mi_nats, "mi_nats", minimum=0.0))


def _binary_kl_risk(train_loss: float, mi_nats: float) -> float:
    """:func:`binary_kl_risk` on checked floats."""
    return min(2.0 * _kl_inverse(train_loss, mi_nats, "upper") - train_loss, 1.0)
