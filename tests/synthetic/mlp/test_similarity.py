"""Similarity grid of learned LoRA factors (synthetic.mlp.similarity), docs/THEORY.md §3."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from synthetic.mlp.engine import MLPTask
from synthetic.mlp.similarity import similarity_grid, similarity_verdict
from tests.tolerances import tol

TINY = MLPTask(widths=(6, 10, 10, 3), adapted_layers=(0, 1), perturbed_layers=(1,), perturbation_rank=2,
               test_size=16, steps=10, lr=1e-2)


def test_verdict_averages_the_right_pairs():
    """The verdict's means are over off-diagonal pairs grouped by shared task / shared init."""
    cells = ((0, 0), (0, 1), (1, 0), (1, 1))
    tasks = np.array([c[0] for c in cells])
    inits = np.array([c[1] for c in cells])
    a = np.where(inits[:, None] == inits[None, :], 0.9, 0.1)
    b = np.where(tasks[:, None] == tasks[None, :], 0.8, 0.2)
    np.fill_diagonal(a, 1.0)
    np.fill_diagonal(b, 1.0)
    v = similarity_verdict(a, b, cells, d_in=10, d_out=5, rank=2)
    assert v["a_same_init"] == pytest.approx(0.9) and v["a_same_task"] == pytest.approx(0.1)
    assert v["b_same_task"] == pytest.approx(0.8) and v["b_same_init"] == pytest.approx(0.2)
    assert v["a_different_both"] == pytest.approx(0.1) and v["b_different_both"] == pytest.approx(0.2)
    assert v["a_random"] == pytest.approx(0.2) and v["b_random"] == pytest.approx(0.4)
    assert v["a_clusters_by_init"] and v["b_clusters_by_task"]
    single = similarity_verdict(a[:2, :2], b[:2, :2], cells[:2], d_in=10, d_out=5, rank=2)
    assert np.isnan(single["a_same_init"]) and np.isnan(single["b_different_both"])
    assert single["a_same_task"] == pytest.approx(0.1)


def test_grid_shapes_and_range():
    """Per adapted layer, (cells, cells) symmetric matrices with unit diagonal and entries in [0, 1]."""
    grid = similarity_grid((0, 1), (5, 6, 7), task=TINY, rank=2, n=24)
    assert grid.cells == ((0, 5), (0, 6), (0, 7), (1, 5), (1, 6), (1, 7))
    for l in TINY.adapted_layers:
        for sim in (grid.a_similarity[l], grid.b_similarity[l]):
            assert sim.shape == (6, 6)
            np.testing.assert_array_equal(sim, sim.T)
            np.testing.assert_array_equal(np.diag(sim), 1.0)
            assert np.all((sim >= 0) & (sim <= 1))
        keys = {"a_same_init", "b_same_task", "a_clusters_by_init", "b_clusters_by_task"}
        assert keys <= set(grid.verdict[l])
    again = similarity_grid((0, 1), (5, 6, 7), task=TINY, rank=2, n=24)
    np.testing.assert_array_equal(again.b_similarity[1], grid.b_similarity[1])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_the_grid_trains_the_network_the_task_describes(monkeypatch, activation):
    """The adapters are trained with the task's hidden activation, the one that labelled the data."""
    import synthetic.mlp.similarity as similarity

    seen = []
    train = similarity.train_adapters

    def recording(*args, **kwargs):
        seen.append(kwargs.get("activation"))
        return train(*args, **kwargs)

    monkeypatch.setattr(similarity, "train_adapters", recording)
    similarity_grid((0,), (5, 6), task=replace(TINY, activation=activation), rank=2, n=24)
    assert seen == [activation]


def test_one_step_leaves_a_at_its_init():
    """From B = 0 the gradient of A, s B^T G h^T, is zero, so one Adam step leaves A at its init.

    Hence after one step learned A's that share an init seed have CCA similarity exactly 1,
    whatever the task (the mechanism behind the paper's Figure 1 finding for A).
    """
    grid = similarity_grid((0, 1, 2), (3, 4), task=MLPTask(**{**TINY.__dict__, "steps": 1}), rank=2, n=16)
    for l in TINY.adapted_layers:
        v = grid.verdict[l]
        assert v["a_same_init"] == pytest.approx(1.0, rel=tol()["rtol"])
        assert v["a_same_task"] < 1.0 - 1e-6
        assert v["a_clusters_by_init"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task_seeds": ()}, "task_seeds must hold at least one seed"),
        ({"init_seeds": (1, 1)}, "init_seeds has repeated seeds"),
        ({"task_seeds": (-1,)}, "task_seeds must be >= 0"),
        ({"rank": 7}, "rank 7 exceeds min\\(d_in, d_out\\) = 6 of adapted layer 0"),
        ({"n": 0}, "n must be >= 1"),
        ({"task": "nope"}, "task must be an MLPTask"),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    """Invalid arguments raise ValueError naming the argument."""
    call = {"task_seeds": (0, 1), "init_seeds": (0,), "task": TINY, "rank": 2, "n": 8}
    call.update(kwargs)
    with pytest.raises(ValueError, match=message):
        similarity_grid(call.pop("task_seeds"), call.pop("init_seeds"), **call)


def test_a_factor_left_at_zero_is_named_with_its_cell_and_cause():
    """At lr = 1e-200 (a valid positive real that rounds to zero in float32) Adam never moves B from
    its zero start: similarity_grid names the first zero factor, its layer and cell, and task.lr,
    instead of the CCA's "m1 is zero", which names an argument the user never passed."""
    task = MLPTask(**{**TINY.__dict__, "lr": 1e-200})
    with pytest.raises(ValueError) as info:
        similarity_grid((0, 1), (5, 6), task=task, rank=2, n=8)
    message = str(info.value)
    assert message.startswith("the trained B of layer 0 in cell (task seed 0, init seed 5) is zero"), message
    assert "task.lr=1e-200" in message and "m1" not in message, message


@pytest.mark.slow
def test_learned_b_clusters_by_task():
    """Zhu et al. (ICML 2024), Figure 1: learned B are similar on the same task, dissimilar across tasks.

    Checked on the quick MLP (3 tasks x 3 init seeds, r = 4, n = 2048, 300 full-batch Adam steps).
    A is not asserted: in this setting A also clusters by task once trained (see the report).
    """
    grid = similarity_grid((0, 1, 2), (0, 1, 2), task=MLPTask.quick(), rank=4, n=2048)
    v = grid.verdict[1]
    assert v["b_clusters_by_task"]
    assert v["b_same_task"] > 2 * v["b_random"]
