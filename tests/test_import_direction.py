"""Imports run one way: ``theory`` (closed forms, the vocabulary, the checks, the supersample record)
needs no other package of the toolkit; ``bounds`` (functions of arrays) never imports ``synthetic``
(the experiments that record them), and ``synthetic`` never imports ``bounds``; ``figures`` and
``peft_bridge`` bring them together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Top-level package of every absolute import in ``path``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


PAIRS = [("bounds", "synthetic"), ("synthetic", "bounds"),
         *(("theory", other) for other in ("synthetic", "bounds", "figures", "peft_bridge", "bench")),
         *((package, "figures") for package in ("synthetic", "bounds"))]


@pytest.mark.parametrize(("package", "forbidden"), PAIRS)
def test_package_does_not_import_the_other(package, forbidden):
    """No module of ``package`` imports ``forbidden``, at module level or inside a function."""
    offenders = sorted(str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*.py") if forbidden in _imports(p))
    assert not offenders, f"{package} modules importing {forbidden}: {offenders}"


def test_the_scan_finds_imports():
    """The scan is not vacuous: it sees synthetic's own import of theory."""
    assert "theory" in _imports(ROOT / "synthetic" / "supersample.py")
