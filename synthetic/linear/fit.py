r"""Batched closed-form fits of the four tuning variants, and the paper's frozen-factor inits.

Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models" (ICML 2024), Section 4.1
(docs/THEORY.md §1, "Finite samples"): on ``n`` samples every variant has an exact solution.
All fits here take a leading trial axis ``T`` and solve every trial at once (batched SVD /
eigendecomposition, no Python loop over trials).

Data convention: ``x`` (T, n, d_in) are the inputs and ``y`` (T, n, d_out) the targets the
adapter must explain, ``y − W0 x`` (``W0`` is frozen and known, the bias is fixed to
``b_t``, docs/THEORY.md §1). The fitted update is ``M`` (d_out, d_in), the adapted weight
``W0 + M``. The objective of every variant is

.. math:: \frac1n \|Y − X M^T\|_F^2 + λ \|\text{trained}\|_F^2 ,

the squared error summed over the ``d_out`` outputs and averaged over samples, with an
optional ridge ``λ >= 0`` on the trained factor (on ``M`` itself for ``full`` and ``lora``).

Singular or ill-conditioned sample systems (``n < d_in``, a low-rank ``Σ``) never produce NaN:
every least-squares problem goes through ``synthetic.linear.lstsq.solve_lstsq`` (normal equations when
every trial is well conditioned, else a pseudo-inverse through the SVD with singular values
below ``max(n, p) · eps · s_max`` treated as zero, the cut-off ``numpy.linalg.lstsq`` uses);
the result is the minimum-norm least-squares solution. With ``λ > 0`` the filter
``s / (s² + nλ)`` is finite for every ``s`` and no cut-off is needed.
"""

from __future__ import annotations

import warnings

import numpy as np

from synthetic.linear.lstsq import by_trial_parts, lstsq_batched, solve_lstsq, xy_arrays
from theory.random import _haar_stiefel
from theory.variants import check_init
from theory.validation import (
    COND_WARN,
    Array,
    IllConditionedWarning,
    as_array,
    as_generator,
    as_int,
    as_rank,
    as_real,
    check_memory,
    checked_finite,
)



def fit_full(x: Array, y: Array, *, ridge: float = 0.0) -> Array:  # (T,n,d_in), (T,n,d_out) -> (T,d_out,d_in)
    r"""``full``: ordinary least squares for ``M``, minimum-norm when ``n < d_in`` (or ridge).

    .. math:: M^T = X^+ Y \quad (λ = 0), \qquad M^T = (X^TX + nλI)^{-1} X^T Y \quad (λ > 0).

    The sample version of full fine-tuning (Zhu et al., ICML 2024, Section 4.1; docs/THEORY.md
    §7.1, "Exact fits"), solved by ``synthetic.linear.lstsq.lstsq_batched``.

    Parameters
    ----------
    x : (T, n, d_in) inputs; y : (T, n, d_out) targets minus ``W0 x``.
    ridge : float ``>= 0``, the penalty ``λ`` on ``‖M‖_F²``.

    Returns
    -------
    (T, d_out, d_in) the update ``M``.
    """
    return np.swapaxes(lstsq_batched(x, y, ridge=ridge), 1, 2)


@checked_finite("x", "y", "a", "ridge")
def fit_b_only(x: Array, y: Array, a: Array, *, ridge: float = 0.0) -> Array:  # a (T, r, d_in) -> (T, d_out, r)
    r"""``b_only``: least squares of ``Y`` on the projected features ``X Aᵀ`` (Lemma 4.1, sample).

    The empirical version of Zhu et al., Lemma 4.1: with ``A`` frozen, ``B`` is ordinary least
    squares on the ``r`` features ``A x``,

    .. math:: B^T = (X A^T)^+ Y ,

    minimum-norm when ``X Aᵀ`` is rank deficient; ridge penalises ``‖B‖_F²``. The update
    ``B A`` depends on ``A`` only through its row space.

    Parameters
    ----------
    x : (T, n, d_in); y : (T, n, d_out); a : (T, r, d_in) frozen feature extractors.

    Returns
    -------
    (T, d_out, r) the trained ``B``.
    """
    x_, y_ = xy_arrays(x, y)
    a_ = as_array(a, "a", (x_.shape[0], None, x_.shape[2]))
    ridge = as_real(ridge, "ridge", minimum=0.0)
    return np.swapaxes(solve_lstsq(x_ @ np.swapaxes(a_, 1, 2), y_, ridge, "x Aᵀ"), 1, 2)


@checked_finite("x", "y", "b", "ridge")
def fit_a_only(x: Array, y: Array, b: Array, *, ridge: float = 0.0) -> Array:  # b (T, d_out, r) -> (T, r, d_in)
    r"""``a_only``: the least-squares ``A`` for a frozen output map ``B`` (Lemma 4.2, sample).

    Minimises ``‖Y − X Aᵀ Bᵀ‖²/n + λ‖A‖²``. With ``X = U diag(s) Vᵀ`` and
    ``B = U_B diag(b) Pᵀ`` (so ``BᵀB = P diag(b²) Pᵀ``) the normal equations
    ``XᵀX Aᵀ BᵀB + nλ Aᵀ = XᵀY B`` decouple:

    .. math::
        A^T = V\, G\, P^T,\qquad G_{ij} = \frac{s_i\, b_j\,(U^T Y U_B)_{ij}}{s_i^2 b_j^2 + nλ},

    which for ``λ = 0`` is ``Aᵀ = X⁺ Y (B⁺)ᵀ = X⁺ Y B (BᵀB)⁻¹``: ordinary least squares of the
    projected outputs ``Y B (BᵀB)⁻¹`` on ``x``, computed from the SVD of ``B`` (never from
    ``BᵀB``, whose condition number is the square of ``B``'s). As ``n → ∞`` it tends to Lemma
    4.2's ``A* = (BᵀB)⁻¹BᵀΔ`` (tested). ``B`` must have full column rank (every init does, almost
    surely): ``ValueError`` when ``cond(BᵀB) >= 1e12`` in some trial, ``IllConditionedWarning``
    above ``COND_WARN`` (as for an ill-conditioned ``x`` with ``λ = 0``).

    Parameters
    ----------
    x : (T, n, d_in); y : (T, n, d_out); b : (T, d_out, r) frozen output maps.

    Returns
    -------
    (T, r, d_in) the trained ``A``.
    """
    x_, y_ = xy_arrays(x, y)
    b_ = as_array(b, "b", (x_.shape[0], y_.shape[2], None))
    ridge = as_real(ridge, "ridge", minimum=0.0)
    u_b, b_sv, p_t = np.linalg.svd(b_, full_matrices=False)  # (T, d_out, r), (T, r), (T, r, r)
    if np.any(b_sv[:, -1] ** 2 <= 1e-12 * b_sv[:, 0] ** 2):
        raise ValueError("b must have full column rank: Bᵀ B is singular for some trial")
    if np.any(b_sv[:, 0] ** 2 > COND_WARN * b_sv[:, -1] ** 2):
        warnings.warn(
            f"b is ill-conditioned in some trial (condition number of Bᵀ B above {COND_WARN:.0e}): A is "
            f"the least-squares solution computed from the SVD of B",
            IllConditionedWarning,
            stacklevel=2,
        )
    if ridge == 0:  # Aᵀ = X⁺ (Y U_B diag(1/b) Pᵀ), the least squares of the projected outputs
        return np.swapaxes(solve_lstsq(x_, (y_ @ u_b / b_sv[:, None, :]) @ p_t, 0.0, "x"), 1, 2)
    u, s, vt = np.linalg.svd(x_, full_matrices=False)
    c = np.swapaxes(u, 1, 2) @ y_ @ u_b  # (T, k, r)
    s_ = s[:, :, None]
    g = s_ * b_sv[:, None, :] * c / (s_**2 * b_sv[:, None, :] ** 2 + x_.shape[1] * ridge)
    return np.swapaxes(np.swapaxes(vt, 1, 2) @ g @ p_t, 1, 2)


@checked_finite("x", "y", "ridge")
def fit_lora(
    x: Array, y: Array, rank: int, *, ridge: float = 0.0
) -> tuple[Array, Array]:  # -> (T, d_out, r), (T, r, d_in)
    r"""``lora``: reduced-rank regression, the exact best rank-``r`` fit on the sample.

    With ``M̂`` the least-squares (or ridge) fit and ``Ŷ = X M̂ᵀ``, the training error splits as
    ``‖Y − Ŷ‖² + ‖Ŷ − X Mᵀ‖²``, so the best ``M`` of rank ``<= r`` projects ``M̂`` onto the top-r
    eigenvectors ``V_r`` of ``ŶᵀŶ`` (Eckart–Young for the fitted values, i.e. truncation in the
    metric of their sample covariance):

    .. math:: B = V_r,\qquad A = V_r^T \hat M,\qquad M = V_r V_r^T \hat M .

    With ridge ``λ > 0`` (penalty ``λ‖M‖_F²``) the same holds with ``ŶᵀŶ + nλ M̂M̂ᵀ`` (reduced-rank
    ridge regression; Mukherjee and Zhu, "Reduced rank ridge regression and its kernel
    extensions", 2011). Ties among eigenvalues make the minimiser non-unique; any choice is one.
    The factorisation returned has ``B`` with orthonormal columns. Source: Izenman, "Reduced-rank
    regression for the multivariate linear model" (1975); docs/THEORY.md §1.3 and §7.1.

    Parameters
    ----------
    x : (T, n, d_in); y : (T, n, d_out); rank : int, ``1 <= r <= min(d_in, d_out)``.

    Returns
    -------
    b : (T, d_out, r); a : (T, r, d_in)
    """
    x_, y_ = xy_arrays(x, y)
    r = as_rank(rank, x_.shape[2], y_.shape[2])
    ridge = as_real(ridge, "ridge", minimum=0.0)
    m_hat = fit_full(x_, y_, ridge=ridge)  # (T, d_out, d_in)
    fitted = x_ @ np.swapaxes(m_hat, 1, 2)  # (T, n, d_out)
    gram = np.swapaxes(fitted, 1, 2) @ fitted
    if ridge > 0:
        gram = gram + x_.shape[1] * ridge * (m_hat @ np.swapaxes(m_hat, 1, 2))
    b = _top_eigenvectors(gram, r)
    return b, np.swapaxes(b, 1, 2) @ m_hat


def _top_eigenvectors(gram: Array, rank: int) -> Array:  # (T, d, d) -> (T, d, rank)
    """Eigenvectors of the ``rank`` largest eigenvalues of each symmetric ``gram``, largest first
    (``numpy.linalg.eigh``, one LAPACK ``syevd`` call per trial, on the symmetrised matrix)."""
    evecs = by_trial_parts(lambda g: np.linalg.eigh(g)[1], (gram + np.swapaxes(gram, 1, 2)) / 2)
    return np.ascontiguousarray(evecs[:, :, ::-1][:, :, :rank])


def frozen_factor(
    init: str,
    side: str,
    d_in: int,
    d_out: int,
    rank: int,
    rng: np.random.Generator,
    *,
    w0: Array | None = None,
) -> Array:  # side "a": (r, d_in); side "b": (d_out, r)
    r"""One frozen factor drawn from one of the paper's inits.

    ``side="a"`` gives a feature extractor ``A`` (r, d_in), ``side="b"`` an output map ``B``
    (d_out, r). Inits (docs/THEORY.md §0):

    - ``haar``: uniform on the Stiefel manifold, ``A = Qᵀ``, ``Q ∈ St(d_in, r)``, ``B = U ∈
      St(d_out, r)`` (Zhu et al., Section 4.1).
    - ``kaiming_uniform``: i.i.d. ``U(−1/√fan_in, 1/√fan_in)`` with ``fan_in`` the factor's input
      width (``d_in`` for A, ``r`` for B): PyTorch's ``kaiming_uniform_(a=√5)``, the default of
      ``nn.Linear`` and of common LoRA code for A.
    - ``gaussian``: i.i.d. ``N(0, 1/fan_in)``.
    - ``w0_top_singular``: the top-r singular vectors of ``W0 = U S Vᵀ``: ``A = V_rᵀ``,
      ``B = U_r``; deterministic (``rng`` unused), needs ``w0``.

    Scaling convention: the closed-form fits depend on a frozen ``A`` only through its row
    space and on a frozen ``B`` only through its column space, so the scale of an init
    changes nothing there; it matters for gradient descent.

    Parameters
    ----------
    init : one of ``INITS``; side : {"a", "b"}; d_in, d_out, rank : int.
    rng : numpy.random.Generator
    w0 : (d_out, d_in), required for ``w0_top_singular``.
    """
    init = check_init(init)
    if side not in ("a", "b"):
        raise ValueError(f"side {side!r} is not one of 'a', 'b'")
    d_in = as_int(d_in, "d_in", minimum=1)
    d_out = as_int(d_out, "d_out", minimum=1)
    r = as_rank(rank, d_in, d_out)
    rng = as_generator(rng)
    width = d_in if side == "a" else d_out
    check_memory(width * r, "d_in" if side == "a" else "d_out", width, f"a {width} x {r} frozen factor")
    if init == "w0_top_singular":
        if w0 is None:
            raise ValueError("init 'w0_top_singular' needs w0, the (d_out, d_in) pretrained W0")
        w0 = as_array(w0, "w0", (d_out, d_in))
    return _frozen_factor(init, side, d_in, d_out, r, rng, w0)


def _frozen_factor(init: str, side: str, d_in: int, d_out: int, r: int, rng: np.random.Generator,
                   w0: Array | None) -> Array:
    """:func:`frozen_factor` on arguments it has checked (``w0`` an array for ``w0_top_singular``)."""
    width = d_in if side == "a" else d_out
    fan_in = d_in if side == "a" else r
    if init == "haar":
        q = _haar_stiefel(width, r, rng, None)
        return q.T if side == "a" else q
    if init == "w0_top_singular":
        u, _, vt = np.linalg.svd(w0)
        return vt[:r] if side == "a" else u[:, :r]
    shape = (r, d_in) if side == "a" else (d_out, r)
    if init == "kaiming_uniform":
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape)
    return rng.standard_normal(shape) / np.sqrt(fan_in)


def fit_variant(
    variant: str, rank: int | None, x: Array, y: Array, frozen: Array | None, *, ridge: float = 0.0
) -> dict[str, Array]:
    """The trained tensors of ``variant`` fitted in closed form, by name.

    ``b_only`` -> ``{"b"}`` (T, d_out, r); ``a_only`` -> ``{"a"}`` (T, r, d_in); ``lora`` ->
    ``{"a", "b"}``; ``full`` -> ``{"m"}`` (T, d_out, d_in). ``frozen`` is A (T, r, d_in) for
    ``b_only``, B (T, d_out, r) for ``a_only``, unused otherwise; ``rank`` is used by ``lora``.
    The arguments are the caller's checked ones (its variant, rank and arrays); any variant other
    than ``b_only``, ``a_only`` and ``lora`` is fitted as ``full``. Dispatches to
    :func:`fit_b_only` (Lemma 4.1), :func:`fit_a_only` (Lemma 4.2), :func:`fit_lora` and
    :func:`fit_full`: the exact fits of docs/THEORY.md §7.1 (Zhu et al., ICML 2024, Section 4.1).
    """
    if variant == "b_only":
        return {"b": fit_b_only(x, y, frozen, ridge=ridge)}
    if variant == "a_only":
        return {"a": fit_a_only(x, y, frozen, ridge=ridge)}
    if variant == "lora":
        b, a = fit_lora(x, y, rank, ridge=ridge)
        return {"a": a, "b": b}
    return {"m": fit_full(x, y, ridge=ridge)}


def update_from(variant: str, tensors: dict[str, Array], frozen: Array | None) -> Array:  # -> (T, d_out, d_in)
    """The update ``M`` of each trial from its trained tensors (``fit_variant``) and frozen factor.

    ``M = B A`` (docs/THEORY.md §0): ``b_only`` multiplies the trained ``B`` by the frozen ``A``,
    ``a_only`` the frozen ``B`` by the trained ``A``, ``lora`` the two trained factors; any other
    variant (``full``) returns ``tensors["m"]``.

    Returns
    -------
    (T, d_out, d_in) the updates ``M``; the adapted weight is ``W0 + M``.
    """
    if variant == "b_only":
        return tensors["b"] @ frozen
    if variant == "a_only":
        return frozen @ tensors["a"]
    if variant == "lora":
        return tensors["b"] @ tensors["a"]
    return tensors["m"]


