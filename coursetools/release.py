"""One source, two releases.

    python -m coursetools.release student    [--out build/student]
    python -m coursetools.release solutions  [--out build/solutions] [--jobs N] [--data-source S]

``student``: a folder that stands alone as the homework. It holds the notebooks, ``helpers/``
and ``data/`` with every solution region (:mod:`coursetools.regions`) replaced by a stub
(``# YOUR CODE HERE`` and ``raise NotImplementedError("<where>: ...")`` in code, indented like the
region and naming the file, function and part, and the names the cells below use), every written
answer (a markdown cell tagged ``answer``) replaced by ``YOUR ANSWER HERE``, cells tagged
``solutions-only`` left out, outputs and nbval marks cleared; the student README and Makefile of
``release/`` and the packages a student needs (``requirements.txt`` without the instructor's test
tools). A malformed region (BEGIN without END, END without BEGIN, nested, in a markdown or raw
cell) stops the build with an error naming the file and cell. :func:`restore` puts back
everything the build removed (the round trip reproduces the source).

``solutions``: executes every notebook at full size into ``<out>/`` (through
:func:`coursetools.execute.execute_all`), with the solution markers removed from the executed
notebooks and their HTML exports, and the figures under ``<out>/figures/``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursetools.regions import (
    ANSWER_STUB,
    SOLUTIONS_ONLY,
    RegionError,
    code_stub,
    enclosing_function,
    find_regions,
    is_answer_cell,
    is_code_stub,
    strip_markers,
)

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "release"  # the student README and Makefile
NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"  # the instructor's test marker: left out of the student release
# Packages of requirements.txt that only the instructor's tooling (tests, headless runs, HTML export) needs.
INSTRUCTOR_PACKAGES = {"nbval", "papermill", "pytest", "pytest-xdist", "nbconvert", "nbformat", "ruff"}
COLAB_SETUP = "colab-setup"  # cell tag of the Colab setup cell (scripts/sync_colab_cell.py): not in the HTML export


class ReleaseError(RegionError):
    """The source cannot be released as it is; the message names the file and cell or line."""


def stub_lines(lines: list[str], regions, part: str, uses=None) -> tuple[list[str], list[list[str]]]:
    """Replace each code region (markers included) by its stub; return the new lines and the
    removed blocks, in order (for :func:`restore_lines`). ``uses(region index)`` gives the names
    the code after a region reads from it (named in the stub)."""
    out, removed, cursor = [], [], 0
    for number, (begin, end) in enumerate(regions):
        out += lines[cursor:begin]
        removed.append(lines[begin:end + 1])
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        names = uses(number) if uses else []
        expected = f"; the cells below use: {', '.join(names)}" if names else ""
        out += code_stub(indent, f"{part}: replace this stub with your code{expected}")
        cursor = end + 1
    return out + lines[cursor:], removed


def restore_lines(lines: list[str], removed: list[list[str]]) -> list[str]:
    """Put the removed blocks back in place of the stubs (the round trip)."""
    out, blocks, index = [], list(removed), 0
    while index < len(lines):
        if is_code_stub(lines, index) and blocks:
            out += blocks.pop(0)
            index += 2
        else:
            out.append(lines[index])
            index += 1
    if blocks:
        raise ReleaseError(f"{len(blocks)} stub(s) not found while restoring")
    return out


def notebook_part(notebook) -> str:
    """The homework part named in the title's last parentheses, e.g. 'homework part c'."""
    title = next((c.source.splitlines()[0] for c in notebook.cells if c.cell_type == "markdown" and c.source), "")
    found = re.findall(r"\(([^()]*)\)", title)
    return found[-1] if found else "this notebook"


def notebook_title(notebook) -> str:
    title = next((c.source.splitlines()[0] for c in notebook.cells if c.cell_type == "markdown" and c.source), "")
    return title.lstrip("# ").strip()


def _check_cell(cell, regions, where):
    if regions and cell.cell_type == "raw":
        raise ReleaseError(f"{where}: solution markers in a raw cell; use a code cell")
    if regions and cell.cell_type == "markdown":
        raise ReleaseError(f"{where}: solution markers in a markdown cell; a written answer is a markdown cell "
                           f"of its own, tagged 'answer'")


@dataclass
class Release:
    """What a student build removed: ``blocks[(relative path, source cell index or None)]`` (the
    stubbed regions), ``dropped[relative path]`` (the ``solutions-only`` cells, with their
    index in the source notebook) and ``marks`` (the cells whose first line, the nbval mark,
    was removed)."""

    blocks: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    marks: set = field(default_factory=set)


def _helper_parts(notebooks: dict[str, object]) -> dict[str, str]:
    """Function name -> the notebook that shows it with show_source (and its part)."""
    parts = {}
    for name, notebook in sorted(notebooks.items()):
        for cell in notebook.cells:
            for call in re.findall(r"show_source\(([^)]*)\)", cell.source):
                for obj in call.split(","):
                    parts.setdefault(obj.strip().split(".")[-1], f"{name} ({notebook_part(notebook)})")
    return parts


def _python(source: str) -> str:
    """A cell's source with IPython magics and shell lines commented out, for ast."""
    return "\n".join("#" + line if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _bound_names(block: list[str]) -> list[str]:
    """Names a top-level block of code defines (assignments, defs, imports), in order."""
    try:
        tree = ast.parse(_python(textwrap.dedent("\n".join(block))))
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(alias.asname or alias.name).split(".")[0] for alias in node.names]
        else:
            for child in ast.walk(node):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.append(child.id)
    return list(dict.fromkeys(names))


def _read_names(source: str) -> set[str]:
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return set(re.findall(r"\b\w+\b", source))
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


def _names_used_later(lines, regions, later_sources: list[str]):
    """For each top-level region of a code cell: the names it defines that the rest of the
    cell or a later cell reads (what the stub must tell the student to define)."""

    def uses(number: int) -> list[str]:
        begin, end = regions[number]
        if lines[begin] != lines[begin].lstrip():  # inside a function: its names are local
            return []
        after = "\n".join(lines[end + 1:])
        read = _read_names(after).union(*(_read_names(source) for source in later_sources))
        return [name for name in _bound_names(lines[begin + 1:end]) if name in read]

    return uses


def student_requirements(text: str) -> str:
    """requirements.txt without its comments and the instructor's packages (tests, headless runs, HTML export)."""
    kept = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
            and re.split(r"[=<>!~\[ ;]", line.strip(), maxsplit=1)[0].lower() not in INSTRUCTOR_PACKAGES]
    return "# The packages the notebooks need (Python 3.11). README.md: a CPU-only torch.\n" + "\n".join(kept) + "\n"


def _notebook_table(notebooks: dict[str, object]) -> str:
    """A markdown table of the notebooks (source form, before stubbing): what the student writes, which check."""
    rows = ["| notebook | topic | your work | its check |", "| --- | --- | --- | --- |"]
    for name, notebook in notebooks.items():
        cells = [(index, c) for index, c in enumerate(notebook.cells)
                 if SOLUTIONS_ONLY not in c.metadata.get("tags", [])]
        code = sum(len(find_regions(c.source.splitlines(), f"notebooks/{name}.ipynb, cell {index}"))
                   for index, c in cells if c.cell_type == "code")
        answers = sum(is_answer_cell(c) for _, c in cells)
        cells = [c for _, c in cells]
        helpers = sorted({obj.strip() for c in cells for call in re.findall(r"show_source\(([^)]*)\)", c.source)
                          for obj in call.split(",") if obj.strip()})
        checks = sorted(set(re.findall(r"\b(check_\w+)\(", "\n".join(c.source for c in cells
                                                                     if c.cell_type == "code"))))
        work = []
        if helpers:
            work.append("code in `helpers/`: " + ", ".join(f"`{h}`" for h in helpers))
        if code:
            work.append(f"{code} code cell{'s' if code > 1 else ''}")
        if answers:
            work.append(f"{answers} written answer{'s' if answers > 1 else ''}")
        title = notebook_title(notebook).split("·", 1)[-1].strip()
        rows.append(f"| `{name}` | {title} | {'; '.join(work) or 'read and run'} | "
                    f"{', '.join(f'`{c}`' for c in checks) or '-'} |")
    return "\n".join(rows)


def _render_readme(template: str, table: str, requirements: str) -> str:
    torch_version = re.search(r"^torch==(\S+)", requirements, re.M).group(1)
    return template.replace("@@NOTEBOOKS@@", table).replace("@@TORCH_VERSION@@", torch_version)


def _check_colab_cells(source: Path, notebooks: dict[str, object]) -> None:
    """The release's Colab setup cells must be the text of ``release/colab_cell.py`` (the one place
    that says where the release is published): a notebook not brought in step stops the build."""
    cell_file = source / "release" / "colab_cell.py"
    if not cell_file.exists():
        return
    text = cell_file.read_text().rstrip("\n")
    stale = [f"notebooks/{name}.ipynb" for name, notebook in notebooks.items()
             if any(COLAB_SETUP in c.metadata.get("tags", []) and c.source != text for c in notebook.cells)]
    if stale:
        raise ReleaseError(f"the Colab setup cell of {', '.join(stale)} differs from release/colab_cell.py: "
                           "run scripts/sync_colab_cell.py first")


def build_student(source: Path = ROOT, out: Path = ROOT / "build" / "student") -> Release:
    """Write the student release of ``source`` into ``out`` (replacing it)."""
    release = Release()
    if out.exists():
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    notebooks = {p.stem: nbformat.read(p, as_version=4) for p in sorted((source / "notebooks").glob("*.ipynb"))}
    _check_colab_cells(source, notebooks)
    table = _notebook_table(notebooks)
    for name, notebook in notebooks.items():
        relative = f"notebooks/{name}.ipynb"
        part = f"{name} ({notebook_part(notebook)})"
        kept = []
        for index, cell in enumerate(notebook.cells):
            where = f"{relative}, cell {index}"
            lines = cell.source.splitlines()
            regions = find_regions(lines, where)
            _check_cell(cell, regions, where)
            if SOLUTIONS_ONLY in cell.metadata.get("tags", []):
                release.dropped.setdefault(relative, []).append((index, copy.deepcopy(cell)))
                continue
            kept.append((index, cell, lines, regions))
        for position, (index, cell, lines, regions) in enumerate(kept):
            if is_answer_cell(cell):
                release.blocks[(relative, index)] = [lines]
                cell.source = ANSWER_STUB
            elif regions:
                later = [c.source for _, c, _, _ in kept[position + 1:] if c.cell_type == "code"]
                new, removed = stub_lines(lines, regions, part, _names_used_later(lines, regions, later))
                cell.source = "\n".join(new)
                release.blocks[(relative, index)] = removed
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
                if cell.source.startswith(NBVAL_MARK + "\n"):
                    cell.source = cell.source[len(NBVAL_MARK) + 1:]
                    release.marks.add((relative, index))
        notebook.cells = [cell for _, cell, _, _ in kept]
        nbformat.write(notebook, out / relative)
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
                function = enclosing_function(text, begin)
                shown_in = helper_parts.get(function.split(".")[-1]) or helper_parts.get(function.split(".")[0], "")
                part = f"{function} in helpers/{path.name}" + (f", used in {shown_in}" if shown_in else "")
                stubbed, removed = stub_lines(new[begin:end + 1], [(0, end - begin)], part)
                new[begin:end + 1] = stubbed
                all_removed.insert(0, removed[0])
            release.blocks[(f"helpers/{path.name}", None)] = all_removed
        (out / "helpers" / path.name).write_text("\n".join(new))
    shutil.copytree(source / "data", out / "data", ignore=shutil.ignore_patterns("__pycache__"))
    pins = source / "requirements.txt" if (source / "requirements.txt").exists() else ROOT / "requirements.txt"
    requirements = student_requirements(pins.read_text())
    (out / "requirements.txt").write_text(requirements)
    templates = source / "release" if (source / "release").is_dir() else TEMPLATES
    (out / "README.md").write_text(_render_readme((templates / "README.md").read_text(), table, requirements))
    shutil.copyfile(templates / "Makefile", out / "Makefile")
    return release


def restore(student: Path, release: Release, target: Path) -> None:
    """Write into ``target`` the student release with the removed regions and cells put back."""
    notebooks = sorted({relative for relative, index in release.blocks if index is not None} | set(release.dropped)
                       | {relative for relative, _ in release.marks})
    for relative in notebooks:
        destination = target / relative
        notebook = nbformat.read(destination if destination.exists() else student / relative, as_version=4)
        for index, cell in sorted(release.dropped.get(relative, []), key=lambda item: item[0]):
            notebook.cells.insert(index, copy.deepcopy(cell))  # now cell indices are the source's
        for path, index in release.marks:
            if path == relative:
                notebook.cells[index].source = f"{NBVAL_MARK}\n{notebook.cells[index].source}"
        for (path, index), removed in release.blocks.items():
            if path == relative and index is not None:
                cell = notebook.cells[index]
                if is_answer_cell(cell):
                    cell.source = "\n".join(removed[0])
                else:
                    cell.source = "\n".join(restore_lines(cell.source.splitlines(), removed))
        destination.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, destination)
    for (relative, index), removed in release.blocks.items():
        if index is None:
            lines = (student / relative).read_text().split("\n")
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).write_text("\n".join(restore_lines(lines, removed)))


# ---------------------------------------------------------------- the solutions release
def strip_notebook_markers(notebook):
    """Remove the solution marker lines from every cell's source and text outputs (in place):
    helper code printed by ``show_source`` carries them too."""
    for cell in notebook.cells:
        cell.source = strip_markers(cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = strip_markers(output["text"])
            for mime, value in output.get("data", {}).items():
                if mime == "text/plain" and isinstance(value, str):
                    output["data"][mime] = strip_markers(value)
    return notebook


def export_html(executed_path: Path, html_path: Path) -> Path:
    """HTML of an executed notebook titled by the notebook's title, solution markers removed,
    without the Colab setup cell and papermill's injected parameters (a page to read, not to run;
    the file itself is not changed)."""
    from nbconvert import HTMLExporter

    notebook = strip_notebook_markers(nbformat.read(executed_path, as_version=4))
    left_out = {COLAB_SETUP, "injected-parameters"}  # papermill's "# Parameters" cell is plumbing too
    notebook.cells = [c for c in notebook.cells if not left_out & set(c.metadata.get("tags", []))]
    html, _ = HTMLExporter().from_notebook_node(notebook, resources={"metadata": {"name": notebook_title(notebook)}})
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(html)
    return html_path


def build_solutions(out: Path = ROOT / "build" / "solutions", notebooks=None, *, jobs: int | None = None,
                    data_source: str = "auto", answers_dir: Path | None = None) -> list[Path]:
    """Execute every notebook (or those given) with outputs into ``out``, markers removed;
    export each to HTML; figures go to ``out/figures/<notebook>/``. Returns the files written.
    A notebook that fails to execute stops the build with its error."""
    from coursetools import execute

    notebooks = [Path(p) for p in (notebooks or execute.numbered_notebooks())]
    out.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("COURSE_FIGURE_DIR")
    os.environ["COURSE_FIGURE_DIR"] = str(out.resolve() / "figures")  # the kernels inherit it
    try:
        results = execute.execute_all(notebooks, out, jobs=jobs, data_source=data_source,
                                            answers_dir=answers_dir)
    finally:
        if previous is None:
            os.environ.pop("COURSE_FIGURE_DIR", None)
        else:
            os.environ["COURSE_FIGURE_DIR"] = previous
    failed = {name: e.error for name, e in results.items() if e.error}
    if failed:
        raise RuntimeError("notebooks failed: " + "; ".join(f"{n}: {e.splitlines()[0][:300]}" for n, e in
                                                            failed.items()))
    written = []
    for name, execution in results.items():
        notebook = strip_notebook_markers(nbformat.read(execution.output, as_version=4))
        nbformat.write(notebook, execution.output)
        written += [execution.output, export_html(execution.output, out / f"{name}.html")]
        print(f"{name + '.ipynb':<40} {execution.seconds:6.1f} s", flush=True)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the student or the solutions release.")
    parser.add_argument("what", choices=("student", "solutions"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--jobs", type=int, default=None, help="solutions: kernels at a time")
    parser.add_argument("--data-source", default=os.environ.get("COURSE_DATA_SOURCE", "auto"),
                        help="solutions: auto, full or subset; resolved once for every notebook")
    args = parser.parse_args(argv)
    try:
        if args.what == "student":
            out = args.out or ROOT / "build" / "student"
            release = build_student(ROOT, out)
            dropped = sum(len(cells) for cells in release.dropped.values())
            print(f"student release: {out} ({sum(len(v) for v in release.blocks.values())} regions stubbed, "
                  f"{dropped} solutions-only cells left out)")
        else:
            build_solutions(args.out or ROOT / "build" / "solutions", jobs=args.jobs, data_source=args.data_source)
    except RegionError as error:
        print(f"release failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
