"""The student release (a homework that stands alone and gives no answer away, locally and in
Colab) and the solutions release, built from one source."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from html import escape as html_escape
from pathlib import Path

import nbformat
import pytest
from answer_patterns import find_answers

from coursetools import regions, release

ROOT = Path(__file__).resolve().parents[1]

TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".txt", ".yml", ".cfg", ".toml", ""}
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
INSTRUCTOR_TOOLING = re.compile(r"make (?:test|run|unit|student|solutions|bench|grade)\b|release\.py|run_notebooks"
                                r"|refresh_checked_outputs|nbval|papermill|pytest|\.ci/|Instructors?\b")


def source_regions():
    """Every line inside a solution region of the notebooks and helpers."""
    lines = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            source = cell.source.splitlines()
            if regions.is_answer_cell(cell):  # a written answer: the whole cell
                lines += source
            for begin, end in regions.find_regions(source, f"{path.name}, cell {index}"):
                lines += source[begin + 1:end]
    for path in sorted((ROOT / "helpers").glob("*.py")):
        source = path.read_text()
        for begin, end in regions.find_regions(source.splitlines(), path.name):
            lines += source.splitlines()[begin + 1:end]
    return lines


def release_texts(out: Path):
    """(relative path, text) of every text file of a release; a notebook's text is every cell's
    source and every text output."""
    for path in sorted(p for p in out.rglob("*") if p.is_file() and ".venv" not in p.parts):
        if path.suffix not in TEXT_SUFFIXES:
            continue
        text = path.read_text()
        if path.suffix == ".ipynb":
            cells = nbformat.read(path, as_version=4).cells
            text = "\n".join([c.source for c in cells] + [json.dumps(c.get("outputs", [])) for c in cells])
        yield str(path.relative_to(out)), text


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "student"
    return out, release.build_student(ROOT, out)


# ---------------------------------------------------------------- nothing gives an answer away
def test_the_release_contains_no_answer_of_parts_b_to_d_and_the_bonus(student):
    """Every file of the release (notebooks with all their cells, helpers with the checks' hints,
    README, Makefile, data notes) is searched for the answers in any spacing, and for the
    conclusions the notebooks print (tests/answer_patterns.py)."""
    out, _ = student
    found = {}
    for path, text in release_texts(out):
        for part, _, line in find_answers(text):
            found.setdefault((path, line), []).append(part)
    leaks = [f"{path}: [{', '.join(dict.fromkeys(parts))}] {line}" for (path, line), parts in found.items()]
    assert not leaks, f"{len(leaks)} answer(s) in the student release:\n" + "\n".join(leaks)


def test_no_solution_line_reaches_the_student_release(student):
    out, _ = student
    # Lines of fewer than 8 non-space characters ("else:", "return X") and bare loop headers carry no
    # answer and are not searched.
    trivial = re.compile(r"^for \w+ in range\(\w+\):$")
    secret = {line.strip() for line in source_regions()
              if len(line.replace(" ", "")) >= 8 and not trivial.match(line.strip())}
    assert len(secret) > 30
    leaks = []
    for relative, text in release_texts(out):
        present = {line.strip() for line in text.splitlines()}
        leaks += [f"{relative}: {line}" for line in secret & present]
    assert not leaks, leaks


# ---------------------------------------------------------------- what the student gets
def test_student_release_is_complete_and_clean(student):
    out, built = student
    for name in ("helpers/__init__.py", "helpers/checks.py", "data/mnist_subset.npz", "requirements.txt",
                 "README.md", "Makefile"):
        assert (out / name).exists(), name
    assert sorted(p.name for p in (out / "notebooks").glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    for path in (out / "notebooks").glob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
            assert regions.BEGIN not in cell.source and regions.END not in cell.source
            assert regions.SOLUTIONS_ONLY not in cell.metadata.get("tags", [])
    stubbed = (out / "helpers" / "mup_lr.py").read_text()
    assert '    # YOUR CODE HERE\n    raise NotImplementedError("layer_lr in helpers/mup_lr.py, ' \
           'used in 03_mup_optimizer (homework part c)' in stubbed
    assert sum(len(blocks) for blocks in built.blocks.values()) >= 25


def test_the_student_gets_their_own_readme_makefile_and_packages(student):
    out, _ = student
    readme, makefile = (out / "README.md").read_text(), (out / "Makefile").read_text()
    assert readme != (ROOT / "README.md").read_text() and "@@" not in readme
    for text, name in ((readme, "README.md"), (makefile, "Makefile")):
        assert not INSTRUCTOR_TOOLING.search(text), (name, INSTRUCTOR_TOOLING.search(text).group(0))
    torch = re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"pip install torch=={torch} --index-url https://download.pytorch.org/whl/cpu" in readme
    for section in ("## Start on your own computer", "## Working through a part", "## Google Colab",
                    "## What to hand in", "make setup", "make lab", "make handin", "mup-course", "CheckFailed"):
        assert section in readme, section
    for target in ("setup:", "lab:", "handin:", "ipykernel install", "--name $(KERNEL)"):
        assert target in makefile, target
    packages = {re.split(r"[=<>]", line)[0] for line in (out / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#")}
    assert {"torch", "numpy", "matplotlib", "keras", "jupyterlab", "ipykernel", "tqdm"} <= packages
    assert not packages & release.INSTRUCTOR_PACKAGES


def test_no_file_of_the_release_refers_to_instructor_tooling(student):
    out, _ = student
    tooling = re.compile(r"make (?:test|run|unit|student|solutions|bench|grade)\b|scripts/|release\.py|run_notebooks"
                         r"|refresh_checked_outputs|nbval|papermill|pytest|tests/|\.ci/")
    found = [f"{path}: {line.strip()[:160]}" for path, text in release_texts(out) for line in text.splitlines()
             if tooling.search(line)]
    assert not found, "\n".join(found)


def test_a_code_stub_names_what_the_cells_below_use(student):
    out, _ = student
    cells = nbformat.read(out / "notebooks" / "01_activation_deltas.ipynb", as_version=4).cells
    stubs = [c.source for c in cells if c.cell_type == "code" and regions.CODE_STUB in c.source]
    assert any("01_activation_deltas (homework part a)" in s and "the cells below use: changed" in s for s in stubs)


# ---------------------------------------------------------------- the round trip
def test_round_trip_reproduces_the_source(student, tmp_path):
    out, built = student
    restored = tmp_path / "restored"
    shutil.copytree(out, restored)
    release.restore(out, built, restored)
    for path in sorted((ROOT / "helpers").glob("*.py")):
        assert (restored / "helpers" / path.name).read_bytes() == path.read_bytes(), path.name
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        original = nbformat.read(path, as_version=4).cells
        back = nbformat.read(restored / "notebooks" / path.name, as_version=4).cells
        assert [(c.cell_type, c.source, c.metadata) for c in back] == \
               [(c.cell_type, c.source, c.metadata) for c in original], path.name


def write_source(folder: Path, cells, name="99_broken") -> Path:
    (folder / "notebooks").mkdir(parents=True, exist_ok=True)
    (folder / "helpers").mkdir(exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    path = folder / "notebooks" / f"{name}.ipynb"
    metadata = {"kernelspec": {"name": "mup-course", "language": "python", "display_name": "Python (muP course)"},
                "language_info": {"name": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=metadata), path)
    return path


def test_solutions_only_cells_are_left_out_and_restored(tmp_path):
    verdict = nbformat.v4.new_code_cell("print('=> best: the answer')", metadata={"tags": ["solutions-only"]})
    erratum = nbformat.v4.new_markdown_cell("> **Errata.** The rule is the answer.",
                                            metadata={"tags": ["solutions-only"]})
    cells = [nbformat.v4.new_markdown_cell("# 99 · Tiny (homework part z)"),
             nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\nanswer = 2 * x\nhelper = 3\n### END SOLUTION\n"
                                       "print(x)"),
             verdict,
             nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(answer)"),
             erratum,
             nbformat.v4.new_markdown_cell("**Answer.** Because.", metadata={"tags": ["answer"]})]
    source = write_source(tmp_path / "src", cells, "99_tiny")
    built = release.build_student(tmp_path / "src", tmp_path / "out")
    student_cells = nbformat.read(tmp_path / "out" / "notebooks" / "99_tiny.ipynb", as_version=4).cells
    assert len(student_cells) == 4 and "=> best" not in str(student_cells) and "Errata" not in str(student_cells)
    stub = student_cells[1].source
    assert stub.startswith("x = 1\n# YOUR CODE HERE\nraise NotImplementedError(\"99_tiny (homework part z): ")
    assert stub.endswith("the cells below use: answer\")\nprint(x)")  # helper is not used below: not named
    assert student_cells[2].source == "print(answer)"  # the nbval mark is instructor tooling
    assert student_cells[3].source == "YOUR ANSWER HERE" and student_cells[3].metadata.tags == ["answer"]
    restored = tmp_path / "restored"
    shutil.copytree(tmp_path / "out", restored)
    release.restore(tmp_path / "out", built, restored)
    back = nbformat.read(restored / "notebooks" / "99_tiny.ipynb", as_version=4).cells
    original = nbformat.read(source, as_version=4).cells
    assert [(c.cell_type, c.source, c.metadata) for c in back] == [(c.cell_type, c.source, c.metadata)
                                                                   for c in original]


@pytest.mark.parametrize("cell, message", [
    (nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2"), "cell 1: ### BEGIN SOLUTION at line 2 without"),
    (nbformat.v4.new_code_cell("### END SOLUTION"), "cell 1: ### END SOLUTION at line 1 without"),
    (nbformat.v4.new_code_cell("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION"),
     "cell 1: nested"),
    (nbformat.v4.new_raw_cell("### BEGIN SOLUTION\nx\n### END SOLUTION"), "cell 1: solution markers in a raw cell"),
    (nbformat.v4.new_markdown_cell("**Answer.**\n### BEGIN SOLUTION\nx\n### END SOLUTION"),
     "cell 1: solution markers in a markdown cell; a written answer is a markdown cell of its own, tagged 'answer'"),
])
def test_malformed_region_stops_the_build(tmp_path, cell, message):
    write_source(tmp_path / "src", [nbformat.v4.new_markdown_cell("# 99 · Broken (test)"), cell])
    with pytest.raises(regions.RegionError, match="notebooks/99_broken.ipynb") as error:
        release.build_student(tmp_path / "src", tmp_path / "out")
    assert message in str(error.value)


def test_malformed_region_in_a_helper_names_the_file(tmp_path):
    write_source(tmp_path / "src", [nbformat.v4.new_markdown_cell("# 99 · Fine (test)")])
    (tmp_path / "src" / "helpers" / "broken.py").write_text("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(regions.RegionError, match=r"helpers/broken.py: ### BEGIN SOLUTION at line 2 without"):
        release.build_student(tmp_path / "src", tmp_path / "out")


# ---------------------------------------------------------------- following the README in an empty folder
def offline_environment(home: Path) -> dict:
    """The environment of a student's shell, except that the packages come from this test's
    interpreter (PYTHONPATH) and pip may not use the network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "JUPYTER", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=sysconfig.get_paths()["purelib"], PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               JUPYTER_PATH=str(home / ".venv" / "share" / "jupyter"), COURSE_DATA_SOURCE="subset",
               COURSE_DEVICE="cpu", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    return env


def readme_commands(readme: str) -> list[str]:
    """The commands of the README's first shell block (the two commands to start)."""
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


@pytest.fixture(scope="module")
def standalone(student, tmp_path_factory):
    """A copy of the release in an empty folder, set up as its README says."""
    out, _ = student
    home = tmp_path_factory.mktemp("empty") / "homework"
    shutil.copytree(out, home)
    assert readme_commands((home / "README.md").read_text()) == ["make setup", "make lab"]
    env = offline_environment(home)
    setup = subprocess.run(["make", "setup", f"PYTHON={sys._base_executable}"], cwd=home, env=env,
                           capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    return home, env


def test_make_setup_creates_the_environment_and_registers_the_kernel(standalone):
    home, env = standalone
    spec = json.loads((home / ".venv" / "share" / "jupyter" / "kernels" / "mup-course" / "kernel.json").read_text())
    assert spec["argv"][0] == str(home / ".venv" / "bin" / "python")
    lab = subprocess.run(["make", "-n", "lab"], cwd=home, env=env, capture_output=True, text=True, timeout=60)
    assert ".venv/bin/python -m jupyterlab" in lab.stdout and "notebooks/" in lab.stdout, lab.stdout + lab.stderr
    assert subprocess.run([".venv/bin/python", "-c", "import jupyterlab, torch, helpers"], cwd=home, env=env,
                          timeout=120).returncode == 0
    handin = subprocess.run(["make", "handin"], cwd=home, env=env, capture_output=True, text=True, timeout=60)
    assert handin.returncode == 0, handin.stderr
    names = zipfile.ZipFile(home / "handin.zip").namelist()
    assert "notebooks/03_mup_optimizer.ipynb" in names and "helpers/optimizers.py" in names
    assert not any(name.startswith(("data/", ".venv/")) for name in names)


@pytest.fixture(scope="module")
def stub_runs(standalone):
    """Every student notebook of the copy executed headlessly with the kernel that `make setup`
    registered there, two at a time (run_notebooks.execute_all): {name: Execution}."""
    import coursetools.execute as run_notebooks

    home, env = standalone
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernels start with this process's environment
    try:
        return run_notebooks.execute_all(sorted((home / "notebooks").glob("[0-9][0-9]_*.ipynb")), home / "executed",
                                         data_source="subset", kernel="mup-course")
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_notebook_runs_to_its_first_stub_with_the_release_kernel(standalone, stub_runs, path):
    """Each notebook stops at its first stub with a NotImplementedError naming the part (and the
    copy's own file); no earlier cell fails."""
    home, _ = standalone
    error = stub_runs[path.stem].error
    assert error is not None and error.startswith("NotImplementedError: "), error  # not a failed check
    # Part e (05) writes no code of its own, and question 3 (13) sweeps with muP before its own part: both stop
    # at the muP optimizer that part c completes.
    expected = "03_mup_optimizer" if path.stem.startswith(("05_", "13_")) else path.stem
    assert expected in error.splitlines()[0], error


# ---------------------------------------------------------------- Colab: tests/test_colab.py


# ---------------------------------------------------------------- the solutions release
TINY = [
    nbformat.v4.new_markdown_cell("# 98 · Tiny (test)"),
    nbformat.v4.new_markdown_cell("**Answer.** Forty-two.", metadata={"tags": ["answer"]}),
    nbformat.v4.new_code_cell("device = 'cpu'\ndata_source = 'subset'\nseed = 0\nsave_figures = False",
                              metadata={"tags": ["parameters"]}),
    nbformat.v4.new_code_cell(
        "%matplotlib inline\nimport os\nfrom pathlib import Path\nimport matplotlib.pyplot as plt\n"
        "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\n"
        "print('    ### BEGIN ' + 'SOLUTION')  # helper code printed by show_source carries the markers\n"
        "print(f'the answer is {answer}')\n"
        "fig, ax = plt.subplots()\nax.plot([0, 1], [0, answer])\n"
        "if save_figures:\n"
        "    target = Path(os.environ['COURSE_FIGURE_DIR']) / '98_tiny'\n"
        "    target.mkdir(parents=True, exist_ok=True)\n"
        "    fig.savefig(target / 'line.png')"),
]


def test_solutions_release_has_outputs_html_and_figures_without_markers(tmp_path, monkeypatch):
    """build_solutions on a tiny synthetic notebook (no course notebook runs twice), with
    MPLBACKEND=Agg in the caller's environment."""
    source = write_source(tmp_path / "src", TINY, "98_tiny")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("COURSE_KERNEL_THREADS", "1")
    out = tmp_path / "solutions"
    written = release.build_solutions(out, [source], jobs=1, data_source="subset", answers_dir=tmp_path / "answers")
    assert written == [out / "98_tiny.ipynb", out / "98_tiny.html"]
    executed = nbformat.read(out / "98_tiny.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in outputs)
    assert "the answer is 42" in json.dumps(outputs) and "Forty-two." in executed.cells[1].source
    html = (out / "98_tiny.html").read_text()
    assert "<html" in html and "the answer is 42" in html and "Forty-two." in html and "data:image/png" in html
    for text in (html, json.dumps(executed)):
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert (out / "figures" / "98_tiny" / "line.png").exists()
    assert "COURSE_FIGURE_DIR" not in os.environ
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert "injected-parameters" not in html  # papermill's cell is left out (nbconvert marks cells by tag)
    assert "<title>98 · Tiny (test)</title>" in html


def test_export_html_of_an_executed_course_notebook_hides_the_markers(executed_notebooks, tmp_path):
    """export_html on the session's executed copy (executed once per test run, see conftest)."""
    expected = executed_notebooks.expected()
    name = next(iter(n for n in ("06_shampoo_orthogonalization", "01_activation_deltas") if n in expected),
                expected[0])
    run = executed_notebooks[name]
    executed = tmp_path / f"{name}.ipynb"
    nbformat.write(run.notebook, executed)
    assert regions.BEGIN in executed.read_text()
    html = release.export_html(executed, tmp_path / f"{name}.html").read_text()
    assert "<html" in html and "BEGIN SOLUTION" not in html and "END SOLUTION" not in html
    assert "data:image/png" in html
    title = release.notebook_title(run.notebook)
    assert f"<title>{html_escape(title)}</title>" in html and "<title>Notebook</title>" not in html
