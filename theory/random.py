"""Uniform (Haar) random frozen factors on the Stiefel manifold."""

from __future__ import annotations

import numpy as np

from theory.validation import Array, as_generator, as_int, check_memory


def haar_stiefel(d: int, r: int, rng: np.random.Generator, *, draws: int | None = None) -> Array:
    r"""Draw ``Q`` uniformly (Haar) from the Stiefel manifold ``St(d, r)``.

    ``Q = G R^{-1}`` from the QR factorisation of a standard Gaussian ``G`` (d, r), with the
    signs of ``diag(R)`` fixed to be positive. Plain QR is not Haar: LAPACK's sign convention
    biases the columns; fixing the signs makes ``Q`` the unique orthonormal factor with a
    positive-diagonal ``R``, whose law is invariant under left rotations (Mezzadri, "How to
    generate random matrices from the classical compact groups", 2007; docs/THEORY.md §0).

    Zhu et al. (ICML 2024), Section 4.1, freeze A as ``Q^T`` and B as ``U`` with Q, U Haar.

    Parameters
    ----------
    d, r : int
        Ambient dimension and number of columns, ``1 <= r <= d``.
    rng : numpy.random.Generator
    draws : int, optional
        Number of independent draws; when given, a leading axis of that length is added.

    Returns
    -------
    ndarray
        (d, r), or (draws, d, r), with orthonormal columns: ``Q^T Q = I_r``.
    """
    d = as_int(d, "d", minimum=1)
    r = as_int(r, "r", minimum=1)
    if r > d:
        raise ValueError(f"r {r} exceeds d = {d}: a d x r matrix has at most d orthonormal columns")
    rng = as_generator(rng)
    _check_matrix_memory(d, r)
    if draws is not None:
        draws = as_int(draws, "draws", minimum=1)
        _check_stack_memory(d, r, draws)
    return _haar_stiefel(d, r, rng, draws)


def _check_matrix_memory(d: int, r: int) -> None:
    """``ValueError`` naming ``d`` when one (d, r) draw exceeds ``theory.validation.MAX_BYTES``."""
    check_memory(d * r, "d", d, f"a {d} x {r} matrix")


def _check_stack_memory(d: int, r: int, draws: int) -> None:
    """``ValueError`` naming ``draws`` when ``draws`` (d, r) draws exceed ``theory.validation.MAX_BYTES``."""
    check_memory(draws * d * r, "draws", draws, f"{draws} draws of a {d} x {r} matrix")


def _check_draws_memory(d: int, r: int, draws: int) -> None:
    """The memory checks of ``haar_stiefel(d, r, rng, draws=draws)``, for callers of ``_haar_stiefel``."""
    _check_matrix_memory(d, r)
    _check_stack_memory(d, r, draws)


def _haar_stiefel(d: int, r: int, rng: np.random.Generator, draws: int | None) -> Array:
    """``haar_stiefel`` of checked arguments whose memory has been checked."""
    gauss = rng.standard_normal((d, r) if draws is None else (draws, d, r))
    q, upper = np.linalg.qr(gauss)
    signs = np.sign(np.diagonal(upper, axis1=-2, axis2=-1))
    signs[signs == 0] = 1.0
    return q * signs[..., None, :]
