"""The one table of numerical tolerances, keyed by dtype.

``rtol``/``atol`` compare a closed form with an independent float computation of the same
quantity; Monte Carlo comparisons use standard errors instead (``MC_SIGMAS``).
"""

import numpy as np

TOL = {
    np.dtype(np.float64): {"rtol": 1e-8, "atol": 1e-10},
    np.dtype(np.float32): {"rtol": 1e-4, "atol": 1e-5},
}

#: A Monte Carlo mean agrees with its expectation when within this many standard errors.
MC_SIGMAS = 4.0


def tol(dtype=np.float64) -> dict[str, float]:
    """``rtol``/``atol`` keyword arguments for ``numpy.testing.assert_allclose``."""
    return TOL[np.dtype(dtype)]
