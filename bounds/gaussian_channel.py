r"""Data-dependent bound through a Gaussian channel (THEORY.md §2, derived).

Release ``W + N`` with ``N ~ N(0, tau^2 I_p)`` drawn independently of the training set ``S``.
Given ``S`` the release is Gaussian around ``W``, and among all laws with covariance
``Cov(W)`` the Gaussian has the largest entropy, so

.. math::

    I(W + N; S) \le I(W + N; W) \le \tfrac12 \log\det\!\left(I_p + \mathrm{Cov}(W)/\tau^2\right)
    = \tfrac12 \sum_k \log\!\left(1 + \lambda_k / \tau^2\right),

in nats, with ``lambda_k`` the eigenvalues of ``Cov(W)`` (the first step is the data-processing
inequality for ``S -> W -> W + N``). Equality holds when ``W`` is Gaussian and a function of
``S``. Conditioning on frozen factors drawn independently of ``S`` keeps the bound valid
(estimate ``Cov(W)`` with the frozen factor held fixed). The bound is about the perturbed
predictor ``W + N``: a gap to compare it with must be measured on ``W + N`` too.
"""

from __future__ import annotations

import numpy as np

from bounds.discrete_mi import as_confidence
from bounds.results import Estimate, basic_bootstrap_interval
from theory.validation import as_generator, as_int, as_matrix, as_real


def _half_logdet(gram: np.ndarray, trials: int, log_scale: float) -> np.ndarray:  # (..., T, T) -> (...)
    """``1/2 sum log(1 + lambda/tau^2)`` over the eigenvalues ``lambda`` of ``e^log_scale`` times
    centred-Gram / (T - 1), with ``log_scale`` in nats; ``log(1 + e^(log lambda))`` is evaluated by
    ``logaddexp`` so that neither ``lambda`` nor ``lambda/tau^2`` is formed (no overflow, no underflow)."""
    eig = np.maximum(np.linalg.eigvalsh(gram) / (trials - 1), 0.0)
    log_eig = np.log(eig, out=np.full_like(eig, -np.inf), where=eig > 0)
    return 0.5 * np.sum(np.logaddexp(0.0, log_eig + log_scale), axis=-1)


def gaussian_channel_mi(
    samples: np.ndarray,
    noise_std: float,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
) -> Estimate:  # (trials, p)
    r"""Estimate ``1/2 log det(I + Cov(W)/tau^2)`` in nats from trained parameters.

    ``Cov(W)`` is replaced by the sample covariance ``C = X_c^T X_c / (T - 1)`` of the ``T``
    rows of ``samples`` (``X_c`` centred), whose non-zero eigenvalues are those of the
    ``T x T`` centred Gram matrix ``X_c X_c^T / (T - 1)``; the work is that eigenproblem,
    ``O(T^2 p + T^3)``, so ``p >> T`` is cheap. With ``p >= T`` the sample covariance has rank at
    most ``T - 1`` and the estimate misses the remaining directions; since
    ``log det(I + C/tau^2)`` is concave in ``C`` the plug-in is biased *down* (Jensen), and more
    trials raise it towards the true value.

    Interval: basic (reverse-percentile) bootstrap over trials at level ``confidence``
    (:func:`~bounds.results.basic_bootstrap_interval`): with ``v`` the estimate and
    ``q_lo, q_hi`` the bootstrap quantiles, ``[2v - q_hi, 2v - q_lo]``, clipped at 0.
    Resampling trials with replacement duplicates rows and so lowers the rank and the
    log-determinant further; reflecting the quantiles about ``v`` corrects that first-order
    downward bias, which a plain percentile interval would double.

    Assumptions: the rows are independent trainings (independent datasets, fresh algorithm
    randomness, the same frozen factors) and ``noise_std`` is the standard deviation of the
    released Gaussian noise. Source: THEORY.md §2 (derived); the maximum-entropy property of
    the Gaussian (Cover & Thomas, "Elements of Information Theory", Theorem 8.6.5).

    Parameters
    ----------
    samples : ndarray
        (trials, p) trained parameters, ``trials >= 2``, one row per independent training.
    noise_std : float
        ``tau > 0``, in the parameters' units.
    rng : numpy.random.Generator
        Source of the bootstrap resampling.
    n_boot : int
        Bootstrap replicates, ``>= 1``.
    confidence : float
        Level of the interval, in ``(0, 1)``.

    Returns
    -------
    Estimate
        ``value``, ``low``, ``high`` in nats; ``draws = trials``.
    """
    x = as_matrix(samples, "samples")
    trials = x.shape[0]
    if trials < 2:
        raise ValueError(f"samples must have at least 2 trials (rows) to estimate a covariance, got {trials}")
    tau = as_real(noise_std, "noise_std", positive=True)
    rng = as_generator(rng)
    n_boot = as_int(n_boot, "n_boot", minimum=1)
    level = as_confidence(confidence)
    centred = x - x.mean(axis=0)
    # Divide by a power of two near the largest entry (exact) so that the Gram matrix cannot
    # overflow; its eigenvalues carry the factor unit^2 / tau^2 in log_scale.
    unit = 2.0 ** int(np.frexp(np.max(np.abs(centred)))[1])
    centred = centred / unit
    log_scale = 2.0 * (np.log(unit) - np.log(tau))
    gram = centred @ centred.T
    value = float(_half_logdet(gram, trials, log_scale))
    picks = rng.integers(0, trials, size=(n_boot, trials))
    boot_gram = gram[picks[:, :, None], picks[:, None, :]]
    # Re-centre each resample: H K H with H = I - 11^T / T.
    row_mean = boot_gram.mean(axis=2, keepdims=True)
    col_mean = boot_gram.mean(axis=1, keepdims=True)
    boot_gram = boot_gram - row_mean - col_mean + boot_gram.mean(axis=(1, 2), keepdims=True)
    boot = _half_logdet(boot_gram, trials, log_scale)
    low, high = basic_bootstrap_interval(value, boot, level)
    return Estimate(value=value, low=max(low, 0.0), high=max(high, 0.0), draws=trials)
