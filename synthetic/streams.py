r"""Every random stream of the experiments, in one table.

An experiment is seeded by one integer ``seed``. Each kind of randomness (training inputs, label
noise, a frozen factor, a supersample's selectors, …) draws from its own generator,
``default_rng(SeedSequence(seed, spawn_key=key))``, so that the numbers of one stream do not
depend on how many draws another stream made, on how trials are grouped into batches, or on
which other streams an experiment uses. The keys below are that table; two streams with the
same key would be the same numbers, so every key is listed here and nowhere else.

Linear task (``synthetic.linear``): ``(stream, trial)`` or ``(stream,)``.
MLP task (``synthetic.mlp``): trial ``t`` uses ``(t,)`` and its four spawned children (data,
init, order, test); streams of the bound learners start with ``MLP_KEY_BASE`` (``> t`` for every
trial id the toolkit accepts), so they never meet the trial streams.
"""

from __future__ import annotations

import numpy as np

# --- linear task: spawn_key (stream,) or (stream, trial) --------------------------------------
STREAM_X = 0  #: training inputs of a trial
STREAM_NOISE = 1  #: label noise of a trial
STREAM_FROZEN = 2  #: the frozen factor of a trial (``frozen="per_trial"``)
STREAM_TEST = 3  #: the held-out test set of a trial (``loss="clipped"``)
STREAM_FROZEN_SHARED = 4  #: the one frozen factor of every trial (``frozen="shared"``)
STREAM_CHANNEL = 10  #: the perturbation of the Gaussian-channel bound (``synthetic.channel``)
STREAM_SELECTOR = 11  #: the selector bits of a supersample
STREAM_SUPERSAMPLE = 12  #: the data of an MLP supersample
STREAM_ORDER = 13  #: the minibatch orders of an MLP supersample
STREAM_SUFFICIENT = 14  #: the sufficient statistics of a trial (``sampler="sufficient"``)
STREAM_TASK = 100  #: the task itself (``LinearTask``): ``STREAM_TASK + 0, 1, 2`` for its three draws
#: Trial ids from which the linear supersamples take their data streams: disjoint from the trials
#: ``0 .. trials - 1`` of any Monte Carlo run with the same seed.
SUPERSAMPLE_TRIAL_OFFSET = 1 << 40

# --- MLP task ----------------------------------------------------------------------------------
TEACHER_KEY = (0,)  #: the teacher network, from ``MLPTask.teacher_seed``
TARGET_KEY = (1,)  #: the target task's shift of the teacher, from ``MLPTask.task_seed``
#: First ``spawn_key`` entry of every stream of the MLP bound learners; ``trial_streams`` uses
#: ``(trial,)`` with ``trial < MLP_KEY_BASE``.
MLP_KEY_BASE = 1 << 32
SHARED_INIT_KEY = (MLP_KEY_BASE, 0)  #: the one init of every trial of ``synthetic.mlp_fit``
TRIAL_STREAMS = ("data", "init", "order", "test")  #: the children of a trial's key, in spawn order

# --- layer geometry (synthetic.mlp.geometry) ----------------------------------------------------
GEOMETRY_INPUT_KEY = 0  #: the inputs on which Σ and G are averaged
GEOMETRY_DRAWS_KEY = 1  #: the random frames of the captured-fraction draws, ``(1, layer)``

# --- adapter similarity (synthetic.mlp.similarity) ----------------------------------------------
SIMILARITY_DATA_KEY = (0,)  #: the training data of a target task, from ``data_seed``
SIMILARITY_INIT_KEY = (1,)  #: an adapter init, from its init seed
SIMILARITY_ORDER_KEY = (2,)  #: the minibatch order of a (task, init) cell


def stream_rng(seed: int, stream: int, trial: int | None = None) -> np.random.Generator:
    """The generator of one linear-task stream (and trial): ``SeedSequence(seed, spawn_key=(stream[, trial]))``.

    Keying every stream by ``(stream, trial)`` makes a trial's numbers independent of chunking,
    variant and rank (docs/THEORY.md §7.4, "Monte Carlo gaps").

    Parameters
    ----------
    seed : int
        The experiment's seed.
    stream : int
        One of the ``STREAM_*`` keys of this module.
    trial : int or None
        The trial id; None gives the per-experiment stream ``(stream,)``.

    Returns
    -------
    numpy.random.Generator
    """
    key = (stream,) if trial is None else (stream, trial)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def keyed_rng(seed: int | list[int], key: tuple[int, ...]) -> np.random.Generator:
    """``default_rng(SeedSequence(seed, spawn_key=key))``: the generator of one keyed stream.

    The general form of the keyed streams of this module (docs/THEORY.md §7.4): ``key`` is one of
    the keys listed here, so two streams never share their numbers.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def mlp_stream(seed: int, stream: int, index: int) -> np.random.Generator:
    """One stream of the MLP bound learners: ``SeedSequence(seed, spawn_key=(MLP_KEY_BASE, stream, index))``.

    ``MLP_KEY_BASE`` exceeds every trial id, so these streams (a supersample's data, selectors and
    minibatch orders, docs/THEORY.md §2.4; the Gaussian-channel perturbation, §2.5) never meet the
    trial streams of :func:`trial_streams`. ``index`` numbers the supersample, run or trial.
    """
    return keyed_rng(seed, (MLP_KEY_BASE, stream, index))


def trial_streams(seed: int, trial: int) -> dict[str, np.random.Generator]:
    """Independent generators of one MLP trial (data, init, order, test), from ``SeedSequence(seed)``.

    Trial ``t`` uses the children of ``SeedSequence(seed, spawn_key=(t,))``, so its numbers do not
    depend on how many trials are run or how they are grouped (docs/THEORY.md §7.4).

    Returns
    -------
    dict of str to numpy.random.Generator
        Keys ``"data"`` (training set), ``"init"`` (adapter init, frozen factor included), ``"order"``
        (minibatch order) and ``"test"`` (test set), in the spawn order of ``TRIAL_STREAMS``.
    """
    child = np.random.SeedSequence(seed, spawn_key=(trial,))
    return {k: np.random.default_rng(s) for k, s in zip(TRIAL_STREAMS, child.spawn(len(TRIAL_STREAMS)))}
