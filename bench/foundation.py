r"""The foundation model's batched fine-tuning against one PEFT model per run.

``peft_bridge.foundation.fine_tune`` trains many runs at once (``torch.func.vmap`` over stacked
LoRA factors; docs/THEORY.md §8.7); ``bench.foundation_loop.train_loop`` trains the same runs one
by one, as a user would with PEFT. Both start from the same pretrained decoder and task model and
see the same minibatches, so their test losses agree to float32 rounding; the row reports the
largest relative difference as its check. Time: wall seconds of each, once, in one process, the
loop first; seconds per run and their ratio. The README (section "Performance") reports a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.foundation_loop import train_loop
from peft_bridge.foundation import FoundationConfig, Run, Schedule, fine_tune, pretrained, task_data, task_model
from peft_bridge.foundation.experiment import table_modules
from theory.validation import as_int

#: Largest relative difference of a test loss between the two that counts as the same run.
CHECK_RTOL = 1e-4


@dataclass(frozen=True)
class FoundationBenchConfig:
    """What :func:`time_foundation` trains: the experiment's model and task, ``seeds`` seeds of each
    adapter variant at rank ``config.rank`` on the ``qv`` modules, with ``schedule``."""

    config: FoundationConfig = field(default_factory=FoundationConfig.quick)
    task: str = "polarity"
    seeds: int = 4
    schedule: Schedule = field(default_factory=lambda: Schedule(steps=30))

    def __post_init__(self) -> None:
        as_int(self.seeds, "seeds", minimum=1)

    @classmethod
    def full(cls) -> FoundationBenchConfig:
        """The quick preset's decoder (4 layers, hidden 128), 12 adapter runs of 30 steps."""
        return cls()

    @classmethod
    def quick(cls) -> FoundationBenchConfig:
        """Seconds: the tiny decoder, 6 runs of 5 steps (smoke test)."""
        return cls(config=FoundationConfig.tiny(), seeds=2, schedule=Schedule(steps=5, batch=4, eval_batch=16))


def time_foundation(bench: FoundationBenchConfig) -> dict[str, Any]:
    """Seconds per run of the per-run PEFT loop and of the batched engine, their ratio, and the check.

    Returns
    -------
    dict with ``runs``, ``loop_seconds_per_run``, ``batched_seconds_per_run``, ``ratio``,
    ``max_rel_difference`` and ``check`` (whether it is within ``CHECK_RTOL``).
    """
    c = bench.config
    base = pretrained(c)
    data = task_data(base.corpus, bench.task, n_train=c.n_train, n_test=c.n_test, seed=c.seed)
    model = task_model(base.model, data)
    modules = table_modules(c, "qv")
    runs = [Run(v, c.rank, s, modules) for v in ("lora", "b_only", "a_only") for s in range(bench.seeds)]
    start = time.perf_counter()
    loop = train_loop(model, data, runs, bench.schedule)
    loop_seconds = time.perf_counter() - start
    start = time.perf_counter()
    batched = fine_tune(model, data, runs, bench.schedule)
    batched_seconds = time.perf_counter() - start
    diff = max(abs(b.loss - l_loss) / abs(l_loss) for b, (l_loss, _) in zip(batched, loop))
    return {"runs": len(runs), "loop_seconds_per_run": loop_seconds / len(runs),
            "batched_seconds_per_run": batched_seconds / len(runs), "ratio": loop_seconds / batched_seconds,
            "max_rel_difference": diff, "check": bool(diff <= CHECK_RTOL)}
