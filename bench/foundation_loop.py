r"""The per-run reference of ``peft_bridge.foundation.fine_tune``: one PEFT model trained per run.

What a user would write without the batched engine: for each run, a copy of the task model,
``peft.get_peft_model`` with LoRA on the run's modules, the run's init (PEFT's
``reset_lora_parameters`` for ``lora``, ``peft_bridge.freeze_factor`` for ``b_only`` and
``a_only``), ``torch.optim.Adam`` on the parameters that require a gradient, and the run's own
minibatches; ``full`` trains a copy of the whole backbone. The seeds' streams are the engine's
(``peft_bridge.foundation.finetune``), so the two agree to float32 rounding where the engine's
PEFT model adapts the same modules as the run (tested); ``python -m bench --only foundation`` times
both.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from peft_bridge.foundation.finetune import Run, Schedule, init_factors, order_generator
from peft_bridge.foundation.tasks import TaskData, metric, objective


def _prepared(model: nn.Module, run: Run, schedule: Schedule) -> nn.Module:
    """A trainable copy of ``model`` for ``run``: PEFT LoRA with the run's init, or the whole backbone."""
    model = copy.deepcopy(model)
    if run.variant == "full":
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("backbone."))
        return model
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(model, LoraConfig(r=run.rank, lora_alpha=schedule.alpha, target_modules=list(run.modules),
                                             lora_dropout=0.0))
    init_factors(model, run)
    return model


def train_one(model: nn.Module, data: TaskData, run: Run, schedule: Schedule) -> tuple[nn.Module, float, float]:
    """Train ``run`` alone; the trained model, its test loss and its test metric."""
    model = _prepared(model, run, schedule)
    x, y = data.train
    order = order_generator(run.seed)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=schedule.lr_full if run.variant == "full" else schedule.lr)
    for _ in range(schedule.steps):
        index = torch.randint(len(x), (schedule.batch,), generator=order)
        loss = objective(data.kind, model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        out = torch.cat([model(xb) for xb in data.test[0].split(schedule.eval_batch)])
    return model, float(objective(data.kind, out, data.test[1])), metric(data.kind, out, data.test[1])


def train_loop(model: nn.Module, data: TaskData, runs: list[Run], schedule: Schedule) -> list[tuple[float, float]]:
    """:func:`train_one` for every run; (test loss, test metric) of each."""
    return [train_one(model, data, run, schedule)[1:] for run in runs]
