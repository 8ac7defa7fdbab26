"""Gradescope: the autograder zip (``make gradescope``) and what it runs for every submission.

Gradescope's autograder specification: the zip holds ``setup.sh`` (run once, as root, when
Gradescope builds the autograder's Ubuntu image; it installs the pinned packages) and
``run_autograder`` (run for every submission in a fresh container, in ``/autograder``). The
zip is unpacked in ``/autograder/source``; the student's upload is in
``/autograder/submission`` (the hand-in zip, or its files, possibly one folder deeper); the
results go to ``/autograder/results/results.json``: one test per graded part (``name``,
``score``, ``max_score``, ``output``, ``visibility``) and the total ``score``.

The zip carries the instructor's tree as the grader needs it: ``grading/`` (the hidden
tests), ``helpers/`` and ``notebooks/`` (the reference, from which the student release is
built at start-up), ``data/``, ``release/`` and ``coursetools/``. The student release
never holds any of ``grading/`` (``coursetools/release.py``).

``AUTOGRADER_ROOT`` replaces ``/autograder`` (the tests simulate Gradescope under a temporary
folder); ``AUTOGRADER_PYTHON`` replaces the environment ``setup.sh`` makes (``<root>/venv``).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = "/autograder"
# Gradescope's test visibilities: hidden, after_due_date, after_published, visible. The feedback names
# the mistakes a part's hidden tests found: kept back until the instructor publishes the grades.
VISIBILITY = "after_published"
CONFIG = "gradescope.json"
CPU_WHEELS = "https://download.pytorch.org/whl/cpu"

# What the zip holds, relative to the course folder (the grader's own needs; nothing of build/ or tests/).
SHIPPED = ("grading/**/*.py", "coursetools/*.py", "helpers/*.py", "notebooks/*.ipynb", "data/*", "release/*",
           "requirements.txt")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu): Python 3.11
# and the course's pinned packages, PyTorch as its CPU wheel (no GPU there, and no multi-GB CUDA build).
set -euxo pipefail
ROOT="${{AUTOGRADER_ROOT:-{default_root}}}"
cd "$ROOT/source"
if ! command -v python3.11 >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    if ! apt-get install -y python3.11 python3.11-venv; then  # Ubuntu 22.04 has it; later releases through a PPA
        apt-get install -y software-properties-common
        add-apt-repository -y ppa:deadsnakes/ppa
        apt-get update
        apt-get install -y python3.11 python3.11-venv
    fi
fi
python3.11 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
"$ROOT/venv/bin/python" -m pip install --quiet "torch=={torch}" --index-url {cpu_wheels}
"$ROOT/venv/bin/python" -m pip install --quiet -r requirements.txt
"$ROOT/venv/bin/python" -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__)"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission, in a fresh container, from /autograder: it grades
# /autograder/submission and writes /autograder/results/results.json (grading/gradescope.py).
ROOT="${{AUTOGRADER_ROOT:-{default_root}}}"
PYTHON="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
cd "$ROOT/source"  # python -m puts the source folder first on the path: its grading/, coursetools/, helpers/
exec "$PYTHON" -B -m grading.gradescope run --root "$ROOT"
"""


# ---------------------------------------------------------------- the zip
def torch_pin(requirements: str) -> str:
    match = re.search(r"^torch==([\w.+-]+)\s*$", requirements, re.M)
    if not match:
        raise ValueError("requirements.txt pins no torch version (torch==X.Y.Z)")
    return match.group(1)


def shipped_files(source: Path = ROOT) -> list[str]:
    found = set()
    for pattern in SHIPPED:
        for path in source.glob(pattern):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(path.relative_to(source).as_posix())
    return sorted(found)


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed: the same tree gives the same zip
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    archive.writestr(info, data)


def build(out: Path, source: Path = ROOT, visibility: str = VISIBILITY, time_limit: float | None = None,
          memory_mb: int | None = None) -> Path:
    """Write the autograder zip ``out``: setup.sh and run_autograder at its root, the grader's files."""
    from grading.grader import Options

    requirements = (source / "requirements.txt").read_text()
    config = dict(visibility=visibility, time_limit=time_limit or Options.time_limit,
                  memory_mb=memory_mb or Options.memory_mb)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH.format(default_root=DEFAULT_ROOT, torch=torch_pin(requirements),
                                                  cpu_wheels=CPU_WHEELS).encode(), executable=True)
        _add(archive, "run_autograder", RUN_AUTOGRADER.format(default_root=DEFAULT_ROOT).encode(), executable=True)
        _add(archive, CONFIG, (json.dumps(config, indent=1) + "\n").encode())
        for name in shipped_files(source):
            _add(archive, name, (source / name).read_bytes(), executable=name.endswith(".sh"))
    os.replace(partial, out)
    return out


# ---------------------------------------------------------------- one submission, on Gradescope
def read_upload(folder: Path):
    """The student's upload: the release's files in ``folder`` (at most a few folders deeper), or
    else the first ``.zip`` in it that holds them (the hand-in zip, uploaded as it is)."""
    from grading.submission import Submission, read_submission

    upload = read_submission("submission", folder)
    if upload.files:
        return upload
    for path in sorted(folder.rglob("*.zip")) if folder.is_dir() else []:
        if not path.is_symlink() and path.is_file():
            inside = read_submission("submission", path)
            if inside.files:
                return inside
    if not folder.is_dir():
        return Submission("submission", folder, problem="nothing was uploaded")
    return upload


def results(result, parts, visibility: str, seconds: float) -> dict:
    """Gradescope's results.json for one graded submission."""
    from grading.grader import INTRO, format_score, part_feedback

    possible = sum(part.points for part in parts)
    summary = [f"**Total: {format_score(result.total)} / {possible:g}**", ""]
    if result.problem:
        summary += [f"Your submission could not be read: {result.problem}.", ""]
    summary += [INTRO]
    if result.notes:
        summary += ["", "Files not read:"] + [f"- {note}" for note in result.notes]
    tests = []
    for number, part in enumerate(parts, start=1):
        r = result.parts[part.name]
        tests.append(dict(name=f"{part.name}: {part.title}", number=str(number), score=round(r.points, 6),
                          max_score=part.points, status="passed" if r.status == "passed" else "failed",
                          output="\n".join(part_feedback(part, r)).rstrip() + "\n", output_format="md",
                          visibility=visibility, extra_data=dict(status=r.status)))
    return dict(score=round(result.total, 6), execution_time=round(seconds, 1), output="\n".join(summary),
                output_format="md", visibility=visibility, stdout_visibility="hidden", tests=tests)


def run(root: Path) -> int:
    """Grade ``root/submission`` into ``root/results/results.json`` (Gradescope's layout)."""
    from grading.grader import Grader, GraderError, Options, feedback

    start = time.monotonic()
    config = json.loads((ROOT / CONFIG).read_text()) if (ROOT / CONFIG).is_file() else {}
    options = Options(time_limit=float(config.get("time_limit", Options.time_limit)),
                      memory_mb=int(config.get("memory_mb", Options.memory_mb)), jobs=1, progress=False,
                      container=True)  # Gradescope's container is thrown away after this submission
    out = root / "results"
    out.mkdir(parents=True, exist_ok=True)
    try:
        grader = Grader(options, protect=[root / "submission", out])
    except GraderError as error:
        print(f"grading stopped: {error}")  # no results.json: Gradescope reports the autograder's failure
        return 1
    try:
        grader.self_test()  # the environment Gradescope built must pass the reference, or nobody is graded
        upload = read_upload(root / "submission")
        graded = grader.grade_submission(upload)
    except GraderError as error:
        print(f"grading stopped: {error}")
        return 1
    finally:
        grader.close()
    data = results(graded, grader.parts, config.get("visibility", VISIBILITY), time.monotonic() - start)
    (out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "feedback.md").write_text(feedback(graded))  # make grade's feedback file (Gradescope reads only the JSON)
    print(f"graded in {time.monotonic() - start:.1f} s: {graded.total:g} / {sum(p.points for p in grader.parts):g}; "
          f"{graded.status}; Landlock {'on' if grader.confined else 'off'}")
    for part in grader.parts:  # the instructor's view (stdout is hidden from students)
        r = graded.parts[part.name]
        print(f"  {part.name:<24} {r.points:5.2f} / {part.points:g}  {r.status}")
    return 0


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Gradescope: build the autograder zip, or grade one submission.")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="write the autograder zip (make gradescope)")
    make.add_argument("--out", type=Path, default=ROOT / "build" / "gradescope" / "autograder.zip")
    make.add_argument("--visibility", default=VISIBILITY,
                      choices=("hidden", "after_due_date", "after_published", "visible"),
                      help=f"when students see each part's feedback and the total ({VISIBILITY})")
    make.add_argument("--time-limit", type=float, default=None, help="seconds per part (10)")
    make.add_argument("--memory-mb", type=int, default=None, help="memory per part in MB (2048)")
    grade = commands.add_parser("run", help="grade <root>/submission into <root>/results (run_autograder)")
    grade.add_argument("--root", type=Path, default=Path(os.environ.get("AUTOGRADER_ROOT", DEFAULT_ROOT)))
    args = parser.parse_args(argv)
    if args.command == "build":
        path = build(args.out, visibility=args.visibility, time_limit=args.time_limit, memory_mb=args.memory_mb)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB): upload it as the assignment's autograder "
              "(README: Grading on Gradescope)")
        return 0
    return run(args.root.resolve())


if __name__ == "__main__":
    sys.exit(main())
