"""The linear-engine strategies of tests/strategies.py produce what they promise."""

import numpy as np
from hypothesis import given

from synthetic.linear.engine import LinearTask
from tests.strategies import batched_designs, linear_tasks


@given(linear_tasks())
def test_linear_tasks_are_valid_small_tasks(task):
    """Every drawn task is a LinearTask within the size limit whose Δ has rank delta_rank."""
    assert isinstance(task, LinearTask)
    assert 2 <= task.d_in <= 8 and 2 <= task.d_out <= 8
    assert task.delta.shape == (task.d_out, task.d_in)
    assert np.linalg.matrix_rank(task.delta, tol=1e-9 * max(1.0, np.abs(task.delta).max())) == task.delta_rank


@given(batched_designs())
def test_batched_designs_have_the_promised_rank(p):
    """'wide' designs have n < d_in; 'deficient' ones have rank deficient_rank; shapes agree."""
    x, y = p["x"], p["y"]
    assert x.shape[:2] == y.shape[:2]
    n, d_in = x.shape[1:]
    ranks = [np.linalg.matrix_rank(xt) for xt in x]
    if p["design"] == "wide":
        assert n < d_in
    if p["design"] == "deficient":
        assert all(r == p["deficient_rank"] < min(n, d_in) for r in ranks)
    if p["design"] == "gaussian":
        assert all(r == d_in for r in ranks)
    assert p["rank"] >= 1
    assert p["rank"] <= min(d_in, y.shape[2])
