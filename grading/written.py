"""Written answers: every ``YOUR ANSWER HERE`` of the student release, as each student filled it in.

The questions come from the student release the grader builds from the instructor's source
(so they are the cells the students had). A student's answer cell is the markdown cell with the
release cell's nbformat id (Jupyter, JupyterLab and Colab keep a cell's id when its text is
edited, and give a pasted or new cell a new one). Only for a notebook whose cells have lost their
ids (an old nbformat, a tool that rewrites them) is it found by aligning the student's cells with
the release's (``difflib``): unchanged cells anchor the alignment. Either way the answer is what
replaced the stub line between the cell's unchanged text before and after it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from coursetools.regions import ANSWER_STUB
from grading.submission import SourceProblem, notebook_cells

NO_ANSWER = "_(no answer: the stub is unchanged)_"


@dataclass(frozen=True)
class Question:
    notebook: str  # notebooks/<name>.ipynb
    number: int  # 1-based within the notebook
    count: int  # questions in that notebook
    cell: int  # index of the answer cell in the release notebook
    cell_id: str | None  # its nbformat id (None in a notebook without ids)
    before: str  # the answer cell's text before the stub line
    after: str  # and after it
    text: str  # the question as the student saw it


def questions(release: Path) -> list[Question]:
    out = []
    for path in sorted((release / "notebooks").glob("*.ipynb")):
        relative = f"notebooks/{path.name}"
        cells = notebook_cells(path.read_bytes(), relative)
        found = []
        for index, cell in enumerate(cells):
            lines = cell["source"].split("\n")
            if cell["cell_type"] == "markdown" and ANSWER_STUB in lines:
                at = lines.index(ANSWER_STUB)
                before, after = "\n".join(lines[:at]), "\n".join(lines[at + 1:])
                text = before.replace("**Answer.**", "").strip()
                if "?" not in text:  # "**Answer.**" alone: the question is the markdown cell before
                    previous = next((cells[i]["source"] for i in range(index - 1, -1, -1)
                                     if cells[i]["cell_type"] == "markdown"), "")
                    text = f"{previous.strip()}\n\n{text}".strip()
                found.append((index, cell["id"], before, after, text))
        out += [Question(relative, n + 1, len(found), index, cell_id, before, after, text)
                for n, (index, cell_id, before, after, text) in enumerate(found)]
    return out


def _answer(source: str, question: Question) -> str:
    text = source
    if question.before.strip() and text.lstrip().startswith(question.before.strip()):
        text = text.lstrip()[len(question.before.strip()):]
    if question.after.strip() and text.rstrip().endswith(question.after.strip()):
        text = text.rstrip()[: -len(question.after.strip())]
    text = text.strip()
    return NO_ANSWER if text in ("", ANSWER_STUB) else text


def answers(release: Path, files: dict[str, bytes], all_questions: list[Question]) -> dict[Question, str]:
    """Each question's answer in a submission (or why there is none)."""
    out = {}
    by_notebook: dict[str, list[Question]] = {}
    for question in all_questions:
        by_notebook.setdefault(question.notebook, []).append(question)
    for notebook, asked in by_notebook.items():
        if notebook not in files:
            out.update({q: f"_(no answer: {notebook} is not in the submission)_" for q in asked})
            continue
        try:
            mine = notebook_cells(files[notebook], notebook)
        except SourceProblem as problem:
            out.update({q: f"_(no answer: {problem.reason})_" for q in asked})
            continue
        by_id = {}
        for cell in mine:
            if cell["id"] and cell["cell_type"] == "markdown":
                by_id.setdefault(cell["id"], cell)
        blocks = None
        for question in asked:
            if question.cell_id and question.cell_id in by_id:
                out[question] = _answer(by_id[question.cell_id]["source"], question)
                continue
            if blocks is None:  # the fallback: align the cells (computed once per notebook, when needed)
                theirs = notebook_cells((release / notebook).read_bytes(), notebook)
                blocks = difflib.SequenceMatcher(a=[c["source"] for c in theirs], b=[c["source"] for c in mine],
                                                 autojunk=False).get_opcodes()
            out[question] = _find(question, blocks, mine)
    return out


def _find(question: Question, blocks, mine: list[dict]) -> str:
    for tag, i1, i2, j1, j2 in blocks:
        if not i1 <= question.cell < i2:
            continue
        if tag == "equal":
            return NO_ANSWER
        candidates = [j for j in range(j1, j2) if mine[j]["cell_type"] == "markdown"]
        if not candidates:
            return "_(no answer: the answer cell was deleted)_"
        guess = j1 + (question.cell - i1)

        def score(j, guess=guess):
            source = mine[j]["source"].strip()
            return (bool(question.before.strip()) and source.startswith(question.before.strip()),
                    bool(question.after.strip()) and source.endswith(question.after.strip()), -abs(j - guess))

        return _answer(mine[max(candidates, key=score)]["source"], question)
    return "_(no answer found)_"


def quote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.strip().split("\n"))


def write(path: Path, all_questions: list[Question], collected: dict[str, dict[Question, str]]) -> None:
    """``written_answers.md``: each question, then every student's answer (students sorted)."""
    lines = ["# Written answers", "",
             f"{len(collected)} submissions. Each question of the student release as the students saw it, then "
             "every student's answer (what replaced `YOUR ANSWER HERE`), for grading by hand.", ""]
    for question in all_questions:
        heading = f"## {question.notebook}, question {question.number} of {question.count}"
        lines += [heading, "", quote(question.text), ""]
        for student in sorted(collected):
            answer = collected[student].get(question, "_(not read)_")
            lines += [f"**{student}**", "", answer if answer.startswith("_(") else quote(answer), ""]
    path.write_text("\n".join(lines))
