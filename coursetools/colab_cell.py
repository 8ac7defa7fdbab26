"""Insert or update the Google Colab setup cell in every notebook: right after the title.

    python scripts/sync_colab_cell.py [NOTEBOOK ...]   (default: every notebook in notebooks/)
    python scripts/sync_colab_cell.py --check          (exit 1 if a notebook is not in step)

This script is the one source of the cell's place and form; its text is ``release/colab_cell.py``,
the one place that says where the student release is published (``RELEASE_URL``). Every
notebook gets the same cell, tagged ``colab-setup``, right after its first markdown cell (the
title and introduction) and before any other code; it is collapsed: Colab's ``#@title`` form
(metadata ``cellView: "form"``) and JupyterLab's hidden source (``jupyter.source_hidden``).
Running it again changes nothing: a notebook whose cell is already in step is not rewritten.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CELL_FILE = ROOT / "release" / "colab_cell.py"
TAG = "colab-setup"
# Collapsed where the notebook is opened: Colab shows the #@title form, JupyterLab hides the source.
METADATA = {"tags": [TAG], "cellView": "form", "jupyter": {"source_hidden": True}}


def colab_cell(text: str | None = None):
    source = (text if text is not None else CELL_FILE.read_text()).rstrip("\n")
    if not source.startswith("#@title "):
        raise ValueError(f"{CELL_FILE.name} must start with a '#@title ...' line (Colab's collapsed form)")
    cell = nbformat.v4.new_code_cell(source, metadata=nbformat.from_dict(METADATA))
    cell.id = TAG
    return cell


def is_setup_cell(cell) -> bool:
    return TAG in cell.get("metadata", {}).get("tags", [])


def position(cells) -> int:
    """Where the cell goes among ``cells`` (the notebook without it): after the first markdown
    cell, or first if no markdown cell comes before the first code cell."""
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown":
            return index + 1
        if cell.cell_type == "code":
            return 0
    return 0


def synced(notebook, cell) -> bool:
    """Put ``cell`` in its place and remove any other copy; True if the notebook changed."""
    others = [c for c in notebook.cells if not is_setup_cell(c)]
    where = position(others)
    placed = others[:where] + [cell] + others[where:]
    current = notebook.cells
    in_step = len(current) == len(placed) and all(
        a is b or (a.cell_type == b.cell_type and a.source == b.source and a.metadata == b.metadata)
        for a, b in zip(current, placed, strict=True))
    if in_step:
        return False
    notebook.cells = placed
    return True


def sync(paths: list[Path], check: bool = False) -> list[Path]:
    """Bring every notebook in ``paths`` in step; return those that changed (or would, with ``check``)."""
    changed = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if synced(notebook, colab_cell()):
            changed.append(path)
            if not check:
                nbformat.write(notebook, path)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="only report notebooks that are not in step")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    changed = sync(paths, check=args.check)
    for path in changed:
        print(f"{'not in step' if args.check else 'updated'}: {path}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
