"""Numerical tolerances of the toolkit's solvers: when an eigenvalue counts as zero, when a solve warns.

Shared by ``theory``, ``synthetic`` and ``bounds``. ``theory.validation``, whose checks of the
arguments come before any solve, re-exports these names as well.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Relative tolerance (to the largest eigenvalue or singular value) below which one counts as zero.
RANK_RTOL = 1e-10

#: Condition number above which a linear solve warns (``IllConditionedWarning``): about half of
#: the float64 digits of its solution are lost.
COND_WARN = 1e8


class IllConditionedWarning(UserWarning):
    """A linear system was nearly singular; the result comes from a least-squares solve.

    Filter it like any warning, e.g. ``warnings.simplefilter("ignore", IllConditionedWarning)``.
    """


def numerical_rank(eigenvalues: npt.NDArray[np.float64]) -> int:
    """Number of eigenvalues above ``RANK_RTOL`` times the largest one (0 when none is positive).

    The ``rank Σ`` of the exact cases of docs/THEORY.md §1.6 (``asymmetry_gap``) and §1b.4
    (``captured_fraction``).

    Parameters
    ----------
    eigenvalues : (d,) ndarray, finite, e.g. of a validated covariance.

    Returns
    -------
    int in [0, d]
    """
    top = float(np.max(eigenvalues, initial=0.0))
    if top <= 0:
        return 0
    return int(np.count_nonzero(eigenvalues > RANK_RTOL * top))
