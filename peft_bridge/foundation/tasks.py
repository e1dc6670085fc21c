r"""The downstream suite of the foundation model: six tasks on the synthetic language, like GLUE's.

Each task reads a latent variable of the corpus (``peft_bridge.foundation.corpus``) or continues
its language modelling (docs/THEORY.md §8.2):

=================  ==============  =======================================================  ======
task               kind            label                                                    OOD
=================  ==============  =======================================================  ======
``polarity``       2 classes       the polarity ``b``                                       yes
``grammar``        2 classes       whether a window of ``T/2`` tokens was shuffled (CoLA)   yes
``domain``         ``D`` classes   the domain ``d``                                         no
``topic``          ``K`` classes   the topic ``k`` (32 by default)                          yes
``formality``      regression      the formality ``u``, standardised                        yes
``new_domain_lm``  language model  the next token, in the unseen domain ``D``               no
=================  ==============  =======================================================  ======

**Out of distribution** (DomainBed's analogue): a task marked OOD trains on the domains
``0 … D − 2`` and is tested both on fresh sequences of those domains and on the held-out domain
``D − 1`` (seen in pretraining, never in fine-tuning). ``domain`` trains and tests on all ``D``;
``new_domain_lm`` on the new domain ``D``.

**Read-out.** A sequence task's head is a linear probe on the mean of the backbone's last hidden
states, fitted on the training set with the backbone frozen (L2-regularised logistic regression or
ridge), then frozen for every variant, ``full`` included: the variants differ only in how the
backbone adapts (Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution", ICLR 2022, call this LP-FT). ``new_domain_lm`` reads out with the pretrained
language-model head (a frozen copy of the tied embeddings).

Random streams: ``SeedSequence(seed, spawn_key=(5, task index, split))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from peft_bridge.foundation.corpus import Corpus, sample
from peft_bridge.foundation.model import TaskModel
from theory.validation import as_int

#: Task name -> (kind, OOD split). Kinds: "classification", "regression", "lm".
TASKS: dict[str, tuple[str, bool]] = {
    "polarity": ("classification", True),
    "grammar": ("classification", True),
    "domain": ("classification", False),
    "topic": ("classification", True),
    "formality": ("regression", True),
    "new_domain_lm": ("lm", False),
}
#: Kind -> (the training loss, as ``peft_bridge.predict_asymmetry`` names it; the task metric; higher is better).
KINDS = {"classification": ("cross_entropy", "accuracy", True), "regression": ("squared", "r2", True),
         "lm": ("cross_entropy", "nats_per_token", False)}
#: Splits and the last entry of their stream's spawn key.
SPLITS = {"train": 0, "test": 1, "ood": 2}
#: L2 penalty of the linear probe (per training example, on the weights only).
PROBE_L2 = 1e-3


@dataclass(frozen=True)
class TaskData:
    """One task's inputs and targets.

    Attributes
    ----------
    name, kind : the task and its kind (``TASKS``); outputs : width of the read-out.
    train, test : (tokens (n, T) int64, targets) pairs; targets (n,) int64 class, (n, 1) float32
        value, or (n, T) int64 tokens (language modelling).
    ood : the same for the held-out domain, or None.
    """

    name: str
    kind: str
    outputs: int
    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    ood: tuple[torch.Tensor, torch.Tensor] | None


def check_task(name: object) -> str:
    """``name`` if it is a task of ``TASKS``, else ``ValueError`` listing them."""
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {name!r}")
    return name


def _domains(corpus: Corpus, name: str, split: str) -> tuple[int, ...]:
    d = corpus.config.domains
    if name == "new_domain_lm":
        return (d,)
    if name == "domain":
        return tuple(range(d))
    return (d - 1,) if split == "ood" else tuple(range(d - 1))


def _split(corpus: Corpus, name: str, split: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of one split (module docstring)."""
    c = corpus.config
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(5, list(TASKS).index(name), SPLITS[split])))
    s = sample(corpus, n, rng, domains=_domains(corpus, name, split))
    tokens = s.tokens.copy()
    if name == "grammar":
        label = rng.integers(2, size=n)
        width = c.seq_len // 2
        for i in np.flatnonzero(label):
            start = rng.integers(c.seq_len - width + 1)
            tokens[i, start:start + width] = tokens[i, start + rng.permutation(width)]
        target = torch.from_numpy(label)
    elif name == "formality":
        levels = np.linspace(0.0, 1.0, c.formality_levels)
        u = levels[s.formality]
        target = torch.from_numpy(((u - levels.mean()) / levels.std())[:, None].astype(np.float32))
    elif name == "new_domain_lm":
        target = torch.from_numpy(tokens)
    else:
        target = torch.from_numpy({"polarity": s.polarity, "domain": s.domain, "topic": s.topic}[name])
    return torch.from_numpy(tokens), target


def task_data(corpus: Corpus, name: str, *, n_train: int, n_test: int, seed: int) -> TaskData:
    """The training, test and (where the task has one) out-of-distribution sets of task ``name``.

    Parameters
    ----------
    corpus : Corpus; name : a task of ``TASKS``; n_train, n_test : int >= 2 (the OOD set has
    ``n_test`` too); seed : int >= 0.

    Returns
    -------
    TaskData
    """
    name = check_task(name)
    n_train = as_int(n_train, "n_train", minimum=2)
    n_test = as_int(n_test, "n_test", minimum=2)
    seed = as_int(seed, "seed", minimum=0)
    kind, has_ood = TASKS[name]
    c = corpus.config
    outputs = {"polarity": 2, "grammar": 2, "domain": c.domains, "topic": c.topics, "formality": 1,
               "new_domain_lm": c.vocab}[name]
    return TaskData(name, kind, outputs, _split(corpus, name, "train", n_train, seed),
                    _split(corpus, name, "test", n_test, seed),
                    _split(corpus, name, "ood", n_test, seed) if has_ood else None)


def task_model(decoder: nn.Module, data: TaskData) -> TaskModel:
    """The decoder's backbone with the task's frozen read-out (module docstring): a linear probe
    fitted on ``data.train`` for a sequence task, the language-model head for ``new_domain_lm``.

    The backbone is shared with ``decoder`` (not copied) and stays frozen.
    """
    backbone = decoder.model
    if data.kind == "lm":
        head = nn.Linear(backbone.config.hidden_size, data.outputs, bias=False)
        with torch.no_grad():
            head.weight.copy_(decoder.get_output_embeddings().weight)
        model = TaskModel(backbone, head, per_token=True)
    else:
        model = TaskModel(backbone, nn.Linear(backbone.config.hidden_size, data.outputs), per_token=False)
        with torch.no_grad():
            features = torch.cat([model.features(x) for x in data.train[0].split(512)]).double()
        weight, bias = _probe(features, data.train[1], data.kind, data.outputs)
        with torch.no_grad():
            model.head.weight.copy_(weight)
            model.head.bias.copy_(bias)
    model.eval()
    return model.requires_grad_(False)


def _probe(features: torch.Tensor, target: torch.Tensor, kind: str, outputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Linear probe on frozen features (n, H): ridge (``regression``) or L2-regularised multinomial
    logistic regression by L-BFGS, penalty ``PROBE_L2 · ‖W‖_F²`` added to the mean loss."""
    n, width = features.shape
    mean = features.mean(0)
    x = features - mean
    if kind == "regression":
        y = target.double() - target.double().mean(0)
        gram = x.T @ x / n + PROBE_L2 * torch.eye(width, dtype=torch.float64)
        weight = torch.linalg.solve(gram, x.T @ y / n).T  # (1, H)
        bias = target.double().mean(0) - weight @ mean
        return weight.float(), bias.float()
    weight = torch.zeros(outputs, width, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(outputs, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(x @ weight.T + bias, target) + PROBE_L2 * (weight ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return weight.float(), (bias - weight @ mean).float()


def objective(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean training loss of one batch: cross-entropy (classification), squared error summed over
    outputs (regression), next-token cross-entropy over positions 2 … T (``lm``)."""
    if kind == "regression":
        return ((output - target) ** 2).sum(-1).mean()
    if kind == "lm":
        logits = output[:, :-1]
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target[:, 1:].reshape(-1))
    return nn.functional.cross_entropy(output, target)


def metric(kind: str, output: torch.Tensor, target: torch.Tensor) -> float:
    """The task metric (``KINDS``): accuracy, ``R² = 1 − MSE / Var(y)``, or nats per token."""
    if kind == "classification":
        return float((output.argmax(-1) == target).double().mean())
    if kind == "regression":
        return float(1 - ((output - target) ** 2).mean() / target.var(unbiased=False))
    return float(objective(kind, output, target))


def evaluation_batches(data: TaskData, batches: int, batch: int = 64) -> list[torch.Tensor]:
    """The first ``batches · batch`` training inputs, as batches for ``peft_bridge.predict_asymmetry``."""
    return list(data.train[0][: batches * batch].split(batch))



def bayes_metric(corpus: Corpus, data: TaskData) -> dict[str, float | None]:
    r"""The task metric of the generator's own prediction (``corpus.latent_posterior``): the best any
    model can score, on the test split (``test``) and the OOD split (``ood``).

    ``polarity``, ``domain``, ``topic``: accuracy of the posterior mode of the label;
    ``formality``: ``R²`` of the posterior mean of the standardised ``u``; ``new_domain_lm``: the
    generator's nats per token over positions 2 … T (``corpus.bayes_loss``'s quantity on the test
    set); ``grammar``: None (the corruption is not part of the generator).
    """
    from peft_bridge.foundation.corpus import latent_posterior, log_likelihoods

    out: dict[str, float | None] = {}
    for split, pair in (("test", data.test), ("ood", data.ood)):
        if pair is None or data.name == "grammar":
            out[split] = None
            continue
        tokens, target = pair[0].numpy(), pair[1].numpy()
        domains = _domains(corpus, data.name, split)
        if data.name == "new_domain_lm":
            out[split] = float(-log_likelihoods(corpus, tokens, domains=domains)[:, 1:].mean())
            continue
        post = latent_posterior(corpus, tokens, domains=domains)  # (n, domains, K, 2, L)
        if data.name == "formality":
            levels = np.linspace(0.0, 1.0, corpus.config.formality_levels)
            mean = post.sum(axis=(1, 2, 3)) @ ((levels - levels.mean()) / levels.std())
            y = target[:, 0]
            out[split] = float(1 - ((mean - y) ** 2).mean() / y.var())
            continue
        axis = {"domain": (2, 3, 4), "topic": (1, 3, 4), "polarity": (1, 2, 4)}[data.name]
        guess = post.sum(axis=axis).argmax(axis=1)
        if data.name == "domain":
            guess = np.asarray(domains)[guess]
        out[split] = float((guess == target).mean())
    return out
