"""Bad input: every public function of ``theory``, ``bounds`` and ``synthetic`` refuses
invalid arguments with a ``ValueError`` that names the argument, and never returns NaN.

Two parts, with the tables in one module per package (``tests/fuzz/fuzz_theory.py``,
``tests/fuzz/fuzz_bounds.py``, ``tests/fuzz/fuzz_synthetic.py``) and the machinery in ``tests/fuzz/fuzz_specs.py``:

- ``CASES``: the hand-written table of cases tried and the messages they give (at least one per
  public callable), each message fragment asserted.
- ``SPECS``: one entry (or more, one per code path) per public callable with a valid baseline call
  and, per argument, a strategy of invalid values. Hypothesis picks a value for each argument in
  turn; the call must raise ``ValueError`` whose message names the argument (or, for a shape
  change, the argument it disagrees with), or — for values that are valid edges, such as zero
  noise — return a result without NaN.

Skipped as plain result containers: ``AdvantageMeasurement``, ``AsymmetryPrediction``, ``BoundResult``, ``Estimate``, ``HighProbabilityBound``,
``GapResult``, ``GapSummary``, ``Quantized``; and the constant ``VARIANTS``. The command line is
fuzzed in ``tests/fuzz/test_fuzz_cli.py``. Test ids start with the package, so ``-k synthetic`` runs
one package's fuzz.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bounds
import synthetic
import theory
from tests.fuzz import fuzz_bounds, fuzz_synthetic, fuzz_theory
from synthetic.mlp.task import MAX_SCALE
from tests.fuzz.fuzz_specs import called, check, has_nan, public_callables

PACKAGES = (theory, bounds, synthetic)
CASES = fuzz_theory.CASES + fuzz_bounds.CASES + fuzz_synthetic.CASES
SPECS = fuzz_theory.SPECS + fuzz_bounds.SPECS + fuzz_synthetic.SPECS
CALLS = [(spec, arg) for spec in SPECS for arg in spec.args]


def _case_id(call, fragment: str) -> str:
    return f"{call.__code__.co_names[0]}.{called(call)}: {fragment}"


def test_every_public_callable_has_a_spec():
    """The fuzz table covers every public callable of theory, bounds and synthetic (less the plain
    result containers), each in the table of its own package."""
    assert {spec.name for spec in SPECS} == public_callables(*PACKAGES)
    for package, table in zip(PACKAGES, (fuzz_theory, fuzz_bounds, fuzz_synthetic)):
        assert {spec.name for spec in table.SPECS} == public_callables(package), package.__name__


def test_cases_cover_every_public_callable():
    """The table of cases has at least one row per public callable."""
    assert {called(call) for call, _ in CASES} == public_callables(*PACKAGES)


@pytest.mark.parametrize(("call", "fragment"), CASES, ids=[_case_id(c, f) for c, f in CASES])
def test_table_of_cases(call, fragment):
    """Each row of CASES raises ValueError with the documented message."""
    with pytest.raises(ValueError) as info:
        call()
    assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("spec", SPECS, ids=[spec.id for spec in SPECS])
def test_valid_baseline_calls_succeed_without_nan(spec):
    """The baseline each fuzz case starts from is itself valid, so a refusal is the fuzzed value's doing."""
    assert not has_nan(spec.fn(**spec.valid()))


@pytest.mark.parametrize(("spec", "arg"), CALLS, ids=[f"{spec.id}-{arg}" for spec, arg in CALLS])
@given(data=st.data())
def test_bad_input_raises_value_error_naming_the_argument(spec, arg, data):
    """Every invalid argument of a public function raises ValueError naming it; valid edge values
    (zero noise, rank = min(d_in, d_out), ...) return a result without NaN."""
    check(spec, arg, data.draw(spec.args[arg].values, label=arg))


@pytest.mark.parametrize("fields", [("logit_scale", "perturbation_scale"), ("noise_std",), ("alpha",)])
def test_mlp_task_scale_fields_at_their_limit_train_to_finite_losses(fields):
    """``MLPTask`` refuses scale fields above ``MAX_SCALE`` (the fuzz above); at the limit, training and
    evaluation in float32 stay finite: a ReLU regression teacher whose last layer is perturbed and
    adapted, with ``logit_scale`` and ``perturbation_scale`` both at the limit (their product scales
    the targets), or ``noise_std`` or ``alpha`` at the limit, gives finite squared losses."""
    task = synthetic.MLPTask(widths=(4, 6, 3), adapted_layers=(0, 1), perturbed_layers=(1,), perturbation_rank=2,
                             kind="regression", activation="relu", test_size=64, steps=3,
                             **{name: MAX_SCALE for name in fields})
    result = synthetic.mlp_trial_losses(task, "lora", 2, 8, 2, loss="squared", seed=0)
    assert not has_nan(result)
    assert all(np.all(np.isfinite(v)) for v in result.values()), result
