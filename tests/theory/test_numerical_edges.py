"""Numerical edge cases of the linear engine and of ``theory``.

- A nearly singular ``A Σ Aᵀ`` (or ``BᵀB``, or sample design) falls back to a least-squares solve
  with an ``IllConditionedWarning`` that says so; an exactly singular one still raises.
- ``rank = min(d_in, d_out)`` works for every variant.
- ``n < d_in`` gives the minimum-norm solutions and finite losses.
- A diverging float32 MLP run is an error that states its configuration.
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest

import theory
from synthetic import MLPTask, fit_a_only, fit_full, fit_lora, frozen_factors, linear_trial_losses, lstsq_batched
from synthetic import LinearTask, fit_b_only, measure_gap, sample_training_sets
from tests.tolerances import tol
from theory.validation import COND_WARN, RANK_RTOL, IllConditionedWarning

from theory.variants import VARIANTS  # noqa: E402 - the paper's vocabulary
#: Decimal digits of the mpmath reference solutions.
REFERENCE_DIGITS = 50


@pytest.fixture(autouse=True)
def _ill_conditioning_is_an_error_unless_expected():
    """Any IllConditionedWarning a test does not expect fails it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", IllConditionedWarning)
        yield


def _nearly_collinear(first: np.ndarray, gap: float) -> np.ndarray:
    """Two rows: ``first`` and ``first + gap e_2``; their Gram matrix has condition ~ 4 / gap²."""
    second = first.copy()
    second[1] += gap
    return np.stack([first, second])


def _exact(expr) -> np.ndarray:
    return np.array(expr.tolist(), dtype=np.float64)


def _mp(x: np.ndarray) -> mpmath.matrix:
    return mpmath.matrix(x.tolist())


RNG = np.random.default_rng(11)
DELTA = RNG.standard_normal((4, 5))
_G = RNG.standard_normal((5, 5))
SIGMA = _G @ _G.T / 5 + 0.5 * np.eye(5)
#: Condition numbers ~4.4e9 of the Gram matrices below: above COND_WARN, below the 1 / RANK_RTOL
#: at which they count as singular.
GAP = 3e-5


def test_ill_conditioned_gram_warns_and_solves_by_least_squares():
    r"""Lemma 4.1, ``B* = ΔΣAᵀ(AΣAᵀ)⁻¹``, with ``cond(AΣAᵀ)`` between ``COND_WARN`` and ``1/RANK_RTOL``:
    ``optimal_b`` warns and its least-squares answer matches a 50-digit reference to float64
    tolerance (the normal equations in float64 lose about ``log10 cond`` digits, ~1e-7 here)."""
    a = _nearly_collinear(np.eye(5)[0] + 0.3 * np.eye(5)[2], GAP)
    a = a @ np.linalg.inv(np.linalg.cholesky(SIGMA)).T  # so that A Σ Aᵀ is the nearly singular Gram matrix
    gram = a @ SIGMA @ a.T
    assert COND_WARN < np.linalg.cond(gram) < 1 / RANK_RTOL
    with pytest.warns(IllConditionedWarning, match="A Σ Aᵀ is ill-conditioned.*least-squares"):
        b = theory.optimal_b(DELTA, a, SIGMA)
    mpmath.mp.dps = REFERENCE_DIGITS
    d, s, am = _mp(DELTA), _mp(SIGMA), _mp(a)
    reference = _exact(d * s * am.T * (am * s * am.T) ** -1)
    np.testing.assert_allclose(b, reference, **tol(np.float64))


def test_ill_conditioned_output_map_warns_and_solves_by_least_squares():
    r"""Lemma 4.2, ``A* = (BᵀB)⁻¹BᵀΔ``, with ``cond(BᵀB)`` ~4.4e9: ``optimal_a`` warns and matches a
    50-digit reference to float64 tolerance."""
    b = _nearly_collinear(np.eye(4)[0] + 0.5 * np.eye(4)[3], GAP).T  # (4, 2)
    assert COND_WARN < np.linalg.cond(b.T @ b) < 1 / RANK_RTOL
    with pytest.warns(IllConditionedWarning, match="Bᵀ B is ill-conditioned.*least-squares"):
        a = theory.optimal_a(DELTA, b, SIGMA)
    mpmath.mp.dps = REFERENCE_DIGITS
    bm = _mp(b)
    np.testing.assert_allclose(a, _exact((bm.T * bm) ** -1 * bm.T * _mp(DELTA)), **tol(np.float64))


def test_exactly_singular_gram_still_raises():
    """A rank-deficient ``A Σ Aᵀ`` (duplicate rows of A) has no unique ``B*``: ValueError, no fallback."""
    a = np.stack([np.eye(5)[0], np.eye(5)[0]])
    with pytest.raises(ValueError, match="A Σ Aᵀ is singular"):
        theory.optimal_b(DELTA, a, SIGMA)
    with pytest.raises(ValueError, match="Bᵀ B is singular"):
        theory.optimal_a(DELTA, a.T[:4], SIGMA)


def test_well_conditioned_solves_do_not_warn():
    """Haar factors give well-conditioned Gram matrices: no warning (the fixture turns one into an error)."""
    rng = np.random.default_rng(0)
    theory.optimal_b(DELTA, theory.haar_stiefel(5, 3, rng).T, SIGMA)
    theory.optimal_a(DELTA, theory.haar_stiefel(4, 3, rng), SIGMA)


def test_ill_conditioned_sample_design_warns_and_is_the_least_squares_fit():
    """A design with two nearly collinear inputs (cond(XᵀX) ~1e12): the batched fit warns that it is
    the SVD least-squares solution and equals numpy.linalg.lstsq trial by trial."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 30, 4))
    x[:, :, 1] = x[:, :, 0] + 1e-6 * rng.standard_normal((2, 30))
    y = rng.standard_normal((2, 30, 3))
    with pytest.warns(IllConditionedWarning, match="x is ill-conditioned"):
        g = lstsq_batched(x, y)
    for t in range(2):
        reference = np.linalg.lstsq(x[t], y[t], rcond=None)[0]
        np.testing.assert_allclose(x[t] @ g[t], x[t] @ reference, **tol(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error", IllConditionedWarning)
        lstsq_batched(x, y, ridge=0.1)  # ridge regularises: no warning


def test_ill_conditioned_frozen_output_map_warns_in_the_sample_fit():
    """fit_a_only with a frozen B of condition ~4.4e9 (BᵀB) warns, and its A solves the normal
    equations ``XᵀX Aᵀ BᵀB = XᵀY B`` to float64 tolerance relative to their scale."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 40, 5))
    y = rng.standard_normal((1, 40, 4))
    b = _nearly_collinear(np.eye(4)[0] + 0.5 * np.eye(4)[3], GAP).T[None]
    with pytest.warns(IllConditionedWarning, match="b is ill-conditioned"):
        a = fit_a_only(x, y, b)
    x0, y0, b0 = x[0], y[0], b[0]
    lhs = x0.T @ x0 @ a[0].T @ b0.T @ b0
    rhs = x0.T @ y0 @ b0
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=tol(np.float64)["rtol"] * np.abs(rhs).max())


@pytest.mark.parametrize(("d_in", "d_out"), [(4, 6), (6, 4), (5, 5)])
def test_rank_equal_to_the_smaller_width_works_for_every_variant(d_in, d_out):
    r"""``rank = min(d_in, d_out)``: every closed form is finite; ``lora`` reaches full fine-tuning
    (rank Δ <= min(d_in, d_out)); the frozen factor that is square (A when ``d_in <= d_out``, B when
    ``d_out <= d_in``) is invertible, so that variant reaches full fine-tuning too (docs/THEORY.md §1)."""
    rng = np.random.default_rng(d_in * 10 + d_out)
    r = min(d_in, d_out)
    delta = rng.standard_normal((d_out, d_in))
    g = rng.standard_normal((d_in, d_in))
    sigma = g @ g.T / d_in + 0.1 * np.eye(d_in)
    a, b = theory.haar_stiefel(d_in, r, rng).T, theory.haar_stiefel(d_out, r, rng)
    full = theory.loss_full(delta, sigma, 0.3)
    losses = {
        "b_only": theory.loss_b_only(delta, a, sigma, 0.3),
        "a_only": theory.loss_a_only(delta, b, sigma, 0.3),
        "lora": theory.loss_lora(delta, sigma, r, 0.3),
        "expected_a_only": theory.expected_loss_a_only(delta, sigma, r, 0.3),
        "expected_b_only": theory.expected_loss_b_only(delta, sigma, r, 0.3, draws=3, rng=rng)[0],
    }
    assert all(np.isfinite(v) for v in losses.values()), losses
    np.testing.assert_allclose(losses["lora"], full, **tol(np.float64))
    if d_in <= d_out:
        np.testing.assert_allclose(losses["b_only"], full, **tol(np.float64))
        np.testing.assert_allclose(theory.population_loss(delta, theory.optimal_b(delta, a, sigma) @ a, sigma, 0.3),
                                   full, **tol(np.float64))
    if d_out <= d_in:
        np.testing.assert_allclose(losses["a_only"], full, **tol(np.float64))
        np.testing.assert_allclose(losses["expected_a_only"], full, **tol(np.float64))


@pytest.mark.parametrize(("d_in", "d_out"), [(4, 6), (6, 4)])
def test_sample_fits_at_full_rank_match_full_fine_tuning(d_in, d_out):
    """On one sample, at ``rank = min(d_in, d_out)``: ``lora`` fits the same update as ``full``, and so
    does the variant whose frozen factor is square (``b_only`` when d_in <= d_out, ``a_only`` when
    d_out <= d_in); every variant's losses are finite."""
    task = LinearTask(d_in=d_in, d_out=d_out, spectrum="powerlaw:1", delta_rank=min(d_in, d_out), clip=8.0, n_test=64)
    r = min(d_in, d_out)
    out = {v: linear_trial_losses(task, v, r, 20, 3, loss="population", seed=0, return_params=True) for v in VARIANTS}
    for v in VARIANTS:
        assert np.all(np.isfinite(out[v]["train_loss"])) and np.all(np.isfinite(out[v]["test_loss"])), v
    square = "b_only" if d_in <= d_out else "a_only"
    for v in ("lora", square):
        np.testing.assert_allclose(out[v]["update"], out["full"]["update"], **tol(np.float64))


@pytest.mark.parametrize("n", [1, 3, 7])
def test_fewer_samples_than_inputs_give_the_minimum_norm_fit(n):
    r"""``n < d_in`` (d_in = 8): ``fit_full`` interpolates the sample and returns the minimum-norm
    interpolant ``M = (X⁺ Y)ᵀ``, whose rows lie in the row space of X; no warning (the design is
    rank deficient by construction, not ill-conditioned)."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((2, n, 8))
    y = rng.standard_normal((2, n, 3))
    m = fit_full(x, y)
    for t in range(2):
        np.testing.assert_allclose(x[t] @ m[t].T, y[t], **tol(np.float64))  # interpolates
        np.testing.assert_allclose(m[t].T, np.linalg.pinv(x[t]) @ y[t], **tol(np.float64))
        null = np.linalg.svd(x[t])[2][n:]  # (8 - n, 8) basis of the null space of X
        np.testing.assert_allclose(m[t] @ null.T, 0.0, atol=tol(np.float64)["atol"] * 10 * np.abs(m[t]).max())


@pytest.mark.parametrize("variant", VARIANTS)
def test_fewer_samples_than_inputs_give_finite_losses(variant):
    """``n < d_in`` for every variant (Section 4.1 task, d = 8, n = 3, rank 2 and the full rank 8):
    finite train and test losses, train loss 0 for ``full`` (it interpolates), and no warning."""
    task = LinearTask(d_in=8, d_out=8, spectrum="powerlaw:1", delta_rank=2, clip=8.0, n_test=64)
    for rank in (2, 8):
        out = linear_trial_losses(task, variant, rank, 3, 4, loss="clipped", seed=1)
        assert np.all(np.isfinite(out["train_loss"])) and np.all(np.isfinite(out["test_loss"]))
        assert np.all(out["test_loss"] >= 0) and np.all(out["train_loss"] >= 0)
        if variant == "full":
            np.testing.assert_allclose(out["train_loss"], 0.0, atol=tol(np.float64)["atol"])


def test_fewer_samples_than_rank_in_the_factor_fits():
    """b_only and lora with n = 2 < rank = 4 < d_in = 6: minimum-norm factor fits, finite everywhere;
    the b_only fit interpolates (X Aᵀ has full row rank)."""
    task = LinearTask(d_in=6, d_out=5, spectrum="isotropic", delta_rank=2, n_test=64)
    ids = np.arange(3)
    x, y = sample_training_sets(task, 2, ids, seed=0)
    a = frozen_factors(task, "b_only", 4, ids, seed=0)
    b = fit_b_only(x, y, a)
    np.testing.assert_allclose(x @ np.swapaxes(b @ a, 1, 2), y, **tol(np.float64))
    b_l, a_l = fit_lora(x, y, 4)
    assert np.all(np.isfinite(b_l)) and np.all(np.isfinite(a_l))


def _diverging_mlp(lr: float) -> MLPTask:
    return MLPTask(widths=(4, 6, 3), adapted_layers=(1,), perturbed_layers=(1,), perturbation_rank=2,
                   test_size=32, steps=5, lr=lr)


def test_diverging_float32_training_is_an_error_with_its_configuration(_one_torch_thread):
    """A float32 MLP run whose parameters overflow (Adam at lr = 1e36) raises ValueError naming the
    divergence and, through measure_gap, the whole configuration that produced it; no NaN is returned."""
    with pytest.raises(ValueError, match="diverged") as info:
        measure_gap(_diverging_mlp(1e36), "lora", 2, 8, 2, loss="zero_one", seed=5)
    message = str(info.value)
    for fragment in ("lr=1e+36", "variant='lora'", "rank=2", "n=8", "seed=5", "widths=(4, 6, 3)"):
        assert fragment in message, message


def test_step_size_beyond_float32_is_an_error_naming_lr(_one_torch_thread):
    """lr = 1e38 (a valid positive float, beyond float32 once divided by 1 - beta1): ValueError naming lr."""
    with pytest.raises(ValueError, match="lr"):
        measure_gap(_diverging_mlp(1e38), "lora", 2, 8, 2, loss="zero_one", seed=5)
