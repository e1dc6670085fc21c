r"""A synthetic language with real structure: domains that share a syntax and differ in lexicon.

The corpus on which the toolkit's foundation model is pretrained, and from which its downstream
tasks are drawn (docs/THEORY.md §8). Every sequence is emitted by a hidden Markov model whose
parts are latent variables of the sequence:

- **syntax** (shared by every domain): ``S`` hidden word classes ("parts of speech"); class ``s``
  emits only words of its own pool ``P_s`` (``V / S`` consecutive token ids). The class sequence
  is a Markov chain with initial law ``π`` and transitions ``T_u = (1 − u) T_0 + u T_1``: the
  *formality* ``u ∈ {0, 1/(L−1), …, 1}`` mixes two registers ``T_0``, ``T_1``;
- **lexicon** (per domain ``d``): inside each pool, a Zipf law (exponent ``zipf``) over a
  domain-specific permutation of the pool's words, so that domains use the same classes with
  different frequent words;
- **topic** ``k`` (one of ``K``): multiplies the emission weight of word ``w`` of the *content*
  classes (the first ``content_classes``) by ``exp(topic_strength · g_k[w])``, ``g_k ~ N(0, I)``;
- **polarity** ``b ∈ {0, 1}``: in the *sentiment* class (the next one), multiplies the weight of
  the first (``b = 0``) or second (``b = 1``) half of its pool by ``polarity_boost``.

A sequence draws ``d``, ``k``, ``b`` and ``u`` uniformly and independently, then ``T`` tokens.
The corpus is thus one hidden Markov model on ``D·K·2·L·S`` states, and the forward algorithm
gives every sequence's exact log-likelihood under the generator: :func:`bayes_loss` is the
per-token loss of the generator's own predictive law, the floor of any language model's
test loss on the corpus (the entropy rate of ``T``-token blocks, estimated by Monte Carlo over
sequences). Domains ``0 … domains − 1`` are the pretraining corpus; the domain ``domains`` (one
more lexicon, drawn the same way) is never seen in pretraining.

Random streams: every table is drawn from ``numpy.random.default_rng(SeedSequence(seed,
spawn_key=(0, part)))``; samples take the caller's ``Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.validation import Array, as_generator, as_int, as_real, check_memory

#: Parts of a corpus table, the ``spawn_key`` of its random stream.
_PARTS = {"registers": 0, "lexicon": 1, "topics": 2}


@dataclass(frozen=True)
class CorpusConfig:
    """The sizes and strengths of the synthetic language (module docstring).

    Attributes
    ----------
    vocab : tokens ``V``, a multiple of ``classes``.
    classes : hidden word classes ``S`` (>= content_classes + 1).
    domains : pretraining domains ``D``; one more (index ``D``) is the unseen new domain.
    topics : topics ``K``.
    formality_levels : levels ``L`` of the formality ``u``.
    seq_len : tokens ``T`` per sequence.
    content_classes : classes whose words the topic reweights.
    zipf : exponent of each domain's Zipf law inside a pool.
    topic_strength, polarity_boost : the topic's log-weight scale; the polarity's weight factor.
    register_concentration : Dirichlet concentration of the rows of ``T_0`` and ``T_1``.
    seed : root of the tables' random streams.
    """

    vocab: int = 128
    classes: int = 8
    domains: int = 4
    topics: int = 32
    formality_levels: int = 5
    seq_len: int = 16
    content_classes: int = 2
    zipf: float = 1.1
    topic_strength: float = 1.5
    polarity_boost: float = 6.0
    register_concentration: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        as_int(self.classes, "classes", minimum=2)
        as_int(self.vocab, "vocab", minimum=2 * self.classes)
        if self.vocab % self.classes:
            raise ValueError(f"vocab must be a multiple of classes = {self.classes}, got {self.vocab}")
        as_int(self.domains, "domains", minimum=2)
        as_int(self.topics, "topics", minimum=2)
        as_int(self.formality_levels, "formality_levels", minimum=2)
        as_int(self.seq_len, "seq_len", minimum=4, maximum=4096)
        as_int(self.content_classes, "content_classes", minimum=1, maximum=self.classes - 1)
        if self.vocab // self.classes < 2:
            raise ValueError(f"each class needs at least 2 words: vocab {self.vocab} / classes {self.classes}")
        as_real(self.zipf, "zipf", minimum=0.0)
        as_real(self.topic_strength, "topic_strength", minimum=0.0)
        as_real(self.polarity_boost, "polarity_boost", positive=True)
        as_real(self.register_concentration, "register_concentration", positive=True)
        as_int(self.seed, "seed", minimum=0)


@dataclass(frozen=True)
class Corpus:
    """The generator's tables (module docstring); built by :func:`make_corpus`.

    Attributes
    ----------
    config : CorpusConfig
    initial : (S,) ``π``.
    registers : (2, S, S) ``T_0``, ``T_1`` (rows sum to 1).
    lexicon : (D + 1, S, V) each domain's emission law before topic and polarity (rows sum to 1).
    topic_logits : (K, V) ``topic_strength · g_k``, zero outside the content pools.
    """

    config: CorpusConfig
    initial: Array
    registers: Array
    lexicon: Array
    topic_logits: Array

    @property
    def formality(self) -> Array:  # (L,)
        """The formality levels ``u``, ``0 … 1``."""
        return np.linspace(0.0, 1.0, self.config.formality_levels)

    def emissions(self, domains: Array) -> Array:  # (m,) -> (m, K, 2, S, V)
        """Emission laws of the given domains for every topic and polarity (rows sum to 1)."""
        c = self.config
        pool = c.vocab // c.classes
        weight = np.broadcast_to(self.lexicon[domains][:, None, None], (len(domains), c.topics, 2, c.classes,
                                                                        c.vocab)).copy()
        content = slice(0, c.content_classes)
        weight[:, :, :, content] *= np.exp(self.topic_logits)[None, :, None, None, :]
        sentiment = c.content_classes
        start = sentiment * pool
        halves = (slice(start, start + pool // 2), slice(start + pool // 2, start + pool))
        for b, half in enumerate(halves):
            weight[:, :, b, sentiment, half] *= c.polarity_boost
        return weight / weight.sum(axis=-1, keepdims=True)


def _stream(config: CorpusConfig, part: str) -> np.random.Generator:
    """The generator of one table of the corpus (module docstring)."""
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0, _PARTS[part])))


def make_corpus(config: CorpusConfig) -> Corpus:
    r"""The tables of the synthetic language of ``config`` (module docstring), a function of its seed.

    ``T_0``, ``T_1``: rows ``Dirichlet(register_concentration · 1)``; ``π`` uniform. Lexicon of
    domain ``d`` (``0 … D``): in pool ``P_s``, the word of rank ``j`` (``1 …``) under a uniform
    random permutation has weight ``j^{−zipf}``. Topic logits: ``topic_strength · g_k`` on the
    words of the content pools, ``g_k ~ N(0, I)``.

    Parameters
    ----------
    config : CorpusConfig

    Returns
    -------
    Corpus
    """
    if not isinstance(config, CorpusConfig):
        raise ValueError(f"config must be a CorpusConfig, got {type(config).__name__}")
    c = config
    pool = c.vocab // c.classes
    rng = _stream(c, "registers")
    registers = rng.dirichlet(np.full(c.classes, c.register_concentration), size=(2, c.classes))
    rng = _stream(c, "lexicon")
    ranks = np.arange(1, pool + 1, dtype=np.float64) ** -c.zipf
    lexicon = np.zeros((c.domains + 1, c.classes, c.vocab))
    for d in range(c.domains + 1):
        for s in range(c.classes):
            lexicon[d, s, s * pool:(s + 1) * pool] = ranks[rng.permutation(pool)]
    lexicon /= lexicon.sum(axis=-1, keepdims=True)
    rng = _stream(c, "topics")
    topic_logits = np.zeros((c.topics, c.vocab))
    topic_logits[:, :c.content_classes * pool] = c.topic_strength * rng.standard_normal(
        (c.topics, c.content_classes * pool))
    return Corpus(c, np.full(c.classes, 1.0 / c.classes), registers, lexicon, topic_logits)


@dataclass(frozen=True)
class Sample:
    """Sequences and their latent variables.

    Attributes
    ----------
    tokens : (n, T) int64.
    domain, topic, polarity, formality : (n,) int64 (``formality`` is the level index).
    """

    tokens: Array
    domain: Array
    topic: Array
    polarity: Array
    formality: Array


def sample(corpus: Corpus, n: int, rng: np.random.Generator, *, domains: tuple[int, ...] | None = None) -> Sample:
    """``n`` sequences of the corpus, their domain drawn uniformly from ``domains`` (default: the
    pretraining domains ``0 … D − 1``), topic, polarity and formality uniformly (module docstring).

    Parameters
    ----------
    corpus : Corpus; n : int >= 1; rng : numpy Generator.
    domains : tuple of domain indices in ``0 … D`` (``D`` is the new domain).

    Returns
    -------
    Sample
    """
    c = corpus.config
    n = as_int(n, "n", minimum=1)
    rng = as_generator(rng)
    domains = _domains(corpus, domains)
    check_memory(n * c.seq_len, "n", n, "tokens")
    domain = np.asarray(domains)[rng.integers(len(domains), size=n)]
    topic = rng.integers(c.topics, size=n)
    polarity = rng.integers(2, size=n)
    formality = rng.integers(c.formality_levels, size=n)
    emission = corpus.emissions(np.arange(c.domains + 1))[domain, topic, polarity]  # (n, S, V)
    u = corpus.formality[formality][:, None, None]
    transition = (1 - u) * corpus.registers[0] + u * corpus.registers[1]  # (n, S, S)
    state = _draw(np.broadcast_to(corpus.initial, (n, c.classes)), rng)
    tokens = np.empty((n, c.seq_len), dtype=np.int64)
    rows = np.arange(n)
    for t in range(c.seq_len):
        if t:
            state = _draw(transition[rows, state], rng)
        tokens[:, t] = _draw(emission[rows, state], rng)
    return Sample(tokens, domain, topic, polarity, formality)


def _draw(probs: Array, rng: np.random.Generator) -> Array:  # (n, k) -> (n,)
    """One categorical draw per row of ``probs`` (rows sum to 1)."""
    cdf = np.cumsum(probs, axis=1)
    return np.minimum((rng.random(len(probs))[:, None] * cdf[:, -1:] > cdf).sum(axis=1), probs.shape[1] - 1)


def _check_tokens(corpus: Corpus, tokens: object) -> Array:
    tokens = np.asarray(tokens)
    v = corpus.config.vocab
    if tokens.ndim != 2 or tokens.shape[1] < 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be an (n, T) integer array, got shape {tokens.shape} dtype {tokens.dtype}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= v):
        raise ValueError(f"tokens must lie in 0..{v - 1}, got values in {tokens.min()}..{tokens.max()}")
    return tokens


def _forward(corpus: Corpus, tokens: Array, domains: tuple[int, ...]) -> tuple[Array, Array]:
    """``log p(x_t | x_<t)`` (n, T) and the posterior of the latents (n, M, L), ``M = |domains|·K·2``."""
    c = corpus.config
    emission = corpus.emissions(np.asarray(domains)).reshape(-1, c.classes, c.vocab)  # (M, S, V)
    transition = (1 - corpus.formality)[:, None, None] * corpus.registers[0] + \
        corpus.formality[:, None, None] * corpus.registers[1]  # (L, S, S)
    n, length = tokens.shape
    out = np.empty((n, length))
    prior = np.full((len(emission), c.formality_levels), 1.0 / (len(emission) * c.formality_levels))
    alpha = prior[None, :, :, None] * corpus.initial  # (n, M, L, S), predictive law of the state
    alpha = np.broadcast_to(alpha, (n, *alpha.shape[1:]))
    for t in range(length):
        if t:
            alpha = np.einsum("nmls,lsz->nmlz", alpha, transition)
        joint = alpha * emission[:, :, tokens[:, t]].transpose(2, 0, 1)[:, :, None, :]  # (n, M, L, S)
        p = joint.sum(axis=(1, 2, 3))
        out[:, t] = np.log(p)
        alpha = joint / p[:, None, None, None]
    return out, alpha.sum(axis=3)


def log_likelihoods(corpus: Corpus, tokens: Array, *, domains: tuple[int, ...] | None = None) -> Array:
    r"""``log p(x_t | x_{<t})`` of every token under the generator, by the forward algorithm.

    The mixture over the latent ``(d, k, b, u)`` (``d`` uniform over ``domains``, default the
    pretraining domains) and the class chain is one hidden Markov model; with ``α_t`` its
    normalised forward vector, ``p(x_t | x_{<t}) = Σ α_{t−1} T e(x_t)``.

    Parameters
    ----------
    corpus : Corpus; tokens : (n, T) int token ids in ``0 … V − 1``.
    domains : the domains of the mixture (as in :func:`sample`).

    Returns
    -------
    (n, T) float64, each ``<= 0``.
    """
    tokens = _check_tokens(corpus, tokens)
    return _forward(corpus, tokens, _domains(corpus, domains))[0]


def latent_posterior(corpus: Corpus, tokens: Array, *, domains: tuple[int, ...] | None = None) -> Array:
    r"""The generator's posterior of the latents given each whole sequence, ``p(d, k, b, u | x)``.

    The normalised forward vector after the last token, summed over the class (module docstring);
    with a uniform prior over ``domains`` (default the pretraining domains). The Bayes classifier
    of a latent (its posterior mode, marginalised) is the best any model of the task can do.

    Parameters
    ----------
    corpus : Corpus; tokens : (n, T) ints; domains : as in :func:`sample`.

    Returns
    -------
    (n, len(domains), K, 2, L) float64, summing to 1 over the last four axes.
    """
    tokens = _check_tokens(corpus, tokens)
    domains = _domains(corpus, domains)
    c = corpus.config
    post = _forward(corpus, tokens, domains)[1]
    return post.reshape(len(tokens), len(domains), c.topics, 2, c.formality_levels)


def _domains(corpus: Corpus, domains: tuple[int, ...] | None) -> tuple[int, ...]:
    c = corpus.config
    domains = tuple(range(c.domains)) if domains is None else tuple(domains)
    if not domains or any(not isinstance(d, (int, np.integer)) or not 0 <= d <= c.domains for d in domains):
        raise ValueError(f"domains must be a non-empty tuple of domain indices in 0..{c.domains}, got {domains!r}")
    return domains


def bayes_loss(corpus: Corpus, n: int, rng: np.random.Generator, *, domains: tuple[int, ...] | None = None,
               skip_first: bool = True) -> tuple[float, float]:
    r"""The generator's own per-token loss (nats), mean and standard error over ``n`` sampled sequences.

    .. math:: H_T = \frac{1}{T'} E \sum_t -\log p(x_t \mid x_{<t}),

    the entropy rate of ``T``-token blocks, over ``t = 2 … T`` (``T' = T − 1``, the tokens a
    causal language model predicts) with ``skip_first``, else over all ``T``. No model of the
    corpus has a lower expected test loss (Gibbs' inequality).

    Parameters
    ----------
    corpus : Corpus; n : int >= 2; rng : Generator; domains : as in :func:`sample`.
    skip_first : bool

    Returns
    -------
    (mean, standard error) in nats per token.
    """
    n = as_int(n, "n", minimum=2)
    tokens = sample(corpus, n, rng, domains=domains).tokens
    per_seq = -log_likelihoods(corpus, tokens, domains=domains)[:, 1 if skip_first else 0:].mean(axis=1)
    return float(per_seq.mean()), float(per_seq.std(ddof=1) / np.sqrt(n))
