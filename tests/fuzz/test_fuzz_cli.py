"""Bad input at the edges of the fuzz: the command line, grid files, and the fuzz strategies themselves.

``lora-asym`` (``figures``, ``demo``, ``sweep``) with one invalid flag value, figure name, output
folder or subcommand exits with status 2 and prints one error line naming it, before any
computation (``tests/fuzz/test_fuzz.py`` fuzzes the library). Each kind of bad value is its own test,
so every kind gets the profile's examples. The
strategies of ``tests/fuzz/fuzz_values.py`` that draw the invalid values are checked against the
validation helpers they imitate.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from figures import cli, registry
from synthetic.linear.engine import LinearTask
from synthetic.sweep import GRID_KEYS, PRESETS, TASK_TYPES, Grid, read_grid
from theory import validation
from tests.fuzz.fuzz_values import (
    EITHER,
    OK,
    RAISE,
    Bad,
    bad_arrays,
    bad_covariances,
    bad_generators,
    bad_ints,
    bad_names,
    bad_reals,
)

# --- the fuzz strategies themselves ----------------------------------------


@given(data=st.data())
def test_fuzz_strategies_draw_what_the_validation_helpers_refuse(data):
    """Values the fuzz strategies mark RAISE are refused by theory.validation's helpers for the same
    constraint, and values marked OK are accepted: the pools are what they claim to be."""
    bad = data.draw(bad_reals(minimum=0.0, maximum=1.0, edges=(0.0, 1.0)), label="real in [0, 1]")
    _agrees(bad, lambda v: validation.as_real(v, "v", minimum=0.0, maximum=1.0))
    bad = data.draw(bad_reals(positive=True, optional=True), label="positive real or None")
    _agrees(bad, lambda v: v is None or validation.as_real(v, "v", positive=True))
    bad = data.draw(bad_ints(minimum=1, maximum=5, edges=(5,)), label="rank")
    _agrees(bad, lambda v: validation.as_rank(v, 5, 6))
    bad = data.draw(bad_arrays(np.ones((2, 3))), label="(2, 3) array")
    _agrees(bad, lambda v: validation.as_array(v, "v", (2, 3)))
    bad = data.draw(bad_covariances(np.eye(3)), label="3 x 3 covariance")
    _agrees(bad, lambda v: validation.as_covariance(v, "v", dim=3))
    bad = data.draw(bad_names(("haar", "gaussian")), label="name")
    assert bad.expect == RAISE and bad.value not in ("haar", "gaussian")
    bad = data.draw(bad_generators(), label="generator")
    _agrees(bad, validation.as_generator)


def test_fuzz_strategies_reach_past_the_magnitude_limit():
    """Real and array strategies draw finite values above ``MAX_ABS`` (1e150), so that the fuzz tries
    the magnitude limit on every real and array argument: RAISE by default, what ``huge`` says
    for an argument that accepts any finite value."""
    pools = ((bad_reals(), RAISE), (bad_reals(minimum=0.0, maximum=1.0), RAISE), (bad_reals(huge=OK), OK),
             (bad_arrays(np.ones((2, 3))), RAISE), (bad_arrays(np.ones(3), huge=OK), OK))
    for pool, expect in pools:
        bad = find(pool, lambda b: "MAX_ABS" in b.label)
        peak = float(np.max(np.abs(np.asarray(bad.value, dtype=float))))
        assert np.isfinite(peak) and peak > validation.MAX_ABS and bad.expect == expect, bad


def _agrees(bad: Bad, helper: Callable[[object], object]) -> None:
    if bad.expect == EITHER:
        return
    if bad.expect == OK:
        helper(bad.value)
        return
    with pytest.raises(ValueError):
        helper(bad.value)


# --- the command line ------------------------------------------------------------------------


def _invalid_seed(text: str) -> bool:
    try:
        return int(text) < 0
    except ValueError:
        return True


SUBCOMMANDS = ("figures", "list", "demo", "sweep", "bench", "adapters")

#: Invalid values of the flags of ``figures`` and ``demo``, unknown flags and subcommands: (argv, fragment).
CLI_BAD = {
    "figures --seed": st.one_of(st.integers(max_value=-1).map(str), st.text("abcxyz.,_ 0123456789", min_size=1),
                                st.floats().map(repr)).filter(_invalid_seed)
    .map(lambda v: (["figures", "--seed", v], "--seed")),
    "demo --seed": st.one_of(st.integers(max_value=-1).map(str), st.text("abc.,_", min_size=1)).filter(_invalid_seed)
    .map(lambda v: (["demo", "--seed", v], "--seed")),
    "figures --only": st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1).filter(lambda v: v not in registry.FIGURES)
    .map(lambda v: (["figures", "--only", v], f"unknown figure {v!r}")),
    "figures --out": st.sampled_from(["/proc/lora-asym-out", "/dev/null/out", "/proc/self/status/out"])
    .map(lambda v: (["figures", "--out", v], "--out")),
    "unknown flag": st.sampled_from(["--bogus", "--quik", "-x"]).map(lambda v: (["figures", v], v)),
    "unknown subcommand": st.text("abcdefghijklmnopqrstuvwxyz", min_size=1).filter(lambda v: v not in SUBCOMMANDS)
    .map(lambda v: ([v], repr(v))),
}


@pytest.mark.parametrize("kind", CLI_BAD)
@given(data=st.data())
def test_cli_bad_flag_is_one_error_line_and_status_2(kind, data):
    """``lora-asym`` with one invalid flag value, figure name, output folder or subcommand exits with
    status 2 and prints one error line on stderr that names it, before any computation."""
    argv, fragment = data.draw(CLI_BAD[kind], label=kind)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as info, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        cli.main(argv)
    assert info.value.code == cli.EXIT_USAGE, (argv, err.getvalue())
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], (argv, err.getvalue())
    assert out.getvalue() == ""


def _ints(flag: str, fragment: str, **bounds: int) -> st.SearchStrategy[tuple[list[str], str]]:
    return st.integers(**bounds).map(lambda v: (["sweep", flag, str(v)], fragment))


_WIDTH = min(LinearTask.quick().d_in, LinearTask.quick().d_out)  # the default grid's task

#: Invalid values of each flag of ``lora-asym sweep``, fuzzed one flag at a time: (argv, message fragment).
SWEEP_BAD = {
    "trials": _ints("--trials", "trials must be >= 2", max_value=1),
    "n": _ints("--n", "n must be >= 1", max_value=0),
    "rank 0": _ints("--ranks", "rank must be >= 1", max_value=0),
    "rank above width": _ints("--ranks", "exceeds min(d_in, d_out)", min_value=_WIDTH + 1, max_value=10**30),
    "q_bits": st.one_of(_ints("--q-bits", "q_bits must be >= 2", max_value=1),
                        _ints("--q-bits", "q_bits must be <= 32", min_value=33)),
    "threads": _ints("--threads", "threads must be >= 1", max_value=0),
    "workers": _ints("--workers", "workers must be >= 1", max_value=0),
    "seed": _ints("--seed", "seed must be >= 0", max_value=-1),
    "not an int": st.sampled_from(["--trials", "--n", "--ranks", "--q-bits", "--threads", "--workers", "--seed"])
    .flatmap(lambda flag: st.sampled_from(["2.5", "x", "", "1e3"]).map(lambda v: (["sweep", flag, v], flag))),
    "variant": st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1)
    .filter(lambda v: v not in ("b_only", "a_only", "lora", "full"))
    .map(lambda v: (["sweep", "--variants", v], "variant")),
    "loss": st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1).filter(lambda v: v not in ("population", "clipped"))
    .map(lambda v: (["sweep", "--loss", v], "loss")),
    "backend": st.sampled_from(["cloud", "mpi", ""]).map(lambda v: (["sweep", "--backend", v], "--backend")),
    "out": st.sampled_from(["/proc/rows.csv", "/dev/null/rows.json", "/no/such/folder/rows.csv", "/tmp"])
    .map(lambda v: (["sweep", "--out", v], f"--out {v!r}")),
    "out suffix": st.text("abcdefghijklmnopqrstuvwxyz._", min_size=1, max_size=8)
    .map(lambda v: f"/tmp/rows{v}").filter(lambda v: Path(v).suffix.lower() not in (".json", ".csv"))
    .map(lambda v: (["sweep", "--out", v], "must end in .json or .csv")),
    "timeout": st.one_of(st.floats(max_value=0.0), st.sampled_from([math.inf, -math.inf, math.nan]))
    .map(lambda v: (["sweep", "--timeout", repr(v)], "--timeout")),
}


@pytest.mark.parametrize("flag", SWEEP_BAD)
@given(data=st.data())
def test_cli_sweep_bad_value_is_one_error_line_and_status_2(flag, data):
    """``lora-asym sweep`` with one invalid flag value (a count, rank, seed, name, backend or output
    folder) exits with status 2 and one error line on stderr that names it, before any point runs."""
    argv, fragment = data.draw(SWEEP_BAD[flag], label=flag)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:  # argparse refuses the value
            status = exc.code
    assert status == cli.EXIT_USAGE, (argv, err.getvalue())
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], (argv, err.getvalue())
    assert out.getvalue() == ""


# --- grid files ---------------------------------------------------------------------------------

_JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4),
                  st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_NOT_INT = _JUNK.filter(lambda v: not isinstance(v, int) or isinstance(v, bool))
_NOT_INT_LIST = _NOT_INT.filter(lambda v: not isinstance(v, list))  # nor a list (of ints, say)
_NOT_STR_LIST = _NOT_INT_LIST.filter(lambda v: not isinstance(v, str))

#: Values of the wrong type (or name) for each grid key, fuzzed one key at a time.
GRID_WRONG = {
    "task": _JUNK.filter(lambda v: v not in tuple(TASK_TYPES)),
    "preset": _JUNK.filter(lambda v: v not in PRESETS),
    "task_fields": _JUNK.filter(lambda v: not isinstance(v, dict) or any(k not in ("d_in",) for k in v)),
    "variants": st.one_of(st.just([]), _NOT_STR_LIST, st.lists(_NOT_STR_LIST, min_size=1, max_size=3)),
    "ranks": st.one_of(st.just([]), _NOT_INT_LIST, st.lists(_NOT_INT_LIST, min_size=1, max_size=3)),
    "n": st.one_of(st.just([]), _NOT_INT_LIST, st.lists(_NOT_INT_LIST, min_size=1, max_size=3)),
    "trials": _NOT_INT,
    "loss": _JUNK.filter(lambda v: v is not None and not isinstance(v, str)),
    "q_bits": _NOT_INT.filter(lambda v: v is not None),
    "seed": st.one_of(_NOT_INT, st.integers(max_value=-1)),
}
assert set(GRID_WRONG) == set(GRID_KEYS)  # every key is fuzzed


def _sweep_err(argv: list[str]) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exc:
            status = exc.code
    return status, err.getvalue().strip().splitlines(), out.getvalue()


@pytest.mark.parametrize("key", GRID_WRONG)
@given(data=st.data())
def test_cli_sweep_grid_key_of_wrong_type_names_the_key_and_the_file(key, data):
    """A grid file whose ``key`` holds a value of the wrong type (a list for a number, a number for a
    list or an object, an unknown name): exit status 2 and one error line that names the file and
    the key, before any point runs."""
    value = data.draw(GRID_WRONG[key], label=key)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grid.json"
        path.write_text(json.dumps({key: value}))
        status, lines, out = _sweep_err(["sweep", "--grid", str(path)])
    assert status == cli.EXIT_USAGE and len(lines) == 1 and out == "", (value, lines)
    assert f"--grid {str(path)!r}" in lines[0], lines
    assert re.search(rf"\b{key}(\[\d+\]|: \w+| keys)? must|{key} has unknown field", lines[0]), lines


@given(data=st.binary(min_size=1, max_size=40).filter(lambda b: not _utf8(b)))
def test_cli_sweep_grid_file_not_utf8_is_one_line(data):
    """A grid file of bytes that are not UTF-8: one error line naming the file and saying it is not
    UTF-8 JSON, exit status 2 (never a codec traceback)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grid.bin"
        path.write_bytes(data)
        status, lines, out = _sweep_err(["sweep", "--grid", str(path)])
    assert status == cli.EXIT_USAGE and len(lines) == 1 and out == "", lines
    assert f"--grid {str(path)!r} is not UTF-8 JSON" in lines[0], lines


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


#: Malformed grid files: (file bytes, what the error line must name besides the file).
BAD_GRID_FILES = [
    ('{"task": "lin\xe9ar"}'.encode("latin-1"), "not UTF-8 JSON"),
    ('{"seed": 0}'.encode("utf-16"), "not UTF-8 JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 JSON"),
    (b"task: linear\nranks: [1, 2]\n", "not UTF-8 JSON"),
    (b'{"ranks": [1, 2],}', "not UTF-8 JSON"),
    (b'["b_only", "a_only"]', "JSON object"),
    (b"null", "JSON object"),
    (b'{"task_fields": [6, 5]}', "task_fields"),
    (b'{"task_fields": 8}', "task_fields"),
    (b'{"task_fields": {"d_out": "five"}}', "task_fields: d_out"),
    (b'{"task_fields": {"width": 5}}', "task_fields has unknown field 'width'"),
    (b'{"variants": {"b_only": 1}}', "variants"),
    (b'{"ranks": [1, [2]]}', "ranks[1]"),
    (b'{"n": [8.5]}', "n[0]"),
    (b'{"trials": "12"}', "trials"),
    (b'{"q_bits": [8]}', "q_bits"),
    (b'{"loss": {"name": "clipped"}}', "loss"),
    (b'{"preset": 1}', "preset"),
    (b'{"rank": [1]}', "unknown key 'rank'; the keys are: task, preset, task_fields, variants, ranks"),
]


@pytest.mark.parametrize(("data", "names"), BAD_GRID_FILES)
def test_malformed_grid_file_is_one_line_naming_the_file_and_the_key(data, names, tmp_path):
    """A grid file that is not UTF-8, not JSON, not a JSON object, or has a key of the wrong type or an
    unknown key: exit status 2 and one error line on stderr naming the file and the key (or saying
    'not UTF-8 JSON'), before any point runs; ``read_grid`` and ``Grid`` raise ValueError naming it."""
    path = tmp_path / "my grid.json"
    path.write_bytes(data)
    status, lines, out = _sweep_err(["sweep", "--grid", str(path)])
    assert status == cli.EXIT_USAGE and len(lines) == 1 and out == "", lines
    assert f"--grid {str(path)!r}" in lines[0] and names in lines[0], lines
    with pytest.raises(ValueError, match="grid file|task_fields|variants|ranks|n\\[0\\]|trials|q_bits|loss|preset"):
        Grid(**read_grid(path)).points()
