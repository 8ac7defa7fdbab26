"""Synthetic submissions, built from the solutions, for the grader's tests and benchmark
(``benchmarks/bench_grading.py``). Test code: nothing under ``grading/`` imports it.

:func:`solutions` writes the student release with the reference code put back
(``release.restore``); :func:`make` copies it as one student's submission with that student's
own written answers and a list of edits applied: the classic wrong answers of the course
(:data:`MISTAKES`) and the hostile submissions the grader must survive.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
from pathlib import Path

from coursetools import release
from coursetools.regions import function_nodes, is_answer_cell, span

ROOT = Path(__file__).resolve().parents[1]


def solutions(dest: Path) -> Path:
    """The solutions release in ``dest``: the student release with every region restored."""
    student = dest.with_name(dest.name + "-student")
    built = release.build_student(ROOT, student)
    shutil.copytree(student, dest)
    release.restore(student, built, dest)
    shutil.rmtree(student)
    for path in sorted((dest / "notebooks").glob("*.ipynb")):  # cells a student never has
        notebook = json.loads(path.read_text())
        notebook["cells"] = [c for c in notebook["cells"]
                             if "solutions-only" not in c.get("metadata", {}).get("tags", [])]
        path.write_text(json.dumps(notebook, indent=1))
    return dest


def replace_function(text: str, qualname: str, source: str) -> str:
    """``text`` with the function ``qualname`` replaced by ``source`` (indented to fit)."""
    import ast

    node = function_nodes(ast.parse(text))[qualname]
    first, last = span(node)
    lines = text.split("\n")
    new = textwrap.indent(textwrap.dedent(source).strip("\n"), " " * node.col_offset).split("\n")
    return "\n".join(lines[:first - 1] + new + lines[last:])


def edit_function(file: str, qualname: str, source: str):
    def edit(folder: Path) -> None:
        path = folder / file
        path.write_text(replace_function(path.read_text(), qualname, source))
    return edit


def edit_text(file: str, old: str, new: str):
    def edit(folder: Path) -> None:
        path = folder / file
        text = path.read_text()
        if old not in text:
            raise ValueError(f"{old!r} is not in {file}")
        path.write_text(text.replace(old, new, 1))
    return edit


def append(file: str, text: str):
    def edit(folder: Path) -> None:
        with open(folder / file, "a") as handle:
            handle.write(text)
    return edit


def delete(file: str):
    return lambda folder: (folder / file).unlink()


def truncate(file: str):
    def edit(folder: Path) -> None:
        data = (folder / file).read_bytes()
        (folder / file).write_bytes(data[: len(data) // 2])
    return edit


def write(file: str, text: str):
    return lambda folder: (folder / file).write_text(text)


def write_answers(folder: Path, student: str) -> None:
    """Replace every written answer (a markdown cell tagged 'answer') by ``student``'s own text."""
    for path in sorted((folder / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        number = 0
        for cell in notebook["cells"]:
            if is_answer_cell(cell):
                number += 1
                cell["source"] = f"{student} answers {path.stem} question {number}: because of fan-in."
        path.write_text(json.dumps(notebook, indent=1))


def make(base: Path, dest: Path, student: str, edits=()) -> Path:
    """One submission: ``base`` (the solutions) with ``student``'s answers and ``edits`` applied."""
    dest.mkdir(parents=True)
    for folder in ("helpers", "notebooks"):
        shutil.copytree(base / folder, dest / folder)
    write_answers(dest, student)
    for edit in edits:
        edit(dest)
    return dest


# ---------------------------------------------------------------- the classic wrong answers
def mistake_edits(part, mistake) -> list:
    """The edits that turn the solutions into ``mistake`` of ``part`` (its catalogue entry)."""
    edits = [edit_function(part.file, qualname, source) for qualname, source in mistake.code.items()]
    return edits + ([append(part.file, mistake.added)] if mistake.added else [])


def catalogue() -> dict:
    """Every part's classic wrong answers: ``{key: (part, mistake)}`` (``grading/parts/<part>.py``)."""
    from grading.parts import PARTS

    return {key: (part, mistake) for part in PARTS for key, mistake in part.mistakes.items()}


MISTAKES = {key: mistake_edits(part, mistake) for key, (part, mistake) in catalogue().items()}
MUP_LR, NORMS, ORTHO = "helpers/mup_lr.py", "helpers/norms.py", "helpers/orthogonal_updates.py"

# ---------------------------------------------------------------- hostile submissions
HOSTILE = {
    "crash_at_import": [append(NORMS, '\nraise RuntimeError("this file is broken at import")\n')],
    "infinite_loop": [edit_function(MUP_LR, "layer_lr", '''
        def layer_lr(role, shape, lr, *, input_mult, bias_mult, output_lr):
            while True:
                pass
    ''')],
    "allocates_10gb": [edit_text(ORTHO, "    ### BEGIN SOLUTION\n    X = X / (torch.linalg",
                                 "    ### BEGIN SOLUTION\n    hoard = torch.ones(10 * 2**30, dtype=torch.uint8)\n"
                                 "    X = X / (torch.linalg")],
    "segfaults": [edit_function(ORTHO, "muon_shape_scale", '''
        def muon_shape_scale(fan_out, fan_in, scale):
            import faulthandler
            faulthandler._sigsegv()
    ''')],
    "exits": [edit_function("helpers/schedules.py", "matching_epsilon", '''
        def matching_epsilon(lr_factor, v_hat, eps=ADAM_EPS):
            import os
            os._exit(3)
    ''')],
    "tampered_checks": MISTAKES["c_sqrt_product"] + [write("helpers/checks.py", textwrap.dedent('''
        def _passes(*args, **kwargs):
            print("PASS")
            return True


        check_update_norms = check_mup_optimizer = check_scaled_mlp = _passes
        check_shampoo = check_scaled_shampoo = check_newton_schulz = _passes
    '''))],
    "missing_notebook": [delete("notebooks/00_rms_scaling_theory.ipynb")],
    "truncated_notebook": [truncate("notebooks/09_adam_bias_correction.ipynb")],
    "writes_instructor": [edit_function(NORMS, "frobenius_norm", f'''
        def frobenius_norm(W):
            for target in ({str(ROOT / "helpers" / "norms.py")!r}, {str(ROOT / "helpers" / "planted.py")!r}):
                try:
                    with open(target, "a") as handle:
                        handle.write("# changed by a submission")
                except OSError:
                    pass
            return torch.linalg.matrix_norm(_as_matrix(W).float(), ord="fro").item()
    ''')],
    # reads the instructor's solutions (Landlock refuses: the child may read only its folder and Python)
    "reads_solutions": [edit_function(MUP_LR, "layer_lr", f'''
        def layer_lr(role, shape, lr, *, input_mult, bias_mult, output_lr):
            source = open({str(ROOT / "helpers" / "mup_lr.py")!r}).read()
            raise RuntimeError(source[source.index("def layer_lr"):][:200])
    ''')],
    # reads the instructor's solutions through /proc: the working folder of the process that grades (the one
    # that built this fixture; a grader runs where the course is) and of each process above the part
    "reads_through_proc": [edit_function(MUP_LR, "layer_lr", f'''
        def layer_lr(role, shape, lr, *, input_mult, bias_mult, output_lr):
            import os
            pids = [{os.getpid()}, os.getpid()]
            for pid in pids:
                try:
                    source = open(f"/proc/{{pid}}/cwd/helpers/mup_lr.py").read()
                    raise RuntimeError(source[source.index("def layer_lr"):][:200])
                except OSError:
                    pass
                try:
                    with open(f"/proc/{{pid}}/stat") as handle:
                        pids.append(int(handle.read().rsplit(")", 1)[1].split()[1]))
                except OSError:
                    pass
                if len(pids) > 5:
                    break
            return lr
    ''')],
    # the same read from C++ (torch.from_file), which no audit hook sees: Landlock refuses it
    "reads_from_cpp": [edit_function(MUP_LR, "layer_lr", f'''
        def layer_lr(role, shape, lr, *, input_mult, bias_mult, output_lr):
            import torch
            source = torch.from_file({str(ROOT / "helpers" / "mup_lr.py")!r}, shared=False, size=4000,
                                     dtype=torch.uint8)
            text = bytes(source.tolist()).decode(errors="replace")
            raise RuntimeError(text[text.index("def layer_lr"):][:200])
    ''')],
    # a write from C++ (torch.save opens its file in C++, which no audit hook sees): Landlock refuses it
    # (the part fails with torch's error), or without Landlock the tree check finds and undoes it
    "writes_from_cpp": [edit_function(NORMS, "frobenius_norm", f'''
        def frobenius_norm(W):
            torch.save(torch.zeros(4), {str(ROOT / "helpers" / "planted.bin")!r})
            return torch.linalg.matrix_norm(_as_matrix(W).float(), ord="fro").item()
    ''')],
    # the same write through libc, past the audit hook (Landlock, or the tree check, must catch it)
    "writes_through_libc": [edit_function(NORMS, "frobenius_norm", f'''
        def frobenius_norm(W):
            import ctypes
            libc = ctypes.CDLL(None)
            libc.fopen.restype = ctypes.c_void_p
            handle = libc.fopen({str(ROOT / "helpers" / "norms.py").encode()!r}, b"a")
            if handle:
                libc.fputs(b"# changed by a submission", ctypes.c_void_p(handle))
                libc.fclose(ctypes.c_void_p(handle))
            return torch.linalg.matrix_norm(_as_matrix(W).float(), ord="fro").item()
    ''')],
}


def bench_submissions(folder: Path, count: int) -> list[Path]:
    """``count`` submissions cycling through the correct one and the classic mistakes."""
    with_base = folder.parent / "solutions"
    base = solutions(with_base)
    kinds = [("correct", [])] + sorted(MISTAKES.items())
    return [make(base, folder / f"student{index:03d}", f"student{index:03d}", kinds[index % len(kinds)][1])
            for index in range(count)]


def tree_hash(root: Path) -> str:
    """Every file of the instructor's tree but build outputs, caches and git."""
    import hashlib

    from grading.grader import SKIPPED_DIRS

    digest = hashlib.sha256()
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(directory) / name
            if not name.endswith(".pyc"):
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- what feedback may not say
def hidden_shapes() -> set[tuple[int, ...]]:
    """Every shape of the parts' hidden inputs: matrices, the layers of the hidden networks, pairs of sizes."""
    import sys

    from grading.parts import PARTS

    shapes = set()
    for part in PARTS:
        module = sys.modules[part.collect.__module__]
        for value in vars(module).values():
            if not isinstance(value, tuple):
                continue
            for item in value:
                if isinstance(item, dict) and "shape" in item:
                    shapes.add(tuple(item["shape"]))
                elif isinstance(item, dict) and "hidden" in item:
                    widths = (item["input_size"], *item["hidden"], item["classes"])
                    shapes |= set(zip(widths[1:], widths[:-1])) | {tuple(item["hidden"])}
                elif isinstance(item, tuple) and len(item) == 2 and all(type(n) is int for n in item):
                    shapes.add(item)
    return shapes


FORMULAS = ["lr/fan_in", "1/fan_in", "sqrt(fan_out/fan_in)", "sqrt(fan_in/fan_out)", "/fan_in", "fan_in/",
            "input_mult/", "*fan_in", "1/sqrt(fan_in)"]


def assert_reveals_nothing(text: str, where: str, limit: float, students=()) -> None:
    """No digit in ``text`` but the ones feedback may hold (points, counts, lines, limits, names), no
    hidden shape spelled out, no correct formula."""
    from grading import parts

    allowed = [r"\b\d+\.\d\d\b", r"/ \d+\b", r"\b\d+ of \d+ ", r"line \d+ of", rf"\b{limit:g} s limit", r"\d+ MB",
               r"\*\*Total: [\d.]+ / \d+\*\*", r"Q1\([ab]\)", r"\b2[b-e]:", r"research \d\d", r"\bd[12]\b",
               r"\b(?:helpers|notebooks)/[\w.]+", r"\(d_out, 1\)", r"\(cell \d+\)"]
    allowed += [re.escape(part.name) for part in parts.PARTS] + [re.escape(s) for s in students]
    rest = text
    for pattern in allowed:
        rest = re.sub(pattern, "", rest)
    assert not re.findall(r"\d", rest), (where, re.findall(r".{0,30}\d.{0,30}", rest)[:5])
    for shape in hidden_shapes():
        for spelled in (" x ".join(map(str, shape)), "x".join(map(str, shape)), str(shape), str(list(shape))):
            assert spelled not in text, (where, spelled)
    squeezed = text.replace(" ", "")
    assert not [f for f in FORMULAS if f in squeezed], where
