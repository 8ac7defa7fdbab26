"""Execute the numbered notebooks headlessly with papermill and time each.

    python scripts/run_notebooks.py [--quick] [--out build/executed] [NOTEBOOK ...]

Figures are saved under build/figures/<notebook>/ (``save_figures=True``); the
times go to <out>/run_times.json. Used by ``make run`` and ``make solutions``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import papermill

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "mup-course"


def numbered_notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def run(notebook: Path, out_dir: Path, quick: bool, kernel: str = KERNEL, **parameters) -> float:
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(out_dir / notebook.name),
        parameters=dict(quick=quick, save_figures=True, **parameters),
        kernel_name=kernel,
        cwd=str(notebook.parent),
        progress_bar=False,
    )
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--quick", action="store_true", help="shrink the sweeps (as CI does)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "executed")
    parser.add_argument("--kernel", default=KERNEL)
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or numbered_notebooks()
    args.out.mkdir(parents=True, exist_ok=True)
    times = {}
    for notebook in notebooks:
        seconds = run(notebook, args.out, args.quick, args.kernel)
        times[notebook.name] = round(seconds, 1)
        print(f"{notebook.name:<40} {seconds:6.1f} s", flush=True)
    total = sum(times.values())
    print(f"{'total':<40} {total:6.1f} s")
    (args.out / "run_times.json").write_text(json.dumps({"quick": args.quick, "seconds": times, "total": total},
                                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
