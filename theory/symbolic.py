r"""Symbolic checks, with sympy, of the identities behind Section 4.1.

For small symbolic dimensions (every entry of ``Δ``, ``Σ``, ``A`` and ``B`` a free symbol,
``Σ`` symmetric) this module derives:

* the stationarity conditions behind Lemma 4.1 (``∂L/∂B = −2(Δ − BA)ΣAᵀ = 0`` at ``B*``) and
  Lemma 4.2 (``∂L/∂A = −2Bᵀ(Δ − BA)Σ = 0`` at ``A*``), by differentiating eq. (1) entrywise;
* the loss formulas (2) and (3), as ``L(B* A)`` and ``L(B A*)`` simplified against the
  closed forms;
* with an output metric ``G`` (eq. (1G), docs/THEORY.md §1b): ``A* = (BᵀGB)⁻¹BᵀGΔ`` is
  stationary (``∂L_G/∂A = −2BᵀG(Δ − BA)Σ = 0``) and ``B* = ΔΣAᵀ(AΣAᵀ)⁻¹`` stays stationary;
* ``E_U[U Uᵀ] = (r/d) I`` for ``r = 1`` and ``d ∈ {2, 3}``, by integrating over the sphere in
  polar and spherical coordinates.

Eq. (1) is a convex quadratic in ``B`` (Hessian ``2 AΣAᵀ ⊗ I ⪰ 0``) and in ``A`` (Hessian
``2 Σ ⊗ BᵀB ⪰ 0``), so a stationary point is a global minimiser: the stationarity identities
prove the lemmas at these dimensions. ``verify()`` runs every derivation. The public functions
check their dimensions (``ValueError`` for a size below 1 or a rank above ``min(d_in, d_out)``,
where the derivation would be vacuous or singular) and call their unchecked cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from theory.validation import as_int, as_rank


@dataclass(frozen=True)
class Identity:
    """One symbolic identity and whether sympy proved it (the difference simplified to 0)."""

    name: str
    statement: str
    holds: bool


def _matrix(prefix: str, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{prefix}{i}{j}", real=True))


def _covariance(d: int) -> sp.Matrix:
    return sp.Matrix(d, d, lambda i, j: sp.Symbol(f"sigma{min(i, j)}{max(i, j)}", real=True))


def _loss(delta: sp.Matrix, m: sp.Matrix, sigma: sp.Matrix, s2: sp.Symbol,
          metric: sp.Matrix | None = None) -> sp.Expr:
    """Eq. (1), or eq. (1G) with ``metric``: ``s² Tr G + Tr[G (Δ − M) Σ (Δ − M)ᵀ]``."""
    resid = delta - m
    if metric is None:
        return delta.shape[0] * s2 + (resid * sigma * resid.T).trace()
    return s2 * metric.trace() + (metric * resid * sigma * resid.T).trace()


def _is_zero(expr: sp.Expr | sp.Matrix) -> bool:
    if isinstance(expr, sp.MatrixBase):
        return all(sp.simplify(sp.cancel(e)) == 0 for e in expr)
    return sp.simplify(sp.cancel(expr)) == 0


def _gradient(loss: sp.Expr, factor: sp.Matrix) -> sp.Matrix:
    return factor.applyfunc(lambda x: sp.diff(loss, x))


def _as_dims(d_out: object, d_in: object, rank: object) -> tuple[int, int, int]:
    """Checked ``(d_out, d_in, rank)``: sizes at least 1, ``1 <= rank <= min(d_in, d_out)``."""
    d_out, d_in = as_int(d_out, "d_out", minimum=1), as_int(d_in, "d_in", minimum=1)
    return d_out, d_in, as_rank(rank, d_in, d_out)


def lemma_4_1(d_out: int = 2, d_in: int = 3, rank: int = 1) -> list[Identity]:
    r"""Lemma 4.1: ``B* = ΔΣAᵀ(AΣAᵀ)⁻¹`` is stationary and attains eq. (2).

    Zhu et al. (ICML 2024), Lemma 4.1; docs/THEORY.md §1.2. ``∂L/∂B = −2(Δ − BA)ΣAᵀ`` vanishes at
    ``B*``, and ``L(B* A)`` simplifies to eq. (2).

    Parameters
    ----------
    d_out, d_in, rank : int, the symbolic dimensions, ``1 <= rank <= min(d_in, d_out)``.

    Returns
    -------
    list of Identity: ``lemma_4_1_stationarity`` and ``lemma_4_1_loss_eq2``.
    """
    return _lemma_4_1(*_as_dims(d_out, d_in, rank))


def _lemma_4_1(d_out: int, d_in: int, rank: int) -> list[Identity]:
    delta, sigma = _matrix("delta", d_out, d_in), _covariance(d_in)
    a, b = _matrix("a", rank, d_in), _matrix("b", d_out, rank)
    s2 = sp.Symbol("s2", nonnegative=True)
    gram_inv = (a * sigma * a.T).inv()
    b_star = delta * sigma * a.T * gram_inv
    grad = _gradient(_loss(delta, b * a, sigma, s2), b).subs(dict(zip(b, b_star)))
    closed = (
        d_out * s2
        + (delta * sigma * delta.T).trace()
        - (a * sigma * delta.T * delta * sigma * a.T * gram_inv).trace()
    )
    dims = f"d_out={d_out}, d_in={d_in}, r={rank}"
    return [
        Identity("lemma_4_1_stationarity", f"dL/dB = 0 at B* ({dims})", _is_zero(grad)),
        Identity(
            "lemma_4_1_loss_eq2",
            f"L(B* A) equals eq. (2) ({dims})",
            _is_zero(_loss(delta, b_star * a, sigma, s2) - closed),
        ),
    ]


def lemma_4_2(d_out: int = 3, d_in: int = 2, rank: int = 1) -> list[Identity]:
    r"""Lemma 4.2: ``A* = (BᵀB)⁻¹BᵀΔ`` is stationary and attains eq. (3).

    Zhu et al. (ICML 2024), Lemma 4.2; docs/THEORY.md §1.2. ``∂L/∂A = −2Bᵀ(Δ − BA)Σ`` vanishes at
    ``A*``, and ``L(B A*)`` simplifies to eq. (3).

    Parameters
    ----------
    d_out, d_in, rank : int, the symbolic dimensions, ``1 <= rank <= min(d_in, d_out)``.

    Returns
    -------
    list of Identity: ``lemma_4_2_stationarity`` and ``lemma_4_2_loss_eq3``.
    """
    return _lemma_4_2(*_as_dims(d_out, d_in, rank))


def _lemma_4_2(d_out: int, d_in: int, rank: int) -> list[Identity]:
    delta, sigma = _matrix("delta", d_out, d_in), _covariance(d_in)
    a, b = _matrix("a", rank, d_in), _matrix("b", d_out, rank)
    s2 = sp.Symbol("s2", nonnegative=True)
    gram_inv = (b.T * b).inv()
    a_star = gram_inv * b.T * delta
    grad = _gradient(_loss(delta, b * a, sigma, s2), a).subs(dict(zip(a, a_star)))
    closed = (
        d_out * s2
        + (delta * sigma * delta.T).trace()
        - (b.T * delta * sigma * delta.T * b * gram_inv).trace()
    )
    dims = f"d_out={d_out}, d_in={d_in}, r={rank}"
    return [
        Identity("lemma_4_2_stationarity", f"dL/dA = 0 at A* ({dims})", _is_zero(grad)),
        Identity(
            "lemma_4_2_loss_eq3",
            f"L(B A*) equals eq. (3) ({dims})",
            _is_zero(_loss(delta, b * a_star, sigma, s2) - closed),
        ),
    ]


def metric_optima(d_out: int = 3, d_in: int = 2, rank: int = 1) -> list[Identity]:
    r"""Eq. (1G): ``A* = (BᵀGB)⁻¹BᵀGΔ`` and ``B* = ΔΣAᵀ(AΣAᵀ)⁻¹`` are stationary for a symmetric ``G``.

    ``L_G`` is a convex quadratic in ``A`` (Hessian ``2 Σ ⊗ BᵀGB ⪰ 0``) and in ``B`` (Hessian
    ``2 AΣAᵀ ⊗ G ⪰ 0``) for ``G ⪰ 0``, so these stationary points are minimisers
    (docs/THEORY.md §1b.2).

    Parameters
    ----------
    d_out, d_in, rank : int, the symbolic dimensions, ``1 <= rank <= min(d_in, d_out)``.

    Returns
    -------
    list of Identity: ``metric_a_only_stationarity`` and ``metric_b_only_stationarity``.
    """
    return _metric_optima(*_as_dims(d_out, d_in, rank))


def _metric_optima(d_out: int, d_in: int, rank: int) -> list[Identity]:
    delta, sigma, metric = _matrix("delta", d_out, d_in), _covariance(d_in), _matrix("g", d_out, d_out)
    metric = sp.Matrix(d_out, d_out, lambda i, j: metric[min(i, j), max(i, j)])
    a, b = _matrix("a", rank, d_in), _matrix("b", d_out, rank)
    s2 = sp.Symbol("s2", nonnegative=True)
    a_star = (b.T * metric * b).inv() * b.T * metric * delta
    grad_a = _gradient(_loss(delta, b * a, sigma, s2, metric), a).subs(dict(zip(a, a_star)))
    b_star = delta * sigma * a.T * (a * sigma * a.T).inv()
    grad_b = _gradient(_loss(delta, b * a, sigma, s2, metric), b).subs(dict(zip(b, b_star)))
    dims = f"d_out={d_out}, d_in={d_in}, r={rank}"
    return [
        Identity("metric_a_only_stationarity", f"dL_G/dA = 0 at A* = (BᵀGB)⁻¹BᵀGΔ ({dims})", _is_zero(grad_a)),
        Identity("metric_b_only_stationarity", f"dL_G/dB = 0 at B* = ΔΣAᵀ(AΣAᵀ)⁻¹ ({dims})", _is_zero(grad_b)),
    ]


def haar_second_moment() -> list[Identity]:
    r"""``E_U[U Uᵀ] = (r/d) I`` for ``r = 1``: ``U`` uniform on the unit sphere of ``R^d``.

    The Haar second moment of docs/THEORY.md §0, used by §1.5. Integrates ``U Uᵀ`` over the
    circle (``d = 2``) and the sphere (``d = 3``) in polar and spherical coordinates.

    Returns
    -------
    list of Identity: ``haar_moment_d2`` and ``haar_moment_d3``.
    """
    theta, phi = sp.symbols("theta phi", real=True)
    # d = 2: U = (cos θ, sin θ), θ ~ Uniform[0, 2π).
    u2 = sp.Matrix([sp.cos(theta), sp.sin(theta)])
    m2 = (u2 * u2.T).applyfunc(lambda e: sp.integrate(e, (theta, 0, 2 * sp.pi)) / (2 * sp.pi))
    # d = 3: U = (sin φ cos θ, sin φ sin θ, cos φ), surface density sin φ / (4π).
    u3 = sp.Matrix([sp.sin(phi) * sp.cos(theta), sp.sin(phi) * sp.sin(theta), sp.cos(phi)])
    m3 = (u3 * u3.T).applyfunc(
        lambda e: sp.integrate(e * sp.sin(phi), (theta, 0, 2 * sp.pi), (phi, 0, sp.pi))
        / (4 * sp.pi)
    )
    return [
        Identity("haar_moment_d2", "E[U Uᵀ] = (1/2) I for U uniform on S^1", _is_zero(m2 - sp.eye(2) / 2)),
        Identity("haar_moment_d3", "E[U Uᵀ] = (1/3) I for U uniform on S^2", _is_zero(m3 - sp.eye(3) / 3)),
    ]


def verify() -> list[Identity]:
    """Run every symbolic derivation at the default dimensions; each ``Identity.holds`` should be True.

    Lemmas 4.1 and 4.2 with eqs. (2) and (3) (docs/THEORY.md §1.2), the metric optima of §1b.2 and
    the Haar second moment of §0.

    Returns
    -------
    list of Identity, those of ``lemma_4_1``, ``lemma_4_2``, ``metric_optima`` and ``haar_second_moment``.
    """
    return [*_lemma_4_1(2, 3, 1), *_lemma_4_2(3, 2, 1), *_metric_optima(3, 2, 1), *haar_second_moment()]
