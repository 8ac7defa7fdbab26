"""Reading a submission, and building the module a part is graded with.

A submission is a folder or a ``.zip`` holding a copy of the student release (possibly one
folder deeper). Only ``helpers/*.py`` and ``notebooks/*.ipynb`` are read, never through a
symbolic link, each at most :data:`MAX_FILE` bytes; nothing is imported or executed here. That
pattern and the limits are defined once, in ``helpers/handin.py``: the students' ``make handin``
and ``hand_in()`` zip exactly what is read here.

:func:`substitute` takes, by ``ast``, the functions and methods that hold a part's code from
the submission's file and puts them in place of the same functions in the instructor's
module; the statements the submission added at the top level of that file (imports, new
functions, and also any other top-level code, so a crash at import is the part's crash) are
appended at the end. The rest of the submission's file is not used. :func:`notebook_module`
does the same for a function written in a notebook cell.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import posixpath
import re
import stat
import sys
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from coursetools.regions import function_nodes, span


def _handin():
    """The course's ``helpers/handin.py`` (standard library only), loaded by path: the
    ``helpers`` package itself is not imported."""
    name = "_course_handin"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "helpers" / "handin.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


HANDIN = _handin()
MAX_FILE, MAX_TOTAL = HANDIN.MAX_FILE, HANDIN.MAX_TOTAL
WANTED = re.compile(rf"(?:^|.*/)({HANDIN.GRADED_PATH.pattern})$")  # group 1: the path inside the release
NOTEBOOK_PREAMBLE = "import math\n\nimport numpy as np\nimport torch\n\n"


class SourceProblem(Exception):
    """The part cannot be built from the submission: ``status`` (missing, error, unreadable) and why."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Submission:
    name: str
    path: Path
    files: dict[str, bytes] = field(default_factory=dict)  # "helpers/norms.py" -> content
    problem: str | None = None  # why the submission could not be read at all
    notes: list[str] = field(default_factory=list)  # skipped files (links, too large)


# ---------------------------------------------------------------- finding and reading submissions
def discover(folder: Path) -> list[tuple[str, Path]]:
    """``(student name, path)`` of every subfolder and ``.zip`` of ``folder``, sorted by name."""
    found = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "__")) or entry.is_symlink():
            continue
        if entry.is_dir():
            found.setdefault(entry.name, entry)
        elif entry.suffix.lower() == ".zip" and entry.is_file():
            name = entry.stem if entry.stem not in found else f"{entry.stem}_zip"
            found[name] = entry
    return sorted(found.items())


def _choose_root(paths: list[str]) -> tuple[str, list[str]]:
    """The release root among relative paths (the shortest prefix of a helpers/ or notebooks/
    file) and the wanted files under it."""
    roots: dict[str, list[str]] = {}
    for path in paths:
        match = WANTED.match(path)
        if match:
            roots.setdefault(path[: len(path) - len(match.group(1))], []).append(path)
    if not roots:
        return "", []
    root = min(roots, key=lambda prefix: (prefix.count("/"), prefix))
    return root, roots[root]


def _read_folder(submission: Submission) -> None:
    base = submission.path
    candidates = []
    for directory, dirs, files in os.walk(base, followlinks=False):
        depth = len(Path(directory).relative_to(base).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")) and depth < 4)
        for name in sorted(files):
            relative = (Path(directory) / name).relative_to(base).as_posix()
            if WANTED.match(relative):
                candidates.append(relative)
    root, chosen = _choose_root(candidates)
    total = 0
    for relative in chosen:
        path = base / relative
        if path.is_symlink():  # os.walk did not follow linked folders; O_NOFOLLOW below guards the race
            submission.notes.append(f"{relative}: a symbolic link, not read")
            continue
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE or total + info.st_size > MAX_TOTAL:
            submission.notes.append(f"{relative}: not a regular file or too large, not read")
            continue
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_FILE + 1)
        total += len(data)
        submission.files[relative[len(root):]] = data


def _read_zip(submission: Submission) -> None:
    try:
        archive = zipfile.ZipFile(submission.path)
    except (zipfile.BadZipFile, OSError) as error:
        submission.problem = f"not a readable zip file ({type(error).__name__})"
        return
    with archive:
        entries = {}
        for info in archive.infolist():
            name = posixpath.normpath(info.filename.replace("\\", "/"))
            if info.is_dir() or name.startswith(("/", "../")) or "__MACOSX" in name or "/." in f"/{name}":
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                submission.notes.append(f"{name}: a symbolic link, not read")
                continue
            entries[name] = info
        root, chosen = _choose_root(sorted(entries))
        total = 0
        for name in chosen:
            info = entries[name]
            if info.file_size > MAX_FILE or total + info.file_size > MAX_TOTAL:
                submission.notes.append(f"{name}: too large, not read")
                continue
            try:
                with archive.open(info) as handle:
                    data = handle.read(MAX_FILE + 1)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as error:
                submission.notes.append(f"{name}: could not be extracted ({type(error).__name__})")
                continue
            if len(data) > MAX_FILE:
                submission.notes.append(f"{name}: too large, not read")
                continue
            total += len(data)
            submission.files[name[len(root):]] = data


def read_submission(name: str, path: Path) -> Submission:
    submission = Submission(name, path)
    if path.is_dir():
        _read_folder(submission)
    else:
        _read_zip(submission)
    if submission.problem is None and not submission.files:
        submission.problem = "no helpers/ or notebooks/ of the student release in it"
    return submission


# ---------------------------------------------------------------- functions by qualified name
def _text(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceProblem("unreadable", f"{filename} is not UTF-8 text") from error


def _parse(text: str, filename: str) -> ast.Module:
    try:
        return ast.parse(text)
    except SyntaxError as error:
        raise SourceProblem("error", f"{filename} does not parse: {error.msg} at line {error.lineno}") from error


def _bound_names(node) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _additions(student: ast.Module, instructor: ast.Module) -> list[ast.AST]:
    """Top-level statements of the submission that the instructor's module does not have."""
    known = {ast.dump(node) for node in instructor.body}
    names = set().union(*(_bound_names(node) for node in instructor.body))
    added = []
    for index, node in enumerate(student.body):
        if ast.dump(node) in known:
            continue
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)) \
                and _bound_names(node) & names:
            continue  # the instructor's version is used (a graded method of a class is put in separately)
        added.append(node)
    return added


def _reindent(lines: list[str], old: int, new: int) -> list[str]:
    if old == new:
        return lines
    out = []
    for line in lines:
        if line[:old].strip() == "" and len(line) >= old:
            out.append(" " * new + line[old:])
        else:
            out.append(line)
    return out


def substitute(instructor_text: str, student_data: bytes, functions, filename: str):
    """The instructor's module with ``functions`` taken from the submission's file, and the
    segments that map its lines back: ``[first, last, first line in the submission, label]``."""
    student_text = _text(student_data, filename)
    student_tree, instructor_tree = _parse(student_text, filename), ast.parse(instructor_text)
    student_nodes, instructor_nodes = function_nodes(student_tree), function_nodes(instructor_tree)
    student_lines, instructor_lines = student_text.split("\n"), instructor_text.split("\n")
    replacements = []
    for qualname in functions:
        if qualname not in student_nodes:
            raise SourceProblem("missing", f"{filename} has no `{qualname}`")
        s_first, s_last = span(student_nodes[qualname])
        i_first, i_last = span(instructor_nodes[qualname])
        lines = _reindent(student_lines[s_first - 1:s_last], student_nodes[qualname].col_offset,
                          instructor_nodes[qualname].col_offset)
        replacements.append((i_first, i_last, lines, s_first))
    out, segments, cursor = [], [], 1
    for i_first, i_last, lines, s_first in sorted(replacements):
        out += instructor_lines[cursor - 1:i_first - 1]
        segments.append([len(out) + 1, len(out) + len(lines), s_first, filename])
        out += lines
        cursor = i_last + 1
    out += instructor_lines[cursor - 1:]
    added = _additions(student_tree, instructor_tree)
    if added:
        out += ["", "", "# ---- added at the top level of the submission's file ----"]
        for node in added:
            first, last = span(node)
            segments.append([len(out) + 1, len(out) + 1 + last - first, first, filename])
            out += student_lines[first - 1:last]
    return "\n".join(out) + "\n", segments


def function_source(text: str, qualname: str) -> str | None:
    """The source of one function (None when absent or when the text does not parse)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    node = function_nodes(tree).get(qualname)
    if node is None:
        return None
    first, last = span(node)
    return textwrap.dedent("\n".join(text.split("\n")[first - 1:last]))


# ---------------------------------------------------------------- notebooks
def notebook_cells(data: bytes, filename: str) -> list[dict]:
    """The cells of a notebook file, each with a ``source`` string; SourceProblem if it is not one."""
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SourceProblem("unreadable", f"{filename} is not valid notebook JSON ({type(error).__name__})") from error
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise SourceProblem("unreadable", f"{filename} has no list of cells")
    out = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            source = ""
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        cell_id = cell.get("id") if isinstance(cell.get("id"), str) else None  # nbformat >= 4.5
        out.append(dict(cell_type=cell.get("cell_type"), source=source, tags=list(metadata.get("tags") or []),
                        id=cell_id))
    return out


def as_python(source: str) -> str:
    """A cell's source with IPython magics and shell lines commented out."""
    return "\n".join("#" + line if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def notebook_module(data: bytes, function: str, filename: str):
    """A module holding ``function`` as the notebook's last code cell defining it has it, with
    that cell's imports and other definitions, after a preamble (math, numpy as np, torch)."""
    found, broken = None, None
    for index, cell in enumerate(notebook_cells(data, filename)):
        if cell["cell_type"] != "code":
            continue
        source = as_python(cell["source"])
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            if re.search(rf"def\s+{re.escape(function)}\s*\(", source):
                broken = (f"the cell defining `{function}` in {filename} does not parse: {error.msg} "
                          f"at line {error.lineno}")
            continue
        if any(isinstance(node, ast.FunctionDef) and node.name == function for node in tree.body):
            found, broken = (index, source, tree), None
    if found is None:
        if broken:
            raise SourceProblem("error", broken)
        raise SourceProblem("missing", f"{filename} defines no `{function}`")
    index, source, tree = found
    lines = source.split("\n")
    out, segments = NOTEBOOK_PREAMBLE.split("\n"), []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first, last = span(node)
            segments.append([len(out) + 1, len(out) + 1 + last - first, first, f"{filename} (cell {index})"])
            out += lines[first - 1:last]
    return "\n".join(out) + "\n", segments
