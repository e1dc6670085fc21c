"""Pretraining: cached on its configuration and code, resumable, and the decoder's sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from peft_bridge.foundation import FoundationConfig, ModelConfig, build_decoder, pretrain
from peft_bridge.foundation import model as model_module
from peft_bridge.foundation.experiment import backbone_parameters, module_shapes, table_modules
from peft_bridge.foundation.model import pretraining_key

TINY = FoundationConfig.tiny()


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_cached_pretraining_is_the_same_model(tmp_path):
    """A second call loads what the first trained: the same weights, test loss and curve."""
    first = pretrain(TINY.corpus, TINY.model, cache_dir=tmp_path, progress=False)
    second = pretrain(TINY.corpus, TINY.model, cache_dir=tmp_path, progress=False)
    for key, value in _weights(first.model).items():
        torch.testing.assert_close(second.model.state_dict()[key], value, rtol=0, atol=0)
    assert second.test_loss == first.test_loss
    np.testing.assert_array_equal(second.losses, first.losses)


def test_interrupted_pretraining_resumes_to_the_same_model(tmp_path, monkeypatch):
    """Killed after its checkpoint at step 2 of 4, a rerun resumes there and ends with the weights
    of an uninterrupted run (minibatch t is a function of t alone)."""
    reference = pretrain(TINY.corpus, TINY.model, cache_dir=None, progress=False)
    real = model_module.language_model_loss
    calls = {"n": 0}

    def dying(model, tokens):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(model, tokens)

    monkeypatch.setattr(model_module, "language_model_loss", dying)
    with pytest.raises(KeyboardInterrupt):
        pretrain(TINY.corpus, TINY.model, cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(model_module, "language_model_loss", real)
    key = pretraining_key(TINY.corpus, TINY.model)
    assert (tmp_path / "foundation" / key / "checkpoint.pt").is_file()
    resumed = pretrain(TINY.corpus, TINY.model, cache_dir=tmp_path, progress=False)
    for name, value in _weights(reference.model).items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(resumed.losses, reference.losses, rtol=1e-6)
    assert not (tmp_path / "foundation" / key / "checkpoint.pt").exists()


def test_key_follows_the_configuration():
    """Another model size or corpus seed is another cache entry."""
    base = pretraining_key(TINY.corpus, TINY.model)
    assert pretraining_key(TINY.corpus, ModelConfig(**{**TINY.model.__dict__, "steps": 5})) != base
    assert pretraining_key(type(TINY.corpus)(**{**TINY.corpus.__dict__, "seed": 1}), TINY.model) != base


def test_pretraining_lowers_the_loss():
    """A few dozen steps take the next-token loss well below its value at the init (ln V for a uniform guess)."""
    config = FoundationConfig.tiny(model=ModelConfig(hidden=16, layers=2, heads=2, intermediate=32, steps=40,
                                                     batch=16, warmup=2, lr=1e-2, test_sequences=64))
    trained = pretrain(config.corpus, config.model, progress=False)
    assert trained.losses[-5:].mean() < trained.losses[:2].mean() - 0.2


def test_sizes_match_the_built_decoder():
    """``backbone_parameters`` and ``module_shapes`` agree with the transformers model they describe."""
    for config in (FoundationConfig.tiny(), FoundationConfig()):
        decoder = build_decoder(config.corpus, config.model)
        assert sum(p.numel() for p in decoder.model.parameters()) == backbone_parameters(config)
        for targets in ("qv", "all"):
            for name, shape in zip(table_modules(config, targets), module_shapes(config, targets)):
                weight = decoder.get_submodule(name.replace("backbone.", "model.")).weight
                assert tuple(weight.shape) == shape


@pytest.mark.parametrize(("field", "value"), [("hidden", 0), ("heads", 3), ("lr", 0.0), ("warmup", -1)])
def test_bad_model_config_is_refused(field, value):
    """Sizes a LlamaConfig cannot take are a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{field: value})
