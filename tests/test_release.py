"""The student release and the solutions release, built from one source."""

import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import release  # noqa: E402

TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".txt", ".yml"}


def source_regions():
    """Every line inside a solution region of the notebooks and helpers."""
    lines = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            source = cell.source.splitlines()
            for begin, end in release.find_regions(source, f"{path.name}, cell {index}"):
                lines += source[begin + 1:end]
    for path in sorted((ROOT / "helpers").glob("*.py")):
        source = path.read_text().splitlines()
        for begin, end in release.find_regions(source, path.name):
            lines += source[begin + 1:end]
    return lines


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "student"
    return out, release.build_student(ROOT, out)


def test_no_solution_line_reaches_the_student_release(student):
    out, _ = student
    # Lines of fewer than 8 non-space characters ("else:", "return X") and bare loop headers carry no
    # answer and are not searched.
    trivial = re.compile(r"^for \w+ in range\(\w+\):$")
    secret = {line.strip() for line in source_regions()
              if len(line.replace(" ", "")) >= 8 and not trivial.match(line.strip())}
    assert len(secret) > 30
    leaks = []
    for path in out.rglob("*"):
        if path.suffix in TEXT_SUFFIXES:
            text = path.read_text()
            if path.suffix == ".ipynb":
                text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
            present = {line.strip() for line in text.splitlines()}
            leaks += [f"{path.relative_to(out)}: {line}" for line in secret & present]
    assert not leaks, leaks


def test_student_release_is_complete_and_clean(student):
    out, built = student
    for name in ("helpers/__init__.py", "data/mnist_subset.npz", "requirements.txt", "README.md"):
        assert (out / name).exists(), name
    notebooks = sorted((out / "notebooks").glob("*.ipynb"))
    assert [p.name for p in notebooks] == [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
            assert release.BEGIN not in cell.source and release.END not in cell.source
    stubbed = (out / "helpers" / "optimizers.py").read_text()
    assert '        # YOUR CODE HERE\n        raise NotImplementedError("SimpleAdamMuP.layer_lr' in stubbed
    assert sum(len(blocks) for blocks in built.blocks.values()) >= 25


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
        assert [(c.cell_type, c.source) for c in back] == [(c.cell_type, c.source) for c in original], path.name


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_student_notebook_runs_to_its_first_stub(student, path):
    """Executed headlessly, each student notebook stops at its first stub with a
    NotImplementedError naming the part; no earlier cell fails."""
    import papermill

    out, _ = student
    notebook = out / "notebooks" / path.name
    with pytest.raises(papermill.PapermillExecutionError) as error:
        papermill.execute_notebook(str(notebook), str(out / f"executed_{path.name}"), parameters=dict(quick=True),
                                   kernel_name="mup-course", cwd=str(notebook.parent), progress_bar=False)
    assert error.value.ename == "NotImplementedError"
    # Part e (05) writes no code of its own: it stops at the muP optimizer that part c completes.
    expected = "03_mup_optimizer" if path.stem.startswith("05_") else path.stem
    assert expected in error.value.evalue, error.value.evalue


def write_notebook(folder: Path, cells) -> Path:
    (folder / "notebooks").mkdir(parents=True, exist_ok=True)
    (folder / "helpers").mkdir(exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    notebook = nbformat.v4.new_notebook(cells=cells)
    path = folder / "notebooks" / "99_broken.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.parametrize("cell, message", [
    (nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2"), "cell 1: ### BEGIN SOLUTION at line 2 without"),
    (nbformat.v4.new_code_cell("### END SOLUTION"), "cell 1: ### END SOLUTION at line 1 without"),
    (nbformat.v4.new_code_cell("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION"),
     "cell 1: nested"),
    (nbformat.v4.new_raw_cell("### BEGIN SOLUTION\nx\n### END SOLUTION"), "cell 1: solution markers in a raw cell"),
    (nbformat.v4.new_markdown_cell("```\n### BEGIN SOLUTION\nx\n### END SOLUTION\n```"), "fenced code block"),
])
def test_malformed_region_stops_the_build(tmp_path, cell, message):
    write_notebook(tmp_path / "src", [nbformat.v4.new_markdown_cell("# 99 · Broken (test)"), cell])
    with pytest.raises(release.ReleaseError, match="notebooks/99_broken.ipynb") as error:
        release.build_student(tmp_path / "src", tmp_path / "out")
    assert message in str(error.value)


def test_malformed_region_in_a_helper_names_the_file(tmp_path):
    write_notebook(tmp_path / "src", [nbformat.v4.new_markdown_cell("# 99 · Fine (test)")])
    (tmp_path / "src" / "helpers" / "broken.py").write_text("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(release.ReleaseError, match=r"helpers/broken.py: ### BEGIN SOLUTION at line 2 without"):
        release.build_student(tmp_path / "src", tmp_path / "out")


def test_solutions_release_has_outputs_html_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_ANSWERS_DIR", str(tmp_path / "answers"))
    written = release.build_solutions(tmp_path / "solutions", quick=True,
                                      notebooks=[ROOT / "notebooks" / "01_activation_deltas.ipynb"])
    executed = nbformat.read(tmp_path / "solutions" / "01_activation_deltas.ipynb", as_version=4)
    assert any(o.output_type == "display_data" for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    html = (tmp_path / "solutions" / "01_activation_deltas.html").read_text()
    assert "<html" in html and "follow the fan-in" in html
    assert sorted(p.name for p in (tmp_path / "solutions" / "figures" / "01_activation_deltas").glob("*.png")) == [
        "adam_deltas.png", "adam_deltas_alternating.png"]
    assert len(written) == 2
