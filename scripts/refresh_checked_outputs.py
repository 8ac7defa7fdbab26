"""Re-execute the notebooks and store outputs only for the cells marked
``# NBVAL_CHECK_OUTPUT`` (the marker nbval used; the suite keeps its meaning); every
other cell is left without outputs.

    python scripts/refresh_checked_outputs.py [NOTEBOOK ...]

Run it after editing a checked cell: ``make test`` compares those cells'
committed text output with its own execution of the notebook, on every device.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

ROOT = Path(__file__).resolve().parents[1]
MARK = "# NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(MARK)


def clean(notebook, executed=None):
    """Strip outputs except in checked cells (taken from ``executed``, cell by cell)."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if is_checked(cell) and executed is not None:
            ran = executed.cells[index]
            assert ran.source == cell.source, f"cell {index} changed while running"
            cell.outputs = [o for o in ran.outputs if o.output_type == "stream" and o.name == "stdout"]
            cell.execution_count = ran.execution_count
        elif not is_checked(cell):
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.pop("papermill", None)
    return notebook


def refresh(path: Path) -> None:
    os.environ.setdefault("COURSE_DATA_SOURCE", "subset")  # checked cells must not depend on the data
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        # No parameters: papermill then injects no cell and the indices line up.
        papermill.execute_notebook(str(path), str(out), kernel_name="mup-course", cwd=str(path.parent),
                                   progress_bar=False)
        executed = nbformat.read(out, as_version=4)
    notebook = clean(nbformat.read(path, as_version=4), executed)
    nbformat.write(notebook, path)
    print(f"refreshed {path.relative_to(ROOT)}")


if __name__ == "__main__":
    paths = [Path(p).resolve() for p in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for p in paths:
        refresh(p)
