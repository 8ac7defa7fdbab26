"""The Gradescope autograder (``make gradescope``, ``grading/gradescope.py``), on a simulated
Gradescope: the ``/autograder`` layout under a temporary root (``AUTOGRADER_ROOT``), the zip
unpacked in ``source/``, ``run_autograder`` run as Gradescope runs it, with the pinned
environment already installed (``venv/``: this one, as ``setup.sh`` would have made it)."""

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grading_fixtures as fixtures
import pytest

from coursetools import release as release_builder
from grading import gradescope, parts
from helpers import handin

ROOT = Path(__file__).resolve().parents[1]

LIMIT = 6  # seconds per part, as in test_grading.py
SPEC_TOP = ("score", "tests", "visibility", "stdout_visibility")  # Gradescope's results.json fields used here
SPEC_TEST = ("name", "score", "max_score", "output", "visibility")


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return gradescope.build(tmp_path_factory.mktemp("gradescope") / "autograder.zip", time_limit=LIMIT)


@pytest.fixture(scope="module")
def solutions(tmp_path_factory):
    return fixtures.solutions(tmp_path_factory.mktemp("gs-solutions") / "solutions")


def unpack(archive: Path, dest: Path) -> None:
    """Unzip as Gradescope does, keeping the executable bits."""
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            path = Path(opened.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


def simulated_gradescope(archive: Path, root: Path) -> Path:
    """``root`` laid out as Gradescope's /autograder, the submission folder still empty."""
    unpack(archive, root / "source")
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "venv").symlink_to(Path(sys.prefix))  # what setup.sh installs: the pinned packages
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def run_autograder(root: Path) -> tuple[dict, float, str]:
    start = time.monotonic()
    done = subprocess.run([str(root / "run_autograder")], cwd=root, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, AUTOGRADER_ROOT=str(root)))
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((root / "results" / "results.json").read_text()), seconds, done.stdout


def upload_files(solutions: Path, root: Path, student: str, edits=()) -> None:
    """The student uploads the release's files (one folder deeper, as a dragged folder arrives)."""
    fixtures.make(solutions, root / "submission" / "homework", student, edits)


def upload_handin_zip(solutions: Path, root: Path, student: str, edits=()) -> None:
    """The student uploads the zip of helpers/handin.py, as it is."""
    filled = fixtures.make(solutions, root.parent / f"{student}-course", student, edits)
    handin.check(filled, root / "submission" / handin.ZIP_NAME)


def upload_release(solutions: Path, root: Path, student: str, edits=()) -> None:
    """The student release untouched: every stub still there."""
    release_builder.build_student(ROOT, root / "submission" / "student")


def upload_nothing(solutions: Path, root: Path, student: str, edits=()) -> None:
    pass


def hostile(root: Path):
    """Reads the instructor's solutions where Gradescope keeps them, 10 GB, a crash, an exit, a write."""
    return [fixtures.edit_function("helpers/mup_lr.py", "layer_lr", f'''
        def layer_lr(role, shape, lr, *, input_mult, bias_mult, output_lr):
            source = open({str(root / "source" / "helpers" / "mup_lr.py")!r}).read()
            raise RuntimeError(source[source.index("def layer_lr"):][:200])
    ''')] + fixtures.HOSTILE["allocates_10gb"] + fixtures.HOSTILE["segfaults"] + fixtures.HOSTILE["exits"] \
        + fixtures.HOSTILE["writes_instructor"]


FULL = {part.name: (part.points, "passed") for part in parts.PARTS}
# Each case is what only Gradescope's side shows (results.json, the upload's shapes, its source folder);
# what the grader does with a stub left, a timeout, each classic mistake is tests/test_grading.py's
# (the same Grader runs in both), so one submission of each shape is enough here.
CASES = {  # student -> (upload, edits, the parts that lose points)
    "handin-zip": (upload_handin_zip, [], {}),
    "nothing": (upload_nothing, [], {name: (0.0, "missing") for name in FULL}),
    "wrong-part-c": (upload_files, fixtures.MISTAKES["c_sqrt_product"], {"c_mup_lr": (0.0, "failed")}),
    "hostile": (upload_files, None, {"c_mup_lr": (0.0, "tampered"), "lecture_newton_schulz": (0.0, "memory"),
                                     "lecture_muon_scale": (0.0, "crashed"), "r10_matching_eps": (0.0, "crashed"),
                                     "b_norms": (0.0, "tampered")}),
}


@pytest.fixture(scope="module")
def runs(autograder_zip, solutions, tmp_path_factory):
    """Every case through run_autograder, two containers at a time (this machine has two cores)."""
    def one(student):
        upload, edits, _ = CASES[student]
        root = simulated_gradescope(autograder_zip, tmp_path_factory.mktemp(student) / "autograder")
        upload(solutions, root, student, hostile(root) if edits is None else edits)
        return student, (root, *run_autograder(root))

    before = fixtures.tree_hash(ROOT)
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(pool.map(one, CASES))
    assert fixtures.tree_hash(ROOT) == before
    return done


def test_the_zip_follows_the_specification_and_carries_the_hidden_tests(autograder_zip, tmp_path):
    with zipfile.ZipFile(autograder_zip) as archive:
        names = set(archive.namelist())
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
        setup = archive.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder"} <= names and modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert {"grading/grader.py", "grading/sandbox.py", "helpers/mup_lr.py", "requirements.txt"} <= names
    assert not [n for n in names if n.startswith(("tests/", "build/", ".venv/")) or "__pycache__" in n]
    pin = gradescope.torch_pin((ROOT / "requirements.txt").read_text())
    assert f'"torch=={pin}" --index-url https://download.pytorch.org/whl/cpu' in setup
    assert setup.index("--index-url") < setup.index("-r requirements.txt")  # the CPU wheel first, then the rest
    subprocess.run(["bash", "-n", "-c", setup], check=True)
    # the hidden tests travel in the zip, and nowhere in the student release
    release = tmp_path / "student"
    release_builder.build_student(ROOT, release)
    shipped = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    hidden = {n for n in names if n.startswith("grading/")}
    assert hidden and not hidden & shipped and not [n for n in shipped if "grading" in n or n.endswith(".zip")]


@pytest.mark.parametrize("student", CASES)
def test_results_json_has_the_expected_scores_and_every_field(runs, student):
    root, data, seconds, stdout = runs[student]
    expected = dict(FULL, **CASES[student][2])
    assert all(key in data for key in SPEC_TOP) and data["stdout_visibility"] == "hidden"
    assert data["visibility"] == gradescope.VISIBILITY == "after_published"
    assert [t["name"].split(":")[0] for t in data["tests"]] == [part.name for part in parts.PARTS]
    for test, part in zip(data["tests"], parts.PARTS):
        assert all(key in test for key in SPEC_TEST), test
        points, status = expected[part.name]
        assert (test["score"], test["extra_data"]["status"]) == (pytest.approx(points), status), (student, part.name)
        assert test["max_score"] == part.points and test["visibility"] == "after_published"
        fixtures.assert_reveals_nothing(test["output"], f"{student} {part.name}", LIMIT, CASES)
    assert data["score"] == pytest.approx(sum(points for points, _ in expected.values()))
    fixtures.assert_reveals_nothing(data["output"], student, LIMIT, CASES)
    assert seconds <= 60, seconds  # one submission, start-up included


def test_each_output_is_the_feedback_of_make_grade(runs):
    """The same text as feedback/<student>.md, part by part."""
    root, data, _, _ = runs["wrong-part-c"]
    text = (root / "results" / "feedback.md").read_text()
    for test, part in zip(data["tests"], parts.PARTS):
        section = text.split(f"## {part.name}: {part.title}\n\n", 1)[1].split("\n## ", 1)[0]
        assert test["output"].strip() == section.strip()
    assert "the step shrinks with fan-out too" in data["tests"][3]["output"]
    assert "it tried to reach outside its own folder" in runs["hostile"][1]["tests"][3]["output"]
    assert "ran out of the 2048 MB memory limit" in runs["hostile"][1]["tests"][7]["output"]


def test_report_times(runs, capsys):
    with capsys.disabled():
        print("\nrun_autograder wall time per submission (s): "
              + ", ".join(f"{student} {runs[student][2]:.1f}" for student in CASES))
