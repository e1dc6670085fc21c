r"""Similarity of learned LoRA factors across target tasks and initialisation seeds.

A miniature of Figure 1 of Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models"
(ICML 2024): train ``lora`` (A from a random init, B from zero, both trained) on every pair
(target task, init seed) and compare, per adapted layer, all learned A's by their row spaces
and all learned B's by their column spaces with the CCA goodness of fit of docs/THEORY.md §3,

.. math:: \rho(M_1, M_2) = \|U_1^T U_2\|_F^2 / \min(r_1, r_2) \in [0, 1].

The paper reports (on RoBERTa) that learned A are similar whenever the initialisation is
shared, whatever the task, and learned B are similar across seeds on the same task and
dissimilar across tasks. ``verdict`` states what this grid shows instead of assuming it.

All cells share the pretrained model and the training inputs (one ``data_seed``); a cell's
labels come from its task, its A init from its init seed. For reference, two independent
uniformly random r-dimensional subspaces of R^d have expected similarity ``r / d``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import product

import numpy as np

from synthetic.mlp.engine import MLPTask, sample_data
from synthetic.mlp.train import factor_names, init_adapters, train_adapters
from synthetic.streams import SIMILARITY_DATA_KEY, SIMILARITY_INIT_KEY, SIMILARITY_ORDER_KEY, keyed_rng
from theory.similarity import cca_similarity
from theory.validation import Array, as_int


@dataclass(frozen=True)
class SimilarityGrid:
    """Result of ``similarity_grid``: the learned factors' similarities of docs/THEORY.md §3.

    The miniature of Figure 1 (and Appendix A) of Zhu et al. (ICML 2024); see the module docstring.

    Attributes
    ----------
    cells : ((task_seed, init_seed), ...) in row-major order (task outer, init inner).
    a_similarity, b_similarity : layer -> (cells, cells) matrix of CCA similarities of the
        learned A (row spaces) and B (column spaces).
    verdict : layer -> summary (see ``similarity_verdict``).
    train_objective : (cells,) final training objective of each cell.
    """

    cells: tuple[tuple[int, int], ...]
    a_similarity: dict[int, Array]
    b_similarity: dict[int, Array]
    verdict: dict[int, dict[str, float | bool]]
    train_objective: Array


def similarity_verdict(a_sim: Array, b_sim: Array, cells: tuple[tuple[int, int], ...],
                       d_in: int, d_out: int, rank: int) -> dict[str, float | bool]:
    r"""Mean similarities over off-diagonal pairs grouped by shared task or shared init.

    Keys: ``a_same_init`` (pairs with the same init seed and different tasks), ``a_same_task``
    (same task, different init), ``a_different_both``, and the same three for B, each a mean
    of the (cells, cells) matrices over those pairs (NaN when the grid has no such pair); the
    random-subspace baselines ``a_random = r / d_in`` and ``b_random = r / d_out``; and
    ``a_clusters_by_init = a_same_init > a_same_task``,
    ``b_clusters_by_task = b_same_task > b_same_init`` (the paper's finding when both hold).
    Source: docs/THEORY.md §3 (the paper's Figure 1 finding; ``r/d`` for independent uniform
    subspaces).

    Parameters
    ----------
    a_sim, b_sim : (cells, cells) similarities of the learned A and B of one layer.
    cells : ((task_seed, init_seed), ...), one per row of the matrices.
    d_in, d_out, rank : the layer's widths and the LoRA rank ``r``.
    """
    tasks = np.array([c[0] for c in cells])
    inits = np.array([c[1] for c in cells])
    same_task = tasks[:, None] == tasks[None, :]
    same_init = inits[:, None] == inits[None, :]
    groups = {
        "same_init": same_init & ~same_task,
        "same_task": same_task & ~same_init,
        "different_both": ~same_task & ~same_init,
    }
    out: dict[str, float | bool] = {}
    for factor, sim in (("a", a_sim), ("b", b_sim)):
        for name, mask in groups.items():
            out[f"{factor}_{name}"] = float(sim[mask].mean()) if mask.any() else float("nan")
    out["a_random"] = rank / d_in
    out["b_random"] = rank / d_out
    out["a_clusters_by_init"] = bool(out["a_same_init"] > out["a_same_task"])
    out["b_clusters_by_task"] = bool(out["b_same_task"] > out["b_same_init"])
    return out


def similarity_grid(
    task_seeds: tuple[int, ...],
    init_seeds: tuple[int, ...],
    *,
    task: MLPTask | None = None,
    rank: int = 4,
    n: int = 2048,
    data_seed: int = 0,
) -> SimilarityGrid:
    """Train ``lora`` on every (task seed, init seed) pair, all cells in one batched program.

    Then compare, per adapted layer, the learned A by row space and B by column space with
    ``theory.cca_similarity`` (docs/THEORY.md §3; Figure 1 of Zhu et al., ICML 2024). Every cell
    trains with ``task.steps`` Adam steps at ``task.lr`` and ``task.batch_size`` (minibatch order
    from ``(data_seed, task seed, init seed)``), through ``train_adapters`` with the task's hidden
    activation ``task.activation`` (the one of the target network that labels the data).

    Parameters
    ----------
    task_seeds : target tasks, each ``replace(task, task_seed=s)``; at least one.
    init_seeds : seeds of the random A init (``task.init``); at least one.
    task : the base configuration (default ``MLPTask.quick()``); its ``task_seed`` is ignored.
    rank : LoRA rank r, at most every adapted layer's ``min(d_in, d_out)``.
    n : training samples (shared inputs, task-specific labels).
    data_seed : seed of the shared training inputs and label noise.

    Returns
    -------
    SimilarityGrid

    Raises ``ValueError`` naming the argument for invalid input, and naming the cell, layer and
    factor when a trained factor is zero (e.g. B, at a ``task.lr`` too small to move it).
    """
    task = MLPTask.quick() if task is None else task
    if not isinstance(task, MLPTask):
        raise ValueError(f"task must be an MLPTask, got {type(task).__name__}")
    task_seeds = _seeds(task_seeds, "task_seeds")
    init_seeds = _seeds(init_seeds, "init_seeds")
    rank = as_int(rank, "rank", minimum=1)
    for l in task.adapted_layers:
        d_out, d_in = task.layer_shapes[l]
        if rank > min(d_in, d_out):
            raise ValueError(
                f"rank {rank} exceeds min(d_in, d_out) = {min(d_in, d_out)} of adapted layer {l}"
            )
    n = as_int(n, "n", minimum=1)
    data_seed = as_int(data_seed, "data_seed", minimum=0)
    if task.batch_size is not None and task.batch_size > n:
        raise ValueError(f"batch_size {task.batch_size} exceeds n = {n}")

    cells = tuple(product(task_seeds, init_seeds))
    weights = task.base_weights()
    data = {}
    for s in task_seeds:
        rng = keyed_rng(data_seed, SIMILARITY_DATA_KEY)
        data[s] = sample_data(replace(task, task_seed=s), n, rng)
    inits = [
        init_adapters("lora", task.init, weights, task.adapted_layers, rank,
                      keyed_rng(i, SIMILARITY_INIT_KEY))
        for _, i in cells
    ]
    state = {k: np.stack([c[k] for c in inits]) for k in inits[0]}
    orders = [keyed_rng([data_seed, t, i], SIMILARITY_ORDER_KEY)
              for t, i in cells]
    trained, _ = factor_names("lora", task.adapted_layers)
    state, objective = train_adapters(
        weights, state, trained,
        np.stack([data[t][0] for t, _ in cells]), np.stack([data[t][1] for t, _ in cells]),
        kind=task.kind, steps=task.steps, lr=task.lr, scaling=task.scaling(rank),
        batch_size=task.batch_size, order_rngs=orders, activation=task.activation,
    )
    _require_nonzero(state, task, cells)
    a_sim, b_sim, verdict = {}, {}, {}
    for l in task.adapted_layers:
        a_sim[l] = _pairwise(state[f"layer{l}.A"], "row")
        b_sim[l] = _pairwise(state[f"layer{l}.B"], "col")
        d_out, d_in = task.layer_shapes[l]
        verdict[l] = similarity_verdict(a_sim[l], b_sim[l], cells, d_in, d_out, rank)
    return SimilarityGrid(cells, a_sim, b_sim, verdict, objective)


def _seeds(value: object, name: str) -> tuple[int, ...]:
    try:
        seeds = tuple(value)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"{name} must be a tuple of seeds, got {value!r}") from exc
    if not seeds:
        raise ValueError(f"{name} must hold at least one seed, got {value!r}")
    seeds = tuple(as_int(s, name, minimum=0) for s in seeds)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} has repeated seeds: {value!r}")
    return seeds


def _require_nonzero(state: dict[str, Array], task: MLPTask, cells: tuple[tuple[int, int], ...]) -> None:
    """Raise ``ValueError`` naming the first trained factor that is exactly zero, and why.

    A zero factor has no row or column space to compare. ``lora`` starts B at zero: a B still zero
    after training means that Adam's steps did not move it (an ``lr`` that rounds to zero in
    float32, e.g. 1e-200, makes every step zero).
    """
    for l in task.adapted_layers:
        for factor, space in (("A", "row"), ("B", "column")):
            for (t, i), matrix in zip(cells, state[f"layer{l}.{factor}"]):  # (cells, ...)
                if np.any(matrix):
                    continue
                steps = f"{task.steps} Adam steps at task.lr={task.lr:g}"
                if factor == "B":
                    why = f"lora starts B at zero and {steps} did not move it; raise task.lr"
                else:
                    why = f"trained from the {task.init!r} init with {steps}"
                raise ValueError(f"the trained {factor} of layer {l} in cell (task seed {t}, init seed {i}) is zero, "
                                 f"so it has no {space} space to compare: {why}")


def _pairwise(factors: Array, side: str) -> Array:  # (cells, ...) -> (cells, cells)
    m = factors.shape[0]
    out = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            out[i, j] = out[j, i] = cca_similarity(factors[i], factors[j], side)
    return out
