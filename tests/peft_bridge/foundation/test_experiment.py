"""The experiment's configuration: presets that hold the issue's sizes, and clear errors at the door."""

from __future__ import annotations

import pytest

from peft_bridge.foundation import TASKS, FoundationConfig, arms, pretrain
from peft_bridge.foundation.experiment import RULE_MODULES


def test_full_preset_is_the_measurement():
    """The full preset: a decoder of at least 4 layers and hidden size 128 on a vocabulary of at least
    128 tokens, every task of the suite, at least 3 seeds, at least 24 module × task points, q/v and
    every linear map as target sets."""
    c = FoundationConfig.full()
    assert c.model.layers >= 4 and c.model.hidden >= 128 and c.corpus.vocab >= 128
    assert set(c.tasks) == set(TASKS) and c.seeds >= 3
    assert len(c.tasks) * len(c.rule_modules) >= 24
    assert c.target_sets == ("qv", "all")
    variants = [(v, r) for _, v, r in arms(c)]
    assert variants[:6] == [("full", 0), ("lora", 4), ("b_only", 4), ("b_only", 8), ("a_only", 4), ("a_only", 8)]


def test_quick_preset_keeps_the_model_and_shrinks_the_schedule():
    """The quick preset has the full preset's architecture and corpus (a shorter pretraining)."""
    quick, full = FoundationConfig.quick(), FoundationConfig.full()
    assert quick.corpus == full.corpus
    assert (quick.model.hidden, quick.model.layers) == (full.model.hidden, full.model.layers)
    assert set(quick.rule_modules) <= set(RULE_MODULES)


@pytest.mark.parametrize(("changes", "match"), [
    (dict(tasks=()), "tasks"),
    (dict(tasks=("sentiment",)), "task"),
    (dict(target_sets=("qkv",)), "target_sets"),
    (dict(seeds=1), "seeds"),
    (dict(rank=0), "rank"),
    (dict(rule_modules=("layers.9.self_attn.q_proj",)), "rule module"),
    (dict(rule_modules=("layers.0.attn.q",)), "rule module"),
    (dict(bound_task="formality"), "bound_task"),
    (dict(q_bits=0), "q_bits"),
    (dict(n_test=1), "n_test"),
])
def test_bad_configuration_is_refused(changes, match):
    """A configuration the experiment cannot run is a ValueError naming the field, before any work."""
    with pytest.raises(ValueError, match=match):
        FoundationConfig.tiny(**changes)


def test_pretrain_refuses_other_configurations():
    """pretrain takes a CorpusConfig and a ModelConfig, nothing else."""
    with pytest.raises(ValueError, match="CorpusConfig"):
        pretrain({"vocab": 128}, FoundationConfig.tiny().model)


def test_pretrain_without_the_peft_extra_says_what_to_install(monkeypatch):
    """Without transformers (the [peft] extra) pretraining is a ValueError naming the extra."""
    import builtins

    real = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name == "transformers":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(ValueError, match="peft"):
        pretrain(FoundationConfig.tiny().corpus, FoundationConfig.tiny().model)
