"""Execute the numbered notebooks headlessly with papermill, several at a time, and time each.

    python scripts/run_notebooks.py [--out build/executed] [--jobs N] [--data-source S] [NOTEBOOK ...]

Used by ``make run``, ``make solutions``, ``make bench`` and the test suite (which
executes every notebook exactly once per run through :func:`execute_all`).

* The data source is resolved once here (``helpers.data.resolve_source``: at most
  one download attempt) and passed to every notebook as its ``data_source``
  parameter, so no notebook tries the download again.
* ``--jobs`` kernels run at once, each with ``cores // jobs`` threads (two torch
  processes at full thread count on 2 cores slow each other 15-30x); the longest
  notebooks start first.
* On Linux every kernel is forked from one process that has imported torch and
  matplotlib (``forked_kernels.KernelZygote``): ~2.5 s of CPU less per notebook than a
  fresh kernel, with the same outputs (``COURSE_FORKED_KERNELS=0``: fresh kernels).
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
sys.path.insert(0, str(ROOT))
KERNEL = "mup-course"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Full-size seconds on the 2-core CPU machine (make test, 2026-11-23), for scheduling only: longest
# first; a notebook not listed here goes first, since it may be long.
TYPICAL_SECONDS = {"08": 45, "09": 33, "05": 26, "12": 22, "11": 16, "10": 15, "07": 10, "06": 8, "00": 8,
                   "04": 7, "03": 7, "02": 6, "01": 6}


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


def run(notebook: Path, out_dir: Path, *, data_source: str, kernel: str = KERNEL, threads: int | None = None,
        answers_dir: Path | None = None, jupyter_path: str | None = None, **parameters) -> float:
    """Execute one notebook into ``out_dir`` (in this process); return the seconds it took.
    A failing cell raises papermill's PapermillExecutionError. ``jupyter_path``: a folder
    to search first for ``kernel`` (a forked kernel's spec)."""
    import papermill

    threads = threads or max(1, os.cpu_count() or 1)
    os.environ.update(kernel_environment(threads, answers_dir))  # the kernel inherits this process's environment
    if jupyter_path and not os.environ.get("JUPYTER_PATH", "").startswith(jupyter_path):
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [jupyter_path, os.environ.get("JUPYTER_PATH")]))
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(out_dir / notebook.name),
        parameters=dict(save_figures=True, data_source=data_source, **parameters),
        kernel_name=kernel,
        cwd=str(notebook.parent),
        progress_bar=False,
    )
    return time.perf_counter() - start


def _run_in_worker(notebook: Path, out_dir: Path, data_source: str, kernel: str, threads: int,
                   answers_dir: Path | None, jupyter_path: str | None, parameters: dict) -> Execution:
    start = time.perf_counter()
    try:
        run(notebook, out_dir, data_source=data_source, kernel=kernel, threads=threads, answers_dir=answers_dir,
            jupyter_path=jupyter_path, **parameters)
        error = None
    except Exception as failure:  # noqa: BLE001 - reported per notebook, the others go on
        # A failing cell: the exception it raised, then the end of papermill's report.
        name, value = getattr(failure, "ename", type(failure).__name__), getattr(failure, "evalue", "")
        error = f"{name}: {value}\n{str(failure)[-2000:]}"
    return Execution(notebook.stem, out_dir / notebook.name, time.perf_counter() - start, error)


def schedule(notebooks: list[Path]) -> list[Path]:
    """Longest first, so that two slow notebooks never end up last on one worker."""
    return sorted(notebooks, key=lambda p: -TYPICAL_SECONDS.get(p.name[:2], float("inf")))


def execute_all(notebooks: list[Path], out_dir: Path, *, jobs: int | None = None, data_source: str = "auto",
                answers_dir: Path | None = None, kernel: str = KERNEL, progress=None,
                **parameters) -> dict[str, Execution]:
    """Execute ``notebooks`` with ``jobs`` kernels at a time; return {name: Execution} in
    the order given. The data source is resolved once, here. Each kernel is forked from a
    process that has imported torch and matplotlib once (``forked_kernels``; saves ~2.5 s
    of CPU per notebook), on Linux and unless ``COURSE_FORKED_KERNELS=0``."""
    from contextlib import nullcontext

    from forked_kernels import SUPPORTED, KernelZygote
    from helpers.data import resolve_source

    jobs = jobs or default_jobs()
    # COURSE_KERNEL_THREADS pins the threads per kernel (for a machine shared with other work).
    threads = int(os.environ.get("COURSE_KERNEL_THREADS") or 0) or max(1, (os.cpu_count() or 1) // jobs)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    forked = SUPPORTED and os.environ.get("COURSE_FORKED_KERNELS", "1") != "0"
    zygote_env = {**os.environ, **kernel_environment(threads, answers_dir)}  # what every kernel gets
    with (KernelZygote(kernel, zygote_env) if forked else nullcontext()) as zygote, \
            ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        source = resolve_source(data_source)  # while the zygote imports
        name, path_first = (zygote.kernel_name, zygote.jupyter_path) if zygote else (kernel, None)
        futures = {pool.submit(_run_in_worker, path, out_dir, source, name, threads, answers_dir, path_first,
                               parameters): path for path in schedule(notebooks)}
        for future in futures:
            execution = future.result()
            results[execution.name] = execution
            if progress:
                progress(execution)
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
    (args.out / "run_times.json").write_text(json.dumps({"seconds": times, "wall_s": round(wall, 1)}, indent=2))
    failed = [name for name, e in results.items() if e.error]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
