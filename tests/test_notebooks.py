"""Execute every notebook in ``notebooks/`` (nbclient, this interpreter's ``python3`` kernel).

Notebooks run in their own folder, as a user would run them, and write their figures and stores
to a temporary folder (``XCLOUD_NOTEBOOK_OUTPUT``) instead of ``notebooks/_output/``.
Run them with ``pytest -m notebook tests/test_notebooks.py`` (``make notebooks``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
#: Each notebook must stay well under a minute on a 2-core CPU; this is the hard stop.
TIMEOUT_S = 240


def test_notebooks_are_committed_without_outputs():
    assert PATHS, f"no notebooks in {NOTEBOOKS}"
    for path in PATHS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, (
                    f"{path.name} has outputs; clear them before committing"
                )


@pytest.mark.notebook
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    # the kernel inherits the environment: headless plotting, outputs in tmp, few threads
    monkeypatch.setenv("XCLOUD_NOTEBOOK_OUTPUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs, f"{path.name} wrote no figure to {tmp_path}"
    print(f"{path.name}: {seconds:.1f} s, wrote {pngs}")
