"""The floor of the supersample CMI estimators (docs/THEORY.md §2.4).

A learner whose output ignores its selector has ``I(L~_i; U_i) = 0``: everything its CMI bounds
read is the estimator's floor, which must fall to 0 as the supersamples grow. The pooled
estimator (``pool_points``) and ``selector_blind_floor`` are checked against the per-point
estimator and against the law of an estimate under ``I = 0``.
"""

from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from bounds import binary_kl_bound, ecmi_bound, fast_rate_bound, ld_cmi_bound, redraw_selectors
from bounds.cmi import selector_blind_floor
from synthetic.linear.learners import linear_supersample
from synthetic.linear.engine import LinearTask
from synthetic.supersample import Supersample

TASK = replace(LinearTask.quick(), d_in=6, d_out=5, delta_rank=3, frozen="shared", clip=3.0)
#: The estimators compared: the per-point default, and figures 4 and 5's pooled plug-in.
ESTIMATORS = {"per_point": {}, "pooled": {"pool_points": True, "correction": "none"}}
#: The floor of a square-root bound falls like 1/sqrt(k_z): 16 times the supersamples divide it by
#: 4; the test allows twice that (one named slack).
FLOOR_SLACK = 2.0
#: Under I = 0 an estimate exceeds the 95th percentile of its null law with probability <= 5 %;
#: over REPEATS independent repetitions, allow this many standard errors above that rate.
REPEATS, NULL_SIGMAS = 200, 3.0


def _arrays(ss: Supersample) -> tuple[np.ndarray, np.ndarray]:
    """The ``(losses, selectors)`` arguments of a CMI bound, from the record of an experiment."""
    return ss.losses, ss.selectors


def _blind(k_z: int, seed: int, **kw) -> Supersample:
    """The selector-blind linear learner: every run fits the union of its supersample."""
    return linear_supersample(TASK, "lora", 2, 32, k_z, 4, levels=4, eval_points=16, selector_blind=True,
                              seed=seed, **kw)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("bound", [ld_cmi_bound, ecmi_bound], ids=lambda f: f.__name__)
def test_selector_blind_upper_end_goes_to_zero(bound, estimator):
    r"""For a learner that ignores its selector the CMI is 0, so the upper end of the estimated bound
    is the estimator's floor, of order ``sqrt(m / (k_z k_u))`` for ``m`` loss symbols: averaged over
    four seeds it falls strictly as ``k_z`` goes 25 -> 100 -> 400, at 400 to at most ``FLOOR_SLACK / 4``
    of its value at 25."""
    highs = np.array([
        [bound(*_arrays(_blind(k_z, seed)), np.random.default_rng(seed), n_boot=50, **ESTIMATORS[estimator]).high
         for k_z in (25, 100, 400)]
        for seed in range(4)
    ]).mean(axis=0)
    assert np.all(np.diff(highs) < 0), highs
    assert highs[-1] <= FLOOR_SLACK / 4 * highs[0], highs


def test_selector_blind_runs_ignore_the_selector():
    """With a shared frozen factor every run of a supersample fits the same union of its 2n points:
    the k_u runs have identical losses whatever their selectors."""
    ss = _blind(5, 0)
    for k in range(1, ss.losses.shape[1]):
        assert_array_equal(ss.losses[:, k], ss.losses[:, 0])
    assert not np.all(ss.selectors[:, 0] == ss.selectors[:, 1])


def test_pooled_equals_per_point_with_one_point():
    """With one evaluated point, the pooled MI is the per-point MI: same bound, same interval."""
    ss = linear_supersample(TASK, "b_only", 2, 16, 30, 4, levels=4, eval_points=1, seed=3)
    for bound in (ld_cmi_bound, ecmi_bound, binary_kl_bound, fast_rate_bound):
        one = bound(*_arrays(ss), np.random.default_rng(0), n_boot=40)
        pooled = bound(*_arrays(ss), np.random.default_rng(0), n_boot=40, pool_points=True)
        assert (one.value, one.low, one.high) == (pooled.value, pooled.low, pooled.high)


@pytest.mark.parametrize("bound", [ld_cmi_bound, fast_rate_bound], ids=lambda f: f.__name__)
def test_floor_is_exceeded_rarely_under_zero_cmi(bound):
    """``selector_blind_floor`` is the 95th percentile of the estimate under ``I = 0``, given the
    losses: selectors drawn independently of fixed losses exceed it in at most 5 % of repetitions
    (plus ``NULL_SIGMAS`` binomial standard errors)."""
    rng = np.random.default_rng(7)
    losses = np.ceil(4 * rng.random((40, 2, 8, 2)) ** 2) / 4  # a skewed law on the grid {1/4, ..., 1}
    exceeded = 0
    for _ in range(REPEATS):
        ss = redraw_selectors(losses, np.zeros(losses.shape[:3]), rng)
        kw = ESTIMATORS["pooled"]
        exceeded += bound(*ss, rng, n_boot=1, **kw).value > selector_blind_floor(*ss, rng, bound=bound, **kw)
    assert exceeded / REPEATS <= 0.05 + NULL_SIGMAS * np.sqrt(0.05 * 0.95 / REPEATS), exceeded


def test_a_learner_that_uses_its_selector_stands_above_its_floor():
    """A fit on 16 points leaks its selectors through the loss: its ld-CMI estimate is above the floor,
    while the same losses with redrawn selectors (``redraw_selectors``) are not."""
    ss = linear_supersample(TASK, "full", None, 16, 50, 4, levels=4, eval_points=16, seed=1)
    kw, rng = ESTIMATORS["pooled"], np.random.default_rng(2)
    floor = selector_blind_floor(*_arrays(ss), rng, bound=ld_cmi_bound, **kw)
    assert ld_cmi_bound(*_arrays(ss), rng, n_boot=50, **kw).value > floor
    losses, selectors = redraw_selectors(*_arrays(ss), rng)
    assert_array_equal(losses, ss.losses) and selectors.shape == ss.selectors.shape
    blind_floor = selector_blind_floor(losses, selectors, rng, bound=ld_cmi_bound, **kw)
    assert ld_cmi_bound(losses, selectors, rng, n_boot=50, **kw).value <= blind_floor


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda ss: ld_cmi_bound(*_arrays(ss), np.random.default_rng(0), pool_points="yes"),
         "pool_points must be True or False"),
        (lambda ss: selector_blind_floor(*_arrays(ss), np.random.default_rng(0), bound=print), "bound must be one of"),
        (lambda ss: selector_blind_floor(*_arrays(ss), np.random.default_rng(0), bound=ld_cmi_bound, draws=0),
         "draws must be >= 1"),
        (lambda ss: selector_blind_floor(ss.losses, ss.selectors[..., :1], np.random.default_rng(0), bound=ld_cmi_bound),
         "selectors must have shape"),
        (lambda ss: redraw_selectors(ss.losses, np.random.default_rng(0), ss.selectors),
         "selectors must have shape"),
        (lambda ss: redraw_selectors(*_arrays(ss), 0), "rng must be a numpy.random.Generator"),
        (lambda ss: linear_supersample(TASK, "lora", 2, 8, 2, 2, selector_blind="no", seed=0), "selector_blind must be"),
    ],
)
def test_bad_input_names_the_argument(make, message):
    """Bad arguments raise ``ValueError`` naming them."""
    with pytest.raises(ValueError, match=message):
        make(_blind(2, 0))
