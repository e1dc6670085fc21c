"""Hypothesis strategies of invalid (and valid edge) argument values for the fuzz tables.

Each strategy draws a ``Bad(label, value, expect, partners)``: ``expect`` is RAISE (the call must
raise ValueError naming the argument), OK (a valid edge value: the call must succeed without NaN)
or EITHER (valid for some calls, e.g. one more row of a factor whose row count is free);
``partners`` marks a shape change, whose error may name the argument it disagrees with instead.
The fuzz tables (``tests/fuzz/fuzz_theory.py``, ``fuzz_bounds.py``, ``fuzz_synthetic.py``) pair them
with every argument of every public function.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

RAISE, OK, EITHER = "raise", "ok", "either"

#: A finite value above ``theory.validation.MAX_ABS`` (1e150): its square overflows float64. Every
#: real and array argument is limited to ``MAX_ABS`` unless its strategy says otherwise (``huge``).
HUGE = 1e200


class Bad(NamedTuple):
    """One fuzzed argument value and what the call must do with it."""

    label: str
    value: object
    expect: str
    partners: bool = False


def _fixed(*items: tuple[str, object], expect: str = RAISE) -> st.SearchStrategy[Bad]:
    return st.sampled_from([Bad(label, value, expect) for label, value in items])


NOT_NUMBERS = (
    ("None", None), ("string", "0.5"), ("bool True", True), ("bool False", False), ("complex", 0.5 + 1j),
    ("list", [0.5, 0.5]), ("array", np.array([0.5, 0.5])),
)


def _none_ok(items: tuple[tuple[str, object], ...], optional: bool) -> list[st.SearchStrategy[Bad]]:
    """The fixed invalid values; with ``optional``, None moves to the valid (OK) values."""
    if not optional:
        return [_fixed(*items)]
    return [_fixed(*(i for i in items if i[1] is not None)), st.just(Bad("None (optional)", None, OK))]


def bad_reals(
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    open_max: bool = False,
    edges: tuple[float, ...] = (),
    optional: bool = False,
    huge: str = RAISE,
) -> st.SearchStrategy[Bad]:
    """Invalid values of a real argument: non-finite, not a number, outside its range, or above
    ``MAX_ABS`` in magnitude.

    ``minimum``/``maximum`` bound the valid range (``positive``: ``> 0``; ``open_max``: ``< maximum``);
    ``edges`` are valid boundary values, drawn with ``expect=OK``; ``optional``: None is valid;
    ``huge``: what the call must do with ``HUGE`` (and ``-HUGE`` when no minimum is set) — RAISE
    for the arguments limited to ``MAX_ABS``, OK for one that accepts any finite value.
    """
    parts = _none_ok((("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), *NOT_NUMBERS), optional)
    unbounded_below = minimum is None and not positive
    parts.append(_fixed(("above MAX_ABS", HUGE), *([("below -MAX_ABS", -HUGE)] if unbounded_below else []),
                        expect=huge))
    finite = {"allow_nan": False, "allow_infinity": False}
    if positive:
        parts.append(st.floats(max_value=0.0, **finite).map(lambda v: Bad("not > 0", v, RAISE)))
    elif minimum is not None:
        below = st.floats(max_value=minimum - max(abs(minimum), 1.0) * 1e-9, **finite)
        parts.append(below.map(lambda v: Bad("below minimum", v, RAISE)))
    if maximum is not None:
        above = st.floats(min_value=maximum, **finite) if open_max else st.floats(
            min_value=maximum + max(abs(maximum), 1.0) * 1e-9, **finite)
        parts.append(above.map(lambda v: Bad("above maximum", v, RAISE)))
    if edges:
        parts.append(st.sampled_from([Bad(f"edge {e!r}", e, OK) for e in edges]))
    return st.one_of(parts)


def bad_ints(
    *, minimum: int, maximum: int | None = None, edges: tuple[int, ...] = (), optional: bool = False
) -> st.SearchStrategy[Bad]:
    """Invalid values of an integer argument: floats, bools, None, strings, or out of range.

    Huge values are drawn only where the argument has a ``maximum``: a huge size is valid, just slow.
    ``optional``: None is valid.
    """
    parts = _none_ok((("float 2.5", 2.5), ("integral float 3.0", 3.0), ("nan", math.nan), ("inf", math.inf),
                      ("bool True", True), ("bool False", False), ("None", None), ("string", "3"),
                      ("array", np.array([3]))), optional)
    parts.append(st.integers(max_value=minimum - 1).map(lambda v: Bad("below minimum", v, RAISE)))
    if maximum is not None:
        parts.append(st.integers(min_value=maximum + 1, max_value=10**30).map(lambda v: Bad("above maximum", v, RAISE)))
    if edges:
        parts.append(st.sampled_from([Bad(f"edge {e!r}", e, OK) for e in edges]))
    return st.one_of(parts)


@st.composite
def _poisoned(draw, valid: np.ndarray, values: tuple[float, ...] = (math.nan, math.inf, -math.inf),
              label: str = "", expect: str = RAISE):
    """``valid`` with one entry replaced by one of ``values`` at a drawn position (label: the value,
    or ``label``, then the position)."""
    out = np.array(valid, dtype=np.float64)
    index = tuple(draw(st.integers(0, n - 1)) for n in out.shape)
    value = draw(st.sampled_from(values))
    out[index] = value
    return Bad(f"{label or value} at {index}", out, expect)


@st.composite
def _reshaped(draw, valid: np.ndarray, fixed_axes: tuple[int, ...]):
    """``valid`` one longer along a drawn axis: RAISE where that length is fixed by other arguments."""
    axis = draw(st.integers(0, valid.ndim - 1))
    first = np.take(valid, [0], axis=axis)
    grown = np.concatenate([valid, first], axis=axis)
    expect = RAISE if axis in fixed_axes else EITHER
    return Bad(f"one longer along axis {axis}", grown, expect, partners=True)


def bad_arrays(
    valid: np.ndarray, *, fixed_axes: tuple[int, ...] | None = None, any_ndim: bool = False, huge: str = RAISE,
    optional: bool = False,
) -> st.SearchStrategy[Bad]:
    """Invalid values of an array argument whose valid value looks like ``valid``.

    NaN/inf entries, an entry of magnitude ``HUGE`` (``huge``: what the call must do with it, RAISE
    for the arrays limited to ``MAX_ABS``), one axis too few or too many (EITHER with ``any_ndim``:
    arrays of any rank are valid), an empty axis, complex entries, None, a string, a ragged nested
    list, an object array; and a length change along each axis (``fixed_axes``: the axes whose
    length other arguments fix, all of them by default). With ``optional``, None is valid (OK).
    """
    valid = np.asarray(valid)
    fixed = tuple(range(valid.ndim)) if fixed_axes is None else fixed_axes
    empties = [(f"empty axis {k}", np.take(valid, [], axis=k)) for k in range(valid.ndim)]
    fixed_items = [
        *empties, ("complex", valid + 1j), ("None", None), ("string", "matrix"), ("ragged", [[1.0, 2.0], [3.0]]),
        ("object array", np.array([{"a": 1}], dtype=object)), ("scalar", 1.0),
    ]
    if optional:
        fixed_items = [item for item in fixed_items if item[1] is not None]
    ranks = _fixed(("one axis too few", valid[0]), ("one axis too many", valid[None]),
                   expect=EITHER if any_ndim else RAISE)
    parts = [_fixed(*fixed_items), ranks, _poisoned(valid),
             _poisoned(valid, (HUGE, -HUGE), "above MAX_ABS", huge), _reshaped(valid, fixed)]
    if optional:
        parts.append(st.just(Bad("None (optional)", None, OK)))
    return st.one_of(parts)


def bad_covariances(valid: np.ndarray, *, optional: bool = False) -> st.SearchStrategy[Bad]:
    """``bad_arrays`` plus a non-symmetric and a non-PSD matrix of the same size; zero is EITHER.

    With ``optional`` (an output metric, where None means the identity), None is valid."""
    d = valid.shape[0]
    top = float(np.linalg.eigvalsh(valid)[-1])
    asym = valid + np.triu(np.full((d, d), 0.5), 1)
    not_psd = valid - (top + 1.0) * np.outer(np.eye(d)[0], np.eye(d)[0])
    return st.one_of(
        bad_arrays(valid, optional=optional),
        _fixed(("non-symmetric", asym), ("not PSD", not_psd)),
        st.just(Bad("zero covariance", np.zeros((d, d)), EITHER, partners=True)),
    )


def bad_names(choices: tuple[str, ...]) -> st.SearchStrategy[Bad]:
    """Names not among ``choices``: unknown, empty, upper-cased, padded, None, a number, a list."""
    first = choices[0]
    items = [("unknown", "no_such_name"), ("empty", ""), ("padded", first + " "), ("None", None),
             ("int", 3), ("list", [first]), ("bytes", first.encode())]
    if first.upper() not in choices:
        items.append(("upper-case", first.upper()))
    return _fixed(*items)


def bad_generators() -> st.SearchStrategy[Bad]:
    """Things that are not a ``numpy.random.Generator``: None, a seed, a legacy RandomState, a string."""
    return _fixed(("None", None), ("int seed", 0), ("RandomState", np.random.RandomState(0)), ("string", "rng"))


def bad_objects(*extra: tuple[str, object]) -> st.SearchStrategy[Bad]:
    """Wrong types for an argument that must be an object of one class (task, config, callable)."""
    return _fixed(("None", None), ("string", "x"), ("int", 3), ("dict", {}), *extra)
