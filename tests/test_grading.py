"""The grader (scripts/grade.py, grading/): hidden tests per part, untrusted code isolated per part,
feedback that names the mistake without giving the tests away, deterministic grades.

One grader (one worker process) serves the whole module; it grades a folder of synthetic
submissions built from the solutions: the correct one, each classic wrong answer, and the
hostile ones (crash at import, infinite loop, 10 GB allocation, tampered checks, missing and
truncated notebooks, writes into the instructor's helpers/).
"""

import ast
import csv
import hashlib
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import grading_fixtures as fixtures
import pytest

from coursetools import regions
from coursetools import release as release_builder
from grading import grader, parts, submission, written

ROOT = Path(__file__).resolve().parents[1]

LIMIT = 6  # seconds per part here (a correct part takes well under one)
FULL = {part.name: part.points for part in parts.PARTS}

# The classic wrong answers come from the parts' catalogues (grading/parts/<part>.py, MISTAKES): one submission
# each, named after the entry ("c_sqrt_product" -> "c-sqrt-product"), losing what the entry says.
CATALOGUE = {key.replace("_", "-"): (key, part, mistake) for key, (part, mistake) in fixtures.catalogue().items()}
# The submissions the sandbox must survive: student -> (edits, the parts that lose points).
HOSTILE = {
    "crash-at-import": ("crash_at_import", {"b_norms": (0.0, "error")}),
    "infinite-loop": ("infinite_loop", {"c_mup_lr": (0.0, "timeout")}),
    "allocates-ten-gb": ("allocates_10gb", {"lecture_newton_schulz": (0.0, "memory")}),
    "tampered-checks": ("tampered_checks", {"c_mup_lr": (0.0, "failed")}),
    "segfaults": ("segfaults", {"lecture_muon_scale": (0.0, "crashed")}),
    "exits": ("exits", {"r10_matching_eps": (0.0, "crashed")}),
    "missing-notebook": ("missing_notebook", {"q1a_init_rms": (0.0, "missing"), "q1b_signgd_rms": (0.0, "missing")}),
    "truncated-notebook": ("truncated_notebook", {"r09_first_step": (0.0, "unreadable")}),
    "writes-instructor": ("writes_instructor", {"b_norms": (0.0, "tampered")}),
    "reads-solutions": ("reads_solutions", {"c_mup_lr": (0.0, "tampered")}),
    "reads-through-proc": ("reads_through_proc", {"c_mup_lr": (0.0, "tampered")}),
    "reads-from-cpp": ("reads_from_cpp", {"c_mup_lr": (0.0, "tampered")}),  # refused by Landlock (no hook sees it)
    "writes-from-cpp": ("writes_from_cpp", {"b_norms": (0.0, "tampered")}),  # refused by Landlock: torch.save fails
    "writes-through-libc": ("writes_through_libc", {"b_norms": (0.0, "tampered")}),
}
# student -> the parts that lose points: {part: (points, status)}; every other part: full marks, passed
EXPECTED = {
    "correct": {},
    **{name: {} if (mistake.points, mistake.status) == (part.points, "passed")
       else {part.name: (mistake.points, mistake.status)} for name, (_, part, mistake) in CATALOGUE.items()},
    "c-wrong-d-variant": {"c_mup_lr": (0.5, "failed")},  # a correct part d (written another way), a wrong part c
    **{name: losses for name, (_, losses) in HOSTILE.items()},
    "zipped": {},
    "stub-left": {"d_scaled_mlp": (0.0, "not attempted")},
}
EDITS = {
    **{name: fixtures.MISTAKES[key] for name, (key, _, _) in CATALOGUE.items()},
    "c-wrong-d-variant": fixtures.MISTAKES["c_by_size"] + fixtures.MISTAKES["d_variant"],
    **{name: fixtures.HOSTILE[key] for name, (key, _) in HOSTILE.items()},
}
PLANTED = [ROOT / "helpers" / "planted.py", ROOT / "helpers" / "planted.bin"]


def tree_hash() -> str:
    """Every file of the instructor's tree but build outputs, caches and git."""
    digest = hashlib.sha256()
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in grader.SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(directory) / name
            if not name.endswith(".pyc"):
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def rows(csv_text: str) -> dict[str, dict]:
    return {row["student"]: row for row in csv.DictReader(csv_text.splitlines())}


@pytest.fixture(scope="module")
def solutions(tmp_path_factory):
    return fixtures.solutions(tmp_path_factory.mktemp("grading") / "solutions")


@pytest.fixture(scope="module")
def submissions(solutions):
    folder = solutions.parent / "submissions"
    for student in EXPECTED:
        if student not in ("zipped", "stub-left"):
            fixtures.make(solutions, folder / student, student, EDITS.get(student, []))
    # a .zip holding the release one folder deeper
    zipped = fixtures.make(solutions, solutions.parent / "zipped-src" / "my-homework", "zipped")
    with zipfile.ZipFile(folder / "zipped.zip", "w") as archive:
        for path in sorted(zipped.rglob("*")):
            archive.write(path, path.relative_to(zipped.parent))
    (folder / "garbage.zip").write_bytes(b"this is not a zip file")
    # part d left as the release's stub
    stub = fixtures.make(solutions, folder / "stub-left", "stub-left")
    student_models = release_builder
    release = solutions.parent / "release"
    student_models.build_student(ROOT, release)
    shutil.copyfile(release / "helpers" / "mup_multipliers.py", stub / "helpers" / "mup_multipliers.py")
    return folder


@pytest.fixture(scope="module")
def shared_grader():
    # two submissions at a time, as an instructor on a 2-core machine would grade (the same grades as
    # one at a time: test_the_same_submissions_give_the_same_csv_byte_for_byte)
    instance = grader.Grader(grader.Options(time_limit=LIMIT, progress=False, jobs=2))
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def graded(shared_grader, submissions):
    before = tree_hash()
    out = submissions.parent / "grades"
    summary = shared_grader.grade_folder(submissions, out)  # the reference passes its hidden tests first
    return dict(out=out, summary=summary, before=before, after=tree_hash(),
                csv=(out / "grades.csv").read_text(), json=json.loads((out / "grades.json").read_text()))


def feedback_of(graded, student: str) -> str:
    return (graded["out"] / "feedback" / f"{student}.md").read_text()


# ---------------------------------------------------------------- what is graded
def test_every_code_region_of_the_source_is_a_graded_part():
    graded_functions = {(part.file, function) for part in parts.PARTS for function in part.functions}
    found = set()
    for path in sorted((ROOT / "helpers").glob("*.py")):
        lines = path.read_text().split("\n")
        for begin, _ in regions.find_regions(lines, path.name):
            found.add((f"helpers/{path.name}", regions.enclosing_function(path.read_text(), begin)))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(submission.notebook_cells(path.read_bytes(), path.name)):
            lines = cell["source"].split("\n")
            if cell["cell_type"] != "code" or not regions.find_regions(lines, f"{path.name} {index}"):
                continue
            tree = ast.parse(submission.as_python(cell["source"]))
            names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] or sorted(
                {t.id for n in tree.body for t in ast.walk(n)
                 if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)})
            found.add((f"notebooks/{path.name}", names[0]))
    assert found == graded_functions | set(parts.NOT_GRADED)
    assert sum(part.points for part in parts.PARTS) == 20


def test_the_student_release_does_not_ship_the_grader(tmp_path):
    release_builder.build_student(ROOT, tmp_path / "student")
    shipped = {p.relative_to(tmp_path / "student").parts[0] for p in (tmp_path / "student").rglob("*")}
    assert "grading" not in shipped and "grade.py" not in {p.name for p in (tmp_path / "student").rglob("*")}


def test_a_part_is_the_submission_function_inside_the_instructor_module():
    instructor = (ROOT / "helpers" / "norms.py").read_text()
    student = instructor.replace("return math.sqrt(fan_in / fan_out) * spectral_norm(W)", "return 7.0")
    added = 'import os\n\n\ndef helper():\n    return 1\n\n\nx = 1 / 0\n'
    student = student.replace('"""Matrix norms', added + '"""Matrix norms')
    student = student.replace("def rms(", "def rms_changed_by_student(")
    text, segments = submission.substitute(instructor, student.encode(), ("rms_to_rms_norm",), "helpers/norms.py")
    assert "return 7.0" in text and "def rms(" in text  # the instructor's other functions stay
    assert "import os" in text and "def helper" in text and "x = 1 / 0" in text  # additions come along
    assert "rms_changed_by_student" in text  # a new name is an addition, too
    assert text.index("return 7.0") < text.index("x = 1 / 0")
    first, last, student_first, label = segments[0]
    assert text.split("\n")[first - 1].startswith("def rms_to_rms_norm") and label == "helpers/norms.py"
    assert student.split("\n")[student_first - 1].startswith("def rms_to_rms_norm")
    with pytest.raises(submission.SourceProblem, match="has no `rms_to_rms_norm`"):
        submission.substitute(instructor, b"import torch\n", ("rms_to_rms_norm",), "helpers/norms.py")
    with pytest.raises(submission.SourceProblem, match="does not parse"):
        submission.substitute(instructor, b"def rms_to_rms_norm(:\n", ("rms_to_rms_norm",), "helpers/norms.py")


def test_a_part_runs_with_the_release_helpers_and_only_the_references_its_tests_need(shared_grader, solutions):
    ortho = "helpers/orthogonal_updates.py"
    files = {ortho: (solutions / ortho).read_bytes()}
    stub = "raise NotImplementedError"
    e_module, _ = shared_grader._module(parts.BY_NAME["e_shampoo"], files)
    assert stub not in submission.function_source(e_module, "orthogonalize_svd")  # the submission's code
    for other in ("newton_schulz", "muon_shape_scale", "shampoo_shape_scale"):
        assert stub in submission.function_source(e_module, other)  # other parts' answers are not there
    bonus_module, _ = shared_grader._module(parts.BY_NAME["bonus_shape_scale"], files)
    assert stub not in submission.function_source(bonus_module, "orthogonalize_svd")  # what its Shampoo step calls
    assert stub not in submission.function_source(bonus_module, "shampoo_shape_scale")
    assert stub in submission.function_source(bonus_module, "newton_schulz")


def test_a_folder_submission_is_never_read_through_a_symbolic_link(tmp_path):
    (tmp_path / "s" / "helpers").mkdir(parents=True)
    (tmp_path / "s" / "helpers" / "norms.py").symlink_to(ROOT / "helpers" / "norms.py")
    (tmp_path / "s" / "helpers" / "models.py").write_text("x = 1\n")
    read = submission.read_submission("s", tmp_path / "s")
    assert set(read.files) == {"helpers/models.py"} and "symbolic link" in read.notes[0]


# ---------------------------------------------------------------- the acceptance run
def test_scores_and_statuses(graded):
    table, details = rows(graded["csv"]), graded["json"]["students"]
    assert set(table) == set(EXPECTED) | {"garbage"}
    for student, losses in EXPECTED.items():
        for part in parts.PARTS:
            points, status = losses.get(part.name, (part.points, "passed"))
            assert float(table[student][part.name]) == pytest.approx(points), (student, part.name)
            assert details[student]["parts"][part.name]["status"] == status, (student, part.name)
        total = sum(losses.get(name, (full,))[0] for name, full in FULL.items())
        assert float(table[student]["total"]) == pytest.approx(total), student
    assert table["correct"]["status"] == "ok" and table["tampered-checks"]["status"] == "ok"
    assert table["infinite-loop"]["status"] == "c_mup_lr timeout"
    assert table["missing-notebook"]["status"] == "q1a_init_rms missing; q1b_signgd_rms missing"
    assert table["garbage"]["status"].startswith("unreadable: not a readable zip file")
    assert float(table["garbage"]["total"]) == 0
    summary = graded["summary"]
    assert (summary["graded"], summary["unreadable"]) == (len(EXPECTED) + 1, 1)
    assert summary["failed_to_run"] == sum(1 for s in table.values() if s["status"] not in ("ok",)) - 1


def test_the_instructor_tree_is_unchanged(graded):
    assert graded["after"] == graded["before"]
    assert not any(path.exists() for path in PLANTED)


def test_an_infinite_loop_costs_its_part_only(graded):
    table = rows(graded["csv"])["infinite-loop"]
    assert all(float(table[name]) == points for name, points in FULL.items() if name != "c_mup_lr")
    text = feedback_of(graded, "infinite-loop")
    assert f"it did not finish within the {LIMIT} s limit for this part" in text
    assert "## c_mup_lr" in text and "status **timeout**" in text


def test_a_tampered_checks_file_gains_nothing(graded):
    assert "the step shrinks with fan-out too" in feedback_of(graded, "tampered-checks")


@pytest.mark.parametrize("student, phrases", [
    *[(name, list(mistake.feedback)) for name, (_, _, mistake) in CATALOGUE.items() if mistake.feedback],
    ("crash-at-import", ["importing your code raised RuntimeError: this file is broken at import"]),
    ("allocates-ten-gb", ["it ran out of the 2048 MB memory limit"]),
    ("writes-instructor", ["it tried to reach outside its own folder", "helpers/norms.py"]),
    ("writes-from-cpp", ["it tried to reach outside its own folder", "Permission denied"]),
    ("writes-through-libc", ["it tried to reach outside its own folder", "ctypes"]),
    ("truncated-notebook", ["is not valid notebook JSON"]),
    ("reads-solutions", ["it tried to reach outside its own folder: <course files>/helpers/mup_lr.py"]),
    ("reads-through-proc", ["it tried to reach outside its own folder: /proc/<pid>/cwd/helpers/mup_lr.py"]),
    ("reads-from-cpp", ["it tried to reach outside its own folder", "Permission denied"]),
    ("segfaults", ["the process running it was killed by SIGSEGV"]),
    ("exits", ["the process running it ended without a result"]),
    ("stub-left", ["the stub is still there"]),
])
def test_feedback_names_the_measured_mistake(graded, student, phrases):
    text = feedback_of(graded, student)
    for phrase in phrases:
        assert phrase in text, (student, phrase)


def test_feedback_reveals_no_hidden_input_expected_value_or_formula(graded):
    for path in sorted((graded["out"] / "feedback").glob("*.md")):
        fixtures.assert_reveals_nothing(path.read_text(), path.name, LIMIT, EXPECTED)


def test_written_answers_are_collected_per_question_for_every_submission(graded):
    text = (graded["out"] / "written_answers.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    questions = written.questions(graded["out"].parent / "release")
    assert len(sections) == len(questions) > 10
    for section, question in zip(sections, questions):
        assert section.startswith(f"{question.notebook}, question {question.number} of {question.count}")
        for student in EXPECTED:
            assert f"**{student}**" in section
            stem = Path(question.notebook).stem
            if student == "missing-notebook" and stem == "00_rms_scaling_theory":
                expected = "is not in the submission"
            elif student == "truncated-notebook" and stem == "09_adam_bias_correction":
                expected = "is not valid notebook JSON"
            else:
                expected = f"{student} answers {stem} question {question.number}: because of fan-in."
            answer = section.split(f"**{student}**", 1)[1].split("**", 1)[0]
            assert expected in answer, (question.notebook, question.number, student)
        assert "**garbage**" in section


# ---------------------------------------------------------------- determinism, the command line, the guard
def test_the_same_submissions_give_the_same_csv_byte_for_byte(graded, shared_grader, submissions, tmp_path, capsys):
    small = tmp_path / "small"
    small.mkdir()
    for student in ("correct", "c-by-size", "missing-notebook", "truncated-notebook"):
        shutil.copytree(submissions / student, small / student)
    # once through the command line (scripts/grade.py calls grader.main) one at a time, once through the
    # shared grader, two at a time
    assert grader.main([str(small), "--out", str(tmp_path / "a"), "--time-limit", str(LIMIT), "--no-self-test",
                        "--jobs", "1"]) == 0
    printed = capsys.readouterr()
    assert re.search(r"graded 4 submissions in [\d.]+ s: 2 with a part that could not be graded .*, 0 unreadable",
                     printed.out), printed.out
    assert "grading: 100%" in printed.err  # the progress bar
    shared_grader.options.self_test = False
    shared_grader.grade_folder(small, tmp_path / "b")
    first, second = (tmp_path / "a" / "grades.csv").read_bytes(), (tmp_path / "b" / "grades.csv").read_bytes()
    assert first == second
    assert (tmp_path / "a" / "grades.json").read_bytes() == (tmp_path / "b" / "grades.json").read_bytes()
    big = rows(graded["csv"])
    assert rows(first.decode()) == {name: big[name] for name in rows(first.decode())}


def test_without_landlock_reads_are_refused_and_the_tree_check_undoes_a_write(shared_grader, submissions, tmp_path):
    one = tmp_path / "one"
    for student in ("writes-from-cpp", "reads-solutions", "reads-through-proc"):
        shutil.copytree(submissions / student, one / student)
    before = tree_hash()
    shared_grader.options.self_test, shared_grader.options.landlock = False, False  # --no-landlock
    try:
        summary = shared_grader.grade_folder(one, tmp_path / "out")
    finally:
        shared_grader.options.landlock = True
    assert (summary["landlock"], summary["jobs"]) == (0, 1)  # one part at a time, although the grader has --jobs 2
    assert tree_hash() == before and not any(path.exists() for path in PLANTED)
    students = json.loads((tmp_path / "out" / "grades.json").read_text())["students"]
    result = students["writes-from-cpp"]
    assert result["parts"]["b_norms"]["status"] == "tampered" and result["parts"]["c_mup_lr"]["status"] == "passed"
    feedback = (tmp_path / "out" / "feedback" / "writes-from-cpp.md").read_text()
    assert "helpers/planted.bin (changed, restored)" in feedback
    for student, refused in (("reads-solutions", "<course files>/helpers/mup_lr.py"),
                             ("reads-through-proc", "<course files>/helpers/mup_lr.py")):
        assert students[student]["parts"]["c_mup_lr"]["status"] == "tampered", student  # the audit hook refused it
        assert students[student]["parts"]["b_norms"]["status"] == "passed", student
        text = (tmp_path / "out" / "feedback" / f"{student}.md").read_text()
        assert f"it tried to reach outside its own folder: {refused}" in text and "def layer_lr" not in text


def test_without_landlock_grading_does_not_start_unless_the_instructor_says_so(monkeypatch):
    from grading import sandbox

    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)  # a kernel without Landlock
    with pytest.raises(grader.GraderError, match="no Landlock.*--no-landlock"):
        grader.Grader(grader.Options(progress=False))
    for options in (grader.Options(landlock=False, jobs=2), grader.Options(container=True, jobs=2)):
        monkeypatch.setattr(grader.tempfile, "mkdtemp", lambda **_: (_ for _ in ()).throw(RuntimeError("started")))
        with pytest.raises(RuntimeError, match="started"):  # past the check: it goes on to build the release
            grader.Grader(options)


def test_grade_works_with_its_default_options(solutions, tmp_path):
    folder = tmp_path / "submissions"
    fixtures.make(solutions, folder / "correct", "correct")
    summary = grader.grade(folder, tmp_path / "out")  # no Options: every default (Landlock, self-test, one job)
    assert (summary["graded"], summary["failed_to_run"], summary["unreadable"]) == (1, 0, 0)
    assert float(rows((tmp_path / "out" / "grades.csv").read_text())["correct"]["total"]) == 20


def test_no_grading_module_imports_the_test_fixtures():
    for path in sorted((ROOT / "grading").rglob("*.py")) + [ROOT / "scripts" / "grade.py"]:
        assert not re.search(r"^\s*(from|import) .*fixtures", path.read_text(), re.M), path


def test_written_answers_are_found_by_cell_id_and_by_alignment_without_ids(solutions, tmp_path):
    release = tmp_path / "release"
    release_builder.build_student(ROOT, release)
    questions = [q for q in written.questions(release) if q.notebook == "notebooks/00_rms_scaling_theory.ipynb"]
    assert len(questions) > 1 and all(q.cell_id for q in questions)
    student = fixtures.make(solutions, tmp_path / "s", "s")
    path = student / questions[0].notebook
    notebook = json.loads(path.read_text())
    expected = [f"s answers 00_rms_scaling_theory question {q.number}: because of fan-in." for q in questions]
    # cells moved around and new ones added: the ids still find every answer
    moved = list(reversed(notebook["cells"]))
    moved[1:1] = [dict(cell_type="markdown", id=f"new{i}", metadata={}, source=f"**Answer.**\nnotes {i}")
                  for i in range(3)]
    files = {questions[0].notebook: json.dumps(dict(notebook, cells=moved)).encode()}
    found = written.answers(release, files, questions)
    assert all(text in found[q] and "notes" not in found[q] for q, text in zip(questions, expected))
    # a notebook whose cells lost their ids (nbformat 4.4): the cells are aligned with the release's
    stripped = [{k: v for k, v in cell.items() if k != "id"} for cell in notebook["cells"]]
    files = {questions[0].notebook: json.dumps(dict(notebook, cells=stripped, nbformat_minor=4)).encode()}
    assert written.answers(release, files, questions) == found


# ---------------------------------------------------------------- one file per part
@pytest.mark.parametrize("part", parts.PARTS, ids=lambda part: part.name)
def test_each_part_file_declares_what_the_grader_needs(part):
    module = sys.modules[part.collect.__module__]
    assert callable(part.collect) and callable(part.judge) and part.points > 0
    assert module.__file__.startswith(str(ROOT / "grading" / "parts"))
    assert sum(weight for _, weight in part.criteria) > 0
    assert len({name for name, _ in part.criteria}) == len(part.criteria)
    source = (ROOT / part.file).read_text()
    for function in part.functions + part.needs:
        assert f"def {function.split('.')[-1]}(" in source, (part.name, function)
    for key, mistake in part.mistakes.items():  # each catalogue entry is graded in test_scores_and_statuses
        assert set(mistake.code) <= set(part.functions) and mistake.status in parts.STATUSES, (part.name, key)
        assert key.replace("_", "-") in EXPECTED


TOY_PART = '''
import torch

from grading.collect import attempt, number
from grading.judge import Finding, Tally
from grading.parts import Mistake, Part

PART = Part("toy_frobenius", 1, "toy: `frobenius_norm` of one more matrix", "helpers/norms.py", ("frobenius_norm",),
            (("the norm of a matrix of ones", 1),), order=999)


def collect(part):
    from helpers.norms import frobenius_norm

    return dict(value=attempt(lambda: number(frobenius_norm(torch.ones(3, 4)))))


def judge(part, measured, ref):
    tally = Tally("hidden matrices")
    value = tally.take(measured["value"])
    if value is not None and abs(value - 12 ** 0.5) > 1e-6:
        tally.fail(value)
    return [tally.criterion(*part.criteria[0], fallback=Finding("the toy norm is wrong", "count every entry"))]


DOUBLED = "def frobenius_norm(W):\\n    return 2.0 * (W ** 2).sum().sqrt().item()\\n"
MISTAKES = {"toy_double": Mistake(code={"frobenius_norm": DOUBLED},
                                  points=0.0, status="failed", feedback=("the toy norm is wrong",))}
'''


def test_a_part_added_as_one_file_in_another_folder_is_discovered_and_graded(solutions, tmp_path):
    extra = tmp_path / "more_parts"
    extra.mkdir()
    (extra / "toy_frobenius.py").write_text(TOY_PART)
    found = parts.discover([extra])
    assert [p.name for p in found] == [p.name for p in parts.PARTS] + ["toy_frobenius"]
    assert "toy_frobenius" not in {p.name for p in parts.discover()}  # only where it is asked for
    toy = found[-1]
    folder = tmp_path / "submissions"
    fixtures.make(solutions, folder / "correct", "correct")
    edits = fixtures.mistake_edits(toy, toy.mistakes["toy_double"])
    fixtures.make(solutions, folder / "toy-double", "toy-double", edits)
    summary = grader.grade(folder, tmp_path / "out", grader.Options(parts_dirs=(extra,), progress=False))
    assert summary["failed_to_run"] == 0
    table = rows((tmp_path / "out" / "grades.csv").read_text())
    assert list(table["correct"])[-3:] == ["toy_frobenius", "total", "status"]
    assert (table["correct"]["toy_frobenius"], table["correct"]["total"]) == ("1.00", "21.00")
    # b_norms loses its Frobenius share
    assert (table["toy-double"]["toy_frobenius"], table["toy-double"]["b_norms"]) == ("0.00", "2.25")
    assert "the toy norm is wrong" in (tmp_path / "out" / "feedback" / "toy-double.md").read_text()
