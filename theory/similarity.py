r"""Subspace similarity of learned factors (Zhu et al., ICML 2024, Figure 1 and Appendix A)."""

from __future__ import annotations

import numpy as np

from theory.linear import _orthonormal_basis
from theory.validation import Array, as_matrix

SIDES = ("col", "row")


def cca_similarity(m1: Array, m2: Array, side: str) -> float:
    r"""CCA goodness of fit between the column (or row) spaces of two factors.

    With ``U_1`` (rank ``r_1``) and ``U_2`` (rank ``r_2``) orthonormal bases of the two spaces,

    .. math:: \rho(M_1, M_2) = \frac{\|U_1^T U_2\|_F^2}{\min(r_1, r_2)} \in [0, 1],

    the mean squared canonical correlation over the smaller space (docs/THEORY.md §3; the paper's
    Figure 1 and Appendix A compare learned factors with it). It is invariant to the
    reparametrisation ``BA = (BC)(C^{-1}A)``: use ``side="col"`` for output maps ``B``
    (d_out, r) and ``side="row"`` for feature extractors ``A`` (r, d_in).

    Parameters
    ----------
    m1, m2 : 2-D arrays with the same number of rows (``side="col"``) or columns (``"row"``);
        torch tensors of any float dtype (bf16 and fp16 included, requiring grad or not) are
        read as float64.
    side : {"col", "row"}

    Returns
    -------
    float in [0, 1]; 1 when one space contains the other.
    """
    if not isinstance(side, str) or side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    a = as_matrix(m1, "m1")
    b = as_matrix(m2, "m2")
    shapes = (a.shape, b.shape)
    if side == "row":
        a, b = a.T, b.T
    if a.shape[0] != b.shape[0]:
        axis = "rows" if side == "col" else "columns"
        raise ValueError(
            f"m1 and m2 must have the same number of {axis} for side={side!r}, "
            f"got shapes {shapes[0]} and {shapes[1]}"
        )
    u1, u2 = _orthonormal_basis(a), _orthonormal_basis(b)
    for name, u in (("m1", u1), ("m2", u2)):  # the one check that needs the bases
        if u.shape[1] == 0:
            raise ValueError(f"{name} is zero: its {side} space is empty")
    return _cca_similarity(u1, u2)


def _cca_similarity(u1: Array, u2: Array) -> float:
    """``ρ`` of two orthonormal bases (d, r_1) and (d, r_2), ``r_1, r_2 >= 1``; clipped to [0, 1] (round-off)."""
    value = float(np.sum((u1.T @ u2) ** 2)) / min(u1.shape[1], u2.shape[1])
    return min(max(value, 0.0), 1.0)
