"""Validate once, at the door: each public function of ``theory`` checks each argument once, before it
computes or draws anything, and the cores it calls check nothing again.

The count is taken with a profiler hook on the checks of ``theory.validation``: a check that calls
another for the same argument (``as_covariance`` calls ``as_matrix``, ``as_rank`` calls ``as_int``)
counts once for each, so a pair (check, argument name) seen twice is an argument checked twice.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

import theory
from tests.fuzz.fuzz_theory import DELTA, METRIC, SIGMA, SPECS
from theory import symbolic, validation
from theory.tolerances import IllConditionedWarning

#: The checks of ``theory.validation`` that take the checked argument's name.
CHECKS = frozenset({"as_array", "as_matrix", "as_covariance", "as_rank", "as_int", "as_real", "as_generator",
                    "check_memory", "check_magnitude"})


def _checks(call: Callable[[], object]) -> Counter:
    """How often ``call`` runs each check of ``theory.validation`` on each argument name."""
    seen: Counter = Counter()

    def hook(frame, event, _arg):
        code = frame.f_code
        if event == "call" and code.co_filename == validation.__file__ and code.co_name in CHECKS:
            seen[(code.co_name, frame.f_locals.get("name"))] += 1

    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
    return seen


@pytest.mark.parametrize("spec", SPECS, ids=[spec.id for spec in SPECS])
def test_each_argument_is_checked_once(spec):
    """Every public function of theory (the fuzz table's valid baselines) runs each check at most once per
    argument: a public function that needs another's computation calls its unchecked core."""
    kwargs = spec.valid()
    seen = _checks(lambda: spec.fn(**kwargs))
    assert seen, "the baseline call ran no check"
    twice = {key: count for key, count in seen.items() if count > 1}
    assert not twice, twice


def test_monte_carlo_expectations_check_sigma_once():
    """``expected_loss_b_only`` checks Σ once (its eigendecomposition is the costliest check)."""
    seen = _checks(lambda: theory.expected_loss_b_only(DELTA, SIGMA, 2, 0.1, draws=4, rng=np.random.default_rng(0)))
    assert seen[("as_covariance", "sigma")] == 1


@pytest.mark.parametrize("name", ["expected_loss_b_only", "expected_loss_a_only_mc"])
def test_a_rejected_call_draws_nothing(name):
    """Every argument is checked before the first draw: a call refused for its metric leaves ``rng`` as it was."""
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    with pytest.raises(ValueError, match="metric must be positive semi-definite"):
        getattr(theory, name)(DELTA, SIGMA, 2, 0.1, draws=4, rng=rng, metric=-METRIC)
    assert rng.bit_generator.state == before


def test_overflow_is_reported_by_the_function_called():
    """An expectation whose losses overflow names the function the user called and its own arguments,
    not the core it evaluates the draws with."""
    c = 1e140
    with pytest.raises(ValueError, match=r"^expected_loss_b_only overflows float64 for these delta, sigma"):
        theory.expected_loss_b_only(DELTA * c, SIGMA * c, 2, c, draws=3, rng=np.random.default_rng(0))


def test_ill_conditioned_warning_points_at_the_caller():
    """``IllConditionedWarning`` is attributed to the line that called ``optimal_b`` / ``optimal_a``, past
    the public function, its core and ``checked_finite``'s wrapper."""
    a = np.stack([np.eye(5)[0], np.eye(5)[0] + 3e-5 * np.eye(5)[1]])
    for call in (lambda: theory.optimal_b(DELTA, a, np.eye(5)), lambda: theory.optimal_a(DELTA, a.T[:4], np.eye(5))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        assert [w.category for w in caught] == [IllConditionedWarning]
        assert caught[0].filename == __file__


@pytest.mark.parametrize(("kwargs", "fragment"), [
    (dict(rank=0), "rank must be >= 1, got 0"),
    (dict(d_out=1, rank=2), "rank 2 exceeds min(d_in, d_out) = 1"),
    (dict(d_in=0), "d_in must be >= 1, got 0"),
    (dict(d_out=2.0), "d_out must be an integer, got 2.0"),
])
def test_symbolic_dimensions_are_checked(kwargs, fragment):
    """The symbolic derivations refuse dimensions at which they would be vacuous (rank 0) or singular
    (rank above ``min(d_in, d_out)``), before sympy builds anything."""
    for derive in (symbolic.lemma_4_1, symbolic.lemma_4_2, symbolic.metric_optima):
        with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            derive(**kwargs)
