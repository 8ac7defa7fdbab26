"""Execute the numbered notebooks headlessly with papermill, several at a time, and time each.

    python scripts/run_notebooks.py [--out build/executed] [--jobs N] [--data-source S] [NOTEBOOK ...]

The one way the suite executes a notebook: ``make run``, ``make solutions``, ``make bench``, the
refresh of checked outputs (:mod:`coursetools.refresh`) and a test that asks for a notebook nbval
does not validate in its run all come through :func:`run`.

* The data source is resolved once here (``helpers.data.resolve_source``: at most
  one download attempt) and passed to every notebook as its ``data_source``
  parameter, so no notebook tries the download again.
* ``--jobs`` kernels run at once, each with ``cores // jobs`` threads (two torch
  processes at full thread count on 2 cores slow each other 15-30x); the notebooks that
  took longest in the last measured run (``<out>/run_times.json``) start first, a new
  one before all.
* Every cell has a time limit (``COURSE_CELL_TIMEOUT``, default :data:`CELL_TIMEOUT` s):
  a hung cell fails its notebook, and the report names the notebook and shows the cell.
* What a kernel process itself prints (its start-up warnings) goes to
  ``<out>/<notebook>.kernel.log``, not into the terminal.
* The kernels get a fixed environment: the inline matplotlib backend (an inherited
  ``MPLBACKEND=Agg`` would silently drop every figure), the thread counts, and the
  answer folder. Nothing else of the caller's matplotlib or thread settings leaks in.

Figures are saved under ``build/figures/<notebook>/`` (``save_figures=True``); the
times go to ``<out>/run_times.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "mup-course"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
CELL_TIMEOUT = 300  # seconds; the longest cell takes about 30 s on a 2-core CPU
TIMES_FILE = "run_times.json"
# The last measured times (make bench writes them), for the order only when out_dir has none yet.
MEASURED = ROOT / "benchmarks" / "notebook_seconds.json"


@dataclass
class Execution:
    """One notebook run: where its executed copy is, how long it took, and the error if it failed."""

    name: str
    output: Path
    seconds: float
    error: str | None = None


def numbered_notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def default_jobs() -> int:
    """Two kernels at a time on a small machine, more where there are many cores."""
    return max(1, min(6, (os.cpu_count() or 1) // 2 if (os.cpu_count() or 1) > 4 else 2))


def kernel_environment(threads: int, answers_dir: Path | None = None) -> dict[str, str]:
    """The variables every kernel runs with, whatever the caller's environment says."""
    env = {name: str(threads) for name in THREAD_VARIABLES}
    env["MPLBACKEND"] = INLINE_BACKEND
    env["KERAS_BACKEND"] = "torch"
    env["PYTHONHASHSEED"] = "0"
    if answers_dir is not None:
        env["COURSE_ANSWERS_DIR"] = str(answers_dir)
    return env


def cell_timeout() -> int:
    return int(os.environ.get("COURSE_CELL_TIMEOUT") or CELL_TIMEOUT)


def run(notebook: Path, out_dir: Path, *, data_source: str, kernel: str = KERNEL, threads: int | None = None,
        answers_dir: Path | None = None, timeout: int | None = None, **parameters) -> float:
    """Execute one notebook into ``out_dir`` (in this process) with a time limit per cell; return
    the seconds it took. A failing cell raises papermill's PapermillExecutionError, a cell past
    its limit nbclient's CellTimeoutError (with the cell's first lines)."""
    import papermill

    threads = threads or max(1, os.cpu_count() or 1)
    os.environ.update(kernel_environment(threads, answers_dir))  # the kernel inherits this process's environment
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(out_dir / notebook.name),
        parameters={"save_figures": True, "data_source": data_source, **parameters},
        kernel_name=kernel,
        cwd=str(notebook.parent),
        progress_bar=False,
        execution_timeout=timeout or cell_timeout(),
    )
    return time.perf_counter() - start


def _run_in_worker(notebook: Path, out_dir: Path, data_source: str, kernel: str, threads: int,
                   answers_dir: Path | None, parameters: dict) -> Execution:
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    log = os.open(out_dir / f"{notebook.stem}.kernel.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 2)  # the kernel inherits this worker's stderr: its start-up warnings go to the log
    os.close(log)
    try:
        run(notebook, out_dir, data_source=data_source, kernel=kernel, threads=threads, answers_dir=answers_dir,
            **parameters)
        error = None
    except Exception as failure:  # noqa: BLE001 - reported per notebook, the others go on
        # A failing cell: the exception it raised, then the end of papermill's report.
        name, value = getattr(failure, "ename", type(failure).__name__), getattr(failure, "evalue", "")
        error = f"{name}: {value}\n{str(failure)[-2000:]}"
    return Execution(notebook.stem, out_dir / notebook.name, time.perf_counter() - start, error)


def measured_seconds(out_dir: Path) -> dict[str, float]:
    """Each notebook's seconds in the last run written to ``out_dir``, else in the last
    ``make bench`` (:data:`MEASURED`); empty when neither has them."""
    for path in (out_dir / TIMES_FILE, MEASURED):
        try:
            return dict(json.loads(path.read_text())["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return {}


def schedule(notebooks: list[Path], seconds: dict[str, float]) -> list[Path]:
    """Longest first by the measured ``seconds`` ({"NN_name.ipynb": s}), so that two slow notebooks
    never end up last on one worker; a notebook without a measurement first, since it may be long."""
    return sorted(notebooks, key=lambda p: -seconds.get(p.name, float("inf")))


def execute_all(notebooks: list[Path], out_dir: Path, *, jobs: int | None = None, data_source: str = "auto",
                answers_dir: Path | None = None, kernel: str = KERNEL, progress=None,
                **parameters) -> dict[str, Execution]:
    """Execute ``notebooks`` with ``jobs`` kernels at a time; return {name: Execution} in
    the order given. The data source is resolved once, here; the measured times are added
    to ``<out_dir>/run_times.json``."""
    from helpers.data import resolve_source

    jobs = jobs or default_jobs()
    # COURSE_KERNEL_THREADS pins the threads per kernel (for a machine shared with other work).
    threads = int(os.environ.get("COURSE_KERNEL_THREADS") or 0) or max(1, (os.cpu_count() or 1) // jobs)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    seconds = measured_seconds(out_dir)
    source = resolve_source(data_source)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_run_in_worker, path, out_dir, source, kernel, threads, answers_dir,
                               parameters): path for path in schedule(notebooks, seconds)}
        for future in futures:
            execution = future.result()
            results[execution.name] = execution
            if progress:
                progress(execution)
    try:
        previous = json.loads((out_dir / TIMES_FILE).read_text())
    except (OSError, ValueError):
        previous = {}
    recorded = dict(previous.get("seconds", {}))  # this folder's own measurements, never the fallback's
    recorded.update({f"{name}.ipynb": round(e.seconds, 1) for name, e in results.items() if e.error is None})
    (out_dir / TIMES_FILE).write_text(json.dumps({**previous, "seconds": recorded}, indent=2))
    return {path.stem: results[path.stem] for path in notebooks}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "executed")
    parser.add_argument("--jobs", type=int, default=None, help="kernels at a time (default: 2 on <= 4 cores)")
    parser.add_argument("--data-source", default=os.environ.get("COURSE_DATA_SOURCE", "auto"),
                        help="auto, full or subset; resolved once for every notebook")
    parser.add_argument("--kernel", default=KERNEL)
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or numbered_notebooks()
    start = time.perf_counter()

    def report(execution: Execution) -> None:
        status = "" if execution.error is None else f"  FAILED: {execution.error.splitlines()[0][:200]}"
        print(f"{execution.name + '.ipynb':<40} {execution.seconds:6.1f} s{status}", flush=True)

    results = execute_all(notebooks, args.out, jobs=args.jobs, data_source=args.data_source, kernel=args.kernel,
                          progress=report)
    wall = time.perf_counter() - start
    times = {f"{name}.ipynb": round(e.seconds, 1) for name, e in results.items()}
    print(f"{'wall clock (all notebooks)':<40} {wall:6.1f} s ({sum(times.values()):.1f} s of notebook time)")
    recorded = json.loads((args.out / TIMES_FILE).read_text())
    (args.out / TIMES_FILE).write_text(json.dumps({**recorded, "wall_s": round(wall, 1)}, indent=2))
    failed = [name for name, e in results.items() if e.error]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
