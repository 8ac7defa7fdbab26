"""The numbered notebooks: committed shape (parameters cell, clean outputs,
solution regions) and a quick papermill run whose stored answers must show the
facts pinned in test_helpers.py."""

import json
import math
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
NOTEBOOK_DIR = ROOT / "notebooks"
EXPECTED = [
    "00_rms_scaling_theory", "01_activation_deltas", "02_update_norms", "03_mup_optimizer",
    "04_per_weight_multipliers", "05_hyperparameter_transfer", "06_shampoo_orthogonalization",
    "07_muon_newton_schulz", "08_muon_training",
    "09_adam_bias_correction", "10_epsilon_schedules", "11_muon_linear_regression",
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
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
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
            assert cell.outputs, f"cell {index} is checked by nbval but has no committed output"
            assert cell.execution_count is not None
            for output in cell.outputs:
                assert output.output_type == "stream", f"cell {index}: only text output is committed"
        else:
            assert not cell.outputs and cell.execution_count is None, f"cell {index} carries outputs"
    assert checked >= 1 or path.stem.startswith("00_")


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_solution_regions_are_well_formed(path):
    from release import find_regions  # scripts/release.py, the student-release builder

    regions = {"code": 0, "markdown": 0, "raw": 0}
    notebook = read(path)
    for index, cell in enumerate(notebook.cells):
        regions[cell.cell_type] += len(find_regions(cell.source.splitlines(), f"{path.name}, cell {index}"))
    assert regions["markdown"] >= 1, regions  # every notebook asks for written answers
    assert regions["raw"] == 0
    shows_helper_code = any("show_source(" in c.source for c in notebook.cells if c.cell_type == "code")
    if not path.stem.startswith("05_"):  # part e only runs the sweeps; the others ask for code too
        assert regions["code"] >= 1 or shows_helper_code, regions
