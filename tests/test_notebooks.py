"""The numbered notebooks: committed shape (parameters cell, clean outputs, solution
regions), and what the one execution per test run shows about the harness (checked
cells, embedded figures, the resolved data source, one kernel per notebook). The
answers themselves are checked in test_answers_*.py."""

import os
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
EXPECTED = [
    "00_rms_scaling_theory", "01_activation_deltas", "02_update_norms", "03_mup_optimizer",
    "04_per_weight_multipliers", "05_hyperparameter_transfer", "06_shampoo_orthogonalization",
    "07_muon_newton_schulz", "08_muon_training",
    "09_adam_bias_correction", "10_epsilon_schedules", "11_muon_linear_regression", "12_coordinate_check",
    "13_mup_papers",
]
PARAMETERS = ("device", "data_source", "seed", "save_figures")
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def notebook_paths():
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def read(path):
    return nbformat.read(path, as_version=4)


def test_every_homework_notebook_is_there():
    names = [p.stem for p in notebook_paths()]
    for name in EXPECTED:
        assert name in names


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_parameters_cell_comes_first_and_reads_the_environment(path):
    notebook = read(path)
    # The Colab setup cell (scripts/sync_colab_cell.py) comes right after the title and does nothing outside Colab.
    code_cells = [c for c in notebook.cells
                  if c.cell_type == "code" and "colab-setup" not in c.metadata.get("tags", [])]
    first = code_cells[0]
    assert "parameters" in first.metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    for name in PARAMETERS:
        assert re.search(rf"^{name} = ", first.source, re.M), f"parameters cell lacks {name}"
    for variable in ("COURSE_DEVICE", "COURSE_DATA_SOURCE"):
        assert variable in first.source
    assert "quick" not in first.source  # one size: the run the student sees is the run the tests check
    assert notebook.metadata["kernelspec"]["name"] == "mup-course"


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_committed_outputs_only_in_checked_cells(path):
    notebook = read(path)
    checked = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(CHECK_MARK):
            checked += 1
            assert cell.outputs, f"cell {index} is checked (its output is compared) but has no committed output"
            assert cell.execution_count is not None
            for output in cell.outputs:
                assert output.output_type == "stream", f"cell {index}: only text output is committed"
        else:
            assert not cell.outputs and cell.execution_count is None, f"cell {index} carries outputs"
    assert checked >= 1 or path.stem.startswith("00_")


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_solution_regions_are_well_formed_and_written_answers_are_tagged_cells(path):
    """Code regions between the markers; written answers are markdown cells tagged 'answer' (so
    no marker renders as a heading in JupyterLab); no marker in a markdown or raw cell."""
    from coursetools.regions import BEGIN, END, find_regions, is_answer_cell

    code_regions, answers = 0, 0
    for index, cell in enumerate(read(path).cells):
        if cell.cell_type == "code":
            code_regions += len(find_regions(cell.source.splitlines(), f"{path.name}, cell {index}"))
        else:
            assert BEGIN not in cell.source and END not in cell.source, f"{path.name}, cell {index}"
            answers += is_answer_cell(cell)
    assert answers >= 1  # every notebook asks for written answers
    shows_helper_code = any("show_source(" in c.source for c in read(path).cells if c.cell_type == "code")
    if not path.stem.startswith("05_"):  # part e only runs the sweeps; the others ask for code too
        assert code_regions >= 1 or shows_helper_code


# ---------------------------------------------------------------- the one execution per test run
# nbval compares the `# NBVAL_CHECK_OUTPUT` cells with their committed output while it executes
# each notebook (make test: pytest --nbval-lax notebooks tests); these tests read that execution.
def executions():
    """(notebook, folder, data source) of every kernel that started a NotebookSession in this run."""
    log = Path(os.environ["COURSE_EXECUTION_LOG"])
    return [tuple(line.split("\t")) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_every_figure_is_embedded_although_mplbackend_is_agg(executed_notebooks, path):
    """conftest sets MPLBACKEND=Agg, as headless CI images do: each figure a notebook saves
    must still be in the executed notebook (and hence in its HTML)."""
    assert os.environ["MPLBACKEND"] == "Agg"
    run = executed_notebooks[path.stem]
    saves = sum(c.source.count("nb.save(") for c in run.notebook.cells if c.cell_type == "code")
    images = sum("image/png" in o.get("data", {}) for c in run.notebook.cells if c.cell_type == "code"
                 for o in c.outputs)
    assert images >= saves, f"{path.stem}: {saves} figures saved, {images} embedded"


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_the_data_source_is_resolved_once_for_every_notebook(executed_notebooks, path):
    """Each notebook gets 'full' or 'subset', never 'auto', so it never tries the download
    itself, and no download warning reaches its output."""
    run = executed_notebooks[path.stem]
    sources = {source for name, _, source in executions() if name == path.stem}
    assert sources and sources <= {"full", "subset", "None"}, sources  # None: a notebook without MNIST
    stderr = "".join(o.get("text", "") for c in run.notebook.cells if c.cell_type == "code"
                     for o in c.outputs if o.output_type == "stream" and o.name == "stderr")
    assert "full MNIST" not in stderr and "Downloading" not in stderr
    assert "could not be downloaded" not in run.stdout and "not tried again" not in run.stdout


@pytest.mark.last
def test_each_notebook_was_executed_once_in_this_test_run(executed_notebooks):
    """Counts the kernels that ran a source notebook (each NotebookSession logs its start):
    one each, although nbval's output checks, the answer tests and the figure tests all use them."""
    from collections import Counter

    ran = {name for name in executed_notebooks.expected() if executed_notebooks[name]}  # waits for each
    starts = Counter(name for name, folder, _ in executions() if Path(folder) == NOTEBOOK_DIR)
    assert {name: starts[name] for name in ran} == {name: 1 for name in ran}
    assert set(starts) <= ran, f"executed outside the one execution: {set(starts) - ran}"


SOURCE_CITATION = re.compile(r"\b00[0-4]_[0-9a-f]{6,}|worked answer|student'?s attempt|research notes'?", re.I)


def test_no_notebook_helper_or_readme_cites_a_source_document():
    """Students never see the worked answer or the student attempt the suite was designed from:
    errata name a mistake as a mistake, and only the handout may be cited."""
    texts = {path.relative_to(ROOT): path.read_text() for path in
             [ROOT / "README.md", ROOT / "release" / "README.md", *sorted((ROOT / "helpers").glob("*.py"))]}
    for path in notebook_paths():
        texts[path.relative_to(ROOT)] = "\n".join(cell.source for cell in read(path).cells)
    cited = {str(name): SOURCE_CITATION.findall(text) for name, text in texts.items() if SOURCE_CITATION.search(text)}
    assert not cited, cited
