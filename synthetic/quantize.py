r"""Post-training uniform quantization, so a measured gap belongs to the model Lemma 4.5 bounds.

Lemma 4.5 of Zhu et al. (ICML 2024) bounds ``I(W; S) <= H(W) <= q N`` bits for a model whose
``N`` trained parameters are each stored with ``q`` bits. A float model has no such bound;
quantizing the trained parameters makes the bound apply to exactly the model whose gap is
measured. Each tensor gets one scale, stored as a float32 (``SCALE_BITS`` bits) and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.validation import as_array, as_int, check_magnitude
from theory.variants import check_q_bits

#: Bits spent on each tensor's scale (stored as float32).
SCALE_BITS = 32


@dataclass(frozen=True)
class Quantized:
    """A uniformly quantized stack of tensors, the model whose ``q N`` bits Lemma 4.5 counts.

    Produced by :func:`quantize` (docs/THEORY.md §6, "Quantization"; Lemma 4.5 of Zhu et al.,
    ICML 2024).

    Attributes
    ----------
    values : ndarray
        (trials, *shape) de-quantized parameters, ``symbols * scale``.
    symbols : ndarray
        (trials, *shape) int64 codes in ``[-(2^{q-1} - 1), 2^{q-1} - 1]``.
    scale : ndarray
        (trials,) float32 step size of each trial's tensor.
    q_bits : int
        Bits per entry, ``q``.
    """

    values: np.ndarray
    symbols: np.ndarray
    scale: np.ndarray
    q_bits: int

    @property
    def bits_per_trial(self) -> int:
        r"""Storage of one trial's tensor: ``q`` bits per entry plus the scale.

        .. math:: \text{bits} = q N + 32,

        ``N`` the entries of one trial's tensor and 32 the float32 scale (``SCALE_BITS``): the
        ``storage_bits`` recorded for Lemma 4.5 (docs/THEORY.md §2.2, "What is stored", and §6).
        """
        return self.q_bits * int(np.prod(self.symbols.shape[1:])) + SCALE_BITS


def quantize(params: np.ndarray, q_bits: int) -> Quantized:
    r"""Quantize each trial's tensor to ``q_bits`` bits per entry, symmetric and uniform.

    For a tensor ``w`` the step is ``s = max|w| / (2^{q-1} - 1)`` (rounded to float32) and the
    code of an entry is ``round(w / s)``, clipped to ``[-(2^{q-1}-1), 2^{q-1}-1]``: ``2^q - 1``
    levels, so every code fits in ``q`` bits. An all-zero tensor gets ``s = 0`` and codes 0.
    Source: docs/THEORY.md §6, "Quantization" (a convention of the toolkit), so that the gap is
    measured on the quantized model to which Lemma 4.5 (Zhu et al., ICML 2024) applies.

    Parameters
    ----------
    params : ndarray
        (trials, *shape) trained parameters, one tensor per trial, within the float32 range.
    q_bits : int
        Bits per parameter, ``2 <= q_bits <= 32``.

    Returns
    -------
    Quantized
        ``values`` and ``symbols`` of the shape of ``params``, ``scale`` of shape ``(trials,)``.
    """
    q_bits = check_q_bits(as_int(q_bits, "q_bits", maximum=None))
    arr = as_array(params, "params")  # (trials, *shape), every axis non-empty
    check_magnitude(arr, "params", float(np.finfo(np.float32).max), "the step s is stored as float32")
    levels = 2 ** (q_bits - 1) - 1
    flat = arr.reshape(arr.shape[0], -1)
    peak = np.max(np.abs(flat), axis=1)
    scale = (peak / levels).astype(np.float32)
    safe = np.where(scale > 0, scale.astype(np.float64), 1.0)
    symbols = np.clip(np.rint(flat / safe[:, None]), -levels, levels).astype(np.int64)
    values = symbols * scale.astype(np.float64)[:, None]
    return Quantized(
        values=values.reshape(arr.shape),
        symbols=symbols.reshape(arr.shape),
        scale=scale,
        q_bits=q_bits,
    )
