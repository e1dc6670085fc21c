"""paper_figs.ipynb runs end to end and is stored without outputs.

The default suite runs every cell with the figures and the PEFT example at their smoke-test sizes
(``Config.tiny``, ``ExampleConfig.tiny``): what it checks, that every cell runs, needs no more.
The run at the notebook's own sizes (the quick presets) is marked ``slow``.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "paper_figs.ipynb"
#: Put before the notebook's second cell by the smoke run: every preset at its smoke-test size.
TINY_PRESETS = """\
from figures import registry as _registry
from peft_bridge import example_task as _example_task

for _name in _registry.FIGURES:
    _module = _registry.load(_name)
    _module.Config.quick = _module.Config.tiny
_example_task.ExampleConfig.default = _example_task.ExampleConfig.tiny
"""


def _execute(tmp_path: Path, tiny: bool) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if tiny:
        first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(first_code + 1, nbformat.v4.new_code_cell(TINY_PRESETS))
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert list((tmp_path / "figures" / "out").glob("*.png"))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    return nb


def test_notebook_is_stored_without_outputs():
    """The committed notebook has no outputs or execution counts (a lesson, not a results file)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_executes_at_smoke_test_sizes(tmp_path):
    """Every cell runs without error, the figures and the PEFT example at their tiny presets."""
    _execute(tmp_path, tiny=True)


@pytest.mark.slow  # the quick figures and the PEFT example: minutes
def test_notebook_executes_in_quick_mode(tmp_path):
    """Every cell runs without error at the notebook's own sizes, writing its figures under a temporary folder."""
    _execute(tmp_path, tiny=False)
