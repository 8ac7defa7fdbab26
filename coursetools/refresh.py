"""Re-execute notebooks and store outputs only for the cells marked ``# NBVAL_CHECK_OUTPUT``
(nbval's marker: ``make test`` compares those cells' committed text with what its own run
prints); every other cell is left without outputs.

    python scripts/refresh_checked_outputs.py [NOTEBOOK ...]

The notebook runs through :func:`coursetools.execute.run`, with the kernel environment and the
data source (the shipped subset: a checked cell must not depend on the data) that the tests use.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat

from coursetools import execute

ROOT = Path(__file__).resolve().parents[1]
MARK = "# NBVAL_CHECK_OUTPUT"
INJECTED = "injected-parameters"  # papermill's cell with the parameters it was given


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(MARK)


def clean(notebook, executed=None):
    """Strip outputs except in checked cells (taken from ``executed``, cell by cell; papermill's
    injected parameters cell is skipped)."""
    ran_cells = [c for c in executed.cells if INJECTED not in c.metadata.get("tags", [])] if executed else None
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if is_checked(cell) and ran_cells is not None:
            ran = ran_cells[index]
            if ran.source != cell.source:
                raise RuntimeError(f"cell {index} changed while running")
            cell.outputs = [o for o in ran.outputs if o.output_type == "stream" and o.name == "stdout"]
            cell.execution_count = ran.execution_count
        elif not is_checked(cell):
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.pop("papermill", None)
    return notebook


def refresh(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        execute.run(path, Path(tmp), data_source="subset", threads=1, save_figures=False)
        executed = nbformat.read(Path(tmp) / path.name, as_version=4)
    notebook = clean(nbformat.read(path, as_version=4), executed)
    nbformat.write(notebook, path)
    print(f"refreshed {path.relative_to(ROOT)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Re-execute notebooks and store the outputs of their checked cells.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every numbered notebook")
    args = parser.parse_args(argv)
    for path in [p.resolve() for p in args.notebooks] or execute.numbered_notebooks():
        refresh(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
