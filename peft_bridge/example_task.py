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
    """Sizes and schedule of the worked example; presets ``default`` (under a minute) and ``tiny`` (tests).

    The worked example of the README (section "Real adapters: PEFT"): the task of the module
    docstring, a ``BertForSequenceClassification`` and PEFT LoRA with ``r = rank`` and
    ``lora_alpha = alpha`` (PEFT's scaling ``s = alpha / r``; Hu et al., "LoRA: Low-Rank
    Adaptation of Large Language Models", ICLR 2022). The defaults are the README's run.

    Attributes
    ----------
    vocab, seq_len, classes : tokens, sequence length ``T`` and classes ``c`` of every task.
    hidden, layers, heads, intermediate : the ``BertConfig`` sizes.
    targets : module-name suffixes that get LoRA (PEFT's ``LoraConfig.target_modules``).
    rank, alpha : LoRA rank ``r`` and PEFT's ``lora_alpha``.
    shift_deg : angle ``θ`` (degrees) between the source and target score tables.
    pretrain_steps, pretrain_lr, pretrain_batch : Adam schedule of the base model (all parameters).
    steps, lr, batch : Adam schedule of every adapter run.
    module_seeds : seeds per variant in the per-module measurement.
    n_train, n_test : training and test set sizes of each task.
    geometry_batches, label_samples, draws : batches of 64 unlabelled sequences for ``Σ`` and
        ``G``, pseudo-label draws per batch, and Haar draws per ``f(X, r)``
        (:func:`peft_bridge.predict_asymmetry`; docs/THEORY.md §1b).
    q_bits : bits per stored trained parameter in Lemma 4.5 of Zhu et al., ICML 2024 (16: bf16).
    seed : root of every random stream (module docstring).
    """

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
        """The example as the README reports it (section "Real adapters: PEFT"): under a minute on
        one CPU thread. ``overrides`` replace fields."""
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides: object) -> ExampleConfig:
        """A few seconds: the smoke test's sizes (hidden 16, rank 2, 4 training steps, 256 samples).

        Not a measurement: the sizes only exercise every step of the example (its smoke test runs
        ``python -m peft_bridge.example --tiny``). ``overrides`` replace fields.
        """
        sizes = dict(hidden=16, heads=2, intermediate=32, rank=2, alpha=4.0, pretrain_steps=4, steps=4, module_seeds=1,
                     n_train=256, n_test=128, geometry_batches=1, label_samples=1, draws=8)
        return cls(**{**sizes, **overrides})


def _rng(config: ExampleConfig, *key: int) -> np.random.Generator:
    """The generator of stream ``key`` of ``config.seed`` (module docstring)."""
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=key))


def score_table(config: ExampleConfig, task: int) -> np.ndarray:  # (vocab, classes)
    r"""Token scores of task ``task``: ``S_0`` (source) or ``cos θ S_0 + sin θ N_task``.

    The worked example's own construction (module docstring; not from Zhu et al., ICML 2024):

    .. math:: S_0, N_j \sim \mathcal N(0, 1)^{\text{vocab} \times c}, \qquad
              S_j = \cos\theta\, S_0 + \sin\theta\, N_j, \quad \theta = \text{shift\_deg},

    ``S_0`` from stream ``(0,)`` and ``N_j`` from stream ``(0, j)``, so every target task shares the
    source's component and two target tasks differ only in their ``N_j``.

    Parameters
    ----------
    config : ExampleConfig
    task : int
        0 for the source task, ``j >= 1`` for target task ``j``.

    Returns
    -------
    numpy.ndarray (vocab, classes)
    """
    source = _rng(config, 0).standard_normal((config.vocab, config.classes))
    if task == 0:
        return source
    theta = math.radians(config.shift_deg)
    return math.cos(theta) * source + math.sin(theta) * _rng(config, 0, task).standard_normal(source.shape)


def sample(config: ExampleConfig, table: np.ndarray, n: int,
           rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:  # (n, T) int64, (n,) int64
    """``n`` sequences of uniform tokens and their teacher labels ``argmax_k Σ_t S[x_t, k]``.

    The bag-of-words teacher of the module docstring (the worked example's own task, README
    section "Real adapters: PEFT"; not from Zhu et al., ICML 2024): each of the
    ``T = config.seq_len`` tokens is uniform on the vocabulary, independently, and the label is
    the class of largest summed score, without label noise.

    Parameters
    ----------
    config : ExampleConfig
    table : numpy.ndarray (vocab, classes), the scores ``S`` (:func:`score_table`).
    n : int, the number of sequences.
    rng : numpy.random.Generator

    Returns
    -------
    (ids, labels) : torch.Tensor (n, T) int64 and torch.Tensor (n,) int64.
    """
    ids = rng.integers(0, config.vocab, size=(n, config.seq_len))
    labels = table[ids].sum(axis=1).argmax(axis=1)
    return torch.from_numpy(ids), torch.from_numpy(labels)


def task_data(config: ExampleConfig, task: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Training set (``n_train``) and test set (``n_test``) of task ``task``.

    The data of the worked example (README, section "Real adapters: PEFT"): :func:`sample` with
    the scores of :func:`score_table`, the training set from stream ``(1, task)`` and the test set
    from stream ``(2, task)`` (module docstring), so the two are independent and every variant
    and seed sees the same data.

    Returns
    -------
    dict {"train": (ids (n_train, T), labels (n_train,)), "test": (ids (n_test, T), labels (n_test,))}.
    """
    table = score_table(config, task)
    return {"train": sample(config, table, config.n_train, _rng(config, 1, task)),
            "test": sample(config, table, config.n_test, _rng(config, 2, task))}


def geometry_batches(config: ExampleConfig, batch: int = 64) -> list[dict[str, torch.Tensor]]:
    """Unlabelled inputs on which ``Σ`` and ``G`` are estimated (``geometry_batches`` batches).

    ``config.geometry_batches`` batches of ``batch`` uniform token sequences from stream ``(3,)``,
    as dicts ``{"input_ids": (batch, T) int64}`` for :func:`peft_bridge.layer_geometry`, which
    draws its own pseudo-labels (docs/THEORY.md §1b.6 for the definitions of ``Σ`` and ``G``).
    """
    rng = _rng(config, 3)
    return [{"input_ids": torch.from_numpy(rng.integers(0, config.vocab, size=(batch, config.seq_len)))}
            for _ in range(config.geometry_batches)]


def build_model(config: ExampleConfig) -> nn.Module:
    """A freshly initialised BertForSequenceClassification (no dropout, no download).

    ``transformers.BertConfig`` with the sizes of ``config``, ``max_position_embeddings =
    seq_len``, ``num_labels = classes`` and both dropout probabilities 0; the weights are
    transformers' default init, drawn after ``torch.manual_seed(config.seed)``. The worked
    example's stand-in for a pretrained foundation model (README, section "Real adapters: PEFT").
    """
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(config.seed)
    bert = BertConfig(vocab_size=config.vocab, hidden_size=config.hidden, num_hidden_layers=config.layers,
                      num_attention_heads=config.heads, intermediate_size=config.intermediate,
                      max_position_embeddings=config.seq_len, num_labels=config.classes,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(bert)


def train(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], *, steps: int, lr: float, batch: int,
          seed: int) -> nn.Module:
    """``steps`` Adam steps on minibatches of ``data`` drawn with replacement; trains what requires grad.

    Each step draws ``batch`` indices uniformly with replacement from a ``torch.Generator``
    seeded with ``seed``, and takes one ``torch.optim.Adam`` step (learning rate ``lr``) on the
    mean cross-entropy of the model's logits. The model trains in train mode and is returned in
    eval mode. With :func:`lora_model` (and :func:`peft_bridge.freeze_factor`) only the LoRA
    factors of the variant require a gradient (docs/THEORY.md §0).

    Returns
    -------
    torch.nn.Module
        ``model``, trained in place.
    """
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
    """The base model: every parameter trained on the source task (task 0).

    :func:`build_model`, then :func:`train` on the training set of task 0 with
    ``pretrain_steps``, ``pretrain_lr`` and ``pretrain_batch``: the worked example's stand-in for
    pretraining (README, section "Real adapters: PEFT"), after which the target tasks are shifts
    of the source (:func:`score_table`).
    """
    model = build_model(config)
    return train(model, task_data(config, 0)["train"], steps=config.pretrain_steps, lr=config.pretrain_lr,
                 batch=config.pretrain_batch, seed=config.seed)


def lora_model(base: nn.Module, config: ExampleConfig, targets: tuple[str, ...]) -> nn.Module:
    """A copy of ``base`` with PEFT LoRA (rank ``config.rank``) on the modules ``targets``; head frozen.

    ``peft.get_peft_model`` of a deep copy with ``peft.LoraConfig(r=config.rank,
    lora_alpha=config.alpha, lora_dropout=0, target_modules=targets)`` and no ``task_type``:
    PEFT then returns a plain ``peft.PeftModel`` whose only trainable parameters are the LoRA
    factors (no ``modules_to_save``, so the classifier head stays frozen), initialised by PEFT's
    default (``init_lora_weights=True``): ``B = 0``, as in Hu et al., "LoRA: Low-Rank Adaptation
    of Large Language Models", ICLR 2022, and a kaiming-uniform ``A`` drawn from torch's global
    generator.
    """
    import peft

    lora = peft.LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                           target_modules=list(targets))
    return peft.get_peft_model(copy.deepcopy(base), lora)


def adapt(base: nn.Module, config: ExampleConfig, variant: str, data: tuple[torch.Tensor, torch.Tensor], *,
          seed: int, targets: tuple[str, ...] | None = None) -> nn.Module:
    """Train one adapter: ``lora`` (PEFT's default init, drawn after ``torch.manual_seed(seed)``) or
    ``b_only`` / ``a_only`` (``freeze_factor`` with ``seed``), then ``config.steps`` Adam steps.

    The variants of Zhu et al., ICML 2024 (docs/THEORY.md §0): ``b_only`` freezes a Haar ``A``
    and trains ``B`` from 0, ``a_only`` freezes a Haar ``B`` and trains ``A`` from 0
    (:func:`peft_bridge.freeze_factor`); ``lora`` trains both from PEFT's default init. The
    training is :func:`train` with ``config.lr``, ``config.batch`` and minibatch seed ``seed``.

    Parameters
    ----------
    base : torch.nn.Module, the pretrained model (not modified).
    config : ExampleConfig
    variant : {"lora", "b_only", "a_only"}
    data : (ids (n, T), labels (n,)), the training set.
    seed : int >= 0
    targets : module-name suffixes to adapt; ``config.targets`` when None.

    Returns
    -------
    torch.nn.Module
        The trained ``peft.PeftModel``, in eval mode.
    """
    torch.manual_seed(seed)
    model = lora_model(base, config, targets or config.targets)
    if variant != "lora":
        freeze_factor(model, FROZEN_SIDE[variant], seed=seed)
    return train(model, data, steps=config.steps, lr=config.lr, batch=config.batch, seed=seed)


def round_factors(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """Round every LoRA factor to ``dtype`` (stored with a fixed 16-bit grid: Lemma 4.5's ``q = 16``).

    Each entry of ``lora_A["default"]`` and ``lora_B["default"]`` is cast to ``dtype`` and back,
    in place. bf16 has ``2^16`` codes fixed before any data are seen, so each rounded entry is
    stored in ``q = 16`` bits on a grid fixed in advance, as Lemma 4.5 of Zhu et al., ICML 2024
    assumes (docs/THEORY.md §2.2, "What is stored"); the gap reported beside the bound is then
    that of the rounded model. Frozen entries are rounded as well.

    Returns
    -------
    torch.nn.Module
        ``model``, modified in place.
    """
    with torch.no_grad():
        for module in lora_modules(model).values():
            for factor in (module.lora_A["default"], module.lora_B["default"]):
                factor.weight.copy_(factor.weight.to(dtype).to(factor.weight.dtype))
    return model


@torch.no_grad()
def evaluate(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], chunk: int = 4096) -> dict[str, float]:
    """Mean cross-entropy (nats) and 0-1 error of ``model`` on ``data``.

    In chunks of ``chunk`` sequences, without gradients:
    ``loss = (1/n) Σ_i −log softmax(F_i)[y_i]`` and ``error = (1/n) Σ_i [argmax F_i ≠ y_i]``
    (docs/THEORY.md §5 names the same two losses for the toolkit's MLPs).

    Parameters
    ----------
    model : torch.nn.Module returning ``.logits`` (n, classes).
    data : (ids (n, T), labels (n,)).
    chunk : int, sequences per forward pass.

    Returns
    -------
    dict {"loss": float, "error": float}
    """
    ids, labels = data
    loss, wrong = 0.0, 0
    for start in range(0, ids.shape[0], chunk):
        logits = model(input_ids=ids[start:start + chunk]).logits
        loss += float(nn.functional.cross_entropy(logits, labels[start:start + chunk], reduction="sum"))
        wrong += int((logits.argmax(dim=1) != labels[start:start + chunk]).sum())
    return {"loss": loss / ids.shape[0], "error": wrong / ids.shape[0]}
