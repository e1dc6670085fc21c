"""The bad-input fuzz table of ``synthetic``'s supersample experiment (``synthetic.supersample``:
``Supersample``, ``SupersampleConfig``, ``run_supersample``), part of ``tests/fuzz/fuzz_synthetic.py``'s
table; the arrays-taking functions of ``bounds`` are in ``tests/fuzz/fuzz_bounds.py``.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import synthetic
from tests.fuzz.fuzz_specs import COUNT, RNG, Arg, Spec, rng
from tests.fuzz.fuzz_values import RAISE, Bad, bad_arrays, bad_ints, bad_objects

_ss_rng = np.random.default_rng(3)
SS_LOSSES = _ss_rng.integers(0, 3, size=(4, 2, 3, 2)) / 2.0
SS_SELECTORS = _ss_rng.integers(0, 2, size=(4, 2, 3))


def _train(z, rng):
    return float(np.mean(z))


def _loss(model, z):
    return (np.asarray(z) > model).astype(np.float64)


def _sample(rng, size):
    return rng.standard_normal(size)


SUPERSAMPLE_CASES = [
    (lambda: synthetic.SupersampleConfig(n=3, k_z=1, k_u=1), "k_z must be >= 2, got 1"),
    (lambda: synthetic.Supersample(losses=SS_LOSSES + 1.0, selectors=SS_SELECTORS), "losses must lie in [0, 1]"),
    (lambda: synthetic.run_supersample(_train, lambda m, z: 0.5, _sample, synthetic.SupersampleConfig(3, 2, 1), rng()),
     "loss(model, z) must return shape (6,) for 6 points, got ()"),
]

SUPERSAMPLE_SPECS = [
    Spec("SupersampleConfig", synthetic.SupersampleConfig, lambda: dict(n=3, k_z=2, k_u=1),
         {"n": Arg(COUNT), "k_z": Arg(bad_ints(minimum=2, edges=(2,))), "k_u": Arg(COUNT)}),
    Spec("Supersample", synthetic.Supersample, lambda: dict(losses=SS_LOSSES, selectors=SS_SELECTORS),
         {"losses": Arg(st.one_of(bad_arrays(SS_LOSSES), st.sampled_from([
             Bad("above 1", SS_LOSSES + 1.0, RAISE), Bad("below 0", SS_LOSSES - 1.0, RAISE),
             Bad("one supersample", SS_LOSSES[:1], RAISE),
             Bad("too many levels", np.linspace(0, 1, SS_LOSSES.size).reshape(SS_LOSSES.shape), RAISE)])),
             ("selectors",)),
          "selectors": Arg(st.one_of(bad_arrays(SS_SELECTORS.astype(float)), st.sampled_from([
              Bad("a 2", SS_SELECTORS + 1, RAISE), Bad("a half", SS_SELECTORS * 0.5, RAISE)])), ("losses",))}),
    Spec("run_supersample", synthetic.run_supersample,
         lambda: dict(train=_train, loss=_loss, sample=_sample, config=synthetic.SupersampleConfig(n=3, k_z=2, k_u=1),
                      rng=rng()),
         {"train": Arg(bad_objects()), "loss": Arg(st.one_of(bad_objects(), st.sampled_from([
             Bad("returns NaN", lambda m, z: np.full(len(z), math.nan), RAISE),
             Bad("returns one number", lambda m, z: 0.5, RAISE),
             Bad("returns 2.0", lambda m, z: np.full(len(z), 2.0), RAISE)])), aliases=("losses",)),
          "sample": Arg(st.one_of(bad_objects(), st.just(Bad("returns 3 points", lambda r, size: np.zeros(3), RAISE)))),
          "config": Arg(bad_objects(("a GDConfig", synthetic.GDConfig(steps=3)))), "rng": RNG}),
]
