"""The machinery of the bad-input fuzz, shared by the per-package tables.

A ``Spec`` names one public callable, a valid baseline call of it (keyword arguments, tiny sizes)
and, per argument, an ``Arg``: a strategy of invalid values (``tests/fuzz/fuzz_values.py``).
``check`` replaces one argument of the baseline with a drawn value and asserts what the
value's ``expect`` demands: a ``ValueError`` whose message names the argument (or, for a shape
change, an argument it disagrees with), or — for a valid edge such as zero noise — a result
without NaN. Any other exception, a ``RuntimeWarning`` (an error under the project's pytest
configuration) or a NaN in the result fails.

The tables themselves live in ``tests/fuzz/fuzz_theory.py``, ``tests/fuzz/fuzz_bounds.py`` and
``tests/fuzz/fuzz_synthetic.py``; ``tests/fuzz/test_fuzz.py`` runs them.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from hypothesis import strategies as st

from tests.fuzz.fuzz_values import OK, RAISE, Bad, bad_generators, bad_ints, bad_names, bad_reals

#: Public names of the packages that are plain result containers or constants, not fuzzed.
CONTAINERS = frozenset({"AdvantageMeasurement", "EstimateMayBeLowWarning", "AsymmetryPrediction", "BoundResult", "Estimate", "HighProbabilityBound", "GapResult",
                        "GapSummary", "Quantized"})

#: Sizes of the baselines: a (D_OUT, D_IN) layer adapted at rank R.
D_OUT, D_IN, R = 4, 5, 2


def rng() -> np.random.Generator:
    """A fresh Generator for a baseline call (the same draws in every example)."""
    return np.random.default_rng(0)


@dataclass(frozen=True, repr=False)
class Arg:
    """How to fuzz one argument: its invalid values, who else a shape error may name (``partners``)
    and other names the message may use for the argument itself (``aliases``)."""

    values: st.SearchStrategy[Bad]
    partners: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, repr=False)
class Spec:
    """A public callable, a valid call of it (keyword arguments) and how to fuzz each argument.

    ``tag`` tells apart two specs of one callable (e.g. its linear and its MLP path).
    """

    name: str
    fn: Callable
    valid: Callable[[], dict]
    args: dict[str, Arg]
    tag: str = ""

    @property
    def id(self) -> str:
        """``package.name`` (``/tag``): the test id."""
        package = self.fn.__module__.split(".")[0]
        return f"{package}.{self.name}" + (f"/{self.tag}" if self.tag else "")

    def __repr__(self) -> str:
        return f"Spec({self.id})"


# --- argument strategies used by several tables -----------------------------------------------

REAL = bad_reals()
NONNEG = bad_reals(minimum=0.0, edges=(0.0,))
POSITIVE = bad_reals(positive=True)
UNIT = bad_reals(minimum=0.0, maximum=1.0, edges=(0.0, 1.0))
OPEN_UNIT = bad_reals(positive=True, maximum=1.0, open_max=True)
SEED = bad_ints(minimum=0, edges=(0,))
COUNT = bad_ints(minimum=1, edges=(1,))
RNG = Arg(bad_generators())
VARIANT_ARG = Arg(bad_names(("lora", "b_only", "a_only", "full")))


def rank_arg(d_in: int = D_IN, d_out: int = D_OUT, edges: tuple[int, ...] = ()) -> Arg:
    """A LoRA rank in ``[1, min(d_in, d_out)]``; ``edges`` are valid boundary ranks."""
    return Arg(bad_ints(minimum=1, maximum=min(d_in, d_out), edges=edges))


# --- coverage ---------------------------------------------------------------------------------


def public_callables(*packages: ModuleType) -> set[str]:
    """The public callables (``__all__``) of ``packages``, less the plain result containers."""
    return {
        name for package in packages for name in package.__all__
        if callable(getattr(package, name)) and name not in CONTAINERS
    }


def called(call: Callable) -> str:
    """The public function a CASES lambda calls (its first attribute access on a package)."""
    attrs = call.__code__.co_names
    return next(n for package, n in zip(attrs, attrs[1:]) if package in ("theory", "bounds", "synthetic"))


# --- the property -----------------------------------------------------------------------------


def names(message: str, name: str) -> bool:
    """Whether ``message`` names ``name`` as a word (the article "a" does not count as ``a``)."""
    if name == "a":
        return re.search(r"^a\b|(?<![\w.'])a(?![\w])(?! [a-z0-9])", message) is not None
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message) is not None


def has_nan(result: object) -> bool:
    """Whether ``result`` (an array, tensor, float, container or dataclass of them) holds a NaN."""
    if isinstance(result, torch.Tensor):
        return bool(torch.isnan(result).any())
    if isinstance(result, np.ndarray):
        return result.dtype.kind in "fc" and bool(np.isnan(result).any())
    if isinstance(result, float):
        return math.isnan(result)
    if isinstance(result, dict):
        return any(has_nan(v) for v in result.values())
    if isinstance(result, (tuple, list)):
        return any(has_nan(v) for v in result)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return any(has_nan(getattr(result, f.name)) for f in dataclasses.fields(result))
    return False


def check(spec: Spec, arg: str, bad: Bad) -> None:
    """Call ``spec`` with ``arg`` replaced by ``bad.value``; assert what ``bad.expect`` demands."""
    kwargs = spec.valid()
    kwargs[arg] = bad.value
    where = f"{spec.id}({arg}={bad.label})"
    try:
        result = spec.fn(**kwargs)
    except ValueError as exc:
        message = str(exc)
        assert bad.expect != OK, f"{where}: a valid value was refused: {message}"
        allowed = (arg, *spec.args[arg].aliases, *(spec.args[arg].partners if bad.partners else ()))
        assert any(names(message, n) for n in allowed), f"{where}: the message does not name {allowed}: {message}"
        return
    assert bad.expect != RAISE, f"{where}: accepted, returned {type(result).__name__}"
    assert not has_nan(result), f"{where}: returned NaN"
