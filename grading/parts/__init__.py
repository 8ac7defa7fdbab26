"""The graded parts: one file per part in this folder, discovered (``pkgutil``), never listed.

A part is the code of one student region (or of the few regions that make one piece of
work, such as the three norms of part b), named by the function or method that holds it.
Its file holds everything about it:

* ``PART``: its points, title, file, graded functions and criteria (:class:`Part`);
* its hidden inputs (more shapes, widths, seeds and settings than the notebook's self-check);
* ``collect(part)``: runs in the sandboxed child, calls the student's code on the hidden
  inputs and returns raw measurements (JSON data), never an expected value;
* ``judge(part, measured, ref)``: runs in the grader's own process, compares with the
  instructor's reference (``ref``, :class:`grading.judge.Reference`) and names the mistake the
  measurement looks like, with a hint (:class:`grading.judge.Criterion`);
* ``MISTAKES``: its catalogue of classic wrong answers (:class:`Mistake`): the code a student
  writes and what grading must give for it (points, status, the diagnosis in the feedback).
  The tests build one synthetic submission per entry and check the diagnosis.

Files whose name starts with ``_`` hold code that several parts share (``_q1.py``). A new
question is one file here plus its region in a notebook or helper (``tests/test_grading.py``
fails when a region is added that no part covers); :func:`discover` also takes extra folders
(``grading.grader.Options.parts_dirs``).

The grader puts exactly the part's code into the student release's version of the module (every
other region a stub) and grades it there, with the student release's other helpers; where
the tests of a part call another part's code, the reference of that code is put in too
(``needs``: the bonus's Shampoo step calls part e's ``orthogonalize_svd``). So a part is
graded on its own, and the process running it holds no reference answer it does not need.

Not graded automatically (their written answers are collected for manual grading):
notebook 01's cell that reruns the experiment with alternating widths (an experiment call,
judged by what the student concludes from it). Every other code region of the source is a
part here.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Part:
    name: str  # the CSV column
    points: float
    title: str  # one line for the feedback
    file: str  # helpers/<module>.py or notebooks/<name>.ipynb
    functions: tuple[str, ...]  # qualified names of the functions that hold the student's code
    criteria: tuple[tuple[str, float], ...]  # (what is tested, weight): the score is points * passed weight / all
    needs: tuple[str, ...] = ()  # reference functions of the same file its tests call (other parts' answers)
    order: int = 1000  # the column's place in grades.csv and the feedback (then the name)
    # set by discover() from the part's file
    collect: Callable | None = field(default=None, compare=False, repr=False)
    judge: Callable | None = field(default=None, compare=False, repr=False)
    mistakes: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def notebook(self) -> bool:
        return self.file.endswith(".ipynb")

    @property
    def module(self) -> str:
        """The importable name of the module the child process grades (``helpers.norms``)."""
        return "student_notebook" if self.notebook else self.file[:-3].replace("/", ".")


# Solution regions of the source that no part grades, with the reason (see the module docstring).
NOT_GRADED = {
    ("notebooks/01_activation_deltas.ipynb", "alternating"): "an experiment call; its written answer is collected",
    ("notebooks/00_rms_scaling_theory.ipynb", "signgd_update_constant"): "Q1(b)'s constant (added after the "
                                                                        "homework's 20 points were set): the notebook "
                                                                        "checks it by Monte Carlo; its written answer "
                                                                        "is collected",
    ("helpers/coord_verdict.py", "slope_verdict"): "notebook 12 (research, added after the homework's 20 points were "
                                                 "set): no hidden tests yet; its self-check runs in the notebook",
    ("notebooks/13_mup_papers.ipynb", "table3_exponents"): "question 3 (a reading of TP5's Table 3, not among the "
                                                           "homework's 20 points): the notebook compares it with the "
                                                           "exponents measured from the code; no hidden tests",
}

# What a part's status means, in the feedback.
STATUSES = {
    "passed": "every hidden test passed",
    "failed": "it ran; some hidden tests failed",
    "not attempted": "the stub is still there",
    "error": "it raised an error on every hidden test, or could not be loaded",
    "timeout": "it did not finish within the time limit",
    "memory": "it asked for more memory than the limit",
    "crashed": "the process running it died",
    "missing": "the file or function is not in the submission",
    "unreadable": "the file is not valid JSON or not a notebook",
    "tampered": "it tried to reach files or processes outside its own folder",
}
VERDICT_STATUSES = ("passed", "failed", "not attempted")  # the part ran to a verdict


@dataclass(frozen=True)
class Mistake:
    """A classic wrong answer: the code a student writes for the part, and what grading gives it."""
    code: dict  # qualified name of a graded function -> its source as the student writes it
    points: float  # the part's points for it
    status: str  # the part's status (see STATUSES)
    feedback: tuple[str, ...] = ()  # phrases the feedback must hold: the diagnosis
    added: str = ""  # code the student adds at the top level of the file (an import)


def discover(folders=()) -> tuple[Part, ...]:
    """Every part of this package's folder (and of ``folders``, added to it), in order: each
    module that defines ``PART``, its ``collect``, ``judge`` and ``MISTAKES`` attached."""
    search = list(__path__) + [str(Path(folder).resolve()) for folder in folders]
    found = {}
    for info in pkgutil.iter_modules(search):
        if info.name.startswith("_"):
            continue
        __path__[:] = search  # for the import only: a later discover() without the folders does not see them
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        finally:
            del __path__[len(search) - len(folders):]
        declared = getattr(module, "PART", None)
        if not isinstance(declared, Part):
            raise TypeError(f"grading/parts/{info.name}.py defines no PART")
        if declared.name in found:
            raise ValueError(f"two parts are named {declared.name}")
        found[declared.name] = replace(declared, collect=module.collect, judge=module.judge,
                                       mistakes=dict(getattr(module, "MISTAKES", {})))
    return tuple(sorted(found.values(), key=lambda part: (part.order, part.name)))


def forget_judges() -> None:
    """Drop every part's judge (in the child, before submission code runs: the judges' comparisons
    need not be in the memory of a process that runs a student's code)."""
    import sys

    for name, module in list(sys.modules.items()):
        if name.startswith(__name__ + ".") and hasattr(module, "judge"):
            del module.judge
    for part in list(BY_NAME.values()):
        object.__setattr__(part, "judge", None)


PARTS = discover()
BY_NAME = {part.name: part for part in PARTS}


def use(parts) -> None:
    """Make ``parts`` (from :func:`discover` with extra folders) the ones :data:`BY_NAME` finds."""
    BY_NAME.update({part.name: part for part in parts})
