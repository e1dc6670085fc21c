r"""Fine-tuning runs of the foundation model, batched over seeds and variants with ``torch.func``.

A *run* trains one variant of Zhu et al., "Asymmetry in Low-Rank Adapters of Foundation Models"
(ICML 2024), Section 4 (docs/THEORY.md §0), on one task: ``full`` (every backbone parameter),
``lora`` (PEFT's default init: ``A`` Kaiming-uniform, ``B = 0``, both trained), ``b_only`` (``A``
frozen at a Haar draw, ``B = 0`` trained) or ``a_only`` (``B`` frozen at a Haar draw, ``A = 0``
trained), the last two through :func:`peft_bridge.freeze_factor` (the paper's scale), each with
PEFT's scaling ``s = alpha / r`` on the run's adapted modules.

**Batching.** The runs of one rank share one PEFT model whose LoRA modules are the union of their
modules; every run's factors are stacked along a leading run axis and the model is called with
``torch.func.functional_call`` under ``torch.func.vmap`` over that axis, the run's own minibatch
beside its factors. A module a run does not adapt has zero factors. ``torch.optim.Adam`` steps the
stacked factors: Adam acts entry by entry, so on the stack it is one independent Adam per run; the
gradient of a frozen factor (and of a module the run does not adapt) is zeroed before each step,
which leaves it exactly unchanged (zero gradient, zero moments). ``full`` runs stack every backbone
parameter the same way. The result equals one PEFT model trained per run to float32 rounding
(tested); ``python -m bench --only foundation`` times both.

**Seeds.** A run's seed fixes its minibatch order (``torch.Generator`` from
``SeedSequence(seed, spawn_key=(6,))``) and its init: PEFT's ``reset_lora_parameters`` under
``torch.manual_seed`` of stream ``(7,)`` for ``lora``, ``freeze_factor(seed=seed)`` for the other
two. Runs of different variants at one seed see the same minibatches (a paired design), and
``lora`` runs at one seed share their initial ``A`` across tasks (Figure 1's shared init).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from peft_bridge.foundation.tasks import TaskData, metric, objective
from peft_bridge.geometry import keyed_torch_generator
from peft_bridge.layers import PEFT_PREFIX, freeze_factor, lora_modules
from theory.validation import as_int, as_real
from theory.variants import VARIANTS

#: Stream keys of a run's seed: minibatch order, ``lora`` init.
ORDER_KEY, INIT_KEY = 6, 7
#: Factor of a frozen side per variant (``b_only`` freezes A, ``a_only`` freezes B).
TRAINED = {"lora": ("A", "B"), "b_only": ("B",), "a_only": ("A",)}


@dataclass(frozen=True)
class Run:
    """One fine-tuning run: ``variant`` (``theory.VARIANTS``), LoRA ``rank`` (0 for ``full``),
    ``seed``, and the adapted ``modules`` (names as ``peft_bridge.lora_modules`` lists them, e.g.
    ``backbone.layers.1.self_attn.q_proj``; empty for ``full``)."""

    variant: str
    rank: int
    seed: int
    modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        as_int(self.seed, "seed", minimum=0)
        if self.variant == "full":
            if self.rank != 0 or self.modules:
                raise ValueError("a full run has rank 0 and no modules (it trains every backbone parameter)")
        else:
            as_int(self.rank, "rank", minimum=1)
            if not self.modules or not all(isinstance(m, str) for m in self.modules):
                raise ValueError(f"a {self.variant} run needs a non-empty tuple of module names, got {self.modules!r}")


@dataclass(frozen=True)
class Schedule:
    """Adam schedule of every run: ``steps`` of ``batch`` sequences; learning rate ``lr`` for
    adapters and ``lr_full`` for ``full``; PEFT's ``lora_alpha``; at most ``chunk`` runs per vmapped
    call; test sets evaluated ``eval_batch`` sequences at a time."""

    steps: int = 200
    batch: int = 8
    lr: float = 5e-3
    lr_full: float = 5e-4
    alpha: float = 8.0
    chunk: int = 16
    eval_batch: int = 128

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "chunk", "eval_batch"):
            as_int(getattr(self, name), name, minimum=1)
        for name in ("lr", "lr_full", "alpha"):
            as_real(getattr(self, name), name, positive=True)


@dataclass
class RunResult:
    """What one run measured: test ``loss`` (the training objective) and ``metric`` (``KINDS``) in
    distribution and on the OOD split (NaN without one), the same on the training set where asked
    (``train_loss``, ``train_metric``), and its learned ``factors`` {module: (A (r, d_in), B (d_out, r))}
    (adapter runs) or ``deltas`` {module: W − W0} of the watched modules (``full`` runs)."""

    run: Run
    loss: float
    metric: float
    ood_loss: float = float("nan")
    ood_metric: float = float("nan")
    train_loss: float = float("nan")
    train_metric: float = float("nan")
    factors: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    deltas: dict[str, np.ndarray] = field(default_factory=dict)


def order_generator(seed: int) -> torch.Generator:
    """The ``torch.Generator`` of a run's minibatch order: stream ``(ORDER_KEY,)`` of ``seed``."""
    return keyed_torch_generator(seed, ORDER_KEY)


def init_factors(peft_model: nn.Module, run: Run) -> None:
    """Set the LoRA factors of every module of ``peft_model`` to ``run``'s init (module docstring):
    PEFT's ``reset_lora_parameters`` under the seed's stream ``(INIT_KEY,)`` for ``lora``,
    ``peft_bridge.freeze_factor`` for ``b_only`` (freeze A) and ``a_only`` (freeze B)."""
    if run.variant == "lora":
        state = np.random.SeedSequence(run.seed, spawn_key=(INIT_KEY,)).generate_state(1)[0]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(state))
            for module in lora_modules(peft_model).values():
                module.reset_lora_parameters("default", True)
    else:
        freeze_factor(peft_model, "A" if run.variant == "b_only" else "B", seed=run.seed)


def fine_tune(model: nn.Module, data: TaskData, runs: list[Run], schedule: Schedule, *,
              watch: tuple[str, ...] = (), train_metrics: bool = False) -> list[RunResult]:
    """Train every run of ``runs`` on ``data`` from ``model`` (batched; module docstring).

    Parameters
    ----------
    model : the task model (``peft_bridge.foundation.task_model``), frozen; not modified.
    data : TaskData; runs : list of Run; schedule : Schedule.
    watch : module names whose weight change ``W − W0`` the ``full`` runs report.
    train_metrics : also evaluate every run on its whole training set.

    Returns
    -------
    list of RunResult, in the order of ``runs``.
    """
    if not runs or not all(isinstance(r, Run) for r in runs):
        raise ValueError("runs must be a non-empty list of Run")
    known = {name for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    for run in runs:
        missing = [m for m in run.modules if m not in known]
        if missing:
            raise ValueError(f"module {missing[0]!r} of a {run.variant} run is not a linear layer of the model")
    results: list[RunResult | None] = [None] * len(runs)
    groups: dict[int, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(run.rank, []).append(i)
    for rank, members in groups.items():
        for start in range(0, len(members), schedule.chunk):
            chunk = members[start:start + schedule.chunk]
            group = [runs[i] for i in chunk]
            out = (_full_group(model, data, group, schedule, watch, train_metrics) if rank == 0
                   else _adapter_group(model, data, group, rank, schedule, train_metrics))
            for i, result in zip(chunk, out):
                results[i] = result
    return results  # type: ignore[return-value]


def _adapter_group(model: nn.Module, data: TaskData, runs: list[Run], rank: int, schedule: Schedule,
                   train_metrics: bool) -> list[RunResult]:
    """Runs of one rank: one PEFT model, factors stacked over runs."""
    from peft import LoraConfig, get_peft_model

    targets = sorted({m for run in runs for m in run.modules})
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=rank, lora_alpha=schedule.alpha,
                                                                  target_modules=targets, lora_dropout=0.0))
    modules = lora_modules(peft_model)
    inits, masks = [], []
    for run in runs:
        values, mask = _initial_factors(peft_model, modules, run)
        inits.append(values)
        masks.append(mask)
    params = {k: torch.stack([v[k] for v in inits]).requires_grad_(True) for k in inits[0]}
    grad_masks = {k: torch.tensor([m[k] for m in masks]).view(-1, *([1] * (params[k].ndim - 1))) for k in params}
    _train(peft_model, data, runs, params, grad_masks, schedule.lr, schedule)
    results = _evaluate(peft_model, data, runs, params, schedule, train_metrics)
    for j, result in enumerate(results):
        for name in result.run.modules:
            result.factors[name] = tuple(params[_param(name, side)][j].detach().double().numpy() for side in "AB")
    return results


def _param(module: str, side: str) -> str:
    """The ``named_parameters`` name of factor ``side`` of LoRA module ``module`` in a ``PeftModel``."""
    return f"{PEFT_PREFIX}{module}.lora_{side}.default.weight"


def _initial_factors(peft_model: nn.Module, modules: dict[str, nn.Module], run: Run) -> tuple[dict, dict]:
    """The run's initial factors (by parameter name) and which of them it trains (module docstring)."""
    init_factors(peft_model, run)
    values, mask = {}, {}
    for module_name, module in modules.items():
        for side in "AB":
            weight = getattr(module, f"lora_{side}")["default"].weight
            active = module_name in run.modules
            values[_param(module_name, side)] = weight.detach().clone() if active else torch.zeros_like(weight)
            mask[_param(module_name, side)] = float(active and side in TRAINED[run.variant])
    return values, mask


def _full_group(model: nn.Module, data: TaskData, runs: list[Run], schedule: Schedule, watch: tuple[str, ...],
                train_metrics: bool) -> list[RunResult]:
    """``full`` runs: every backbone parameter stacked over runs."""
    base = {k: v.detach() for k, v in model.named_parameters() if k.startswith("backbone.")}
    params = {k: v.unsqueeze(0).repeat(len(runs), *([1] * v.ndim)).requires_grad_(True) for k, v in base.items()}
    _train(model, data, runs, params, {}, schedule.lr_full, schedule)
    results = _evaluate(model, data, runs, params, schedule, train_metrics)
    for j, result in enumerate(results):
        for name in watch:
            key = f"{name}.weight"
            result.deltas[name] = (params[key][j] - base[key]).detach().double().numpy()
    return results


def _per_run_loss(model: nn.Module, kind: str):
    def loss(params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return objective(kind, functional_call(model, params, (x,), strict=False), y)
    return vmap(loss)


def _train(model: nn.Module, data: TaskData, runs: list[Run], params: dict, grad_masks: dict, lr: float,
           schedule: Schedule) -> None:
    """Adam on the stacked ``params`` (module docstring), each run on its own minibatches."""
    x, y = data.train
    generators = [order_generator(run.seed) for run in runs]
    loss_fn = _per_run_loss(model, data.kind)
    optimizer = torch.optim.Adam(list(params.values()), lr=lr)
    for _ in range(schedule.steps):
        index = torch.stack([torch.randint(len(x), (schedule.batch,), generator=g) for g in generators])
        loss = loss_fn(params, x[index], y[index]).sum()
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        with torch.no_grad():
            for key, mask in grad_masks.items():
                params[key].grad.mul_(mask)
        optimizer.step()


def _evaluate(model: nn.Module, data: TaskData, runs: list[Run], params: dict, schedule: Schedule,
              train_metrics: bool) -> list[RunResult]:
    """Test (and OOD, and training-set) loss and metric of every run."""
    splits = {"test": data.test, "ood": data.ood, "train": data.train if train_metrics else None}
    measured = {}
    detached = {k: v.detach() for k, v in params.items()}
    forward = vmap(lambda p, x: functional_call(model, p, (x,), strict=False), in_dims=(0, None))
    for split, pair in splits.items():
        if pair is None:
            continue
        x, y = pair
        with torch.no_grad():
            outputs = torch.cat([forward(detached, xb) for xb in x.split(schedule.eval_batch)], dim=1)
        measured[split] = [(float(objective(data.kind, out, y)), metric(data.kind, out, y)) for out in outputs]
    results = []
    nan = (float("nan"), float("nan"))
    for j, run in enumerate(runs):
        test, ood, train = measured["test"][j], measured.get("ood", [nan] * len(runs))[j], \
            measured.get("train", [nan] * len(runs))[j]
        results.append(RunResult(run, *test, *ood, *train))
    return results


def pretrained_scores(model: nn.Module, data: TaskData, *, eval_batch: int = 128) -> dict[str, float]:
    """Test (and OOD) loss and metric of the task model before fine-tuning (``loss``, ``metric``,
    ``ood_loss``, ``ood_metric``)."""
    out = {}
    for split, pair in (("", data.test), ("ood_", data.ood)):
        if pair is None:
            out[f"{split}loss"] = out[f"{split}metric"] = float("nan")
            continue
        with torch.no_grad():
            output = torch.cat([model(x) for x in pair[0].split(eval_batch)])
        out[f"{split}loss"] = float(objective(data.kind, output, pair[1]))
        out[f"{split}metric"] = metric(data.kind, output, pair[1])
    return out



