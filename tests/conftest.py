import json
import os
from pathlib import Path

import pytest
import torch
from nbval.plugin import IPyNbCell

from helpers.data import load_mnist

ROOT = Path(__file__).resolve().parents[1]
# Headless servers and CI images often set MPLBACKEND=Agg; the notebooks must still embed their
# figures (they choose the inline backend themselves: `%matplotlib inline`).
os.environ["MPLBACKEND"] = "Agg"


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
# `make test` runs `pytest --nbval-lax -n 2 --dist loadscope notebooks tests`: nbval executes each
# notebook (one kernel, every cell a test item, the `# NBVAL_CHECK_OUTPUT` cells compared with their
# committed output), and that one execution is what the answer tests read: the kernels record their
# answers in RUN_DIR/answers, and the hooks below write each notebook's executed copy to
# RUN_DIR/executed when its last cell has run. Under pytest-xdist the notebooks are scheduled before
# every test module and longest first, so a test waiting for one never waits behind itself.
# Without --nbval-lax (one test file while developing) a notebook a test asks for is executed once
# with papermill, through the same execution path as `make run`.
RUN_DIR = ROOT / "build" / "test-run"
TIMES = ROOT / "benchmarks" / "notebook_seconds.json"
WAIT_LIMIT = 1800  # seconds a test waits for another worker's notebook before it gives up


class NotebookRun:
    """One executed notebook: its recorded answers, its printed text, its prose and the executed cells."""

    def __init__(self, name, record):
        import nbformat

        self.name, self.seconds, self.error = name, record["seconds"], record["error"]
        output = Path(record["output"])
        self.notebook = nbformat.read(output, as_version=4) if output.exists() else None
        answers = RUN_DIR / "answers" / f"{name}.json"
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


def _is_controller(config):
    return not hasattr(config, "workerinput")


def _validating(config):
    return bool(getattr(config.option, "nbval_lax", False) or getattr(config.option, "nbval", False))


def pytest_configure(config):
    config.addinivalue_line("markers", "last: runs after every other test")
    config.addinivalue_line("markers", "notebooks: uses the notebooks executed once per test run")
    if _is_controller(config):
        # Set here, before pytest-xdist starts its workers: they and every kernel inherit it.
        import shutil

        shutil.rmtree(RUN_DIR, ignore_errors=True)
        (RUN_DIR / "executed").mkdir(parents=True)
        (RUN_DIR / "answers").mkdir()
        # Every NotebookSession appends "<name>\t<folder>\t<data source>" here: test_notebooks counts them.
        os.environ["COURSE_EXECUTION_LOG"] = str(RUN_DIR / "executions.log")
        os.environ["COURSE_ANSWERS_DIR"] = str(RUN_DIR / "answers")
        if _validating(config):
            from coursetools.execute import kernel_environment
            from helpers.data import resolve_source

            # The kernels nbval starts get what `make run` gives its kernels (one thread each, two at a
            # time), the data source resolved once, and the figures saved; MPLBACKEND stays Agg, as on CI.
            os.environ.update({k: v for k, v in kernel_environment(1).items() if k != "MPLBACKEND"})
            os.environ["COURSE_DATA_SOURCE"] = resolve_source(os.environ.get("COURSE_DATA_SOURCE", "auto"))
            os.environ["COURSE_SAVE_FIGURES"] = "1"
    if hasattr(config, "workerinput"):
        torch.set_num_threads(1)  # two workers share the cores with the kernels


def _measured_seconds():
    try:
        return json.loads(TIMES.read_text())["seconds"]
    except (OSError, ValueError, KeyError):
        return {}


def _is_notebook_cell(item):
    return isinstance(item, IPyNbCell)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Notebook cells first, the longest notebook first (as `make run` orders them), then the tests;
    tests marked ``last`` at the end; tests that use the executed notebooks are marked ``notebooks``
    (``make unit`` leaves them out). The order is the same in every xdist worker."""
    seconds = _measured_seconds()
    notebook_files = {}
    for item in items:
        if "executed_notebooks" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.notebooks)
        if _is_notebook_cell(item):
            notebook_files.setdefault(item.parent, []).append(item)
    rank = {parent: (-seconds.get(parent.path.name, float("inf")), parent.path.name) for parent in notebook_files}
    position = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (not _is_notebook_cell(item),
                                 rank[item.parent] if _is_notebook_cell(item) else (0, ""),
                                 item.get_closest_marker("last") is not None,
                                 position[id(item)]))
    for parent, cells in notebook_files.items():
        parent.last_cell = cells[-1]
    config.validated_notebooks = {parent.path.stem for parent in notebook_files}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """After each notebook cell: keep its outputs; after the notebook's last cell, write the executed
    notebook and what the run took (the answer tests wait for that file)."""
    import time

    parent = item.parent if _is_notebook_cell(item) else None
    if parent is not None and not hasattr(parent, "outputs"):
        parent.outputs, parent.error, parent.started = {}, None, time.perf_counter()
    yield
    if parent is None:
        return
    parent.outputs[item.cell_num] = getattr(item, "test_outputs", [])
    if parent.error is None:
        failed = [report for report in getattr(item, "reports", ()) if report.failed]
        if failed:
            parent.error = f"cell {item.cell_num} failed: {failed[0].longreprtext[-2000:]}"
    if item is getattr(parent, "last_cell", None):
        _write_executed(parent.path, parent.outputs, parent.error, time.perf_counter() - parent.started)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if _is_notebook_cell(item):
        item.reports = [*getattr(item, "reports", ()), outcome.get_result()]


def _write_executed(path, outputs, error, seconds):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code):
        cell.outputs = [nbformat.from_dict(dict(o)) for o in outputs.get(number, [])]
    output = RUN_DIR / "executed" / path.name
    nbformat.write(notebook, output)
    record = {"output": str(output), "seconds": round(seconds, 1), "error": error}
    (RUN_DIR / "executed" / f"{path.stem}.json").write_text(json.dumps(record))


class ExecutedNotebooks:
    """{name: NotebookRun}: every numbered notebook, executed once per test run. A notebook nbval
    validates in this run is read when its last cell has run (in any worker); any other is executed
    here with papermill (once, whichever worker asks first)."""

    def __init__(self, config):
        self.validated, self.runs = getattr(config, "validated_notebooks", set()), {}

    def names(self):
        import coursetools.execute as execute

        return [path.stem for path in execute.numbered_notebooks()]

    def expected(self):
        """The notebooks this run executes: those nbval validates, or (without nbval) every one wanted."""
        if self.validated:
            return sorted(self.validated)
        return [name for name in self.names() if self._wanted(name)]

    def _wanted(self, name):
        wanted = os.environ.get("COURSE_TEST_NOTEBOOKS")
        return not wanted or name[:2] in {prefix.strip() for prefix in wanted.split(",")}

    def __getitem__(self, name):
        if name not in self.runs:
            if not self._wanted(name):
                pytest.skip(f"{name} is not among COURSE_TEST_NOTEBOOKS")
            self.runs[name] = NotebookRun(name, self._record(name))
        return self.runs[name].require()

    def _record(self, name):
        import time

        record = RUN_DIR / "executed" / f"{name}.json"
        if name not in self.validated:
            self._execute(name)
        deadline = time.monotonic() + WAIT_LIMIT
        while not record.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"{name} was not executed within {WAIT_LIMIT} s")
            time.sleep(0.2)
        return json.loads(record.read_text())

    def _execute(self, name):
        """papermill, once per run: the first worker to take the lock executes, the others wait."""
        import coursetools.execute as execute

        try:
            os.close(os.open(RUN_DIR / "executed" / f"{name}.lock", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        path = next(p for p in execute.numbered_notebooks() if p.stem == name)
        result = execute.execute_all([path], RUN_DIR / "papermill", data_source=os.environ.get(
            "COURSE_DATA_SOURCE", "auto"), answers_dir=RUN_DIR / "answers")[name]
        record = {"output": str(result.output), "seconds": round(result.seconds, 1), "error": result.error}
        (RUN_DIR / "executed" / f"{name}.json").write_text(json.dumps(record))


@pytest.fixture(scope="session")
def executed_notebooks(request):
    return ExecutedNotebooks(request.config)


def pytest_sessionfinish(session):
    """Where the time went: each executed notebook's seconds (build/test-notebook-times.json)."""
    if _is_controller(session.config):
        records = {p.stem: json.loads(p.read_text()) for p in sorted((RUN_DIR / "executed").glob("*.json"))}
        times = {name: record["seconds"] for name, record in records.items()}
        if times:
            (ROOT / "build" / "test-notebook-times.json").write_text(json.dumps(times, indent=2))
