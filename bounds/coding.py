r"""Prefix-code lengths of quantized parameters, and the Occam bound they give.

Lemma 4.5 of Zhu et al. (ICML 2024) uses ``I(W; S) <= H(W) <= q N`` bits: storing each of
``N`` parameters with ``q`` bits is one prefix code for ``W``. Any prefix code does as well —
by Kraft's inequality and Shannon's source-coding theorem ``H(W) <= E[len(W)]`` for every
prefix code — and a code that adapts to the values actually used is much shorter when the
quantized parameters are concentrated on few levels. The same code length, fixed before the
data are seen, prices a hypothesis in an Occam bound that holds with high probability.
"""

from __future__ import annotations

import math

import numpy as np

from bounds.kl import kl_inverse
from bounds.results import HighProbabilityBound
from theory.validation import as_int, as_real

#: When the float ``log2`` of a multinomial is this close (relative) to an integer, the
#: rounding up is decided in exact integer arithmetic instead.
_LOG2_GUARD = 1e-9


def elias_gamma_bits(m: int) -> int:
    """Length of the Elias-gamma code of a positive integer: ``2 floor(log2 m) + 1`` bits.

    Part of the two-part code of :func:`code_length_bits` (docs/THEORY.md §6; Elias, "Universal
    codeword sets and representations of the integers", IEEE Trans. Inf. Theory 1975).

    Parameters
    ----------
    m : int, ``>= 1``.

    Returns
    -------
    int
        The code length in bits.
    """
    return 2 * (int(m).bit_length() - 1) + 1


def _zigzag(v: int) -> int:
    """The bijection ``0, -1, 1, -2, 2, ... -> 0, 1, 2, 3, 4, ...`` of the integers onto N."""
    return 2 * v if v >= 0 else -2 * v - 1


def log2_multinomial(counts: np.ndarray) -> float:  # (K,)
    """``log2( N! / prod_k c_k! )`` with ``N = sum c_k``, in float64 (via ``lgamma``).

    The number of sequences with these symbol counts, the size of the index of enumerative
    coding (docs/THEORY.md §6).

    Parameters
    ----------
    counts : ndarray
        (K,) non-negative symbol counts.

    Returns
    -------
    float
        The base-2 logarithm of the multinomial coefficient.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = float(counts.sum())
    return (math.lgamma(total + 1.0) - float(sum(math.lgamma(c + 1.0) for c in counts))) / math.log(2.0)


def enumerative_bits(counts: np.ndarray) -> int:  # (K,)
    """``ceil(log2(N! / prod_k c_k!))``: bits to index one sequence among those with these counts.

    Part 4 of the code of :func:`code_length_bits` (enumerative coding, Cover, "Enumerative
    source encoding", IEEE Trans. Inf. Theory 1973; docs/THEORY.md §6). The float value of
    :func:`log2_multinomial` is rounded up, in exact integer arithmetic when it is within a
    relative ``1e-9`` of an integer.

    Parameters
    ----------
    counts : ndarray
        (K,) non-negative integer symbol counts.

    Returns
    -------
    int
        The index length in bits.
    """
    log2_m = log2_multinomial(counts)
    bits = math.ceil(log2_m)
    if min(bits - log2_m, log2_m - math.floor(log2_m)) > _LOG2_GUARD * max(1.0, log2_m):
        return bits
    # Too close to an integer to trust float rounding: count exactly.
    total, m = 0, 1
    for c in counts:
        total += int(c)
        m *= math.comb(total, int(c))
    return (m - 1).bit_length()


def code_length_bits(quantized_params: np.ndarray, *, q_bits: int | None = None) -> int:  # any shape
    r"""Length in bits of a fixed two-part prefix code for an array of integer symbols.

    The code (for arrays of a shape known to the decoder, e.g. fixed by the architecture):

    1. ``K``, the number of distinct symbols: Elias gamma, ``2 floor(log2 K) + 1`` bits.
    2. The sorted distinct symbols ``v_1 < ... < v_K``: ``zigzag(v_1) + 1`` and then each gap
       ``v_{k+1} - v_k >= 1``, all in Elias gamma (``zigzag`` maps 0, -1, 1, -2, ... to
       0, 1, 2, 3, ...).
    3. The counts ``c_1 .. c_{K-1}`` in Elias gamma (``c_K = N - sum`` is implied).
    4. The array's index among all arrays with these counts, in
       ``ceil(log2(N! / prod_k c_k!))`` bits (enumerative coding; ``<= N H_emp`` bits, with
       ``H_emp`` the empirical entropy of the symbols in bits).

    With ``q_bits`` given, one leading flag bit chooses the shorter of this code and plain
    ``q``-bit fixed width (two's complement), so the length is at most ``q N + 1``.

    Every part is a prefix code given the parts before it, so the lengths satisfy Kraft's
    inequality over all arrays of the shape. What this bounds: for any random ``W`` of that
    shape, ``H(W) <= E[code_length_bits(W)]`` (Shannon's source-coding theorem), hence
    ``I(W; S) <= E[code_length_bits(W)]`` bits; estimate the expectation by averaging over
    independent trainings. The length of one realization is not a bound on ``H(W)``; it is
    the price of that realization in an Occam bound (:func:`occam_bound`). Scales, frozen
    factors and anything else needed to decode the model are not included.

    Parameters
    ----------
    quantized_params : ndarray of int
        Quantized symbols, any shape, at least one entry, ``|v| < 2^62``.
    q_bits : int, optional
        If given, every symbol must lie in ``[-2^(q-1), 2^(q-1) - 1]`` and the fixed-width
        alternative is offered behind a flag bit.

    Returns
    -------
    int
        Code length in bits.
    """
    try:
        arr = np.asarray(quantized_params)
    except (TypeError, ValueError) as exc:  # a ragged nested sequence
        raise ValueError(f"quantized_params must be an integer array of symbols, got {quantized_params!r}") from exc
    if arr.dtype.kind not in "iu":
        raise ValueError(f"quantized_params must be an integer array of symbols, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"quantized_params must have at least one entry, got shape {arr.shape}")
    lo, hi = int(arr.min()), int(arr.max())
    if max(abs(lo), abs(hi)) >= 2**62:
        raise ValueError(f"quantized_params must satisfy |v| < 2^62, got range [{lo}, {hi}]")
    values, counts = np.unique(arr.ravel(), return_counts=True)
    symbols = [int(v) for v in values]
    header = elias_gamma_bits(len(symbols)) + elias_gamma_bits(_zigzag(symbols[0]) + 1)
    header += sum(elias_gamma_bits(b - a) for a, b in zip(symbols[:-1], symbols[1:]))
    header += sum(elias_gamma_bits(int(c)) for c in counts[:-1])
    two_part = header + enumerative_bits(counts)
    if q_bits is None:
        return two_part
    q_bits = as_int(q_bits, "q_bits", minimum=1)
    # Two's complement width of the range, from bit lengths: no power of two as large as q_bits is built.
    needed = 1 + max(hi.bit_length() if hi > 0 else 0, (-lo - 1).bit_length() if lo < 0 else 0)
    if needed > q_bits:
        raise ValueError(
            f"quantized_params range [{lo}, {hi}] does not fit q_bits = {q_bits}: it needs {needed} bits "
            f"(two's complement [{-(2 ** (q_bits - 1))}, {2 ** (q_bits - 1) - 1}])"
        )
    return 1 + min(two_part, q_bits * arr.size)


def occam_bound(
    train_loss: float,
    code_bits: float,
    n: int,
    delta: float,
    *,
    search_bits: float = 0.0,
) -> HighProbabilityBound:
    r"""Occam bound in kl form: with probability ``>= 1 - delta`` over ``S``, for every hypothesis,

    .. math::

        L_\mu(h) \le \mathrm{kl}^{-1}_{+}\!\left(\hat L_S(h),\;
        \frac{(\ell(h) + b_\mathrm{search}) \ln 2 + \ln(1/\delta)}{n}\right).

    ``l(h)`` is the length in bits of ``h`` under a prefix code fixed before ``S`` is drawn
    (e.g. :func:`code_length_bits` of its quantized parameters plus the bits of its scales);
    frozen factors drawn independently of ``S`` may be treated as fixed. ``search_bits``
    (``log2`` of the number of configurations tried, e.g. ranks times learning rates times
    ``q``) pays for choosing among separately coded hypothesis families after seeing ``S``.

    Proof sketch: for one ``h`` and i.i.d. losses in ``[0, 1]``, Chernoff's bound gives
    ``P(kl(hat L || L) >= c, hat L < L) <= exp(-n c)`` (Bernoulli variables have the largest
    moment-generating function among ``[0, 1]`` variables with a given mean, Maurer 2004); a
    union bound with weights ``2^{-l(h)}`` (Kraft) gives the statement. Sources: Langford,
    "Tutorial on practical prediction theory for classification" (JMLR 2005), Section 4
    (the Occam's razor bound, stated there with the exact binomial tail, of which this kl
    form is the Chernoff relaxation); McAllester, "Some PAC-Bayesian
    theorems" (1999), for the code-length prior. Units: bits in, nats in the budget, loss units
    out.

    Parameters
    ----------
    train_loss : float
        ``hat L_S(h)`` in ``[0, 1]``, the mean loss of ``h`` on its ``n`` training samples.
    code_bits : float
        ``l(h) >= 0``.
    n : int
        Number of training samples, ``>= 1``.
    delta : float
        Failure probability in ``(0, 1)``.
    search_bits : float
        ``>= 0``.

    Returns
    -------
    HighProbabilityBound
    """
    train_loss = as_real(train_loss, "train_loss", minimum=0.0, maximum=1.0)
    code_bits = as_real(code_bits, "code_bits", minimum=0.0)
    n = as_int(n, "n", minimum=1)
    delta = as_real(delta, "delta", positive=True)
    if delta >= 1.0:
        raise ValueError(f"delta must be < 1, got {delta}")
    search_bits = as_real(search_bits, "search_bits", minimum=0.0)
    budget = ((code_bits + search_bits) * math.log(2.0) + math.log(1.0 / delta)) / n
    value = kl_inverse(train_loss, budget, side="upper")
    return HighProbabilityBound(value=value, budget_nats=budget, delta=delta, vacuous=value >= 1.0)
