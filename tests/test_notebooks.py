"""Every notebook runs top to bottom against the library (small world), so the tutorial cannot rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import mlflow_store

pytestmark = pytest.mark.slow  # executes every notebook end to end

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# the size of each notebook's synthetic world: small, but with enough defaults in every split for what it shows
ENTERPRISES = {"00_end_to_end.ipynb": 1500, "06_validation.ipynb": 1500}
COURSE_WORLD = 800


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITMODEL_NB_ENTERPRISES", str(ENTERPRISES.get(path.name, COURSE_WORLD)))
    monkeypatch.setenv("CREDITMODEL_NB_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store(tmp_path / "mlflow.db"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plots were not shown"


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name
