"""The hand-in (``helpers/handin.py``: ``make handin`` in the student release, ``hand_in()`` in a
notebook or Colab): it names every unfinished part of a fresh student release, zips exactly the
files the grader reads, and the grader gives the zip of the filled-in release full marks.

Executing the notebooks would take minutes: a run is simulated instead (every code cell numbered,
each check cell given its PASS line), and what a check cell's saved output means is tested on
small notebooks written here."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import grading_fixtures as fixtures
import pytest
from answer_patterns import find_answers

from coursetools import regions, release
from grading import grader, parts, submission
from helpers import handin

ROOT = Path(__file__).resolve().parents[1]

CHECK_CALL = re.compile(r"\b(check_\w+)\(")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A fresh student release and what the build stubbed."""
    out = tmp_path_factory.mktemp("handin") / "student"
    return out, release.build_student(ROOT, out)


@pytest.fixture
def student(built, tmp_path):
    """A copy of the fresh release, with what a student's folder gathers besides the graded files."""
    out = tmp_path / "student"
    shutil.copytree(built[0], out)
    (out / "helpers" / "__pycache__").mkdir()
    (out / "helpers" / "__pycache__" / "norms.cpython-311.pyc").write_bytes(b"\0" * 16)
    (out / "notebooks" / ".ipynb_checkpoints").mkdir()
    shutil.copyfile(out / "notebooks" / "02_update_norms.ipynb",
                    out / "notebooks" / ".ipynb_checkpoints" / "02_update_norms-checkpoint.ipynb")
    shutil.copyfile(out / "notebooks" / "02_update_norms.ipynb", out / "notebooks" / "02_update_norms-Copy1.ipynb")
    (out / "helpers" / "notes.txt").write_text("my notes\n")
    (out / ".venv" / "lib").mkdir(parents=True)
    (out / ".venv" / "lib" / "site.py").write_text("x = 1\n")
    return out


def graded_on_disk(folder: Path) -> dict[str, bytes]:
    return {f"{sub}/{p.name}": p.read_bytes() for sub, suffix in (("helpers", ".py"), ("notebooks", ".ipynb"))
            for p in sorted((folder / sub).glob(f"*{suffix}")) if re.fullmatch(r"[A-Za-z0-9_]+", p.stem)}


def zipped(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def simulate_run(folder: Path) -> None:
    """Every notebook as if run from the top and saved: code cells numbered, each check cell with
    the PASS line its check prints."""
    for path in sorted((folder / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        count = 0
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            count += 1
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cell["execution_count"] = count
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"PASS {check}: simulated\n"}
                               for check in dict.fromkeys(CHECK_CALL.findall(source))]
        path.write_text(json.dumps(notebook, indent=1))


# ---------------------------------------------------------------- one definition
def test_the_grader_reads_what_the_shipped_helper_hands_in(built):
    out, _ = built
    assert submission.HANDIN.GRADED_PATH.pattern == handin.GRADED_PATH.pattern
    assert (submission.MAX_FILE, submission.MAX_TOTAL) == (handin.MAX_FILE, handin.MAX_TOTAL)
    assert (handin.CODE_STUB, handin.ANSWER_STUB) == (regions.CODE_STUB, regions.ANSWER_STUB)
    stub, _ = release.stub_lines(["### BEGIN SOLUTION", "x = 1", "### END SOLUTION"], [(0, 2)], "part")
    assert handin.code_stubs(stub) == [1] and handin.STUB_MESSAGE in stub[1]
    # every course file is graded: a helper or notebook named outside the pattern would be lost
    for folder in ("helpers", "notebooks"):
        for path in (out / folder).iterdir():
            assert handin.GRADED_PATH.fullmatch(f"{folder}/{path.name}"), path.name
    assert (out / "helpers" / "handin.py").read_bytes() == (ROOT / "helpers" / "handin.py").read_bytes()
    assert "helpers/handin.py" in (out / "Makefile").read_text()
    assert "from helpers.handin import hand_in; hand_in()" in (out / "README.md").read_text()


# ---------------------------------------------------------------- (a) a fresh release
def test_make_handin_names_every_unfinished_part_and_zips_only_the_graded_files(built, student):
    _, stubbed = built
    # -I -S: the standard library alone, as before make setup
    done = subprocess.run(["make", "--no-print-directory", "handin", f"PYTHON={sys.executable} -I -S"], cwd=student,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # partial work is handed in without an error
    assert handin.main(["--root", str(student), "--out", str(student / "strict.zip"), "--strict"]) == 1
    printed = done.stdout
    files = zipped(student / "handin.zip")
    assert files == graded_on_disk(student)  # the same bytes, and nothing else:
    assert not [n for n in files if re.search(r"__pycache__|\.pyc$|checkpoint|Copy1|\.txt$|\.venv|^data/", n)]
    assert "02_update_norms-Copy1.ipynb" in printed.split("Not handed in")[1]

    result = handin.check(student, student / "again.zip")
    assert not result.finished and result.files == sorted(files, key=lambda n: (n.split("/")[0], n))
    found = {}
    for item in result.unfinished:
        found.setdefault((item.file, item.kind), []).append(item)
    # every stub the build wrote is named, in its notebook or file
    expected = {}
    for (relative, index), removed in stubbed.blocks.items():
        if index is None:
            expected[(relative, "code")] = expected.get((relative, "code"), 0) + len(removed)
        else:
            source = json.loads((ROOT / relative).read_text())["cells"][index]
            kind = "code" if source["cell_type"] == "code" else "answer"
            expected[(relative, kind)] = expected.get((relative, kind), 0) + len(removed)
    assert {key: len(found.get(key, [])) for key in expected} == expected
    for (relative, kind), items in found.items():
        assert kind in ("check", "run") or (relative, kind) in expected, items
    for relative, _ in stubbed.blocks:
        if relative.startswith("helpers/"):
            lines = (ROOT / relative).read_text().split("\n")
            for begin, _ in regions.find_regions(lines, relative):
                function = regions.enclosing_function("\n".join(lines), begin)
                assert any(u.where.startswith(f"{function} (line ") for u in found[(relative, "code")]), function
    # every check cell, never run; every notebook, never run
    for path in sorted((built[0] / "notebooks").glob("*.ipynb")):
        relative = f"notebooks/{path.name}"
        cells = json.loads(path.read_text())["cells"]
        checks = [check for cell in cells if cell["cell_type"] == "code"
                  for check in CHECK_CALL.findall("".join(cell["source"]))]
        assert [u.where.split(",")[0] for u in found.get((relative, "check"), [])] == checks
        assert all(u.where.endswith("it never ran") for u in found.get((relative, "check"), []))
        assert len(found[(relative, "run")]) == 1
        title = next(c for c in cells if c["cell_type"] == "markdown")["source"]
        part = re.findall(r"\(([^()]*)\)", "".join(title).splitlines()[0])[-1]
        assert f"  {relative} ({part})\n" in printed
    assert sum(1 for line in printed.splitlines() if line.startswith("    - ")) == len(result.unfinished)
    assert f"Not finished yet ({len(result.unfinished)}):" in printed and "Written all the same" in printed
    # nothing printed gives an answer away
    assert not list(find_answers(printed))
    secret = {line.strip() for relative, index in stubbed.blocks for block in stubbed.blocks[(relative, index)]
              for line in block[1:-1] if len(line.replace(" ", "")) >= 8}
    assert not [line for line in printed.splitlines() if line.strip() in secret]


def test_a_file_the_grader_would_not_read_is_left_out_and_named(student):
    (student / "helpers" / "norms.py").unlink()
    (student / "helpers" / "norms.py").symlink_to(ROOT / "helpers" / "norms.py")
    path = student / "notebooks" / "09_adam_bias_correction.ipynb"
    path.write_bytes(path.read_bytes()[:1000])
    result = handin.check(student)
    assert "helpers/norms.py" not in result.files and "helpers/norms.py" not in submission.read_submission(
        "s", student).files
    assert set(zipped(student / "handin.zip")) == set(submission.read_submission("s", student).files)
    problems = {u.file: u.where for u in result.unfinished if u.kind == "file"}
    assert "link" in problems["helpers/norms.py"]
    assert "not a readable notebook" in problems["notebooks/09_adam_bias_correction.ipynb"]


# ---------------------------------------------------------------- (b) finished: graded with full marks
@pytest.fixture(scope="module")
def shared_grader():
    instance = grader.Grader(grader.Options(time_limit=6, progress=False, self_test=False))
    yield instance
    instance.close()


def test_the_filled_in_release_lists_nothing_and_its_zip_gets_full_marks(shared_grader, tmp_path, capsys):
    solutions = fixtures.solutions(tmp_path / "solutions")
    filled = fixtures.make(solutions, tmp_path / "filled", "filled")  # the reference code, the student's answers
    simulate_run(filled)
    out = tmp_path / "submissions" / "filled.zip"
    assert handin.main(["--root", str(filled), "--out", str(out), "--strict"]) == 0
    printed = capsys.readouterr().out
    assert "Not finished" not in printed and printed.startswith("Everything is finished.")
    assert zipped(out) == graded_on_disk(filled) == submission.read_submission("filled", out).files
    summary = shared_grader.grade_folder(out.parent, tmp_path / "grades")
    assert (summary["graded"], summary["failed_to_run"], summary["unreadable"]) == (1, 0, 0)
    row = next(csv.DictReader((tmp_path / "grades" / "grades.csv").read_text().splitlines()))
    assert row["status"] == "ok" and float(row["total"]) == sum(part.points for part in parts.PARTS) == 20
    statuses = json.loads((tmp_path / "grades" / "grades.json").read_text())["students"]["filled"]["parts"]
    assert {p["status"] for p in statuses.values()} == {"passed"}
    assert "filled answers 00_rms_scaling_theory question 1" in (tmp_path / "grades" / "written_answers.md").read_text()


# ---------------------------------------------------------------- what a check cell's saved output says
def cell(kind, source, outputs=None, count=None):
    if kind == "markdown":
        return {"cell_type": "markdown", "metadata": {}, "source": source}
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": outputs or [], "execution_count": count}


def stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def error(name):
    return {"output_type": "error", "ename": name, "evalue": "expected 0.5, measured 0.7", "traceback": []}


def test_a_check_passes_only_with_its_pass_line_in_the_saved_output():
    stub = f'def f(x):\n    {handin.CODE_STUB}\n    raise NotImplementedError("99 (part z): {handin.STUB_MESSAGE}")'
    cells = [
        cell("markdown", "# 99 · Tiny (homework part z)"),
        cell("markdown", ["## First\n", "```\n", "# a comment, not a heading\n", "```\n", "**Answer.**\n",
                          f"{handin.ANSWER_STUB}\n", "\n", "## Second\n", handin.ANSWER_STUB]),
        cell("code", stub, [stream("done\n")], 1),
        cell("code", "passed = check_a(f)", [stream(["measuring\n", "PASS check_a: steps are flat\n"])], 2),
        cell("code", "passed = check_b(f)", [stream("measuring\n"), error("CheckFailed")], 3),
        cell("code", "passed = check_c(f)", [error("NotImplementedError")], 4),
        cell("code", "passed = check_d(f)"),
        cell("code", "passed = check_e(f)", [], 5),  # ran, output cleared
        cell("markdown", "## Third"),
        cell("code", "one = check_f(f)\ntwo = check_g(f)\nprint(one and two)",
             [stream("PASS check_f: fine\nTrue\n")], 6),
        cell("code", "passed = check_h(f)", [stream("PASS\n")], 7),  # one check: a PASS line without its name
        cell("code", "class Base:\n    def step(self):\n        raise NotImplementedError", [], 8),
        cell("code", "# my notes: check_i(f) later\nprint('PASS check_i')", [stream("PASS check_i\n")], 9),
    ]
    data = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    part, found = handin.notebook_unfinished("notebooks/99_tiny.ipynb", data)
    assert part == "homework part z"
    assert [(u.kind, u.where) for u in found] == [
        ("answer", 'cell 2, under "First" (answer 1 of 2)'),
        ("answer", 'cell 2, under "Second" (answer 2 of 2)'),
        ("code", 'cell 3, under "Second"'),
        ("check", 'check_b, cell 5, under "Second": it stopped with CheckFailed'),
        ("check", 'check_c, cell 6, under "Second": it stopped with NotImplementedError'),
        ("check", 'check_d, cell 7, under "Second": it never ran'),
        ("check", 'check_e, cell 8, under "Second": its output has no PASS line'),
        ("check", 'check_g, cell 10, under "Third": its output has no PASS line'),
    ]
    assert not any("0.5" in u.where or "0.7" in u.where for u in found)  # an error's message is never printed
    cells = [cell("markdown", "# 98 · Not run (lecture)"), cell("code", "x = 1")]
    data = json.dumps({"cells": cells}).encode()
    assert handin.notebook_unfinished("notebooks/98.ipynb", data)[1] == [
        handin.Unfinished("notebooks/98.ipynb", "run", "no cell has an output: run it from the top and save it")]


def test_a_helper_stub_is_named_by_its_function_and_line():
    text = "\n".join([
        "class Optimizer:",
        "    def step(self):",
        "        raise NotImplementedError",  # an abstract method, not a stub
        "",
        "class Mine(Optimizer):",
        "    def step(self):",
        f"        {handin.CODE_STUB}",
        '        raise NotImplementedError("Mine.step in helpers/x.py, used in 03_x (homework part c): '
        f'{handin.STUB_MESSAGE}")',
        "",
        "def half_done(x):",
        "    y = x + 1  # the student started, and left the stub's raise",
        f'    raise NotImplementedError("half_done in helpers/x.py: {handin.STUB_MESSAGE}")',
        "",
        "def done(x):",
        "    return x",
    ])
    found = handin.helper_unfinished("helpers/x.py", text.encode())
    assert [u.where for u in found] == ["Mine.step (line 8), used in 03_x (homework part c)", "half_done (line 12)"]
    assert handin.helper_unfinished("helpers/x.py", b"def f():\n    return 1\n") == []


# ---------------------------------------------------------------- (c) Colab
def test_in_colab_the_one_liner_writes_the_same_zip_in_the_course_folder_and_downloads_it(student, tmp_path):
    reference = tmp_path / "reference.zip"
    assert handin.main(["--root", str(student), "--out", str(reference), "--strict"]) == 1
    stub = tmp_path / "colab_stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    (stub / "files.py").write_text("import os\n\n\ndef download(path):\n"
                                   "    with open(os.environ['DOWNLOADS'], 'a') as log:\n"
                                   "        log.write(path + '\\n')\n")
    content = tmp_path / "content"  # the notebook's working folder is not the course folder
    content.mkdir()
    one_liner = (f"import sys; sys.path.insert(0, {str(student)!r})\n"  # what the Colab setup cell does
                 "from helpers.handin import hand_in; finished = hand_in()\n"
                 "print('finished:', finished)")
    env = dict(os.environ, PYTHONPATH=str(stub.parents[1]), DOWNLOADS=str(tmp_path / "downloads.txt"),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", KERAS_BACKEND="torch")
    done = subprocess.run([sys.executable, "-c", one_liner], cwd=content, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "downloads.txt").read_text() == f"{student / 'handin.zip'}\n"
    assert (student / "handin.zip").read_bytes() == reference.read_bytes()
    assert list(content.iterdir()) == []
    assert "save each one first" in done.stdout and "Not finished yet" in done.stdout
    assert done.stdout.rstrip().endswith("finished: False")
