r"""Batched least squares for every trial at once: the solver under the closed-form fits.

``lstsq_batched`` minimises ``‖Y − X G‖²/n + λ‖G‖²`` per trial from the data (normal equations
by Cholesky when every trial is well conditioned, else the SVD pseudo-inverse, the minimum-norm
solution with ``numpy.linalg.lstsq``'s cut-off); ``_gram_solve`` does the same from the sufficient
statistics ``XᵀX`` and ``XᵀY`` (``synthetic.linear.suffstats``). The fits of the four tuning variants
(``synthetic.linear.fit``) are built on them. Singular or ill-conditioned systems never produce NaN;
with ``λ = 0`` an ill-conditioned design raises an ``IllConditionedWarning``.
"""

from __future__ import annotations

import functools
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from theory.validation import COND_WARN, Array, IllConditionedWarning, as_array, as_real, checked_finite

#: Largest bound on the condition number of ``XᵀX + nλI`` (every trial) at which least squares
#: is solved through the normal equations rather than the SVD (relative error about
#: ``cond · eps``, at most about 2e-10 here: 1e6 times float64's eps of 2.2e-16).
NORMAL_EQUATIONS_COND = 1e6


def xy_arrays(x: object, y: object) -> tuple[Array, Array]:
    """Validated (T, n, p) inputs and (T, n, q) targets with matching leading axes.

    Infrastructure: the check at the door of every closed-form fit (``synthetic.linear.fit``,
    docs/THEORY.md §7.1); a wrong shape or a non-finite entry is a ``ValueError`` naming ``x`` or
    ``y``.

    Returns
    -------
    x : (T, n, p) float64; y : (T, n, q) float64.
    """
    x_ = as_array(x, "x", (None, None, None))
    y_ = as_array(y, "y", (x_.shape[0], x_.shape[1], None))
    return x_, y_


def _warn_if_ill_conditioned(s: Array, n_rows: int, n_cols: int, name: str) -> None:
    """Warn when, in some trial, the singular values ``s`` (T, k) kept by the lstsq cut-off span
    a condition number of ``name``ᵀ``name`` above ``COND_WARN``."""
    top = s[:, 0]
    kept = np.where(s > max(n_rows, n_cols) * np.finfo(np.float64).eps * top[:, None], s, np.inf)
    ratio = np.divide(top, kept.min(axis=1), out=np.zeros_like(top), where=np.isfinite(kept.min(axis=1)))
    if np.any(ratio**2 > COND_WARN):
        warnings.warn(
            f"{name} is ill-conditioned in some trial (condition number of its Gram matrix above "
            f"{COND_WARN:.0e}): the fit is the least-squares solution through the SVD pseudo-inverse, "
            f"which amplifies noise along the weak directions; ridge > 0 regularises it",
            IllConditionedWarning,
            stacklevel=3,
        )


def _svd_filter(s: Array, n_rows: int, n_cols: int, ridge: float) -> Array:
    """``1/s`` above the lstsq cut-off (0 below) when ``ridge == 0``; ``s/(s² + nλ)`` otherwise."""
    if ridge > 0:
        return s / (s**2 + n_rows * ridge)
    cutoff = max(n_rows, n_cols) * np.finfo(np.float64).eps * s[..., :1]
    keep = s > cutoff
    return np.divide(1.0, s, out=np.zeros_like(s), where=keep)


@checked_finite("x", "y", "ridge")
def lstsq_batched(x: Array, y: Array, *, ridge: float = 0.0) -> Array:  # (T, n, p), (T, n, q) -> (T, p, q)
    r"""Minimum-norm least squares (or ridge) for every trial: ``argmin_G ‖Y − X G‖²/n + λ‖G‖²``.

    .. math:: G = V \,\mathrm{diag}(f(s))\, U^T Y, \qquad X = U\,\mathrm{diag}(s)\,V^T,

    with ``f(s) = 1/s`` (zero below the cut-off of ``numpy.linalg.lstsq``) for ``λ = 0``, the
    pseudo-inverse solution, and ``f(s) = s/(s² + nλ)`` for ridge. With ``λ = 0``, a design whose
    kept singular values give ``XᵀX`` a condition number above ``COND_WARN`` in some trial
    raises an ``IllConditionedWarning`` (the solution is still the least-squares one). The
    solver under every exact fit: docs/THEORY.md §7.1 ("rank-deficient systems get the
    minimum-norm least-squares solution (never NaN)"; ridge: ``(XᵀX + nλI)⁻¹XᵀY``).

    Parameters
    ----------
    x : (T, n, p) design; y : (T, n, q) targets; ridge : float, ``λ >= 0``.

    Returns
    -------
    (T, p, q)
    """
    x_, y_ = xy_arrays(x, y)
    ridge = as_real(ridge, "ridge", minimum=0.0)
    return solve_lstsq(x_, y_, ridge, "x")


def solve_lstsq(x: Array, y: Array, ridge: float, name: str) -> Array:
    """``lstsq_batched`` on validated (T, n, p) and (T, n, q) arrays; ``name`` is the design's name in warnings.

    When ``n >= p``, each trial whose system matrix ``XᵀX + nλI`` has a condition number at most
    ``NORMAL_EQUATIONS_COND`` is solved through the normal equations (a (p, p) solve instead of an
    (n, p) SVD; relative error about ``cond · eps``, at most about 2e-10 there). The other trials,
    and every trial when ``n < p``, get the SVD pseudo-inverse of :func:`lstsq_batched`. The route
    is chosen per trial and every step is one LAPACK or BLAS call per trial matrix, so a trial's
    solution does not depend on the other trials solved with it (README, "Reproducibility"). The
    solution of docs/THEORY.md §7.1 (minimum-norm least squares, or ridge).

    Returns
    -------
    (T, p, q) the solution ``G``.
    """
    n_rows, n_cols = x.shape[1], x.shape[2]
    out = np.zeros((x.shape[0], n_cols, y.shape[2]))
    rest = np.ones(x.shape[0], dtype=bool)
    if n_rows >= n_cols:
        xt = np.swapaxes(x, 1, 2)
        system = xt @ x
        if ridge > 0:
            system[:, np.arange(n_cols), np.arange(n_cols)] += n_rows * ridge
        direct, out = _normal_solve(system, xt @ y)
        rest = ~direct
    if np.any(rest):
        x_rest = x[rest]
        u, s, vt = np.linalg.svd(x_rest, full_matrices=False)
        if ridge == 0:
            _warn_if_ill_conditioned(s, n_rows, n_cols, name)
        f = _svd_filter(s, n_rows, n_cols, ridge)
        out[rest] = np.swapaxes(vt, 1, 2) @ (f[..., None] * (np.swapaxes(u, 1, 2) @ y[rest]))
    return out


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS and OpenMP libraries, found once (a scan of the loaded libraries)."""
    return ThreadpoolController()


def by_trial_parts(fn: Callable[..., Array], *stacked: Array) -> Array:
    """``fn(*stacked)`` computed on consecutive parts of the trials (axis 0) in parallel threads, one
    part per thread of the toolkit's setting (``torch.get_num_threads()``, which
    ``synthetic.workers.limit_threads`` sets), and concatenated.

    ``fn`` must compute each trial on its own (NumPy's stacked ``linalg`` and ``matmul`` call LAPACK
    and BLAS once per trial matrix), so the parts change no number (README, "Reproducibility");
    NumPy releases the GIL in those calls, so the threads run them at once, each with one BLAS
    thread (the trials' matrices are small).
    """
    parts = min(len(stacked[0]), torch.get_num_threads())
    if parts <= 1:
        return fn(*stacked)
    bounds = np.linspace(0, len(stacked[0]), parts + 1).astype(int)
    with _blas().limit(limits=1, user_api="blas"), ThreadPoolExecutor(parts) as pool:
        out = list(pool.map(lambda i: fn(*(s[bounds[i]:bounds[i + 1]] for s in stacked)), range(parts)))
    return np.concatenate(out)


def _normal_solve(system: Array, rhs: Array) -> tuple[Array, Array]:  # (T,p,p), (T,p,q) -> (T,) bool, (T,p,q)
    r"""``system⁻¹ rhs`` for every trial whose ``system`` is finite, positive definite and well
    conditioned; returns which trials those are and their solutions (zeros for the others).

    With ``system = L Lᵀ`` (Cholesky), ``cond₂(system) <= ‖L‖_F² ‖L⁻¹‖_F²``; a trial passes when
    this bound is at most ``NORMAL_EQUATIONS_COND``, and its solution is ``L⁻ᵀ (L⁻¹ rhs)``, with
    relative error about ``cond · eps``. Each trial's factor and inverse are LAPACK calls on its own
    matrix, so neither the answer nor the solution of a trial depends on the others.
    """
    ok = np.all(np.isfinite(system), axis=(1, 2))
    chol = np.zeros_like(system)
    try:
        chol = by_trial_parts(np.linalg.cholesky, system) if ok.all() else _cholesky_where(system, ok)
    except np.linalg.LinAlgError:  # some trial is not positive definite: find which, one by one
        for t in np.flatnonzero(ok):
            try:
                chol[t] = np.linalg.cholesky(system[t])
            except np.linalg.LinAlgError:
                ok[t] = False
    solved = np.zeros(rhs.shape)
    if not np.any(ok):
        return ok, solved
    every = bool(np.all(ok))
    chol_ok = chol if every else chol[ok]
    both = by_trial_parts(_bound_and_solution, chol_ok, rhs if every else rhs[ok])  # (k, p, q + 1)
    bound, solution = both[:, 0, -1], both[:, :, :-1]
    good = bound <= NORMAL_EQUATIONS_COND
    ok[ok] = good
    solved[ok] = solution[good]
    return ok, solved


def _cholesky_where(system: Array, ok: Array) -> Array:  # (T,p,p), (T,) bool -> (T,p,p), zeros elsewhere
    chol = np.zeros_like(system)
    chol[ok] = by_trial_parts(np.linalg.cholesky, system[ok])
    return chol


def _bound_and_solution(chol: Array, rhs: Array) -> Array:  # (k,p,p), (k,p,q) -> (k,p,q+1)
    """``[L⁻ᵀ L⁻¹ rhs | b]`` per trial, the last column holding ``b = ‖L‖_F² ‖L⁻¹‖_F²`` in its first row."""
    inverse = np.linalg.inv(chol)
    out = np.zeros((*rhs.shape[:2], rhs.shape[2] + 1))
    out[:, :, :-1] = np.swapaxes(inverse, 1, 2) @ (inverse @ rhs)
    out[:, 0, -1] = np.sum(chol**2, axis=(1, 2)) * np.sum(inverse**2, axis=(1, 2))
    return out


def _gram_solve(system: Array, rhs: Array, n_rows: int, ridge: float) -> Array:  # (T,p,p), (T,p,q) -> (T,p,q)
    r"""Least squares in normal-equation form: ``G = (XᵀX + nλI)⁺ XᵀY`` from ``system = XᵀX``, ``rhs = XᵀY``.

    A direct solve for each trial whose system has a condition number at most
    ``NORMAL_EQUATIONS_COND`` (chosen per trial, as in :func:`solve_lstsq`); for the others the
    pseudo-inverse through ``eigh``, with eigenvalues below
    ``max(n, p) · eps · w_max`` treated as zero (what the Gram matrix can resolve; the minimum-norm
    solution of ``solve_lstsq``'s SVD route up to that cut-off) and, with ``λ = 0``, an
    ``IllConditionedWarning`` when the kept eigenvalues span more than ``COND_WARN``.
    """
    p = system.shape[1]
    if ridge > 0:
        system = system + n_rows * ridge * np.eye(p)
    direct, out = _normal_solve(system, rhs)
    rest = ~direct
    if not np.any(rest):
        return out
    system, rhs = system[rest], rhs[rest]
    w, v = np.linalg.eigh((system + np.swapaxes(system, 1, 2)) / 2)
    keep = w > max(n_rows, p) * np.finfo(np.float64).eps * w[:, -1:]
    smallest_kept = np.where(keep, w, np.inf).min(axis=1)
    if ridge == 0 and np.any(w[:, -1] > COND_WARN * smallest_kept):
        warnings.warn(
            f"x is ill-conditioned in some trial (condition number of its Gram matrix above {COND_WARN:.0e}): "
            f"the fit is the least-squares solution through the pseudo-inverse of XᵀX, which amplifies noise "
            f"along the weak directions; ridge > 0 regularises it",
            IllConditionedWarning,
            stacklevel=3,
        )
    inv = np.divide(1.0, w, out=np.zeros_like(w), where=keep)
    out[rest] = v @ (inv[:, :, None] * (np.swapaxes(v, 1, 2) @ rhs))
    return out
