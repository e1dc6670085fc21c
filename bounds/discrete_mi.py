r"""Mutual information between discrete variables, estimated from paired samples.

The plug-in estimate is the mutual information of the empirical joint distribution,

.. math:: \hat I = \hat H(X) + \hat H(Y) - \hat H(X, Y),\qquad
          \hat H = \log N - \frac{1}{N}\sum_k c_k \log c_k ,

in nats, from the counts ``c_k`` of ``N`` samples. It is biased upwards: under independence,
``E[hat I] ~ (m_X - 1)(m_Y - 1) / (2N)``. The Miller–Madow correction adds ``(m - 1)/(2N)`` to
each entropy, ``m`` the number of occupied cells, so

.. math:: \hat I_\mathrm{MM} = \hat I + \frac{m_X + m_Y - m_{XY} - 1}{2N}

(Miller, "Note on the bias of information estimates", 1955; Paninski, "Estimation of entropy
and mutual information", Neural Computation 2003). Estimates are clipped at 0,
the least mutual information can be.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from bounds.results import Estimate, basic_bootstrap_interval
from theory.validation import as_generator, as_int, as_real

#: The bias corrections :func:`discrete_mi` offers.
CORRECTIONS = ("miller_madow", "none")


def as_correction(correction: object) -> str:
    """Return ``correction`` if it is one of ``CORRECTIONS``, else raise ``ValueError``.

    ``"miller_madow"`` adds ``(m_X + m_Y - m_XY - 1)/(2N)`` to the plug-in MI, ``"none"`` keeps it
    (module docstring; Miller 1955; docs/THEORY.md §2.6).

    Parameters
    ----------
    correction : object
        The value to check.

    Returns
    -------
    str
        ``correction``.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}; got {correction!r}")
    return str(correction)


def as_confidence(confidence: object) -> float:
    """Return a confidence level strictly between 0 and 1, or raise ``ValueError``.

    The level of every bootstrap interval of ``bounds`` (docs/THEORY.md §2.6).

    Parameters
    ----------
    confidence : object
        A real number in ``(0, 1)``.

    Returns
    -------
    float
    """
    level = as_real(confidence, "confidence")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {level}")
    return level


def symbol_codes(values: np.ndarray, name: str) -> tuple[np.ndarray, int]:  # (N,) or (N, k) -> (N,)
    """Integer codes ``0 .. m-1`` of the distinct values (or rows) of ``values``, and ``m``.

    The alphabet of a plug-in MI (module docstring; docs/THEORY.md §2.6): codes follow the sorted
    order of the distinct values (``np.unique``).

    Parameters
    ----------
    values : ndarray
        (N,) values, or (N, k) rows each taken as one symbol.
    name : str
        The argument named in the ``ValueError`` of a bad array.

    Returns
    -------
    tuple
        ``(codes, m)``: (N,) int64 codes and the alphabet size ``m``.
    """
    try:
        if values.ndim == 1:
            _, codes = np.unique(values, return_inverse=True)
        elif values.ndim == 2:
            _, codes = np.unique(values, axis=0, return_inverse=True)
        else:
            raise ValueError(f"{name} must be 1-D (N,) or 2-D (N, k), got shape {values.shape}")
    except TypeError as exc:  # values that cannot be compared, e.g. an object array of dicts
        raise ValueError(f"{name} must hold comparable discrete values, got dtype {values.dtype}") from exc
    codes = codes.reshape(-1)
    return codes.astype(np.int64), int(codes.max()) + 1


def mi_from_counts(counts: np.ndarray, correction: str = "miller_madow") -> np.ndarray:  # (..., m_x, m_y) -> (...)
    r"""Plug-in (optionally Miller–Madow corrected) MI in nats from contingency tables, clipped at 0.

    ``I^ = H^(X) + H^(Y) - H^(X, Y)`` of the empirical joint law, plus
    ``(m_X + m_Y - m_XY - 1)/(2N)`` with ``"miller_madow"`` (module docstring; Miller 1955,
    Paninski 2003; docs/THEORY.md §2.6). An empty table gives 0.

    Parameters
    ----------
    counts : ndarray
        (..., m_x, m_y) non-negative counts.
    correction : {"miller_madow", "none"}

    Returns
    -------
    ndarray
        (...) MI in nats, ``>= 0``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=(-2, -1))
    safe = np.where(total > 0, total, 1.0)
    joint = xlogy(counts, counts).sum(axis=(-2, -1))
    row = counts.sum(axis=-1)
    col = counts.sum(axis=-2)
    marginal = xlogy(row, row).sum(axis=-1) + xlogy(col, col).sum(axis=-1)
    mi = (joint - marginal) / safe + np.log(safe)
    if correction == "miller_madow":
        occupied = (
            np.count_nonzero(row, axis=-1)
            + np.count_nonzero(col, axis=-1)
            - np.count_nonzero(counts, axis=(-2, -1))
            - 1
        )
        mi = mi + occupied / (2.0 * safe)
    return np.where(total > 0, np.maximum(mi, 0.0), 0.0)


def batched_counts(x_codes: np.ndarray, y_codes: np.ndarray, m_x: int, m_y: int) -> np.ndarray:
    """Contingency tables (B, m_x, m_y) of B paired code sequences (B, N), (B, N) at once.

    ``table[b, i, j] = #{t : x_codes[b, t] = i, y_codes[b, t] = j}``, by one ``np.bincount``: the
    counts behind every plug-in MI of ``bounds`` (module docstring; docs/THEORY.md §2.6).

    Parameters
    ----------
    x_codes, y_codes : ndarray
        (B, N) int codes in ``[0, m_x)`` and ``[0, m_y)``.
    m_x, m_y : int
        Alphabet sizes.

    Returns
    -------
    ndarray
        (B, m_x, m_y) int64 counts.
    """
    batch = x_codes.shape[0]
    flat = (np.arange(batch)[:, None] * m_x + x_codes) * m_y + y_codes
    return np.bincount(flat.ravel(), minlength=batch * m_x * m_y).reshape(batch, m_x, m_y)


def discrete_mi(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    *,
    correction: str = "miller_madow",
    n_boot: int = 200,
    confidence: float = 0.95,
) -> Estimate:  # (N,) or (N, k), (N,) or (N, k)
    r"""Estimate ``I(X; Y)`` in nats from ``N`` i.i.d. pairs of discrete values.

    Point estimate: the plug-in MI with the Miller–Madow correction (module docstring),
    clipped at 0. Interval: basic bootstrap interval at level ``confidence``
    (:func:`~bounds.results.basic_bootstrap_interval`) — the pairs are resampled with
    replacement ``n_boot`` times, the same estimator recomputed, and the quantiles reflected
    about the estimate — clipped at 0. It covers sampling noise and the first-order bias the
    bootstrap can see; with alphabets comparable to ``N`` neither estimate nor interval can
    be trusted.

    Parameters
    ----------
    x, y : ndarray
        (N,) discrete values, or (N, k) rows each taken as one symbol.
    rng : numpy.random.Generator
        Source of the bootstrap resampling.
    correction : {"miller_madow", "none"}
    n_boot : int
        Bootstrap replicates, ``>= 1``.
    confidence : float
        Level of the interval, in ``(0, 1)``.

    Returns
    -------
    Estimate
        ``value``, ``low``, ``high`` in nats and ``draws = N``.
    """
    rng = as_generator(rng)
    correction = as_correction(correction)
    n_boot = as_int(n_boot, "n_boot", minimum=1)
    level = as_confidence(confidence)
    arrays = {}
    for name, value in (("x", x), ("y", y)):
        try:
            arrays[name] = np.asarray(value)
        except (TypeError, ValueError) as exc:  # a ragged nested sequence
            raise ValueError(f"{name} must be a (N,) or (N, k) array of discrete values, got {value!r}") from exc
    x_arr, y_arr = arrays["x"], arrays["y"]
    for name, arr in (("x", x_arr), ("y", y_arr)):
        if arr.ndim not in (1, 2) or arr.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty (N,) or (N, k) array, got shape {arr.shape}")
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite entries")
    if x_arr.shape[0] != y_arr.shape[0]:
        raise ValueError(f"x and y must have the same number of samples, got {x_arr.shape[0]} and {y_arr.shape[0]}")
    x_codes, m_x = symbol_codes(x_arr, "x")
    y_codes, m_y = symbol_codes(y_arr, "y")
    count = x_codes.size
    value = float(mi_from_counts(batched_counts(x_codes[None], y_codes[None], m_x, m_y), correction)[0])
    picks = rng.integers(0, count, size=(n_boot, count))
    boot = mi_from_counts(batched_counts(x_codes[picks], y_codes[picks], m_x, m_y), correction)
    low, high = basic_bootstrap_interval(value, boot, level)
    return Estimate(value=value, low=max(low, 0.0), high=max(high, 0.0), draws=count)
