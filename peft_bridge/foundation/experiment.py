r"""The foundation-model experiment as a function of one configuration: pretraining, the variant
tables, the rule module by module, and the inputs of Figure 1 and of the bounds (docs/THEORY.md §8).

Three steps, each a pure function of a :class:`FoundationConfig` (and a task), so that other
corpora, sizes, tasks and adapters run through the same calls, and so that the figures can run
them as independent units (``figures.foundation_variants``, ``figures.foundation_rule``):

- :func:`pretraining_summary`: pretrain (cached; ``peft_bridge.foundation.pretrain``), and report
  the held-out loss against the generator's own loss, and the effective rank of ``Σ`` of every
  linear module of the backbone against its width;
- :func:`variant_runs`: the paper's table for one task (Zhu et al., ICML 2024, Tables 1–4, small):
  ``full``; ``lora`` at ``r``; ``b_only`` and ``a_only`` at ``r`` and ``2r``; ``seeds`` seeds;
  on each target set of modules;
- :func:`rule_runs`: for each module of ``rule_modules``, ``f(Σ, r)`` and ``f(G, r)`` from
  ``peft_bridge.predict_asymmetry`` and the test losses of ``b_only`` and ``a_only`` when only that
  module is adapted, with the gradient at ``W0`` and ``Σ``, ``G`` for the controls.

The pretrained model is cached under :func:`model_cache_dir` (``LORA_ASYM_MODEL_CACHE``, default
``~/.cache/lora-asymmetry``), so that every unit of every process loads one pretraining.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from peft_bridge.foundation.corpus import CorpusConfig, bayes_loss, sample
from peft_bridge.foundation.finetune import Run, Schedule, fine_tune, pretrained_scores
from peft_bridge.foundation.model import ModelConfig, TaskModel, pretrain
from peft_bridge.foundation.tasks import (
    KINDS,
    TASKS,
    bayes_metric,
    check_task,
    evaluation_batches,
    objective,
    task_data,
    task_model,
)
from peft_bridge.geometry import layer_geometry, predictions_from_geometry
from peft_bridge.layers import freeze_factor
from theory.captured import effective_rank
from theory.validation import as_int

#: The rows of a variant table: (variant, rank as a multiple of r; 0 for ``full``).
ARMS: tuple[tuple[str, int], ...] = (("full", 0), ("lora", 1), ("b_only", 1), ("b_only", 2), ("a_only", 1),
                                      ("a_only", 2))
#: The rows run on every further target set (the table's comparisons at rank r).
MORE_ARMS: tuple[tuple[str, int], ...] = (("lora", 1), ("b_only", 1), ("a_only", 1))
#: Target sets of the tables: the paper's attention projections, and every linear map of a block.
TARGET_SETS: dict[str, tuple[str, ...]] = {
    "qv": ("self_attn.q_proj", "self_attn.v_proj"),
    "all": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
            "mlp.up_proj", "mlp.down_proj"),
}
#: Modules of the per-module rule, fixed before any result: one per block, attention and MLP maps.
RULE_MODULES = ("layers.0.self_attn.v_proj", "layers.1.self_attn.q_proj", "layers.2.mlp.down_proj",
                "layers.3.mlp.up_proj")
#: Rows (sequences) of the training set on which the gradient at ``W0`` is taken.
GRADIENT_ROWS = 512


def model_cache_dir() -> Path:
    """Where pretrained models are cached: ``$LORA_ASYM_MODEL_CACHE`` or ``~/.cache/lora-asymmetry``."""
    return Path(os.environ.get("LORA_ASYM_MODEL_CACHE") or Path.home() / ".cache" / "lora-asymmetry")


@dataclass(frozen=True)
class FoundationConfig:
    """The whole experiment: corpus, model, tasks, adapters, schedule and measurement sizes.

    Attributes
    ----------
    corpus, model : CorpusConfig, ModelConfig (pretraining).
    tasks : names of ``peft_bridge.foundation.TASKS``.
    target_sets : names of ``TARGET_SETS``; the first is the table's main one (Figure 1 reads it).
    rank : ``r``; the tables also run ``2r``.
    seeds : seeds per run (>= 2 for a standard error).
    n_train, n_test : examples per task (the OOD split has ``n_test``).
    schedule : fine-tuning schedule (``peft_bridge.foundation.Schedule``).
    rule_modules : module names (under ``backbone.``) of the per-module rule.
    geometry_batches, label_samples, draws : ``predict_asymmetry``'s batches of 64 training inputs,
        pseudo-label draws, Haar draws.
    bound_task : the task whose variants are bounded (a classification: the 0-1 loss).
    q_bits : bits per trained parameter in Lemma 4.5.
    seed : seed of the task data and of the predictor.
    """

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: tuple[str, ...] = tuple(TASKS)
    target_sets: tuple[str, ...] = ("qv",)
    rank: int = 4
    seeds: int = 3
    n_train: int = 2048
    n_test: int = 512
    schedule: Schedule = field(default_factory=Schedule)
    rule_modules: tuple[str, ...] = RULE_MODULES
    geometry_batches: int = 8
    label_samples: int = 2
    draws: int = 256
    bound_task: str = "polarity"
    q_bits: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("tasks must name at least one task")
        for name in self.tasks:
            check_task(name)
        if not self.target_sets or any(t not in TARGET_SETS for t in self.target_sets):
            raise ValueError(f"target_sets must name entries of {tuple(TARGET_SETS)}, got {self.target_sets!r}")
        as_int(self.seeds, "seeds", minimum=2)
        as_int(self.rank, "rank", minimum=1, maximum=self.model.hidden // 2)
        for name in ("n_train", "n_test", "geometry_batches", "label_samples", "draws"):
            as_int(getattr(self, name), name, minimum=2 if name in ("n_train", "n_test", "draws") else 1)
        layers = self.model.layers
        for module in self.rule_modules:
            parts = module.split(".")
            if len(parts) != 4 or parts[0] != "layers" or not parts[1].isdigit() or int(parts[1]) >= layers \
                    or ".".join(parts[2:]) not in TARGET_SETS["all"]:
                raise ValueError(f"rule module {module!r} is not 'layers.<l>.<map>' with l < {layers} and a map "
                                 f"of {TARGET_SETS['all']}")
        if TASKS[check_task(self.bound_task)][0] != "classification":
            raise ValueError(f"bound_task must be a classification task (0-1 loss), got {self.bound_task!r}")
        as_int(self.q_bits, "q_bits", minimum=1)
        as_int(self.seed, "seed", minimum=0)

    @classmethod
    def quick(cls, **overrides: object) -> FoundationConfig:
        """Under a minute on two cores after a shorter pretraining: two tasks, two seeds, four rule
        points; ``lora-asym figures --quick``. A preview: the measurement is the full preset."""
        sizes = dict(model=ModelConfig(steps=400), tasks=("polarity", "formality"), seeds=2, n_train=1024,
                     n_test=128, schedule=Schedule(steps=40), rule_modules=RULE_MODULES[1:3], geometry_batches=4,
                     label_samples=1)
        return cls(**{**sizes, **overrides})

    @classmethod
    def full(cls, **overrides: object) -> FoundationConfig:
        """The measurement of docs/THEORY.md §8: six tasks, three seeds, 24 rule points, both target sets."""
        sizes = dict(model=ModelConfig(steps=4000), target_sets=("qv", "all"), schedule=Schedule(steps=400))
        return cls(**{**sizes, **overrides})

    @classmethod
    def tiny(cls, **overrides: object) -> FoundationConfig:
        """Seconds: a 2-layer, 16-wide model on a small corpus; exercises every step, measures nothing."""
        sizes = dict(corpus=CorpusConfig(vocab=32, classes=4, domains=3, topics=4, formality_levels=3, seq_len=8),
                     model=ModelConfig(hidden=16, layers=2, heads=2, intermediate=32, steps=4, batch=8, warmup=1,
                                       checkpoint_every=2, test_sequences=16),
                     tasks=("polarity", "formality", "new_domain_lm"), rank=2, seeds=2, n_train=64, n_test=32,
                     schedule=Schedule(steps=3, batch=4, eval_batch=16),
                     rule_modules=("layers.0.self_attn.v_proj", "layers.1.mlp.down_proj"), geometry_batches=1,
                     label_samples=1, draws=4)
        return cls(**{**sizes, **overrides})


def pretrained(config: FoundationConfig):
    """The pretrained decoder of ``config`` (cached under :func:`model_cache_dir`)."""
    return pretrain(config.corpus, config.model, cache_dir=model_cache_dir(), progress=False)


def _task(config: FoundationConfig, name: str) -> tuple[TaskModel, object, object]:
    """The task model, its data and the corpus, from one load of the pretrained decoder."""
    base = pretrained(config)
    data = task_data(base.corpus, name, n_train=config.n_train, n_test=config.n_test, seed=config.seed)
    return task_model(base.model, data), data, base.corpus


def pretraining_summary(config: FoundationConfig) -> dict[str, np.ndarray]:
    """Pretraining's held-out loss against the generator's, and the anisotropy of its features.

    ``test_loss``: next-token loss (nats) of the pretrained decoder on held-out pretraining
    sequences; ``bayes_loss``, ``bayes_se``: the generator's own loss on fresh sequences
    (``corpus.bayes_loss``, the floor); ``unigram_loss``: the loss of the token frequencies alone
    (the ceiling a model that learned nothing of the context reaches); ``new_domain_loss`` and
    ``new_domain_bayes``: the same two on the unseen domain; ``losses``: the training curve;
    ``erank`` and ``width``: effective rank ``(Tr Σ)² / Tr Σ²`` of the input second moment of every
    linear module of every block (order of ``TARGET_SETS["all"]``, block by block), on 256 fresh
    sequences of the pretraining domains, and its ``d_in``.
    """
    base = pretrained(config)
    c = base.corpus.config
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(8,)))
    bayes, bayes_se = bayes_loss(base.corpus, 256, rng)
    new_bayes, _ = bayes_loss(base.corpus, 256, rng, domains=(c.domains,))
    data = task_data(base.corpus, "new_domain_lm", n_train=256, n_test=256, seed=config.seed)
    lm = task_model(base.model, data)
    with torch.no_grad():
        new_loss = float(objective("lm", lm(data.test[0]), data.test[1]))
    pre = sample(base.corpus, 256, rng).tokens
    freq = np.bincount(pre.ravel(), minlength=c.vocab) + 0.5
    freq = freq / freq.sum()
    unigram = float(-np.log(freq[pre[:, 1:]]).mean())
    names = [f"layers.{l}.{m}" for l in range(config.model.layers) for m in TARGET_SETS["all"]]
    sigmas = _geometry(lm, names, list(torch.from_numpy(pre).split(64)), "cross_entropy", config.seed)
    return {"test_loss": np.array(base.test_loss), "bayes_loss": np.array(bayes), "bayes_se": np.array(bayes_se),
            "unigram_loss": np.array(unigram), "new_domain_loss": np.array(new_loss),
            "new_domain_bayes": np.array(new_bayes), "losses": base.losses,
            "erank": np.array([effective_rank(sigmas[n][0]) for n in names]),
            "width": np.array([sigmas[n][0].shape[0] for n in names])}


def _peft(model: TaskModel, modules: list[str], rank: int) -> nn.Module:
    """``model`` (copied) with zero-update LoRA on ``modules`` (names under ``backbone.``)."""
    import copy

    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(copy.deepcopy(model), LoraConfig(r=rank, target_modules=[f"backbone.{m}" for m in modules]))
    return freeze_factor(wrapped, "A", seed=0)


def _geometry(model: TaskModel, modules: list[str], batches: list, loss_fn: str, seed: int) -> dict:
    """``Σ`` and ``G`` of ``modules`` at the pretrained weights, by ``peft_bridge.layer_geometry``."""
    geometry = layer_geometry(_peft(model, modules, 1), batches, loss_fn, seed=seed)
    return {name.removeprefix("backbone."): value for name, value in geometry.items()}


def arms(config: FoundationConfig) -> list[tuple[str, str, int]]:
    """The table's arms in order: (target set, variant, rank): ``ARMS`` on the first target set
    (``full`` once, under it), ``MORE_ARMS`` on each further one."""
    first = config.target_sets[0]
    out = [(first, v, k * config.rank) for v, k in ARMS]
    for targets in config.target_sets[1:]:
        out += [(targets, v, k * config.rank) for v, k in MORE_ARMS]
    return out


def variant_runs(config: FoundationConfig, task: str) -> dict[str, np.ndarray]:
    """The variant table of one task: every arm of :func:`arms` at every seed.

    Returns arrays (arms, seeds): ``loss``, ``metric``, ``ood_loss``, ``ood_metric`` (NaN without
    an OOD split), ``train_loss``, ``train_metric`` (the bound task only, else NaN); ``pretrained``
    (4,): loss, metric, OOD loss, OOD metric before fine-tuning; ``bayes`` (2,): the generator's own
    metric on the test and OOD splits (``tasks.bayes_metric``; NaN where not defined); ``lora_A/<m>`` (seeds, r, d_in)
    and ``lora_B/<m>`` (seeds, d_out, r) of the ``lora`` runs on the first target set, ``m`` the
    module's index in :func:`table_modules`; ``delta/<k>`` (seeds, d_out, d_in), ``W − W0`` of
    ``rule_modules[k]`` after ``full``.
    """
    model, data, corpus = _task(config, task)
    table = arms(config)
    runs = [Run(v, r, s, table_modules(config, t) if v != "full" else ())
            for t, v, r in table for s in range(config.seeds)]
    results = fine_tune(model, data, runs, config.schedule, watch=tuple(f"backbone.{m}" for m in config.rule_modules),
                        train_metrics=task == config.bound_task)
    shape = (len(table), config.seeds)
    out = {k: np.array([getattr(r, k) for r in results]).reshape(shape)
           for k in ("loss", "metric", "ood_loss", "ood_metric", "train_loss", "train_metric")}
    scores = pretrained_scores(model, data, eval_batch=config.schedule.eval_batch)
    out["pretrained"] = np.array([scores[k] for k in ("loss", "metric", "ood_loss", "ood_metric")])
    bayes = bayes_metric(corpus, data)
    out["bayes"] = np.array([np.nan if bayes[k] is None else bayes[k] for k in ("test", "ood")])
    main = table_modules(config, config.target_sets[0])
    lora = [r for r in results if r.run.variant == "lora" and r.run.modules == main]
    for i, name in enumerate(main):
        out[f"lora_A/{i}"] = np.stack([r.factors[name][0] for r in lora])
        out[f"lora_B/{i}"] = np.stack([r.factors[name][1] for r in lora])
    full = [r for r in results if r.run.variant == "full"]
    for k, name in enumerate(config.rule_modules):
        out[f"delta/{k}"] = np.stack([r.deltas[f"backbone.{name}"] for r in full])
    return out


def table_modules(config: FoundationConfig, targets: str) -> tuple[str, ...]:
    """The module names (``backbone.layers.<l>.<map>``) a target set adapts, block by block."""
    return tuple(f"backbone.layers.{l}.{m}" for l in range(config.model.layers) for m in TARGET_SETS[targets])


def rule_runs(config: FoundationConfig, task: str) -> dict[str, np.ndarray]:
    """The rule's prediction and measurement for every module of ``rule_modules`` on one task.

    Returns ``b_only_fraction``, ``a_only_fraction`` and their standard errors (modules,):
    ``f(Σ, r)`` and ``f(G, r)`` of ``peft_bridge.predict_asymmetry`` at the pretrained weights;
    ``loss`` (modules, 2, seeds): test losses of ``b_only`` and ``a_only`` with only that module
    adapted at rank ``r``; ``sigma/<k>``, ``metric/<k>``: ``Σ`` and ``G`` of module ``k``;
    ``gradient/<k>``: the gradient of the training objective in ``W`` at ``W0`` (mean over the first
    ``GRADIENT_ROWS`` training examples).
    """
    model, data, _ = _task(config, task)
    kind = KINDS[data.kind][0]
    names = list(config.rule_modules)
    batches = evaluation_batches(data, config.geometry_batches)
    # One estimate of Σ and G serves the prediction and the controls (rule_points).
    estimated = layer_geometry(_peft(model, names, config.rank), batches, kind, seed=config.seed,
                               label_samples=config.label_samples)
    predictions = predictions_from_geometry(estimated, config.rank, seed=config.seed, draws=config.draws)
    geometry = {name.removeprefix("backbone."): value for name, value in estimated.items()}
    runs = [Run(v, config.rank, s, (f"backbone.{m}",)) for m in names for v in ("b_only", "a_only")
            for s in range(config.seeds)]
    results = fine_tune(model, data, runs, config.schedule)
    out = {"loss": np.array([r.loss for r in results]).reshape(len(names), 2, config.seeds)}
    records = [predictions[f"backbone.{m}"] for m in names]
    for key in ("b_only_fraction", "a_only_fraction", "b_only_stderr", "a_only_stderr"):
        out[key] = np.array([getattr(p, key) for p in records])
    gradients = _gradients(model, data, names)
    for k, name in enumerate(names):
        out[f"sigma/{k}"], out[f"metric/{k}"] = geometry[name]
        out[f"gradient/{k}"] = gradients[name]
    return out


def _gradients(model: TaskModel, data, names: list[str]) -> dict[str, np.ndarray]:
    """``∂L/∂W`` at ``W0`` of each module, on the first ``GRADIENT_ROWS`` training examples."""
    weights = {name: model.get_submodule(f"backbone.{name}").weight for name in names}
    x, y = data.train[0][:GRADIENT_ROWS], data.train[1][:GRADIENT_ROWS]
    params = {f"backbone.{n}.weight": w.detach().clone().requires_grad_(True) for n, w in weights.items()}
    loss = objective(data.kind, torch.func.functional_call(model, params, (x,), strict=False), y)
    grads = torch.autograd.grad(loss, list(params.values()))
    return {name: g.double().numpy() for name, g in zip(names, grads)}



def module_shapes(config: FoundationConfig, targets: str) -> list[tuple[int, int]]:
    """``(d_out, d_in)`` of every module of a target set (order of :func:`table_modules`), from the
    model's sizes: ``(hidden, hidden)`` for the attention maps (as many key/value heads as heads),
    ``(intermediate, hidden)`` for ``gate_proj``, ``up_proj``, and ``(hidden, intermediate)`` for
    ``down_proj`` (tested against the built model)."""
    h, i = config.model.hidden, config.model.intermediate
    shape = {"mlp.gate_proj": (i, h), "mlp.up_proj": (i, h), "mlp.down_proj": (h, i)}
    return [shape.get(m, (h, h)) for _ in range(config.model.layers) for m in TARGET_SETS[targets]]


def backbone_parameters(config: FoundationConfig) -> int:
    """Number of parameters ``full`` trains: the backbone's embeddings, blocks (four attention maps,
    three MLP maps, two RMSNorm weights) and final RMSNorm (tested against the built model)."""
    h, i = config.model.hidden, config.model.intermediate
    return config.corpus.vocab * h + config.model.layers * (4 * h * h + 3 * h * i + 2 * h) + h
