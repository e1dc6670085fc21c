"""The downstream suite and the batched fine-tuning engine (against a per-run PEFT loop)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.foundation_loop import train_one
from peft_bridge.foundation import TASKS, FoundationConfig, Run, Schedule, fine_tune, pretrained, task_data, task_model
from peft_bridge.foundation.experiment import table_modules
from peft_bridge.foundation.tasks import objective

TINY = FoundationConfig.tiny()
SCHEDULE = Schedule(steps=6, batch=4, lr=2e-2, lr_full=2e-3, eval_batch=16)


@pytest.fixture(scope="module")
def base():
    return pretrained(TINY)


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_has_its_labels_and_splits(base, name):
    """Targets have the task's kind and range; the OOD split exists exactly for the tasks marked OOD."""
    data = task_data(base.corpus, name, n_train=64, n_test=32, seed=0)
    x, y = data.train
    assert x.shape == (64, TINY.corpus.seq_len) and x.dtype == torch.int64
    kind, has_ood = TASKS[name]
    assert (data.ood is not None) == has_ood
    if kind == "classification":
        assert y.min() >= 0 and y.max() < data.outputs
    elif kind == "regression":
        assert y.shape == (64, 1) and abs(float(y.mean())) < 1.0
    else:
        assert torch.equal(y, x)


def test_grammar_corruption_makes_sequences_less_likely(base):
    """About half the sequences are corrupted, and the generator finds them less likely than the clean
    ones (a shuffled window breaks the class chain)."""
    from peft_bridge.foundation.corpus import log_likelihoods

    data = task_data(base.corpus, "grammar", n_train=400, n_test=8, seed=0)
    x, y = data.train
    assert 0.4 < float(y.float().mean()) < 0.6
    ll = log_likelihoods(base.corpus, x.numpy(), domains=tuple(range(TINY.corpus.domains - 1))).sum(1)
    assert ll[y.numpy() == 1].mean() < ll[y.numpy() == 0].mean()


def test_ood_split_is_the_held_out_domain(base):
    """The OOD sequences come from domain D − 1 and never from the training domains (their own lexicon)."""
    from peft_bridge.foundation.corpus import log_likelihoods

    data = task_data(base.corpus, "polarity", n_train=64, n_test=64, seed=0)
    d = TINY.corpus.domains
    ood_ll = log_likelihoods(base.corpus, data.ood[0].numpy(), domains=(d - 1,)).sum(1)
    in_ll = log_likelihoods(base.corpus, data.ood[0].numpy(), domains=tuple(range(d - 1))).sum(1)
    assert np.mean(ood_ll > in_ll) > 0.8


def test_linear_probe_fits_the_training_set(base):
    """The frozen read-out is fitted: its training loss is below that of a constant prediction."""
    for name in ("polarity", "formality"):
        data = task_data(base.corpus, name, n_train=256, n_test=32, seed=0)
        model = task_model(base.model, data)
        with torch.no_grad():
            loss = float(objective(data.kind, model(data.train[0]), data.train[1]))
        y = data.train[1]
        constant = float(y.var(unbiased=False)) if data.kind == "regression" else float(np.log(2))
        assert loss < constant


@pytest.mark.parametrize("task", ["polarity", "formality", "new_domain_lm"])
def test_batched_runs_equal_one_peft_model_per_run(base, task):
    """Every variant trained by the vmapped engine has the test loss and metric of the same run trained
    alone in its own PEFT model (float32 rounding: rtol 1e-4)."""
    data = task_data(base.corpus, task, n_train=64, n_test=32, seed=0)
    model = task_model(base.model, data)
    modules = table_modules(TINY, "qv")
    runs = [Run("full", 0, 1)] + [Run(v, 2, s, modules) for v in ("lora", "b_only", "a_only") for s in (0, 1)]
    batched = fine_tune(model, data, runs, SCHEDULE)
    for run, result in zip(runs, batched):
        _, loss, metric = train_one(model, data, run, SCHEDULE)
        assert result.loss == pytest.approx(loss, rel=1e-4, abs=1e-6), run
        assert result.metric == pytest.approx(metric, rel=1e-4, abs=1e-6), run


def test_frozen_factors_stay_frozen_and_unadapted_modules_stay_zero(base):
    """b_only keeps its Haar A (orthonormal rows) and a_only its Haar B; a module outside a run's set
    contributes nothing; the pretrained model is not modified."""
    data = task_data(base.corpus, "polarity", n_train=64, n_test=32, seed=0)
    model = task_model(base.model, data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one = ("backbone.layers.0.self_attn.q_proj",)
    runs = [Run("b_only", 2, 0, one), Run("a_only", 2, 0, one), Run("b_only", 2, 0, table_modules(TINY, "qv"))]
    results = fine_tune(model, data, runs, SCHEDULE)
    a, b = results[0].factors[one[0]]
    np.testing.assert_allclose(a @ a.T, np.eye(2), atol=1e-6)
    assert np.abs(b).sum() > 0
    a, b = results[1].factors[one[0]]
    np.testing.assert_allclose(b.T @ b, np.eye(2), atol=1e-6)
    assert set(results[0].factors) == set(one)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(variant="half", rank=2, seed=0, modules=("x",)), "variant"),
    (dict(variant="full", rank=2, seed=0), "full"),
    (dict(variant="lora", rank=0, seed=0, modules=("x",)), "rank"),
    (dict(variant="lora", rank=2, seed=0), "module"),
    (dict(variant="lora", rank=2, seed=-1, modules=("x",)), "seed"),
])
def test_bad_runs_are_refused(kwargs, match):
    """A run the engine cannot train is a ValueError naming what is wrong."""
    with pytest.raises(ValueError, match=match):
        Run(**kwargs)


def test_unknown_module_is_refused(base):
    """A module name that is not a linear layer of the model is refused before training."""
    data = task_data(base.corpus, "polarity", n_train=16, n_test=8, seed=0)
    with pytest.raises(ValueError, match="not a linear layer"):
        fine_tune(task_model(base.model, data), data, [Run("lora", 2, 0, ("backbone.nowhere",))], SCHEDULE)
