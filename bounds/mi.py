r"""Mutual-information generalization bounds for sub-Gaussian losses (Section 4.2).

All mutual informations are in nats. A loss ``l(w, Z)`` is ``sigma``-sub-Gaussian under
``Z ~ mu`` when ``log E exp(t (l - E l)) <= t^2 sigma^2 / 2`` for every real ``t``; the bounds
then control the expected generalization gap ``gen = E[L_mu(W) - L_S(W)]`` in the loss's own
units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bounds.params import trainable_params, trained_tensors
from theory.validation import as_array, as_int, as_real


def subgaussian_sigma(low: float, high: float) -> float:
    r"""Sub-Gaussian parameter of a loss with values in ``[low, high]``: ``(high - low) / 2``.

    Hoeffding's lemma: a random variable with values in ``[a, b]`` is ``(b - a)/2``-sub-Gaussian.
    Zhu et al. (ICML 2024), Section 4.2, use it for bounded losses. Units: those of the loss.

    Parameters
    ----------
    low, high : float
        The loss range, ``low < high``.

    Returns
    -------
    float
        ``sigma = (high - low) / 2``, in loss units.
    """
    low = as_real(low, "low")
    high = as_real(high, "high")
    if high <= low:
        raise ValueError(f"high must exceed low, got low={low}, high={high}")
    return (high - low) / 2


def xu_raginsky(mi_nats: float, sigma: float, n: int) -> float:
    r"""Xu–Raginsky bound ``|gen| <= sqrt(2 sigma^2 I(W; S) / n)``.

    Assumptions: the training set ``S`` has ``n`` i.i.d. samples and ``l(w, Z)`` is
    ``sigma``-sub-Gaussian under ``Z ~ mu`` for every ``w``. Source: Xu & Raginsky,
    "Information-theoretic analysis of generalization capability of learning algorithms"
    (NeurIPS 2017), Theorem 1; Lemma 4.4 of Zhu et al. (ICML 2024).

    Parameters
    ----------
    mi_nats : float
        ``I(W; S)`` in nats, ``>= 0``.
    sigma : float
        Sub-Gaussian parameter, ``> 0``, in the loss's units.
    n : int
        Number of training samples, ``>= 1``.

    Returns
    -------
    float
        Bound on ``|gen|``, in the loss's units.
    """
    mi_nats = as_real(mi_nats, "mi_nats", minimum=0.0)
    sigma = as_real(sigma, "sigma", positive=True)
    n = as_int(n, "n", minimum=1)
    return sigma * math.sqrt(2.0 * mi_nats / n)


def individual_sample_bound(mi_nats_per_sample: Sequence[float] | float, sigma: float, n: int) -> float:  # (n,)
    r"""Individual-sample bound ``|gen| <= (1/n) sum_i sqrt(2 sigma^2 I(W; Z_i))``.

    Assumptions: ``n`` i.i.d. samples, ``l(w, Z)`` ``sigma``-sub-Gaussian for every ``w``.
    Source: Bu, Zou & Veeravalli, "Tightening mutual information based bounds on
    generalization error" (IEEE JSAIT 2020). By Cauchy–Schwarz and, for
    independent samples, ``sum_i I(W; Z_i) <= I(W; S)``, it is never looser than
    :func:`xu_raginsky` and is finite even where ``I(W; S)`` is infinite.

    Parameters
    ----------
    mi_nats_per_sample : array_like (n,) or float
        ``I(W; Z_i)`` in nats for each sample, each ``>= 0``; a single number means the same
        value for every sample (the case of a permutation-invariant algorithm).
    sigma : float
        Sub-Gaussian parameter, ``> 0``.
    n : int
        Number of training samples, ``>= 1``; must match the length of the array.

    Returns
    -------
    float
        Bound on ``|gen|``, in the loss's units.
    """
    sigma = as_real(sigma, "sigma", positive=True)
    n = as_int(n, "n", minimum=1)
    try:
        scalar = np.ndim(mi_nats_per_sample) == 0
    except ValueError:  # a ragged nested sequence: as_array below names it
        scalar = False
    if scalar:  # the same MI for every sample: the mean of n equal terms, in O(1)
        return sigma * math.sqrt(2.0 * as_real(mi_nats_per_sample, "mi_nats_per_sample", minimum=0.0))
    else:
        mi = as_array(mi_nats_per_sample, "mi_nats_per_sample")
        if mi.shape != (n,):
            raise ValueError(f"mi_nats_per_sample must have shape ({n},) to match n = {n}, got {mi.shape}")
        if np.any(mi < 0):
            raise ValueError(f"mi_nats_per_sample must be >= 0, got minimum {float(mi.min())}")
    return sigma * math.sqrt(2.0) * float(np.mean(np.sqrt(mi)))


def lora_mi_nats(
    variant: str, layers: Sequence[tuple[int, int]], rank: int | None, q_bits: int, *, scale_bits: int = 0
) -> float:
    r"""Lemma 4.5's bound on ``I(W; S)`` in nats: ``(q N + scale_bits · K) ln 2``.

    ``I(W; S) <= H(stored model) <=`` its length in bits. Each of the ``N`` trained parameters
    (:func:`~bounds.params.trainable_params`) is stored with ``q`` bits on a grid fixed before
    the data (the paper's count, ``scale_bits = 0``); a quantizer that picks its step from the
    trained values also stores that step, ``scale_bits`` per trained tensor (``K`` tensors,
    :func:`~bounds.params.trained_tensors`; ``synthetic.quantize`` stores a float32, so
    ``scale_bits = 32`` describes its output exactly). Frozen factors drawn independently of
    ``S`` carry no information about it (``I((A, B); S) = I(B; S | A)`` for ``b_only``).
    Source: Zhu et al. (ICML 2024), Lemma 4.5; docs/THEORY.md §2.2.

    Parameters
    ----------
    variant, layers, rank
        As in :func:`~bounds.params.trainable_params`.
    q_bits : int
        Bits per stored trained parameter, ``>= 1``.
    scale_bits : int, keyword-only
        Bits stored per trained tensor besides its parameters, in [0, 64]; 0 (default) is the
        paper's formula.

    Returns
    -------
    float
        Upper bound on ``I(W; S)`` in nats.
    """
    q_bits = as_int(q_bits, "q_bits", minimum=1)
    scale_bits = as_int(scale_bits, "scale_bits", minimum=0)
    if scale_bits > 64:
        raise ValueError(f"scale_bits must be <= 64 (a float64 scale), got {scale_bits}")
    bits = q_bits * trainable_params(variant, layers, rank)
    if scale_bits:
        bits += scale_bits * trained_tensors(variant, layers)
    return bits * math.log(2.0)


def lora_mi_bound(
    variant: str,
    layers: Sequence[tuple[int, int]],
    rank: int | None,
    q_bits: int,
    sigma: float,
    n: int,
    *,
    scale_bits: int = 0,
) -> float:
    r"""Lemma 4.5: ``|gen| <= sqrt(2 sigma^2 ln2 q N / n)`` for a tuning variant.

    ``N`` is the variant's trained-parameter count (``r sum (d_in + d_out)`` for ``lora``,
    ``r sum d_out`` for ``b_only``, ``r sum d_in`` for ``a_only``, ``sum d_in d_out`` for
    ``full``). Assumptions: ``n`` i.i.d. samples; the loss is ``sigma``-sub-Gaussian for every
    weight; each trained parameter is stored with ``q`` bits; frozen factors are drawn
    independently of the data. For square layers the ``b_only`` bound is exactly ``sqrt(2)``
    smaller than ``lora``'s, so ``b_only`` at rank ``2r`` has ``lora``'s bound at rank ``r``.
    Units: the MI enters in nats (``q N`` bits times ``ln 2``); the bound is in the loss's units.
    With ``scale_bits`` the stored bits also count that many per trained tensor (the step of a
    data-dependent quantizer; :func:`lora_mi_nats`), which the figures use (``scale_bits=32``).
    Source: Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024),
    Lemma 4.5, with Lemma 4.4 (Xu & Raginsky 2017).

    Parameters
    ----------
    variant : {"full", "lora", "b_only", "a_only"}
    layers : sequence of (d_out, d_in)
    rank : int or None
        LoRA rank (unused by ``full``).
    q_bits : int
        Bits per trained parameter, ``>= 1``.
    sigma : float
        Sub-Gaussian parameter of the loss, ``> 0``.
    n : int
        Number of training samples, ``>= 1``.
    scale_bits : int, keyword-only
        Bits stored per trained tensor besides its parameters; 0 (default) is the paper's formula.

    Returns
    -------
    float
        Bound on ``|gen|``, in the loss's units.
    """
    return xu_raginsky(lora_mi_nats(variant, layers, rank, q_bits, scale_bits=scale_bits), sigma, n)
