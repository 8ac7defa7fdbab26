"""The instructor's toolchain on standard tools: nbval validates the notebooks (its diff on a
changed checked output, its per-cell timeout), one installable package whose modules import
without sys.path edits, no import cycles, no test fixture in production code and no private name
used across modules."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("helpers", "coursetools", "grading")
# Entry points that run as their own process and set their own path on purpose: the grader's sandboxed
# child (the submission's folder first, no course tree), a student's hand-in run as a script (its own
# folder must not shadow the standard library), Colab's setup (the course folder in Drive).
OWN_PATH = {"grading/zygote.py", "helpers/handin.py", "helpers/colab.py"}


def python_files(*folders):
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# ---------------------------------------------------------------- nbval
def fixture_notebook(path: Path, cells) -> Path:
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "mup-course",
                                                                               "display_name": "Python (muP course)",
                                                                               "language": "python"}})
    nbformat.write(notebook, path)
    return path


def nbval(notebook: Path, *options, timeout=120):
    """pytest --nbval-lax on one notebook in a fresh process (no xdist, none of this suite's conftest)."""
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:xdist", "-p", "no:cacheprovider",
               "--rootdir", str(notebook.parent), "--confcutdir", str(notebook.parent), *options, str(notebook)]
    return subprocess.run(command, cwd=notebook.parent, capture_output=True, text=True, timeout=timeout)


def checked_cell(source, committed):
    cell = nbformat.v4.new_code_cell(f"# NBVAL_CHECK_OUTPUT\n{source}", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=committed)]
    return cell


def test_nbval_fails_a_changed_checked_output_with_its_diff(tmp_path):
    notebook = fixture_notebook(tmp_path / "checked.ipynb", [
        nbformat.v4.new_code_cell("x = 6 * 7"),
        checked_cell("print('widths:', (64, 128, x))", "widths: (64, 128, 42)\n"),
        checked_cell("print('rates:', (0.1, 0.3))", "rates: (0.1, 0.03)\n"),  # committed before a change
    ])
    done = nbval(notebook)
    assert done.returncode == 1, done.stdout
    assert re.search(r"checked\.ipynb::Cell 1 PASSED|1 failed, 2 passed", done.stdout), done.stdout
    assert "Cell outputs differ" in done.stdout and "checked.ipynb::Cell 2" in done.stdout
    # nbval's diff: the committed line against the printed one
    assert "rates: (0.1, 0.03)" in done.stdout and "rates: (0.1, 0.3)" in done.stdout


def test_nbval_stops_an_endless_cell_within_the_timeout_and_names_it(tmp_path):
    notebook = fixture_notebook(tmp_path / "endless.ipynb", [
        nbformat.v4.new_code_cell("import time"),
        nbformat.v4.new_code_cell("while True:\n    time.sleep(0.1)"),
        nbformat.v4.new_code_cell("print('after')"),
    ])
    done = nbval(notebook, "--nbval-cell-timeout=3", timeout=90)
    assert done.returncode == 1, done.stdout
    assert "endless.ipynb::Cell 1" in done.stdout and "Timeout of 3 seconds exceeded" in done.stdout, done.stdout
    assert "while True:" in done.stdout  # the cell's source, in the report


def test_make_test_collects_every_notebook_through_nbval():
    """`make test` passes nbval's options and the notebooks folder; nbval collects every code cell of
    every numbered notebook (the conftest schedules them first)."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test: setup\n\t(.*)$", makefile, re.M).group(1)
    options = re.search(r"^NBVAL := (.*)$", makefile, re.M).group(1)
    assert "$(NBVAL)" in recipe and "--nbval-lax" in options and "--nbval-cell-timeout=" in options
    assert recipe.split()[-2:] == ["notebooks", "tests"] and "-n auto" in recipe and "--dist loadscope" in recipe
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist",
                           *options.split(), "notebooks"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    collected = re.findall(r"^notebooks/(\d\d_\w+)\.ipynb::Cell (\d+)$", done.stdout, re.M)
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        code_cells = sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)
        assert sum(name == path.stem for name, _ in collected) == code_cells, path.name


# ---------------------------------------------------------------- one installable package
def test_every_tooling_module_imports_without_sys_path_edits(tmp_path):
    """In a fresh interpreter started outside the repository, every module of the three packages
    imports (make setup installs them), and the scripts' entry points start."""
    modules = [module_name(p) for p in python_files(*PACKAGES) if p.relative_to(ROOT).as_posix() not in OWN_PATH]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", code, *modules], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "KERAS_BACKEND": "torch", "HOME": str(tmp_path)})
    assert done.stdout.strip() == "ok", done.stderr[-3000:]
    for script in sorted((ROOT / "scripts").glob("*.py")):
        done = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and "usage" in done.stdout.lower(), (script.name, done.stderr[-2000:])


def sys_path_edits(tree):
    """Lines that change sys.path: sys.path.insert/append/extend/remove, assignments to sys.path."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("insert", "append", "extend", "remove") \
                and ast.unparse(node.func.value) == "sys.path":
            found.append(node.lineno)
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(ast.unparse(t).startswith("sys.path") for t in targets):
                found.append(node.lineno)
    return found


def test_no_sys_path_edit_outside_the_notebooks_and_the_processes_that_own_their_path():
    edits = {}
    for path in python_files(*PACKAGES, "scripts", "tests", "benchmarks"):
        relative = path.relative_to(ROOT).as_posix()
        lines = sys_path_edits(ast.parse(path.read_text()))
        if lines and relative not in OWN_PATH:
            edits[relative] = lines
    # bench_grading reuses the tests' synthetic submissions (tests/ is not a package)
    assert edits == {"benchmarks/bench_grading.py": edits.get("benchmarks/bench_grading.py")}, edits


def first_party_imports(path: Path) -> set[str]:
    """The course modules ``path`` imports at module level (imports inside functions are deferred on purpose)."""
    tree, found = ast.parse(path.read_text()), set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(kept + ([base] if base else []))
            if base.split(".")[0] in PACKAGES:
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists()
                              or (ROOT / Path(*candidate.split("."))).is_dir() else base)
    return found


def test_no_import_cycles_among_the_course_modules():
    graph = {module_name(p): first_party_imports(p) for p in python_files(*PACKAGES)}
    state, cycles = {}, []

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target == module or target not in graph:
                continue
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target] if target in trail else [module, target])
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_no_production_module_imports_a_test_fixture():
    for path in python_files(*PACKAGES, "scripts"):
        text = path.read_text()
        fixture = r"^\s*(?:import|from)\s+(?:tests\b|grading_fixtures|answer_patterns|kernel_session|conftest)"
        assert not re.search(fixture, text, re.M), path


def test_no_private_name_is_used_across_modules():
    """A name that starts with '_' belongs to its module: another module may not import it or reach
    it through the module (shared internals get public names). A package's private helper module
    (grading/parts/_q1.py) is shared inside its package only."""
    crossings = []
    for path in python_files(*PACKAGES, "coursetools", "scripts"):
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__") \
                            and not (ROOT / Path(*node.module.split(".")) / f"{alias.name}.py").exists():
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        crossings.append(f"{where} imports {node.module}.{alias.name}")
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in PACKAGES:
                        aliases[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and isinstance(node.value, ast.Name) and node.value.id in aliases:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                crossings.append(f"{where} uses {aliases[node.value.id]}.{node.attr}")
    assert not crossings, crossings


@pytest.mark.parametrize("script", ["run_notebooks", "release", "refresh_checked_outputs", "sync_colab_cell",
                                    "grade", "gradescope"])
def test_scripts_are_thin_entry_points(script):
    """scripts/ holds command lines only: each imports one main from a package and calls it."""
    tree = ast.parse((ROOT / "scripts" / f"{script}.py").read_text())
    definitions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert not definitions and len(imports) == 1 and imports[0].names[0].name == "main"
    assert imports[0].module.split(".")[0] in ("coursetools", "grading")
