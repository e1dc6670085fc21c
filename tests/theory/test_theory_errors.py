"""Every public theory function rejects invalid input with a ValueError that names the argument."""

import numpy as np
import pytest

import theory

RNG = np.random.default_rng(0)
D = RNG.standard_normal((4, 5))  # delta: d_out = 4, d_in = 5
S = np.eye(5)
A = theory.haar_stiefel(5, 2, RNG).T
B = theory.haar_stiefel(4, 2, RNG)
NAN = np.full((4, 5), np.nan)
NOT_PSD = np.diag([1.0, 1.0, 1.0, 1.0, -1.0])
ASYM = np.eye(5) + np.triu(np.ones((5, 5)), 1)

# (call, expected fragment of the message) — the table of cases tried.
CASES = [
    (lambda: theory.population_loss(D, np.zeros((4, 4)), S, 0.1), "m has shape"),
    (lambda: theory.population_loss(NAN, D, S, 0.1), "delta contains"),
    (lambda: theory.population_loss(D, D, S, -1.0), "noise_var must be >= 0"),
    (lambda: theory.population_loss(D, D, S, np.inf), "noise_var must be finite"),
    (lambda: theory.population_loss(D, D, NOT_PSD, 0.1), "sigma must be positive semi-definite"),
    (lambda: theory.population_loss(D, D, ASYM, 0.1), "sigma must be symmetric"),
    (lambda: theory.population_loss(D, D, np.eye(4), 0.1), "sigma has shape"),
    (lambda: theory.population_loss(np.zeros(5), D, S, 0.1), "delta must be a 2-D"),
    (lambda: theory.optimal_b(D, np.zeros((2, 5)), S), "A Σ Aᵀ is singular"),
    (lambda: theory.optimal_b(D, A, np.diag([1.0, 0, 0, 0, 0])), "A Σ Aᵀ is singular"),
    (lambda: theory.optimal_b(D, A[:, :4], S), "a has shape"),
    (lambda: theory.optimal_a(D, np.ones((4, 2)), S), "Bᵀ B is singular"),
    (lambda: theory.optimal_a(D, np.ones((5, 2)), S), "b has shape"),
    (lambda: theory.loss_b_only(D, np.ones((6, 5)), S, 0.1), "exceeds min(d_in, d_out) = 4"),
    (lambda: theory.loss_a_only(D, B, S, "x"), "noise_var must be a real number"),
    (lambda: theory.loss_lora(D, S, 0, 0.1), "rank must be >= 1"),
    (lambda: theory.loss_lora(D, S, 5, 0.1), "rank 5 exceeds min(d_in, d_out) = 4"),
    (lambda: theory.loss_lora(D, S, 2.5, 0.1), "rank must be an integer"),
    (lambda: theory.best_rank_update(D, S, True), "rank must be an integer"),
    (lambda: theory.loss_full(D, NOT_PSD, 0.1), "sigma must be positive semi-definite"),
    (lambda: theory.expected_loss_a_only(D, S, 9, 0.1), "rank 9 exceeds"),
    (lambda: theory.expected_loss_b_only(D, S, 2, 0.1, draws=1, rng=RNG), "draws must be >= 2"),
    (lambda: theory.expected_loss_b_only(D, S, 2, 0.1, draws=10, rng=0), "rng must be a numpy.random.Generator"),
    (lambda: theory.loss_b_only_draws(D, S, np.zeros((3, 4, 2)), 0.1), "q must have shape"),
    (lambda: theory.loss_a_only_draws(D, S, np.ones((3, 4, 2)), 0.1), "orthonormal columns"),
    (lambda: theory.asymmetry_gap(D, S, 2, 0.1), "rank(sigma) = 5 > rank = 2"),
    (lambda: theory.haar_stiefel(3, 4, RNG), "r 4 exceeds d = 3"),
    (lambda: theory.haar_stiefel(0, 1, RNG), "d must be >= 1"),
    (lambda: theory.haar_stiefel(3, 1, RNG, draws=0), "draws must be >= 1"),
    (lambda: theory.cca_similarity(B, B, "diag"), "side must be one of"),
    (lambda: theory.cca_similarity(B, A, "col"), "same number of rows"),
    (lambda: theory.cca_similarity(np.zeros((4, 2)), B, "col"), "m1 is zero"),
    (lambda: theory.cca_similarity(A, [[np.inf] * 5], "row"), "m2 contains"),
]


@pytest.mark.parametrize("call,fragment", CASES, ids=[c[1] for c in CASES])
def test_invalid_input_raises_value_error_naming_it(call, fragment):
    """Bad input is refused at the public boundary with a message that names it."""
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert fragment in str(info.value), str(info.value)
