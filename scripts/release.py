"""One source, two releases.

    python scripts/release.py student    [--out build/student]
    python scripts/release.py solutions  [--out build/solutions] [--quick]

``student``: copies the notebooks, ``helpers/`` and ``data/`` with every region
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` replaced by a stub:
``# YOUR CODE HERE`` and ``raise NotImplementedError("<part>")`` in code (indented
like the region), ``YOUR ANSWER HERE`` in markdown; notebook outputs cleared.
A malformed region (BEGIN without END, END without BEGIN, nested, in a raw cell
or inside a fenced code block of a markdown cell) stops the build with an error
naming the file and cell.

``solutions``: executes every notebook (full size unless ``--quick``) into
``<out>/``, with an HTML export of each and the figures under ``<out>/figures/``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = "# YOUR CODE HERE"
ANSWER_STUB = "YOUR ANSWER HERE"
STUDENT_FILES = ("requirements.txt", "environment.yml", "README.md")


class ReleaseError(ValueError):
    """A solution region is malformed; the message names the file and cell or line."""


def find_regions(lines: list[str], where: str) -> list[tuple[int, int]]:
    """``(begin, end)`` line indices of every region; raises ReleaseError if malformed."""
    regions, begin = [], None
    for index, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN:
            if begin is not None:
                raise ReleaseError(f"{where}: nested {BEGIN} at line {index + 1} (the region opened at line "
                                   f"{begin + 1} is not closed)")
            begin = index
        elif marker == END:
            if begin is None:
                raise ReleaseError(f"{where}: {END} at line {index + 1} without {BEGIN}")
            regions.append((begin, index))
            begin = None
    if begin is not None:
        raise ReleaseError(f"{where}: {BEGIN} at line {begin + 1} without {END}")
    return regions


def stub_lines(lines: list[str], regions, kind: str, part: str) -> tuple[list[str], list[list[str]]]:
    """Replace each region (markers included) by its stub; return the new lines
    and the removed blocks, in order (for :func:`restore_lines`)."""
    out, removed, cursor = [], [], 0
    for begin, end in regions:
        out += lines[cursor:begin]
        removed.append(lines[begin:end + 1])
        if kind == "code":
            indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
            message = f"{part}: replace this stub with your code".replace('"', "'")
            out += [f"{indent}{CODE_STUB}", f'{indent}raise NotImplementedError("{message}")']
        else:
            out.append(ANSWER_STUB)
        cursor = end + 1
    return out + lines[cursor:], removed


def restore_lines(lines: list[str], removed: list[list[str]], kind: str) -> list[str]:
    """Put the removed blocks back in place of the stubs (the round trip)."""
    out, blocks, index = [], list(removed), 0
    while index < len(lines):
        line = lines[index]
        if kind == "code" and line.strip() == CODE_STUB and index + 1 < len(lines) \
                and lines[index + 1].strip().startswith("raise NotImplementedError(") and blocks:
            out += blocks.pop(0)
            index += 2
        elif kind == "markdown" and line == ANSWER_STUB and blocks:
            out += blocks.pop(0)
            index += 1
        else:
            out.append(line)
            index += 1
    if blocks:
        raise ReleaseError(f"{len(blocks)} stub(s) not found while restoring")
    return out


def notebook_part(notebook) -> str:
    """The homework part named in the title's last parentheses, e.g. 'homework part c'."""
    title = next((c.source.splitlines()[0] for c in notebook.cells if c.cell_type == "markdown"), "")
    found = re.findall(r"\(([^()]*)\)", title)
    return found[-1] if found else "this notebook"


def _check_cell(cell, regions, where):
    if regions and cell.cell_type == "raw":
        raise ReleaseError(f"{where}: solution markers in a raw cell; use a code or markdown cell")
    if regions and cell.cell_type == "markdown":
        lines, fence = cell.source.splitlines(), False
        for index, line in enumerate(lines):
            if line.lstrip().startswith("```"):
                fence = not fence
            if line.strip() in (BEGIN, END) and fence:
                raise ReleaseError(f"{where}: solution marker inside a fenced code block of a markdown cell")


@dataclass
class Release:
    """What a student build removed: ``blocks[(relative path, cell index or None)]``."""

    blocks: dict = field(default_factory=dict)


def _helper_parts(notebooks: dict[str, object]) -> dict[str, str]:
    """Function name -> the notebook that shows it with show_source (and its part)."""
    parts = {}
    for name, notebook in sorted(notebooks.items()):
        for cell in notebook.cells:
            for call in re.findall(r"show_source\(([^)]*)\)", cell.source):
                for obj in call.split(","):
                    parts.setdefault(obj.strip().split(".")[-1], f"{name} ({notebook_part(notebook)})")
    return parts


def _enclosing_function(lines: list[str], line_index: int) -> str:
    depth = len(lines[line_index]) - len(lines[line_index].lstrip())
    names = []
    for line in reversed(lines[:line_index]):
        indent = len(line) - len(line.lstrip())
        match = re.match(r"\s*(?:def|class)\s+(\w+)", line)
        if match and indent < depth:
            names.insert(0, match.group(1))
            depth = indent
    return ".".join(names) or "module"


def build_student(source: Path = ROOT, out: Path = ROOT / "build" / "student") -> Release:
    """Write the student release of ``source`` into ``out`` (replacing it)."""
    release = Release()
    if out.exists():
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    notebooks = {p.stem: nbformat.read(p, as_version=4) for p in sorted((source / "notebooks").glob("*.ipynb"))}
    for name, notebook in notebooks.items():
        part = f"{name} ({notebook_part(notebook)})"
        for index, cell in enumerate(notebook.cells):
            where = f"notebooks/{name}.ipynb, cell {index}"
            lines = cell.source.splitlines()
            regions = find_regions(lines, where)
            _check_cell(cell, regions, where)
            if regions:
                kind = "code" if cell.cell_type == "code" else "markdown"
                new, removed = stub_lines(lines, regions, kind, part)
                cell.source = "\n".join(new)
                release.blocks[(f"notebooks/{name}.ipynb", index)] = removed
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(notebook, out / "notebooks" / f"{name}.ipynb")
    helper_parts = _helper_parts(notebooks)
    (out / "helpers").mkdir()
    for path in sorted((source / "helpers").glob("*.py")):
        text = path.read_text()
        lines = text.split("\n")
        regions = find_regions(lines, f"helpers/{path.name}")
        new = lines
        if regions:
            # Each region may belong to a different function: stub them one by one, last first.
            new, all_removed = list(lines), []
            for begin, end in reversed(regions):
                function = _enclosing_function(lines, begin)
                shown_in = helper_parts.get(function.split(".")[-1]) or helper_parts.get(function.split(".")[0], "")
                part = f"{function} in helpers/{path.name}" + (f", used in {shown_in}" if shown_in else "")
                stubbed, removed = stub_lines(new[begin:end + 1], [(0, end - begin)], "code", part)
                new[begin:end + 1] = stubbed
                all_removed.insert(0, removed[0])
            release.blocks[(f"helpers/{path.name}", None)] = all_removed
        (out / "helpers" / path.name).write_text("\n".join(new))
    shutil.copytree(source / "data", out / "data", ignore=shutil.ignore_patterns("__pycache__"))
    for name in STUDENT_FILES:
        if (source / name).exists():
            shutil.copyfile(source / name, out / name)
    return release


def restore(student: Path, release: Release, target: Path) -> None:
    """Write into ``target`` the student release with the removed regions put back."""
    for (relative, cell_index), removed in release.blocks.items():
        if cell_index is None:
            lines = (student / relative).read_text().split("\n")
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).write_text("\n".join(restore_lines(lines, removed, "code")))
        else:
            destination = target / relative
            notebook = nbformat.read(destination if destination.exists() else student / relative, as_version=4)
            cell = notebook.cells[cell_index]
            kind = "code" if cell.cell_type == "code" else "markdown"
            cell.source = "\n".join(restore_lines(cell.source.splitlines(), removed, kind))
            destination.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, destination)


def build_solutions(out: Path = ROOT / "build" / "solutions", quick: bool = False, notebooks=None) -> list[Path]:
    """Execute every notebook (or those given) with outputs into ``out``, export
    HTML, save figures under ``out/figures``."""
    from nbconvert import HTMLExporter

    sys.path.insert(0, str(ROOT / "scripts"))
    import run_notebooks

    os.environ["COURSE_FIGURE_DIR"] = str(out / "figures")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    exporter = HTMLExporter()
    for notebook in notebooks or run_notebooks.numbered_notebooks():
        seconds = run_notebooks.run(notebook, out, quick)
        html, _ = exporter.from_filename(str(out / notebook.name))
        (out / f"{notebook.stem}.html").write_text(html)
        written += [out / notebook.name, out / f"{notebook.stem}.html"]
        print(f"{notebook.name:<40} {seconds:6.1f} s", flush=True)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the student or the solutions release.")
    parser.add_argument("what", choices=("student", "solutions"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="solutions: run the notebooks in quick mode")
    args = parser.parse_args(argv)
    try:
        if args.what == "student":
            out = args.out or ROOT / "build" / "student"
            release = build_student(ROOT, out)
            print(f"student release: {out} ({sum(len(v) for v in release.blocks.values())} regions stubbed)")
        else:
            build_solutions(args.out or ROOT / "build" / "solutions", args.quick)
    except ReleaseError as error:
        print(f"release failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
