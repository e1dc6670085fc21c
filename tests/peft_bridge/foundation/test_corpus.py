"""The synthetic language: its tables, its samples, and the forward algorithm's exact likelihoods."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from peft_bridge.foundation import CorpusConfig, bayes_loss, log_likelihoods, make_corpus, sample

SMALL = CorpusConfig(vocab=8, classes=2, domains=2, topics=2, formality_levels=2, seq_len=4, content_classes=1)


def test_tables_are_laws_and_respect_the_pools():
    """Every emission row sums to 1 and puts mass only on its class's pool; the registers are stochastic."""
    corpus = make_corpus(CorpusConfig())
    c = corpus.config
    emissions = corpus.emissions(np.arange(c.domains + 1))
    np.testing.assert_allclose(emissions.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(corpus.registers.sum(-1), 1.0, rtol=1e-12)
    pool = c.vocab // c.classes
    for s in range(c.classes):
        outside = np.delete(emissions[..., s, :], np.s_[s * pool:(s + 1) * pool], axis=-1)
        assert not outside.any()


def test_tables_are_a_function_of_the_seed():
    """The same seed gives the same tables; another seed other tables."""
    a, b = make_corpus(CorpusConfig(seed=3)), make_corpus(CorpusConfig(seed=3))
    np.testing.assert_array_equal(a.lexicon, b.lexicon)
    assert not np.array_equal(a.lexicon, make_corpus(CorpusConfig(seed=4)).lexicon)


def test_domains_differ_in_lexicon_not_in_syntax():
    """Two domains give each class the same pool with a different law (the shared syntax, other words)."""
    corpus = make_corpus(CorpusConfig())
    lex = corpus.lexicon
    assert np.array_equal(lex[0] > 0, lex[1] > 0)
    assert not np.allclose(lex[0], lex[1])


def _brute_force(corpus, tokens, domains):
    """log p(x_1 … x_T) by summing over every latent and class path (tiny corpora only)."""
    c = corpus.config
    em = corpus.emissions(np.asarray(domains))
    total = 0.0
    for d, k, b, level in itertools.product(range(len(domains)), range(c.topics), range(2),
                                            range(c.formality_levels)):
        u = corpus.formality[level]
        trans = (1 - u) * corpus.registers[0] + u * corpus.registers[1]
        prior = 1.0 / (len(domains) * c.topics * 2 * c.formality_levels)
        for path in itertools.product(range(c.classes), repeat=len(tokens)):
            p = prior * corpus.initial[path[0]] * em[d, k, b, path[0], tokens[0]]
            for t in range(1, len(tokens)):
                p *= trans[path[t - 1], path[t]] * em[d, k, b, path[t], tokens[t]]
            total += p
    return np.log(total)


def test_forward_algorithm_matches_brute_force():
    """Σ_t log p(x_t | x_<t) of the forward algorithm equals log p(x) summed over every latent and path."""
    corpus = make_corpus(SMALL)
    tokens = sample(corpus, 5, np.random.default_rng(0)).tokens
    exact = log_likelihoods(corpus, tokens).sum(axis=1)
    brute = [_brute_force(corpus, row, (0, 1)) for row in tokens]
    np.testing.assert_allclose(exact, brute, rtol=1e-10)


def test_conditional_laws_sum_to_one():
    """p(x_1) over the vocabulary, and p(x_2 | x_1) over the vocabulary, each sum to 1."""
    corpus = make_corpus(SMALL)
    v = SMALL.vocab
    first = np.exp(log_likelihoods(corpus, np.arange(v)[:, None])[:, 0])
    assert first.sum() == pytest.approx(1.0, rel=1e-12)
    pairs = np.stack([np.full(v, 3), np.arange(v)], axis=1)
    second = np.exp(log_likelihoods(corpus, pairs)[:, 1])
    assert second.sum() == pytest.approx(1.0, rel=1e-12)


def test_bayes_loss_is_below_the_unigram_loss():
    """Gibbs' inequality: the generator's own loss is below that of the token frequencies."""
    corpus = make_corpus(CorpusConfig(seq_len=16))
    rng = np.random.default_rng(1)
    mean, se = bayes_loss(corpus, 256, rng)
    tokens = sample(corpus, 2048, rng).tokens
    freq = np.bincount(tokens.ravel(), minlength=corpus.config.vocab) / tokens.size
    unigram = -(freq * np.log(np.where(freq > 0, freq, 1))).sum()
    assert 0 < se < 0.05
    assert mean < unigram - 10 * se


def test_samples_stay_in_their_domains_and_latents():
    """Domains come from the asked set; every latent lies in its range; tokens in the vocabulary."""
    corpus = make_corpus(CorpusConfig())
    s = sample(corpus, 500, np.random.default_rng(2), domains=(1, 4))
    assert set(np.unique(s.domain)) == {1, 4}
    assert s.tokens.min() >= 0 and s.tokens.max() < 128
    assert s.topic.max() < 32 and set(np.unique(s.polarity)) == {0, 1} and s.formality.max() < 5


@pytest.mark.parametrize(("field", "value"), [("vocab", 100), ("classes", 1), ("domains", 1), ("seq_len", 2),
                                              ("content_classes", 8), ("polarity_boost", 0.0), ("zipf", -1.0)])
def test_bad_corpus_config_is_refused(field, value):
    """A configuration the generator cannot build is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        CorpusConfig(**{field: value})


@pytest.mark.parametrize("domains", [(), (7,), (-1,)])
def test_bad_domains_are_refused(domains):
    """Domains outside 0..D are a ValueError."""
    with pytest.raises(ValueError, match="domains"):
        sample(make_corpus(CorpusConfig()), 4, np.random.default_rng(0), domains=domains)


def test_bad_tokens_are_refused():
    """Tokens outside the vocabulary, or not a 2-D integer array, are a ValueError."""
    corpus = make_corpus(SMALL)
    with pytest.raises(ValueError, match="tokens"):
        log_likelihoods(corpus, np.array([[0, 9]]))
    with pytest.raises(ValueError, match="tokens"):
        log_likelihoods(corpus, np.zeros(3, dtype=int))


def test_latent_posterior_matches_brute_force():
    """p(d, k, b, u | x) of the forward algorithm equals Bayes' rule over the brute-force likelihoods."""
    from peft_bridge.foundation.corpus import latent_posterior

    corpus = make_corpus(SMALL)
    c = SMALL
    tokens = sample(corpus, 3, np.random.default_rng(5)).tokens
    post = latent_posterior(corpus, tokens)
    for row, p in zip(tokens, post):
        joint = np.empty((c.domains, c.topics, 2, c.formality_levels))
        for d, k, b, level in itertools.product(range(c.domains), range(c.topics), range(2), range(c.formality_levels)):
            joint[d, k, b, level] = _component(corpus, row, d, k, b, level)
        np.testing.assert_allclose(p, joint / joint.sum(), rtol=1e-9)


def _component(corpus, tokens, d, k, b, level):
    """p(x | d, k, b, u) by summing over every class path."""
    c = corpus.config
    em = corpus.emissions(np.array([d]))[0, k, b]
    u = corpus.formality[level]
    trans = (1 - u) * corpus.registers[0] + u * corpus.registers[1]
    total = 0.0
    for path in itertools.product(range(c.classes), repeat=len(tokens)):
        p = corpus.initial[path[0]] * em[path[0], tokens[0]]
        for t in range(1, len(tokens)):
            p *= trans[path[t - 1], path[t]] * em[path[t], tokens[t]]
        total += p
    return total


def test_bayes_classifier_beats_chance_and_knows_the_label():
    """The generator's posterior mode recovers the polarity far above chance (the task is learnable),
    and no better than perfectly."""
    from peft_bridge.foundation.tasks import bayes_metric, task_data

    corpus = make_corpus(CorpusConfig())
    scores = bayes_metric(corpus, task_data(corpus, "polarity", n_train=4, n_test=400, seed=0))
    assert 0.7 < scores["test"] <= 1.0 and 0.7 < scores["ood"] <= 1.0
    assert bayes_metric(corpus, task_data(corpus, "grammar", n_train=4, n_test=8, seed=0)) == {"test": None, "ood": None}
