"""Every public callable of synthetic.channel, the supersample learners (synthetic.supersample,
synthetic.linear.learners, synthetic.mlp.learners) and the sweep modules is fuzzed: the ones the package exports by ``tests/fuzz/fuzz_synthetic.py``, the others by ``tests/fuzz/fuzz_modules.py``; each
refuses invalid arguments with a ValueError naming the argument."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthetic import channel, supersample, sweep, sweep_grid
from synthetic.linear import learners as linear_learners
from synthetic.mlp import learners as mlp_learners
from tests.fuzz import fuzz_modules, fuzz_synthetic
from tests.fuzz.fuzz_specs import check

MODULES = (channel, linear_learners, mlp_learners, supersample, sweep, sweep_grid)
#: Not fuzzed, with the reason: argparse plumbing of the CLI (fuzzed through the command line in
#: tests/fuzz/test_fuzz_cli.py), functions of no argument, and plain containers validated where they are used.
EXEMPT = {"add_arguments": "CLI", "main": "CLI", "blas_threads": "no argument", "grid_help": "no argument",
          "SweepPoint": "container, checked by check_point", "Grid": "tested key by key in tests/fuzz/test_fuzz_cli.py",
          "check_point": "fuzzed through check_points and run_sweep"}
CALLS = [(spec, arg) for spec in fuzz_modules.SPECS for arg in spec.args]


def _public(module):
    return {name for name, obj in vars(module).items()
            if not name.startswith("_") and callable(obj) and getattr(obj, "__module__", None) == module.__name__
            and (inspect.isfunction(obj) or inspect.isclass(obj))}


def test_every_public_callable_of_these_modules_is_fuzzed():
    """The public callables defined in these modules are all in a fuzz table, or exempt with a reason."""
    covered = {spec.name for spec in fuzz_synthetic.SPECS + fuzz_modules.SPECS} | set(EXEMPT)
    missing = {f"{m.__name__}.{name}" for m in MODULES for name in _public(m) - covered}
    assert not missing, missing


@pytest.mark.parametrize("spec", fuzz_modules.SPECS, ids=[spec.name for spec in fuzz_modules.SPECS])
def test_valid_baselines_run(spec):
    """Each baseline call succeeds, so a refusal in the fuzz is the fuzzed value's doing."""
    spec.fn(**spec.valid())


@pytest.mark.parametrize(("spec", "arg"), CALLS, ids=[f"{spec.name}-{arg}" for spec, arg in CALLS])
@given(data=st.data())
def test_bad_input_raises_value_error_naming_the_argument(spec, arg, data):
    """An invalid argument raises ValueError naming it (or the field of a point or spec it concerns)."""
    check(spec, arg, data.draw(spec.args[arg].values, label=arg))
