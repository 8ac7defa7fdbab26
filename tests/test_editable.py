"""The rules that make an edit of a student file the code that runs next (helpers.editable):
the files students edit hold no classes and are reached through their module; refresh()
re-executes a changed file, whatever its timestamp, and a broken one says so until fixed."""

import ast
import importlib
import os
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import editable

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "### BEGIN SOLUTION"


def module_file(name: str) -> Path:
    return ROOT / (name.replace(".", "/") + ".py")


def region_functions(path: Path) -> set[str]:
    """Top-level functions of ``path`` that hold a solution region: the student's functions."""
    text = path.read_text()
    lines = text.splitlines()
    return {node.name for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)
            and any(line.strip() == BEGIN for line in lines[node.lineno - 1:node.end_lineno])}


def test_every_helper_with_student_code_is_editable_and_holds_no_class():
    with_regions = {f"helpers.{p.stem}" for p in (ROOT / "helpers").glob("*.py")
                    if any(line.strip() == BEGIN for line in p.read_text().splitlines())}
    assert with_regions == set(editable.EDITABLE)
    for name in editable.EDITABLE:
        tree = ast.parse(module_file(name).read_text())
        classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
        assert classes == [], f"{name} defines {classes}: an instance made before an edit would keep old code"
        assert region_functions(module_file(name)), name


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in editable.EDITABLE:
            yield node.module, [alias.name for alias in node.names]


def test_no_helper_module_imports_a_name_from_a_student_file():
    """The course's modules reach a student file only through its module object, at call time: a
    typo there then breaks the calls into that file, not the import of the whole package."""
    held = [(p.name, module, names) for p in sorted((ROOT / "helpers").glob("*.py"))
            for module, names in _imports(ast.parse(p.read_text()))]
    assert held == []


def test_no_helper_or_notebook_holds_a_student_function_by_name():
    student = {name: region_functions(module_file(name)) for name in editable.EDITABLE}
    sources = [(p.name, p.read_text()) for p in (ROOT / "helpers").glob("*.py")]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                code = "\n".join("#" + line if line.lstrip().startswith(("%", "!")) else line
                                 for line in cell.source.splitlines())
                sources.append((f"{path.name} cell {index}", code))
    held = [(where, module, names) for where, text in sources for module, names in _imports(ast.parse(text))
            if set(names) & student[module]]
    assert held == [], "import the module and call module.function, so an edit is what runs: " + repr(held)


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A module ``scratch_part`` of plain functions, watched like the course's files."""
    path = tmp_path / "scratch_part.py"
    path.write_text("def answer():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(editable, "EDITABLE", ("scratch_part",))
    sys.modules.pop("scratch_part", None)
    module = importlib.import_module("scratch_part")
    yield module, path
    sys.modules.pop("scratch_part", None)
    editable._executed.pop("scratch_part", None)


def write_keeping_stat(path: Path, text: str) -> None:
    """A same-size edit within the same second: what a timestamp check would miss."""
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_changed_file_is_executed_again_whatever_its_timestamp(scratch):
    module, path = scratch
    assert editable.refresh() == [] and module.answer() == 1
    write_keeping_stat(path, "def answer():\n    return 2\n")
    assert editable.refresh() == [] and module.answer() == 2
    path.write_text("def other():\n    return 3\n")  # a function the student deleted is gone
    editable.refresh()
    assert module.other() == 3 and not hasattr(module, "answer")


def test_a_broken_file_raises_its_error_until_it_is_fixed(scratch, capsys):
    module, path = scratch
    editable.refresh()
    path.write_text("def answer():\n    return 1\n\ndef broken(:\n")
    errors = editable.refresh()
    assert len(errors) == 1 and "scratch_part.py, line 4: SyntaxError" in errors[0]
    assert errors[0] in capsys.readouterr().err
    with pytest.raises(editable.EditedFileError, match=r"scratch_part\.py, line 4"):
        module.answer()  # never the version before the edit
    assert editable.refresh() == errors  # reported before every cell until fixed
    path.write_text("def answer():\n    return 5\n")
    assert editable.refresh() == [] and module.answer() == 5
    path.write_text("def answer():\n    return 1 / 0\n\nanswer()\n")  # fails while it executes
    message = editable.refresh()[0]
    assert "scratch_part.py, line 2: ZeroDivisionError" in message
    with pytest.raises(editable.EditedFileError):
        module.answer()
