"""One way to execute a notebook (scripts/run_notebooks.py): longest first by measured times,
a time limit per cell that names the notebook and the cell, and kernel noise kept in a log."""

import json
import time
from pathlib import Path

import nbformat

import coursetools.execute as run_notebooks

ROOT = Path(__file__).resolve().parents[1]


def test_the_longest_measured_notebooks_start_first_and_a_new_one_before_all(tmp_path):
    names = [Path(f"{n:02d}_x.ipynb") for n in range(4)]
    (tmp_path / run_notebooks.TIMES_FILE).write_text(json.dumps(
        {"seconds": {"00_x.ipynb": 3.0, "01_x.ipynb": 30.0, "02_x.ipynb": 9.0}}))
    order = run_notebooks.schedule(names, run_notebooks.measured_seconds(tmp_path))
    assert [p.name[:2] for p in order] == ["03", "01", "02", "00"]  # 03 was never measured: it may be long
    # without a run of its own, the last make bench decides, and it has measured every notebook
    fallback = run_notebooks.measured_seconds(tmp_path / "fresh")
    assert {p.name for p in run_notebooks.numbered_notebooks()} <= set(fallback)


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": run_notebooks.KERNEL, "display_name": "Python", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_a_hung_cell_fails_its_notebook_within_the_limit_naming_the_cell(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("COURSE_CELL_TIMEOUT", "4")
    hung = _notebook(tmp_path / "01_hung.ipynb", "x = 1", "import time\ntime.sleep(120)  # the hung cell")
    fine = _notebook(tmp_path / "02_fine.ipynb", "print('fine')")
    start = time.perf_counter()
    results = run_notebooks.execute_all([hung, fine], tmp_path / "out", jobs=2, data_source="subset")
    assert time.perf_counter() - start < 60
    error = results["01_hung"].error
    assert error and "timed out" in error and "time.sleep(120)  # the hung cell" in error, error
    assert results["02_fine"].error is None  # the other notebook is not affected
    terminal = capfd.readouterr()
    assert "without encryption" not in terminal.err + terminal.out  # the kernel's start-up warning ...
    log = (tmp_path / "out" / "02_fine.kernel.log").read_text()
    assert "without encryption" in log  # ... is in the notebook's kernel log
    recorded = json.loads((tmp_path / "out" / run_notebooks.TIMES_FILE).read_text())["seconds"]
    assert set(recorded) == {"02_fine.ipynb"}  # a failed run's time is no measurement
