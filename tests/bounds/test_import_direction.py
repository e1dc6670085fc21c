"""Imports run one way between the bounds and the experiments: ``bounds`` (functions of arrays)
never imports ``synthetic`` (the experiments that record them), and ``synthetic`` never imports
``bounds``; ``figures`` brings the two together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    """Top-level package of every absolute import in ``path``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(("package", "forbidden"), [("bounds", "synthetic"), ("synthetic", "bounds")])
def test_package_does_not_import_the_other(package, forbidden):
    """No module of ``package`` imports ``forbidden``, at module level or inside a function."""
    offenders = sorted(str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*.py") if forbidden in _imports(p))
    assert not offenders, f"{package} modules importing {forbidden}: {offenders}"
