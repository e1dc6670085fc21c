r"""The toolkit's foundation model: a Llama-style decoder pretrained here, offline, on the synthetic corpus.

``transformers.LlamaForCausalLM`` built from a ``LlamaConfig`` (no download), trained from scratch
with every parameter on next-token prediction over the pretraining domains of
``peft_bridge.foundation.corpus`` (docs/THEORY.md §8). For a downstream task the decoder becomes a
:class:`TaskModel`: its backbone, and a read-out on the mean of the last hidden states over the
sequence (classification, regression) or the pretrained language-model head (continued language
modelling).

**Caching.** :func:`pretrain` keys its result on the configuration and the code of this module and
of the corpus (their syntax trees without docstrings), stores it under ``cache_dir`` as
safetensors, and writes a checkpoint (weights, optimizer, step) every ``checkpoint_every`` steps,
so that an interrupted pretraining resumes where it stopped. Minibatch ``t`` is drawn from
``SeedSequence(seed, spawn_key=(1, t))``, so a resumed run sees the same data as an uninterrupted
one. A file lock lets concurrent processes share one pretraining.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from peft_bridge.foundation import corpus as corpus_module
from peft_bridge.foundation.corpus import Corpus, CorpusConfig, make_corpus, sample
from synthetic.provenance import code_of, write_atomic
from theory.validation import as_int, as_real

#: Streams of ``SeedSequence(seed, spawn_key=...)``: the init (0,), minibatch t (1, t), the test set (2,).
INIT_KEY, BATCH_KEY, TEST_KEY = 0, 1, 2


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the decoder and its pretraining schedule.

    Attributes
    ----------
    hidden, layers, heads, intermediate : ``LlamaConfig`` sizes (``hidden_size``,
        ``num_hidden_layers``, ``num_attention_heads``, ``intermediate_size``).
    steps, batch, lr, warmup : AdamW pretraining: steps, sequences per step, peak learning rate,
        linear warm-up steps (then cosine decay to a tenth).
    weight_decay : AdamW's decoupled weight decay.
    checkpoint_every : steps between resumable checkpoints.
    test_sequences : held-out sequences on which the pretrained loss is reported.
    seed : root of the init and the minibatches (module docstring).
    """

    hidden: int = 128
    layers: int = 4
    heads: int = 4
    intermediate: int = 256
    steps: int = 1600
    batch: int = 32
    lr: float = 5e-3
    warmup: int = 30
    weight_decay: float = 0.01
    checkpoint_every: int = 100
    test_sequences: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "heads", "intermediate", "steps", "batch", "checkpoint_every",
                     "test_sequences"):
            as_int(getattr(self, name), name, minimum=1)
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise ValueError(f"hidden {self.hidden} must be a multiple of heads {self.heads} with an even head size "
                             f"(rotary embeddings)")
        as_int(self.warmup, "warmup", minimum=0)
        as_int(self.seed, "seed", minimum=0)
        as_real(self.lr, "lr", positive=True)
        as_real(self.weight_decay, "weight_decay", minimum=0.0)


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def build_decoder(corpus: CorpusConfig, config: ModelConfig) -> nn.Module:
    """A freshly initialised ``LlamaForCausalLM`` for the corpus's vocabulary (tied embeddings, eager
    attention, no dropout), its init drawn from stream ``(0,)`` of ``config.seed``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaConfig(vocab_size=corpus.vocab, hidden_size=config.hidden, intermediate_size=config.intermediate,
                        num_hidden_layers=config.layers, num_attention_heads=config.heads,
                        num_key_value_heads=config.heads, max_position_embeddings=corpus.seq_len,
                        tie_word_embeddings=True, attn_implementation="eager")
    state = int(np.random.SeedSequence(config.seed, spawn_key=(INIT_KEY,)).generate_state(1)[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(state)
        return LlamaForCausalLM(llama)


def pretraining_key(corpus: CorpusConfig, config: ModelConfig) -> str:
    """The cache key of a pretraining: SHA-256 of both configurations and of the code of this module
    and of the corpus module (docstrings excluded), first 24 hex digits."""
    code = b"".join(code_of(Path(path).read_bytes()) for path in (corpus_module.__file__, __file__))
    blob = json.dumps({"corpus": asdict(corpus), "model": asdict(config)}, sort_keys=True).encode()
    return hashlib.sha256(blob + b"\0" + code).hexdigest()[:24]


def language_model_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of ``model`` on ``tokens`` (n, T): positions 2 … T."""
    logits = model(input_ids=tokens).logits[:, :-1]
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def _schedule(config: ModelConfig):
    """Warm-up then cosine decay to a tenth of the peak, as a multiplier of the step."""
    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return factor


@dataclass(frozen=True)
class Pretrained:
    """A pretrained decoder and what its pretraining measured.

    Attributes
    ----------
    model : the ``LlamaForCausalLM``, in eval mode, every parameter frozen.
    corpus : the generator's tables.
    test_loss : mean next-token loss (nats) on ``test_sequences`` held-out pretraining sequences.
    losses : (steps,) the training loss of every step.
    key : the cache key.
    """

    model: nn.Module
    corpus: Corpus
    test_loss: float
    losses: np.ndarray
    key: str


def pretrain(corpus: CorpusConfig, config: ModelConfig, *, cache_dir: str | Path | None = None,
             progress: bool = True) -> Pretrained:
    """Pretrain (or load from ``cache_dir``) the decoder of ``config`` on the corpus of ``corpus``.

    AdamW on the mean next-token loss over minibatches of ``batch`` fresh sequences of the
    pretraining domains (module docstring), every parameter trained. Cached and resumable under
    ``cache_dir/foundation/<key>/`` (module docstring); without ``cache_dir``, nothing is written.

    Parameters
    ----------
    corpus : CorpusConfig; config : ModelConfig; cache_dir : folder or None; progress : show a bar.

    Returns
    -------
    Pretrained
    """
    if not isinstance(corpus, CorpusConfig) or not isinstance(config, ModelConfig):
        raise ValueError(f"corpus and config must be a CorpusConfig and a ModelConfig, got "
                         f"{type(corpus).__name__} and {type(config).__name__}")
    try:
        import filelock  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise ValueError("the foundation model needs the [peft] extra (transformers, peft, filelock): "
                         "pip install -e '.[peft]'") from None
    key = pretraining_key(corpus, config)
    tables = make_corpus(corpus)
    if cache_dir is None:
        return _pretrain(tables, config, None, key, progress)
    from filelock import FileLock

    folder = Path(cache_dir) / "foundation" / key
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        return _pretrain(tables, config, folder, key, progress)


def _pretrain(tables: Corpus, config: ModelConfig, folder: Path | None, key: str, progress: bool) -> Pretrained:
    """``pretrain`` with checked arguments, under the lock of ``folder``."""
    model = build_decoder(tables.config, config)
    final = None if folder is None else folder / "model.pt"
    if final is not None and final.is_file():
        state = torch.load(final, weights_only=True)
        model.load_state_dict(state["model"])
        return _frozen(Pretrained(model, tables, float(state["test_loss"]), state["losses"].numpy(), key))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    losses = torch.zeros(config.steps, dtype=torch.float64)
    start = _resume(folder, model, optimizer, scheduler, losses)
    model.train()
    bar = tqdm(range(start, config.steps), desc="pretraining the foundation model", disable=not progress,
               leave=False, initial=start, total=config.steps)
    for step in bar:
        tokens = torch.from_numpy(sample(tables, config.batch, _stream(config.seed, BATCH_KEY, step)).tokens)
        loss = language_model_loss(model, tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses[step] = loss.item()
        if folder is not None and (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
            _save(folder / "checkpoint.pt", {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                             "scheduler": scheduler.state_dict(), "losses": losses, "step": step + 1})
    test = torch.from_numpy(sample(tables, config.test_sequences, _stream(config.seed, TEST_KEY)).tokens)
    model.eval()
    with torch.no_grad():
        test_loss = float(language_model_loss(model, test))
    if final is not None:
        _save(final, {"model": model.state_dict(), "test_loss": torch.tensor(test_loss), "losses": losses})
        (folder / "checkpoint.pt").unlink(missing_ok=True)
    return _frozen(Pretrained(model, tables, test_loss, losses.numpy(), key))


def _resume(folder: Path | None, model: nn.Module, optimizer, scheduler, losses: torch.Tensor) -> int:
    """Load the checkpoint of ``folder`` if there is one; the step to start from."""
    path = None if folder is None else folder / "checkpoint.pt"
    if path is None or not path.is_file():
        return 0
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    losses.copy_(state["losses"])
    return int(state["step"])


def _save(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def _frozen(pretrained: Pretrained) -> Pretrained:
    pretrained.model.eval()
    pretrained.model.requires_grad_(False)
    return pretrained


class TaskModel(nn.Module):
    """The pretrained backbone with a task's read-out.

    ``forward(input_ids)`` returns ``head(mean_t h_t)`` (n, outputs) for a sequence task, or
    ``head(h_t)`` (n, T, V) for language modelling, ``h_t`` the backbone's last hidden states.

    Parameters
    ----------
    backbone : the decoder's ``LlamaModel`` (``LlamaForCausalLM.model``); head : nn.Linear.
    per_token : bool, language modelling (no pooling).
    """

    def __init__(self, backbone: nn.Module, head: nn.Linear, per_token: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.per_token = per_token

    def features(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The read-out's inputs: pooled (n, hidden) or per token (n, T, hidden)."""
        h = self.backbone(input_ids=input_ids).last_hidden_state
        return h if self.per_token else h.mean(dim=1)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(input_ids))
