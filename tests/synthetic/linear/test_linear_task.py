"""LinearTask: its matrices, its sampler, its random streams and its input validation."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from numpy.testing import assert_allclose

import theory
from synthetic.linear.engine import (
    clipped_test_losses,
    linear_trial_losses,
    population_losses,
    sample_training_sets,
)
from synthetic.linear.task import LinearTask, parse_spectrum
from tests.strategies import linear_tasks, seeds
from tests.tolerances import MC_SIGMAS, tol


def test_spectra_have_the_documented_eigenvalues():
    """isotropic: all 1; powerlaw:α: i^−α; lowrank:k: k ones then zeros."""
    assert_allclose(parse_spectrum("isotropic", 3), [1, 1, 1])
    assert_allclose(parse_spectrum("powerlaw:2", 3), [1, 1 / 4, 1 / 9])
    assert_allclose(parse_spectrum("lowrank:2", 4), [1, 1, 0, 0])


@given(linear_tasks())
def test_delta_has_the_requested_rank_and_singular_values(task):
    """Δ = U_Δ diag(σ_Δ) V_Δᵀ: its nonzero singular values are delta_singular_values."""
    want = np.sort(np.broadcast_to(task.delta_singular_values, (task.delta_rank,)))[::-1]
    got = np.linalg.svd(task.delta, compute_uv=False)[: task.delta_rank]
    assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@given(linear_tasks(spectra=("powerlaw",)))
def test_alignment_places_the_row_space_on_a_window_of_eigenvectors(task):
    """With alignment a, Δ's row space is spanned by the k eigenvectors of Σ starting at
    round((1 − a)(d_in − k)): a = 1 is the top-variance window, a = 0 the bottom one."""
    k, d = task.delta_rank, task.d_in
    for a in (0.0, 0.5, 1.0):
        t = replace(task, alignment=a, delta_singular_values=1.0)
        start = int(round((1 - a) * (d - k)))
        outside = np.delete(t.delta, np.s_[start : start + k], axis=1)
        assert_allclose(outside, 0.0, atol=1e-12)
    energy = [np.trace(replace(task, alignment=a).delta @ task.sigma @ replace(task, alignment=a).delta.T) for a in (0.0, 1.0)]
    assert energy[0] <= energy[1] * (1 + 1e-12)


@given(linear_tasks(), seeds)
def test_batched_population_loss_equals_theory(task, seed):
    """population_losses is docs/THEORY.md eq. (1), as theory.population_loss computes it, per trial."""
    m = np.random.default_rng(seed).standard_normal((3, task.d_out, task.d_in))
    got = population_losses(task, m)
    for t in range(3):
        assert_allclose(got[t], theory.population_loss(task.delta, m[t], task.sigma, task.noise_var), **tol())


def test_sampler_has_the_task_moments():
    """x ~ N(0, Σ) and y − Δx ~ N(0, s² I): sample second moments agree within MC_SIGMAS."""
    task = LinearTask(d_in=3, d_out=2, spectrum="powerlaw:1", delta_rank=2, noise_var=0.5)
    x, y = sample_training_sets(task, 4000, np.arange(2), seed=7)
    x, noise = x.reshape(-1, 3), (y - x @ task.delta.T).reshape(-1, 2)
    for values, want in ((x**2, task.sigma_eigenvalues), (noise**2, np.full(2, task.noise_var))):
        stderr = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
        assert np.all(np.abs(values.mean(axis=0) - want) <= MC_SIGMAS * stderr)


def test_clipped_test_loss_matches_direct_simulation():
    """The clipped test loss (sampled through the eigenvalues of the residual covariance) agrees
    with E[min(‖(Δ − M)x + ε‖², c)] simulated from fresh x and ε, within MC_SIGMAS."""
    task = LinearTask(d_in=4, d_out=3, spectrum="powerlaw:1", delta_rank=2, noise_var=0.3, n_test=200_000)
    m = np.random.default_rng(1).standard_normal((1, 3, 4))
    clip = 2.0
    got = clipped_test_losses(task, m, [0], seed=3, clip=clip)[0]
    rng = np.random.default_rng(99)
    x = rng.standard_normal((200_000, 4)) * np.sqrt(task.sigma_eigenvalues)
    eps = np.sqrt(task.noise_var) * rng.standard_normal((200_000, 3))
    direct = np.minimum(np.sum((x @ (task.delta - m[0]).T + eps) ** 2, axis=1), clip)
    # Both estimates carry Monte Carlo error of the same size.
    stderr = np.sqrt(2) * direct.std(ddof=1) / np.sqrt(direct.size)
    assert abs(got - direct.mean()) <= MC_SIGMAS * stderr


def test_shared_frozen_factor_is_one_draw():
    """frozen='shared' freezes the same factor in every trial; 'per_trial' draws one per trial."""
    task = LinearTask.quick()
    shared = linear_trial_losses(replace(task, frozen="shared"), "a_only", 3, 10, 3, loss="population", seed=0, return_params=True)
    per = linear_trial_losses(task, "a_only", 3, 10, 3, loss="population", seed=0, return_params=True)
    assert np.array_equal(shared["frozen"][0], shared["frozen"][2])
    assert not np.array_equal(per["frozen"][0], per["frozen"][2])


def test_quantized_storage_counts_the_scales():
    """storage_bits = q N + 32 per trained tensor (lora: A and B), and the returned parameters
    take at most 2^q − 1 values per tensor."""
    task = LinearTask.quick()
    d = task.d_in
    for variant, n_params, tensors in (("b_only", 3 * d, 1), ("a_only", 3 * d, 1), ("lora", 6 * d, 2), ("full", d * d, 1)):
        out = linear_trial_losses(task, variant, 3, 30, 2, loss="population", q_bits=3, seed=0, return_params=True)
        assert np.all(out["n_params"] == n_params)
        assert np.all(out["storage_bits"] == 3 * n_params + 32 * tensors)
        assert out["params"].shape == (2, n_params)
        assert len(np.unique(out["params"][0])) <= tensors * (2**3 - 1)


INVALID_TASKS = [
    ({"delta_rank": 9, "d_in": 8}, "delta_rank 9 exceeds min"),
    ({"noise_var": -1.0}, "noise_var must be >= 0"),
    ({"init": "xavier"}, "init 'xavier'"),
    ({"spectrum": "powerlaw:-1"}, "spectrum 'powerlaw:-1'"),
    ({"spectrum": "lowrank:99"}, "spectrum 'lowrank:99'"),
    ({"alignment": 1.5}, "alignment must be <= 1"),
    ({"frozen": "sometimes"}, "frozen 'sometimes'"),
    ({"d_in": 0}, "d_in must be >= 1"),
    ({"delta_singular_values": (1.0, 2.0)}, "delta_singular_values has 2 entries"),
    ({"clip": 0.0}, "clip must be > 0"),
    ({"ridge": -0.1}, "ridge must be >= 0"),
]


@pytest.mark.parametrize(("fields", "message"), INVALID_TASKS)
def test_invalid_task_raises_naming_the_field(fields, message):
    """Every invalid LinearTask field raises ValueError whose message names the field."""
    with pytest.raises(ValueError, match=message):
        LinearTask(**fields)


INVALID_CALLS = [
    ({"rank": 9}, "rank 9 exceeds min"),
    ({"n": 0}, "n must be >= 1, got 0"),
    ({"variant": "c_only"}, "variant 'c_only'"),
    ({"loss": "hinge"}, "loss 'hinge'"),
    ({"trials": 0}, "trials must be >= 1"),
    ({"q_bits": 1}, "q_bits must be >= 2"),
    ({"seed": -1}, "seed must be >= 0"),
    ({"rank": None}, "rank must be an integer"),
]


@pytest.mark.parametrize(("changes", "message"), INVALID_CALLS)
def test_invalid_call_raises_naming_the_argument(changes, message):
    """linear_trial_losses rejects a rank above the layer width, n < 1, unknown variants and
    losses, and other bad arguments, with a ValueError naming them."""
    call = {"variant": "b_only", "rank": 2, "n": 5, "trials": 2, "loss": "population", "seed": 0, **changes}
    with pytest.raises(ValueError, match=message):
        linear_trial_losses(LinearTask(d_in=8, d_out=8), call.pop("variant"), call.pop("rank"), call.pop("n"), call.pop("trials"), **call)


def test_clipped_loss_needs_a_clip_level():
    """loss='clipped' on a task without clip raises ValueError naming task.clip."""
    with pytest.raises(ValueError, match="task.clip"):
        linear_trial_losses(LinearTask(), "full", None, 5, 2, loss="clipped", seed=0)
