r"""The worked example's task, model and training loop: a 2-layer BERT built from a config.

Nothing is downloaded: the "pretrained" model is ``transformers.BertForSequenceClassification``
built from a ``BertConfig`` and trained from scratch, with every parameter, on a *source* task;
the adapters are then trained on *target* tasks. A task is a bag-of-words teacher: token ``v``
has a score vector ``S_v ∈ R^c``, and a sequence ``x_1 … x_T`` of uniform random tokens has
label ``argmax_k Σ_t S_{x_t, k}``. Target task ``j`` rotates the source's scores toward an
independent Gaussian table ``N_j``: ``S_j = cos θ · S_0 + sin θ · N_j``.

Seeds (``numpy.random.SeedSequence(seed, spawn_key=key)``): ``(0,)`` the source table, ``(0, j)``
the table ``N_j``, ``(1, j)`` the training set of task ``j`` (``j = 0`` the source), ``(2, j)`` its
test set, ``(3,)`` the inputs of the geometry estimate. ``torch.manual_seed`` seeds the model's
init (``build_model``) and PEFT's default init of a ``lora`` run (``adapt``), which draw from
torch's global generator; a run's minibatch order comes from its own ``torch.Generator``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from peft_bridge.layers import FROZEN_VARIANT, freeze_factor, lora_modules

#: Variants of an adapter run, and the factor ``freeze_factor`` freezes for each.
FROZEN_SIDE = {variant: side for side, variant in FROZEN_VARIANT.items()}


@dataclass(frozen=True)
class ExampleConfig:
    """Sizes and schedule of the worked example; presets ``default`` (under a minute) and ``tiny`` (tests)."""

    vocab: int = 32
    seq_len: int = 12
    classes: int = 4
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    intermediate: int = 128
    targets: tuple[str, ...] = ("query", "value")
    rank: int = 4
    alpha: float = 8.0
    shift_deg: float = 60.0
    pretrain_steps: int = 300
    pretrain_lr: float = 3e-3
    pretrain_batch: int = 64
    steps: int = 200
    module_seeds: int = 2
    lr: float = 5e-3
    batch: int = 32
    n_train: int = 16384
    n_test: int = 2048
    geometry_batches: int = 4
    label_samples: int = 4
    draws: int = 256
    q_bits: int = 16
    seed: int = 0

    @classmethod
    def default(cls, **overrides: object) -> ExampleConfig:
        """The example as documented: about 45 s on one CPU thread."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: object) -> ExampleConfig:
        """A few seconds: the smoke test's sizes."""
        sizes = dict(hidden=16, heads=2, intermediate=32, rank=2, alpha=4.0, pretrain_steps=4, steps=4, module_seeds=1,
                     n_train=256, n_test=128, geometry_batches=1, label_samples=1, draws=8)
        return cls(**{**sizes, **overrides})


def _rng(config: ExampleConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=key))


def score_table(config: ExampleConfig, task: int) -> np.ndarray:  # (vocab, classes)
    r"""Token scores of task ``task``: ``S_0`` (source) or ``cos θ S_0 + sin θ N_task``."""
    source = _rng(config, 0).standard_normal((config.vocab, config.classes))
    if task == 0:
        return source
    theta = math.radians(config.shift_deg)
    return math.cos(theta) * source + math.sin(theta) * _rng(config, 0, task).standard_normal(source.shape)


def sample(config: ExampleConfig, table: np.ndarray, n: int,
           rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:  # (n, T) int64, (n,) int64
    """``n`` sequences of uniform tokens and their teacher labels ``argmax_k Σ_t S[x_t, k]``."""
    ids = rng.integers(0, config.vocab, size=(n, config.seq_len))
    labels = table[ids].sum(axis=1).argmax(axis=1)
    return torch.from_numpy(ids), torch.from_numpy(labels)


def task_data(config: ExampleConfig, task: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Training set (``n_train``) and test set (``n_test``) of task ``task``."""
    table = score_table(config, task)
    return {"train": sample(config, table, config.n_train, _rng(config, 1, task)),
            "test": sample(config, table, config.n_test, _rng(config, 2, task))}


def geometry_batches(config: ExampleConfig, batch: int = 64) -> list[dict[str, torch.Tensor]]:
    """Unlabelled inputs on which ``Σ`` and ``G`` are estimated (``geometry_batches`` batches)."""
    rng = _rng(config, 3)
    return [{"input_ids": torch.from_numpy(rng.integers(0, config.vocab, size=(batch, config.seq_len)))}
            for _ in range(config.geometry_batches)]


def build_model(config: ExampleConfig) -> nn.Module:
    """A freshly initialised BertForSequenceClassification (no dropout, no download)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(config.seed)
    bert = BertConfig(vocab_size=config.vocab, hidden_size=config.hidden, num_hidden_layers=config.layers,
                      num_attention_heads=config.heads, intermediate_size=config.intermediate,
                      max_position_embeddings=config.seq_len, num_labels=config.classes,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(bert)


def train(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], *, steps: int, lr: float, batch: int,
          seed: int) -> nn.Module:
    """``steps`` Adam steps on minibatches of ``data`` drawn with replacement; trains what requires grad."""
    ids, labels = data
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        pick = torch.randint(0, ids.shape[0], (batch,), generator=gen)
        loss = nn.functional.cross_entropy(model(input_ids=ids[pick]).logits, labels[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def pretrain(config: ExampleConfig) -> nn.Module:
    """The base model: every parameter trained on the source task (task 0)."""
    model = build_model(config)
    return train(model, task_data(config, 0)["train"], steps=config.pretrain_steps, lr=config.pretrain_lr,
                 batch=config.pretrain_batch, seed=config.seed)


def lora_model(base: nn.Module, config: ExampleConfig, targets: tuple[str, ...]) -> nn.Module:
    """A copy of ``base`` with PEFT LoRA (rank ``config.rank``) on the modules ``targets``; head frozen."""
    import peft

    lora = peft.LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                           target_modules=list(targets))
    return peft.get_peft_model(copy.deepcopy(base), lora)


def adapt(base: nn.Module, config: ExampleConfig, variant: str, data: tuple[torch.Tensor, torch.Tensor], *,
          seed: int, targets: tuple[str, ...] | None = None) -> nn.Module:
    """Train one adapter: ``lora`` (PEFT's default init, drawn after ``torch.manual_seed(seed)``) or
    ``b_only`` / ``a_only`` (``freeze_factor`` with ``seed``), then ``config.steps`` Adam steps."""
    torch.manual_seed(seed)
    model = lora_model(base, config, targets or config.targets)
    if variant != "lora":
        freeze_factor(model, FROZEN_SIDE[variant], seed=seed)
    return train(model, data, steps=config.steps, lr=config.lr, batch=config.batch, seed=seed)


def round_factors(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """Round every LoRA factor to ``dtype`` (stored with a fixed 16-bit grid: Lemma 4.5's ``q = 16``)."""
    with torch.no_grad():
        for module in lora_modules(model).values():
            for factor in (module.lora_A["default"], module.lora_B["default"]):
                factor.weight.copy_(factor.weight.to(dtype).to(factor.weight.dtype))
    return model


@torch.no_grad()
def evaluate(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], chunk: int = 4096) -> dict[str, float]:
    """Mean cross-entropy (nats) and 0-1 error of ``model`` on ``data``."""
    ids, labels = data
    loss, wrong = 0.0, 0
    for start in range(0, ids.shape[0], chunk):
        logits = model(input_ids=ids[start:start + chunk]).logits
        loss += float(nn.functional.cross_entropy(logits, labels[start:start + chunk], reduction="sum"))
        wrong += int((logits.argmax(dim=1) != labels[start:start + chunk]).sum())
    return {"loss": loss / ids.shape[0], "error": wrong / ids.shape[0]}
