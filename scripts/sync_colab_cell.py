"""Insert or update the Google Colab setup cell as the first cell of every notebook.

    python scripts/sync_colab_cell.py [NOTEBOOK ...]   (default: every notebook in notebooks/)
    python scripts/sync_colab_cell.py --check          (exit 1 if a notebook is not in step)

The cell's text is ``release/colab_cell.py``, the one place that says where the student
release is published (``RELEASE_URL``); every notebook gets the same text, tagged
``colab-setup``. Running it again changes nothing: a notebook whose cell is already in
step is not rewritten.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CELL_FILE = ROOT / "release" / "colab_cell.py"
TAG = "colab-setup"


def colab_cell(text: str | None = None):
    source = (text if text is not None else CELL_FILE.read_text()).rstrip("\n")
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [TAG]})
    cell.id = TAG
    return cell


def synced(notebook, cell) -> bool:
    """Put ``cell`` first and remove any other copy; True if the notebook changed."""
    others = [c for c in notebook.cells if TAG not in c.get("metadata", {}).get("tags", [])]
    current = notebook.cells[0] if notebook.cells else None
    in_step = (current is not None and current.cell_type == "code" and current.source == cell.source
               and current.metadata.get("tags") == [TAG] and len(others) == len(notebook.cells) - 1)
    if in_step:
        return False
    notebook.cells = [cell] + others
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
