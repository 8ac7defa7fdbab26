"""Time the grader on synthetic submissions (the solutions and the classic mistakes).

    python benchmarks/bench_grading.py [N] [--jobs 1]      (make bench runs it with N = 20)

The submissions are built by the tests' fixtures (``tests/grading_fixtures.py``); the grader
itself never imports them. Prints the start-up, the reference's self-test and the time per
submission as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import grading_fixtures  # noqa: E402

from grading.grader import Grader, Options  # noqa: E402


def bench(count: int = 20, jobs: int = 1, out: Path | None = None) -> dict:
    """Grade ``count`` synthetic submissions; the times."""
    with tempfile.TemporaryDirectory(prefix="grade-bench-") as tmp:
        tmp = Path(tmp)
        grading_fixtures.bench_submissions(tmp / "submissions", count)
        start = time.monotonic()
        grader = Grader(Options(jobs=jobs, progress=False), protect=[tmp])
        started = time.monotonic()
        try:
            grader.self_test()
            tested = time.monotonic()
            grader.options.self_test = False
            summary = grader.grade_folder(tmp / "submissions", out or tmp / "grades")
        finally:
            grader.close()
        end = time.monotonic()
    return dict(submissions=count, jobs=jobs, startup_s=round(started - start, 2),
                reference_s=round(tested - started, 2), grading_s=round(end - tested, 2),
                per_submission_s=round((end - tested) / count, 2), total_s=round(end - start, 2),
                failed_to_run=summary["failed_to_run"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=20, help="synthetic submissions (20)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once (1)")
    args = parser.parse_args(argv)
    print(json.dumps(bench(args.count, args.jobs), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
