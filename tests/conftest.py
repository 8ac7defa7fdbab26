import json
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Headless servers and CI images often set MPLBACKEND=Agg; the notebooks must still embed their
# figures (they choose the inline backend themselves, and the runner gives every kernel it).
os.environ["MPLBACKEND"] = "Agg"

from helpers.data import load_mnist  # noqa: E402


def available_devices():
    """cpu always; cuda and mps when this machine has them."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@pytest.fixture(params=available_devices())
def device(request):
    return torch.device(request.param)


@pytest.fixture(scope="session")
def mnist_subset():
    return load_mnist("subset")


@pytest.fixture
def no_course_env(monkeypatch):
    for name in ("COURSE_DEVICE", "COURSE_DATA_SOURCE", "COURSE_DATA_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return os.environ


# ---------------------------------------------------------------- the notebooks, executed once per test run
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


class NotebookRun:
    """One executed notebook: its recorded answers, its printed text, its prose and the executed cells."""

    def __init__(self, name, execution, answers_dir):
        import nbformat

        self.name, self.seconds, self.error = name, execution.seconds, execution.error
        self.notebook = nbformat.read(execution.output, as_version=4) if execution.output.exists() else None
        answers = answers_dir / f"{name}.json"
        self.answers = json.loads(answers.read_text()) if answers.exists() else {}
        cells = self.notebook.cells if self.notebook is not None else []
        self.stdout = "".join(o.get("text", "") for c in cells if c.cell_type == "code"
                              for o in c.outputs if o.output_type == "stream" and o.name == "stdout")
        self.markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")

    def require(self):
        """Fail the calling test with the notebook's own error if it did not run to the end."""
        if self.error:
            pytest.fail(f"{self.name} failed to execute: {self.error}")
        return self


class ExecutedNotebooks(dict):
    """{name: NotebookRun} of every numbered notebook, each executed exactly once (at full size,
    two kernels at a time on this machine) when a test first asks."""

    def __getitem__(self, name):
        if name not in self and os.environ.get("COURSE_TEST_NOTEBOOKS"):
            pytest.skip(f"{name} is not among COURSE_TEST_NOTEBOOKS")
        return dict.__getitem__(self, name).require()


def pytest_configure(config):
    # Every NotebookSession appends "<name>\t<folder>" here: test_notebooks counts the executions.
    log = ROOT / "build" / "test-executions.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    config.addinivalue_line("markers", "last: runs after every other test")
    config.addinivalue_line("markers", "notebooks: uses the notebooks executed once per test run")
    os.environ["COURSE_EXECUTION_LOG"] = str(log)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``last`` run after every other test (they check what the whole run did); tests
    that use the executed notebooks are marked ``notebooks`` (``make unit`` leaves them out)."""
    for item in items:
        if "executed_notebooks" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.notebooks)
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture(scope="session")
def executed_notebooks(tmp_path_factory):
    sys.path.insert(0, str(ROOT / "scripts"))
    import run_notebooks

    out_dir, answers_dir = tmp_path_factory.mktemp("executed"), tmp_path_factory.mktemp("answers")
    paths = run_notebooks.numbered_notebooks()
    if os.environ.get("COURSE_TEST_NOTEBOOKS"):  # while developing: e.g. "05,08" executes only those two
        wanted = {prefix.strip() for prefix in os.environ["COURSE_TEST_NOTEBOOKS"].split(",")}
        paths = [p for p in paths if p.name[:2] in wanted]
    results = run_notebooks.execute_all(paths, out_dir, data_source=os.environ.get("COURSE_DATA_SOURCE", "auto"),
                                        answers_dir=answers_dir)
    runs = ExecutedNotebooks({name: NotebookRun(name, execution, answers_dir) for name, execution in results.items()})
    times = {name: round(execution.seconds, 1) for name, execution in results.items()}
    (ROOT / "build" / "test-notebook-times.json").write_text(json.dumps(times, indent=2))  # where the time goes
    return runs
