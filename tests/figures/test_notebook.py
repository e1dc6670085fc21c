"""paper_figs.ipynb runs end to end in quick mode and is stored without outputs."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "paper_figs.ipynb"


def test_notebook_is_stored_without_outputs():
    """The committed notebook has no outputs or execution counts (a lesson, not a results file)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_executes_in_quick_mode(tmp_path):
    """Every cell runs without error, writing its figures under a temporary folder."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert list((tmp_path / "figures" / "out").glob("*.png"))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
