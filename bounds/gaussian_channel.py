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

**Estimation** (:func:`gaussian_channel_mi`). ``log det`` is concave, so the plug-in, the sample
covariance ``C`` of ``T`` trainings in place of ``Cov(W)``, is biased *down* (Jensen), by many
standard deviations once ``p`` is a sizeable fraction of ``T``; a bound estimated from below can
land under the quantity it bounds. With ``T >= p + 3`` the function corrects the bias (derived
here). Let ``N = T - 1``, ``nu_j`` the eigenvalues of ``C / tau^2``, and ``u`` in ``(0, 1]`` the
root of ``u = 1 - (1/N) sum_j nu_j / (nu_j + u)`` (unique: the difference of the two sides
increases in ``u`` while ``rank C < N``). Then

.. math::

    \hat I = \tfrac12\Big[\sum_j \log(1 + \nu_j/u) + N(\log u + 1 - u)\Big] - \tfrac14\log(1 - \hat\gamma),
    \qquad \hat\gamma = (1 - u) - \frac{u\kappa}{u - \kappa}, \quad
    \kappa = \frac1N\sum_j \frac{\nu_j u}{(\nu_j + u)^2}.

For ``T, p`` large at fixed ``p/T`` the Marčenko–Pastur deterministic equivalent (Silverstein &
Bai, J. Multivariate Anal. 54, 1995) gives ``E log det(I + C/t) = log det(I + x Cov(W)/t)
- N log x - N(1 - x) + 1/2 log(1 - gamma) + o(1)``, where ``x = 1 - tr C (C + tI)^-1 / N`` is
observable; at ``t = tau^2 x`` (``u = x``) the first term on the right is the target, which
inverts the relation (a G-estimator in Girko's sense; Mestre, IEEE Trans. Inf. Theory 54, 2008).
``1/2 log(1 - gamma)``, ``gamma = (1/N) sum_k (lambda_k / (lambda_k + tau^2))^2``, is the mean
of the real-Gaussian CLT for linear spectral statistics (Bai & Silverstein, Ann. Probab. 32,
2004); ``gamma_hat`` estimates it through the same equivalent. As ``tau -> 0`` the rule becomes
the classical correction of ``E log det C``, ``-(N - p) log(1 - p/N) - p``, the large-``N`` form
of ``sum_i psi((N - i + 1)/2) + p log(2/N)``; as ``p/N -> 0`` it becomes the plug-in. The
first-order part holds for rows ``Cov(W)^(1/2) z`` with i.i.d. standardised entries ``z``; the
``gamma`` term is that of Gaussian rows.

**Interval.** Jackknife over trials: ``I_(i)`` is the same estimator on the other ``T - 1``
trials (``N - 1`` degrees of freedom; all ``T`` from one ``p x p`` eigendecomposition and a
rank-one downdate each, ``O(T p^2)`` time, ``O(T p + p^2)`` memory) and ``se^2 = (T - 1)/T
sum_i (I_(i) - mean)^2``, which errs high in expectation (Efron & Stein, Ann. Statist. 9, 1981).
The interval is ``I_hat -+ t se`` on the cube-root scale, ``[I_hat (1 - x)_+^3, I_hat (1 + x)^3]``
with ``x = t se / (3 I_hat)`` and ``t`` the ``(1 + level)/2`` quantile of Student's t with
``T - 1`` degrees of freedom: at low signal-to-noise ``I_hat`` is nearly a scaled chi-square,
right-skewed, whose cube root is nearly normal (Wilson & Hilferty, PNAS 17, 1931); at high
signal-to-noise ``x`` is small and the interval is the symmetric one. In simulation (Gaussian
rows, isotropic as in Gaussian mean estimation and a power-law spectrum, ``Cov/tau^2`` from 0.1
to 100, 400 repetitions per cell; ``tests/bounds/test_gaussian_channel.py``) the upper end covered the
true value in at least 95 % of repetitions in each of the 104 cells with ``T >= 100`` (every
``(p, T)`` of Figures 4–5 among them; the 0.95 interval itself in 92–100 %), and the mean error
stayed within 0.13 standard deviations (Monte Carlo noise 0.05) for ``p/(T - 1)`` up to 0.97.
With fewer trials the jackknife is itself too noisy: the upper end covered as little as 94 % at
``T = 30–50`` and 90 % at ``T = 4``, so the function warns (:class:`EstimateMayBeLowWarning`)
below ``MIN_TRIALS``.

**Fallback** (``T < p + 3``): the plug-in through the ``T x T`` Gram matrix (whose non-zero
eigenvalues are those of ``(T - 1) C``) with a basic (reverse-percentile) bootstrap interval
over trials, ``[2v - q_hi, 2v - q_lo]`` clipped at 0 (:func:`~bounds.results.basic_bootstrap_interval`),
one replicate at a time, and the warning: ``C`` has rank at most ``T - 1``, the plug-in misses
the remaining directions, and nothing in the data bounds them.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import expit, stdtrit

from bounds.discrete_mi import as_confidence
from bounds.results import Estimate, basic_bootstrap_interval
from theory.validation import as_generator, as_int, as_matrix, as_real

#: The corrected estimator needs ``trials >= p + EXTRA_TRIALS``: its leave-one-out covariances
#: (``trials - 2`` degrees of freedom) must have more degrees of freedom than parameters.
EXTRA_TRIALS = 3
#: Fewer trials than this and the corrected interval fell short of its level in simulation
#: (module docstring, "Interval"): the function warns.
MIN_TRIALS = 100
#: Largest relative half-width ``x`` of the cube-root interval (``(1 + x)^3`` stays finite).
MAX_CUBE_ROOT_X = 10.0
#: Working memory (bytes) above which the function refuses its input instead of allocating.
MAX_WORK_BYTES = 4 * 2**30
#: Entries of ``(rows, p)`` per jackknife chunk: bounds the temporaries at a few MiB each.
CHUNK_ELEMENTS = 2**17
#: Smallest divisor for ``det(B + sigma) / det(A + sigma)`` (an underflowed ratio stays finite).
MIN_DIVISOR = 1e-300
#: The root ``u`` in ``(0, 1]`` is found when ``|g(u)|`` or its bracket is this small; at most
#: ``MAX_ROOT_STEPS`` Newton (or bisection) steps, as many as bisection needs from the full bracket.
ROOT_TOL = 1e-13
MAX_ROOT_STEPS = 64


class EstimateMayBeLowWarning(UserWarning):
    """The estimate of ``1/2 log det(I + Cov(W)/tau^2)`` may lie below the true value: too few
    trials for the bias correction (``trials < p + 3``) or for the stated interval to reach its
    level in simulation (``trials < MIN_TRIALS``). Flag the bound "estimate may be low"."""


def _scaled(x: np.ndarray, tau: float) -> tuple[np.ndarray, float]:  # (T, p) -> (T, p), log_scale
    """Centred rows divided by a power of two near the largest entry (exact), so that no Gram or
    covariance entry can overflow; the eigenvalues then carry ``unit^2 / tau^2 = e^log_scale``."""
    centred = x - x.mean(axis=0)
    unit = 2.0 ** int(np.frexp(np.max(np.abs(centred)))[1])
    return centred / unit, 2.0 * (np.log(unit) - np.log(tau))


def _plugin_half_logdet(gram: np.ndarray, trials: int, log_scale: float) -> np.ndarray:  # (..., T, T) -> (...)
    """``1/2 sum log(1 + lambda/tau^2)`` over the eigenvalues ``lambda`` of ``e^log_scale`` times
    centred-Gram / (T - 1), with ``log_scale`` in nats; ``log(1 + e^(log lambda))`` is evaluated by
    ``logaddexp`` so that neither ``lambda`` nor ``lambda/tau^2`` is formed (no overflow, no underflow)."""
    eig = np.maximum(np.linalg.eigvalsh(gram) / (trials - 1), 0.0)
    log_eig = np.log(eig, out=np.full_like(eig, -np.inf), where=eig > 0)
    return 0.5 * np.sum(np.logaddexp(0.0, log_eig + log_scale), axis=-1)


def _plugin_with_bootstrap(centred: np.ndarray, log_scale: float, picks: np.ndarray) -> tuple[float, np.ndarray]:
    """Plug-in value and its bootstrap replicates through the ``T x T`` Gram matrix, one replicate
    at a time (``O(T^2)`` memory); ``picks`` (n_boot, T) are the resampled rows."""
    trials = centred.shape[0]
    gram = centred @ centred.T
    value = float(_plugin_half_logdet(gram, trials, log_scale))
    boot = np.empty(picks.shape[0])
    for b, rows in enumerate(picks):
        g = gram[np.ix_(rows, rows)]  # re-centre the resample: H K H with H = I - 11^T / T
        g = g - g.mean(axis=1, keepdims=True) - g.mean(axis=0, keepdims=True) + g.mean()
        boot[b] = _plugin_half_logdet(g, trials, log_scale)
    return value, boot


def _spectral_sums(log_a: np.ndarray, z2: np.ndarray, c: float, log_sigma: np.ndarray):  # (p,), (B, p), (B,)
    r"""Sums over the eigenvalues ``b_j`` of ``B = A - c z z^T`` (``A = V diag(a) V^T``, ``z`` in A's
    eigenbasis, one row of ``z2 = z^2`` per batch entry) at the shift ``sigma``, without forming B:

    ``F0 = sum_j log(1 + b_j/sigma)``, ``F1 = sum_j f_j``, ``F2 = sum_j f_j (1 - f_j)``,
    ``f_j = b_j / (b_j + sigma)``, by the matrix determinant lemma and Sherman–Morrison:
    ``det(B + sigma) = det(A + sigma) (1 - c q1)``, ``tr (B + sigma)^-1 = tr (A + sigma)^-1 + c q2 / (1 - c q1)``,
    ``q_m = sum_k z_k^2 / (a_k + sigma)^m``. Logarithms throughout (``log_a = -inf`` for a zero
    eigenvalue, whose ``z`` must be 0), so that no ratio over- or underflows.
    """
    d = log_a - log_sigma[:, None]
    f, g = expit(d), expit(-d)  # a/(a + sigma), sigma/(a + sigma)
    inv = np.exp(-np.logaddexp(log_a, log_sigma[:, None]), where=np.isfinite(log_a), out=np.zeros_like(d))
    zw = z2 * inv
    # log r, r = 1 - c q1 = det(B + sigma) / det(A + sigma) >= sigma / (max a + sigma) by interlacing:
    # the floor catches cancellation when one trial alone carries a direction and sigma is far below it.
    one_minus = 1.0 - c * np.sum(zw, axis=1)
    log_r = np.maximum(np.log(one_minus, out=np.full_like(one_minus, -np.inf), where=one_minus > 0),
                       log_sigma - np.logaddexp(np.max(log_a), log_sigma))
    r = np.maximum(np.exp(log_r), MIN_DIVISOR)
    sum_f = np.sum(f, axis=1)
    dq = np.minimum(c * np.sum(zw * g, axis=1) / r, sum_f)  # c sigma q2 / r, at most sum f (F1 >= 0)
    f0 = np.sum(np.logaddexp(0.0, d), axis=1) + log_r
    f2 = np.sum(f * g, axis=1) + dq - 2.0 * c * np.sum(zw * g * g, axis=1) / r - dq**2
    return f0, sum_f - dq, f2


def _corrected_half_logdet(log_a: np.ndarray, z2: np.ndarray, c: float, dof: int, log_scale: float,
                           start: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    r"""The bias-corrected estimate (module docstring) and its root ``u`` for each row of ``z2`` (B, p):
    the covariance ``(A - c z z^T) / dof`` with ``A``'s eigenvalues ``e^log_a``, in units where
    ``tau^2 = e^-log_scale``. Solves ``g(u) = u - 1 + F1(sigma(u)) / dof = 0``,
    ``sigma = dof u e^-log_scale``, by Newton's method from ``start`` (``g' = 1 - F2 / (dof u) > 0``),
    kept inside the bracket ``[1 - p/dof, 1]`` that each evaluation narrows (bisection otherwise)."""
    lo = np.full(z2.shape[0], max(1.0 - log_a.size / dof, 0.0))
    hi = np.ones(z2.shape[0])
    u = np.where((lo < start) & (start <= hi), start, 0.5 * (lo + hi))
    for _ in range(MAX_ROOT_STEPS):
        f0, f1, f2 = _spectral_sums(log_a, z2, c, np.log(dof * u) - log_scale)
        g = u - 1.0 + f1 / dof
        hi, lo = np.where(g > 0, u, hi), np.where(g > 0, lo, u)
        if np.all((np.abs(g) <= ROOT_TOL) | (hi - lo <= ROOT_TOL)):
            break
        newton = u - g / np.maximum(1.0 - f2 / (dof * u), ROOT_TOL)
        u = np.where((newton > lo) & (newton < hi), newton, 0.5 * (lo + hi))
    else:
        f0, _, f2 = _spectral_sums(log_a, z2, c, np.log(dof * u) - log_scale)
    kappa = np.maximum(f2 / dof, 0.0)
    gamma = (1.0 - u) - u * kappa / np.where(kappa < u, u - kappa, np.inf)
    gamma = np.clip(np.where(kappa < u, gamma, 0.0), 0.0, 1.0 - u)
    return 0.5 * (f0 + dof * (np.log(u) + 1.0 - u)) - 0.25 * np.log1p(-gamma), u


def _corrected_with_jackknife(centred: np.ndarray, log_scale: float) -> tuple[float, np.ndarray]:
    """Corrected value from all ``T`` trials and its ``T`` leave-one-out values (jackknife), from one
    ``p x p`` eigendecomposition: leaving out row ``x_i`` turns the centred scatter ``A`` into
    ``A - T/(T - 1) x_i x_i^T``. Eigenvalues below ``max(a) max(T, p) eps`` count as zero."""
    trials, p = centred.shape
    a, vecs = np.linalg.eigh(centred.T @ centred)
    nonzero = a > np.max(a, initial=0.0) * max(trials, p) * np.finfo(float).eps
    log_a = np.log(a, out=np.full(p, -np.inf), where=nonzero)
    value, root = _corrected_half_logdet(log_a, np.zeros((1, p)), 0.0, trials - 1, log_scale)
    leave_out = np.empty(trials)
    step = max(1, CHUNK_ELEMENTS // p)
    for first in range(0, trials, step):
        z2 = np.where(nonzero, (centred[first : first + step] @ vecs) ** 2, 0.0)
        leave_out[first : first + step], _ = _corrected_half_logdet(
            log_a, z2, trials / (trials - 1), trials - 2, log_scale, start=float(root[0]))
    return float(value[0]), leave_out


def _cube_root_interval(value: float, half: float) -> tuple[float, float, float]:
    """``(value, low, high)``: ``value -+ half`` on the cube-root scale, ``value (1 -+ x)^3`` with
    ``x = half / (3 value)`` (delta method), ``low`` clipped at 0; ``high`` never below ``value + half``
    and ``x`` capped at ``MAX_CUBE_ROOT_X``, beyond which the interval says nothing anyway."""
    if value <= 0.0:
        return 0.0, 0.0, half
    x = half / (3.0 * value)
    return value, value * max(1.0 - x, 0.0) ** 3, max(value * (1.0 + min(x, MAX_CUBE_ROOT_X)) ** 3, value + half)


def _check_memory(trials: int, p: int, n_boot: int) -> None:
    """Refuse, naming the argument, an input whose working memory would exceed ``MAX_WORK_BYTES``."""
    if trials >= p + EXTRA_TRIALS:  # centred copy, rotated rows, p x p scatter and eigenvectors, chunks
        need, name, what = 8 * (3 * trials * p + 3 * p * p + 12 * min(trials * p, CHUNK_ELEMENTS)), "samples", ""
    else:  # centred copy, Gram and one resampled Gram with its temporaries, the resampled rows
        gram, picks = 8 * 4 * trials * trials, 8 * n_boot * trials
        need, what = 8 * 2 * trials * p + gram + picks, f" with n_boot = {n_boot} bootstrap replicates"
        name = "n_boot" if picks > gram else "samples"
    if need > MAX_WORK_BYTES:
        raise ValueError(
            f"{name} too large: samples of shape ({trials}, {p}){what} would need {need / 2**30:.1f} GiB "
            f"of working memory; the limit is {MAX_WORK_BYTES / 2**30:g} GiB"
        )


def _warn_if_low(trials: int, p: int) -> None:
    """``EstimateMayBeLowWarning`` where the estimate may lie below the true value (module docstring)."""
    if trials < p + EXTRA_TRIALS:
        message = (f"samples has {trials} trials for p = {p} parameters: the bias correction needs trials >= p + "
                   f"{EXTRA_TRIALS}; the plug-in returned misses directions of Cov(W) and may lie below the true value")
    elif trials < MIN_TRIALS:
        message = (f"samples has {trials} trials, fewer than {MIN_TRIALS}: the interval fell short of its level in "
                   f"simulation there; the estimate may be low")
    else:
        return
    warnings.warn(message, EstimateMayBeLowWarning, stacklevel=3)


def gaussian_channel_mi(
    samples: np.ndarray,
    noise_std: float,
    rng: np.random.Generator,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
) -> Estimate:  # (trials, p)
    r"""Estimate ``1/2 log det(I + Cov(W)/tau^2)`` in nats from ``T`` trained parameter vectors.

    ``T >= p + 3``: the bias-corrected estimate with a jackknife interval (module docstring);
    ``rng`` and ``n_boot`` are unused and the result is deterministic. ``T < p + 3``: the plug-in
    with its basic bootstrap interval, and an :class:`EstimateMayBeLowWarning`. Assumptions: the
    rows are independent trainings (independent datasets, fresh algorithm randomness, the same
    frozen factors); ``tau`` is the standard deviation of the released Gaussian noise. Source:
    THEORY.md §2 (derived); Cover & Thomas, "Elements of Information Theory", Theorem 8.6.5.

    Parameters
    ----------
    samples : ndarray
        (trials, p) trained parameters, ``trials >= 2``, one row per independent training.
    noise_std : float
        ``tau > 0``, in the parameters' units.
    rng : numpy.random.Generator
        Source of the bootstrap resampling (``trials < p + 3`` only).
    n_boot : int
        Bootstrap replicates, ``>= 1`` (``trials < p + 3`` only).
    confidence : float
        Level of the interval, in ``(0, 1)``.

    Returns
    -------
    Estimate
        ``value``, ``low``, ``high`` in nats; ``draws = trials``.

    Warns
    -----
    EstimateMayBeLowWarning
        When ``trials < p + 3`` or ``trials < MIN_TRIALS`` (100): the estimate may be low.
    """
    x = as_matrix(samples, "samples")
    trials, p = x.shape
    if trials < 2:
        raise ValueError(f"samples must have at least 2 trials (rows) to estimate a covariance, got {trials}")
    tau = as_real(noise_std, "noise_std", positive=True)
    rng = as_generator(rng)
    n_boot = as_int(n_boot, "n_boot", minimum=1)
    level = as_confidence(confidence)
    _check_memory(trials, p, n_boot)
    centred, log_scale = _scaled(x, tau)
    _warn_if_low(trials, p)
    if trials < p + EXTRA_TRIALS:
        value, boot = _plugin_with_bootstrap(centred, log_scale, rng.integers(0, trials, size=(n_boot, trials)))
        low, high = basic_bootstrap_interval(value, boot, level)
        return Estimate(value=value, low=max(low, 0.0), high=max(high, 0.0), draws=trials)
    value, leave_out = _corrected_with_jackknife(centred, log_scale)
    se = float(np.sqrt((trials - 1) / trials * np.sum((leave_out - leave_out.mean()) ** 2)))
    value, low, high = _cube_root_interval(max(value, 0.0), float(stdtrit(trials - 1, 0.5 + level / 2)) * se)
    return Estimate(value=value, low=low, high=high, draws=trials)
