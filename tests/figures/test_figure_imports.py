"""No registered figure module imports another figure module: what figures share lives in modules
that are not figures (e.g. ``figures.bounds_vs_n_common``), so each figure can change alone."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from figures import registry


def _source(module: str) -> Path:
    return Path(importlib.util.find_spec(module).origin)


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement of ``path`` names, anywhere in the
    file (inside functions too); ``from figures import x`` counts as ``figures.x``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import inside the figures package
                base = "figures" + (f".{base}" if base else "")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("name", registry.FIGURES)
def test_no_figure_imports_another_figure(name):
    """The imports of each module in ``figures.registry.FIGURES`` name no other registered figure."""
    others = {f"figures.{other}" for other in registry.FIGURES if other != name}
    imports = imported_modules(_source(f"figures.{name}"))
    assert not imports & others, f"figures.{name} imports {sorted(imports & others)}"


def test_the_shared_module_of_figures_4_and_5_is_not_a_figure():
    """``figures.bounds_vs_n_common`` is imported by both figures, is not registered, and has no
    ``NAME`` or ``make`` that would make it look like one."""
    import figures.bounds_vs_n_common as common

    assert "bounds_vs_n_common" not in registry.FIGURES
    assert not hasattr(common, "NAME") and not hasattr(common, "make")
    for name in ("bounds_vs_n_linear", "bounds_vs_n_mlp"):
        assert "figures.bounds_vs_n_common" in imported_modules(_source(f"figures.{name}"))


def test_the_import_check_sees_a_figure_import(tmp_path):
    """The check itself: absolute, ``from figures import`` and relative imports of a figure are all seen."""
    path = tmp_path / "fake.py"
    path.write_text("import figures.similarity\nfrom figures import rank_doubling\nfrom .bound_ratios import x\n")
    assert {"figures.similarity", "figures.rank_doubling", "figures.bound_ratios"} <= imported_modules(path)
