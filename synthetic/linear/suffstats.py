r"""Exact linear Monte Carlo from the sufficient statistics: no (n, d) data matrix is ever drawn.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.1
(docs/THEORY.md §1): the training objective of every tuning variant,

.. math:: \frac1n \|Y - X M^T\|_F^2 = \frac1n\big(\|Y\|_F^2 - 2\,\mathrm{tr}(M C) + \mathrm{tr}(M W M^T)\big),
          \qquad W = X^T X,\; C = X^T Y,

depends on a training set only through ``(W, C, ‖Y‖²)``, and so do the closed-form fits and, with
eq. (1), the population loss. For Gaussian data (``x ~ N(0, Σ)``, ``y = Δ x + ε``,
``ε ~ N(0, s² I)``) their joint law is known exactly, so a trial can draw them directly:

* ``W = Σ^{1/2} L Lᵀ Σ^{1/2}`` with ``L`` lower triangular, ``L_ii² ~ χ²_{n-i+1}``, ``L_ij ~ N(0, 1)``
  below the diagonal: Bartlett's decomposition of ``Wishart_d(n, Σ)`` (Bartlett 1933; needs
  ``n >= d_in``);
* given ``X``, the columns of ``Xᵀ E`` are ``N(0, s² W)``, i.e. ``Xᵀ E = s K Z`` with ``K = Σ^{1/2} L``
  (``K Kᵀ = W``) and ``Z`` a (d_in, d_out) standard normal matrix; ``C = W Δᵀ + s K Z``;
* ``‖E‖² = ‖P_X E‖² + ‖(I - P_X) E‖² = s² (‖Z‖² + χ²_{(n - d_in) d_out})``, the two parts
  independent, so ``‖Y‖² = tr(Δ W Δᵀ) + 2 s tr(Δ K Z) + ‖E‖² = ‖G‖² + s² χ²_{(n - d_in) d_out}``
  with ``G = Kᵀ Δᵀ + s Z``, and ``C = K G``. (With a singular ``Σ`` the rows of ``Z`` at its null
  directions enter only ``‖Z‖²``, as the extra ``χ²`` degrees of freedom of ``(I - P_X) E`` do.)

A trial costs ``d_in (d_in + 1)/2 + d_in d_out`` normal draws and ``O(d³)`` arithmetic instead of
``n (d_in + d_out)`` draws and ``O(n d²)``; the numbers have the same distribution as the
data-drawing path's (``synthetic.linear.linear_trial_losses`` with ``sampler="data"``), not the
same values (tested: exact algebra of the fits, the law of ``W``, and the mean losses).
"""

from __future__ import annotations

import numpy as np

from synthetic.linear.fit import _top_eigenvectors, update_from
from synthetic.linear.lstsq import _gram_solve
from synthetic.quantize import quantize
from theory.validation import Array



def _sample_sufficient_statistics(
    delta: Array, sigma_eigenvalues: Array, noise_var: float, n: int, rngs: list[np.random.Generator]
) -> tuple[Array, Array, Array]:  # -> W (T, d_in, d_in), C (T, d_in, d_out), ‖Y‖² (T,)
    r"""Draw ``(XᵀX, XᵀY, ‖Y‖²)`` of one training set of ``n`` samples per generator (module docstring).

    Parameters
    ----------
    delta : (d_out, d_in) the task's ``Δ``; sigma_eigenvalues : (d_in,) the diagonal of ``Σ``.
    noise_var : ``s² >= 0``; n : samples per training set, ``n >= d_in`` (checked by the caller).
    rngs : one numpy Generator per trial.
    """
    d_out, d_in = delta.shape
    trials = len(rngs)
    lower = np.zeros((trials, d_in, d_in))
    z = np.empty((trials, d_in, d_out))
    rest = np.zeros(trials)
    rows, cols = np.tril_indices(d_in, -1)
    diag = np.arange(d_in)
    dof = n - diag  # χ² degrees of freedom of L_ii², n - i + 1 for i = 1..d_in
    for t, rng in enumerate(rngs):
        lower[t, diag, diag] = np.sqrt(rng.chisquare(dof))
        normals = rng.standard_normal(rows.size + d_in * d_out)
        lower[t, rows, cols] = normals[: rows.size]
        z[t] = normals[rows.size :].reshape(d_in, d_out)
        if n > d_in:
            rest[t] = rng.chisquare((n - d_in) * d_out)
    k = np.sqrt(sigma_eigenvalues)[:, None] * lower  # K = Σ^{1/2} L, K Kᵀ = W
    g = np.swapaxes(k, 1, 2) @ delta.T + np.sqrt(noise_var) * z  # G = Kᵀ Δᵀ + s Z
    gram = k @ np.swapaxes(k, 1, 2)
    cross = k @ g  # C = W Δᵀ + s K Z
    y_sq = np.sum(g**2, axis=(1, 2)) + noise_var * rest  # tr(ΔWΔᵀ) + 2s tr(ΔKZ) + s²(‖Z‖² + χ²)
    return gram, cross, y_sq


def _fit_variant_gram(
    variant: str, rank: int | None, gram: Array, cross: Array, frozen: Array | None, *, n: int, ridge: float = 0.0
) -> dict[str, Array]:
    r"""The closed-form fits of ``synthetic.linear.fit.fit_variant`` from ``W = XᵀX`` and ``C = XᵀY``.

    ``full``: ``(W + nλI) Mᵀ = C``. ``b_only``: ``(A W Aᵀ + nλI) Bᵀ = A C``. ``lora``: the top-r
    eigenvectors ``V_r`` of ``M̂ W M̂ᵀ + nλ M̂ M̂ᵀ`` (the fitted values' Gram matrix), ``B = V_r``,
    ``A = V_rᵀ M̂``. ``a_only`` with ``W = V diag(w) Vᵀ`` and ``B = U_B diag(b) Pᵀ``:
    ``Aᵀ = V G Pᵀ``, ``G_ij = b_j (Vᵀ C U_B)_ij / (w_i b_j² + nλ)`` (zero where ``w_i b_j² + nλ`` is
    below the least-squares cut-off). Every solve is the normal-equation form of the same
    minimum-norm least squares as ``synthetic.linear.fit`` (``_gram_solve``).

    Parameters
    ----------
    gram : (T, d_in, d_in); cross : (T, d_in, d_out); frozen : A (T, r, d_in) for ``b_only``, B
    (T, d_out, r) for ``a_only``; n : samples per training set; ridge : ``λ >= 0``.
    """
    if variant == "b_only":
        a = frozen
        system = a @ gram @ np.swapaxes(a, 1, 2)
        return {"b": np.swapaxes(_gram_solve(system, a @ cross, n, ridge), 1, 2)}
    if variant == "a_only":
        return {"a": _fit_a_only_gram(gram, cross, frozen, n, ridge)}
    m_hat_t = _gram_solve(gram, cross, n, ridge)  # (T, d_in, d_out)
    if variant == "full":
        return {"m": np.swapaxes(m_hat_t, 1, 2)}
    m_hat = np.swapaxes(m_hat_t, 1, 2)
    fitted = m_hat @ gram @ m_hat_t
    if ridge > 0:
        fitted = fitted + n * ridge * (m_hat @ m_hat_t)
    b = _top_eigenvectors(fitted, rank)
    return {"a": np.swapaxes(b, 1, 2) @ m_hat, "b": b}


def _fit_a_only_gram(gram: Array, cross: Array, b: Array, n: int, ridge: float) -> Array:  # -> (T, r, d_in)
    u_b, b_sv, p_t = np.linalg.svd(b, full_matrices=False)
    if np.any(b_sv[:, -1] ** 2 <= 1e-12 * b_sv[:, 0] ** 2):
        raise ValueError("b must have full column rank: Bᵀ B is singular for some trial")
    if ridge == 0:  # Aᵀ = W⁺ C U_B diag(1/b) Pᵀ
        return np.swapaxes(_gram_solve(gram, (cross @ u_b / b_sv[:, None, :]) @ p_t, n, 0.0), 1, 2)
    w, v = np.linalg.eigh(gram)
    c = np.swapaxes(v, 1, 2) @ cross @ u_b  # (T, d_in, r)
    g = b_sv[:, None, :] * c / (np.clip(w, 0.0, None)[:, :, None] * b_sv[:, None, :] ** 2 + n * ridge)
    return np.swapaxes(v @ g @ p_t, 1, 2)


def _train_losses_gram(gram: Array, cross: Array, y_sq: Array, m: Array, n: int) -> Array:  # -> (T,)
    r"""``‖Y − X Mᵀ‖²/n = (‖Y‖² − 2 tr(M C) + tr(M W Mᵀ))/n`` for updates ``m`` (T, d_out, d_in).

    A squared norm, expanded: an exact fit (zero noise) cancels to round-off, which can fall below
    zero (−1e-15); the loss is clamped at 0.
    """
    cross_term = np.sum(m * np.swapaxes(cross, 1, 2), axis=(1, 2))  # tr(M C)
    quadratic = np.sum((m @ gram) * m, axis=(1, 2))  # tr(M W Mᵀ)
    return np.maximum(y_sq - 2.0 * cross_term + quadratic, 0.0) / n


def _fit_and_losses(
    variant: str, rank: int | None, stats: tuple[Array, Array, Array], frozen: Array | None, *, n: int,
    ridge: float, q_bits: int | None,
) -> tuple[dict[str, Array], Array, Array]:
    """Fit ``variant`` from the statistics, quantize if asked; returns (tensors, update M, train loss)."""
    gram, cross, y_sq = stats
    tensors = _fit_variant_gram(variant, rank, gram, cross, frozen, n=n, ridge=ridge)
    if q_bits is not None:
        tensors = {name: quantize(t, q_bits).values for name, t in tensors.items()}
    m = update_from(variant, tensors, frozen)
    return tensors, m, _train_losses_gram(gram, cross, y_sq, m, n)

