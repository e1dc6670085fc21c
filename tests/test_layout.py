"""The layout a reader can walk: small modules, short functions.

A module of the toolkit holds at most ``MAX_MODULE_LINES`` lines and a function at most
``MAX_FUNCTION_LINES`` lines of code after its docstring: past that, a module mixes more than
one model and a function more than one step, and both are split instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "synthetic", "bounds", "figures", "peft_bridge", "bench")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = node.body
    first = body[0]
    is_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
        first.value.value, str)
    if is_docstring and len(body) == 1:
        return 0
    start = body[1].lineno if is_docstring else first.lineno
    return node.end_lineno - start + 1


def test_the_modules_are_found():
    """The scan sees every package (an empty scan would pass the two tests below vacuously)."""
    found = {p.relative_to(ROOT).parts[0] for p in MODULES}
    assert found == set(PACKAGES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_lengths(path):
    """No module over 400 lines; no function over 60 lines of code after its docstring."""
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{path.name} has {source.count(chr(10))} lines"
    long = [f"{node.name} ({_body_lines(node)} lines)" for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(node) > MAX_FUNCTION_LINES]
    assert not long, long


def test_the_length_rule_counts_what_it_claims():
    """A 61-line body is refused and a 60-line one with a long docstring is not."""
    doc = '    """' + "\n" * 30 + '    """\n'
    ok = ast.parse("def f():\n" + doc + "    x = 1\n" * 60).body[0]
    too_long = ast.parse("def g():\n" + "    x = 1\n" * 61).body[0]
    assert (_body_lines(ok), _body_lines(too_long)) == (60, 61)
