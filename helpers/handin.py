"""Hand in your work: ``handin.zip`` with exactly the files that are graded, after a list of
what is not finished yet.

    make handin                                        (in the course folder)
    python helpers/handin.py [--root FOLDER] [--out FILE]
    from helpers.handin import hand_in; hand_in()      (in any notebook; in Colab it also downloads the zip)

The zip holds ``helpers/*.py`` and ``notebooks/*.ipynb`` of the course folder (file names of
letters, digits and ``_``, each at most 50 MB): what is graded, and nothing else (no caches,
checkpoints, data, or copies such as ``02_update_norms-Copy1.ipynb``, which are named so that
you can rename one that holds your work). Before writing it, this lists by notebook and file:

* code still to write: a ``# YOUR CODE HERE`` stub with its ``raise NotImplementedError(...)``,
  in ``helpers/`` or in a notebook cell;
* written answers still to write: ``YOUR ANSWER HERE`` in a markdown cell;
* checks not passed: a check cell (``passed = check_...(...)``) whose saved output has no
  ``PASS`` line, shows an error, or that never ran;
* notebooks never run (no cell has an output).

Unfinished parts do not stop the zip: partial work can be handed in. :func:`hand_in` returns
True when everything is finished. The command exits with 0 when the zip is written (finished or
not; ``--strict``: 1 when something is unfinished) and 2 when no zip could be written. The list reads your saved files
(save your notebooks first). It never says whether an answer is right: the checks do that.

Standard library only, so that ``make handin`` needs no environment.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # run as a script: the course's modules next to this file must not shadow the standard library

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import List, NamedTuple, Optional, Tuple  # noqa: E402

# What is graded, relative to the course folder, and the sizes read at most (the grader uses these).
GRADED_PATH = re.compile(r"(?:helpers/[A-Za-z0-9_]+\.py|notebooks/[A-Za-z0-9_]+\.ipynb)")
GRADED_FOLDERS = ("helpers", "notebooks")
MAX_FILE = 50 * 2**20
MAX_TOTAL = 400 * 2**20
ZIP_NAME = "handin.zip"

# The placeholders that the student release puts where your work goes.
CODE_STUB = "# YOUR CODE HERE"
ANSWER_STUB = "YOUR ANSWER HERE"
STUB_MESSAGE = "replace this stub with your code"  # in the stub's NotImplementedError
_RAISE = "raise NotImplementedError("
_MESSAGE = re.compile(r"NotImplementedError\((['\"])(.*)\1\)")
_CHECK_CALL = re.compile(r"^(?:[A-Za-z_]\w*\s*=\s*)?(check_\w+)\(", re.M)
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)")
_DEF = re.compile(r"(\s*)(?:async\s+)?(?:def|class)\s+(\w+)")

KINDS = {
    "code": "code to write",
    "answer": "written answer to write",
    "check": "check not passed",
    "run": "not run",
    "file": "not graded as it is",
}


class HandinError(Exception):
    """No zip can be written (not a course folder, a file that cannot be read or written)."""


class Unfinished(NamedTuple):
    file: str  # relative to the course folder: notebooks/02_update_norms.ipynb, helpers/norms.py
    kind: str  # a key of KINDS
    where: str  # for the student: the cell and the heading above it, or the function and the line


class Handin(NamedTuple):
    zip_path: Path
    files: List[str]  # what the zip holds, in order
    unfinished: List[Unfinished]
    parts: dict  # notebook file -> its homework part ("homework part b"), from its title
    left_out: List[str]  # files next to the graded ones that are not handed in (copies, odd names)

    @property
    def finished(self) -> bool:
        return not self.unfinished


# ---------------------------------------------------------------- which files
def default_root() -> Path:
    """The course folder: the one that holds this ``helpers/``."""
    return Path(__file__).resolve().parents[1]


def graded_files(root: Path) -> Tuple[List[Tuple[str, bytes]], List[Unfinished], List[str]]:
    """``(relative path, content)`` of every graded file of ``root``, as the grader reads a
    folder (no link, none over :data:`MAX_FILE`, at most :data:`MAX_TOTAL` in all); the graded
    files it could not take; the other ``.py`` and ``.ipynb`` files next to them."""
    if not (root / "helpers").is_dir() and not (root / "notebooks").is_dir():
        raise HandinError(f"{root} is not the course folder: it has no helpers/ or notebooks/")
    files, problems, left_out, total = [], [], [], 0
    for folder in GRADED_FOLDERS:
        if not (root / folder).is_dir():
            continue
        for path in sorted((root / folder).iterdir(), key=lambda p: p.name):
            relative = f"{folder}/{path.name}"
            if not GRADED_PATH.fullmatch(relative):
                if path.suffix in (".py", ".ipynb") and not path.name.startswith("."):
                    left_out.append(relative)
                continue
            if path.is_symlink():
                problems.append(Unfinished(relative, "file", "a link to a file elsewhere: the grader does not "
                                                             "follow links; put the file itself here"))
                continue
            if not path.is_file():
                continue
            size = path.stat().st_size
            if size > MAX_FILE or total + size > MAX_TOTAL:
                problems.append(Unfinished(relative, "file", f"too large to be graded ({size / 2**20:.0f} MB; at "
                                                             f"most {MAX_FILE // 2**20} MB a file): clear the "
                                                             "largest outputs and save"))
                continue
            try:
                data = path.read_bytes()
            except OSError as error:
                raise HandinError(f"{relative} cannot be read: {error}") from error
            total += len(data)
            files.append((relative, data))
    return files, problems, left_out


# ---------------------------------------------------------------- what is unfinished
def _lines(value) -> str:
    return "".join(value) if isinstance(value, list) else (value if isinstance(value, str) else "")


def code_stubs(lines: List[str]) -> List[int]:
    """Indices of the lines that raise a stub's NotImplementedError (with ``# YOUR CODE HERE``
    above it, or with the stub's own message)."""
    found = []
    for index, line in enumerate(lines):
        if not line.strip().startswith(_RAISE):
            continue
        after_marker = index > 0 and lines[index - 1].strip() == CODE_STUB
        if after_marker or STUB_MESSAGE in line:
            found.append(index)
    return found


def _stub_use(line: str) -> str:
    """What the stub's message says the code is for ("used in 03_mup_optimizer (homework part c)")."""
    match = _MESSAGE.search(line)
    message = match.group(2) if match else ""
    used = re.search(r"\bused in (.*?): " + re.escape(STUB_MESSAGE), message)
    return used.group(1) if used else ""


def _enclosing(lines: List[str], index: int) -> str:
    depth, names = len(lines[index]) - len(lines[index].lstrip()), []
    for line in reversed(lines[:index]):
        match = _DEF.match(line)
        if match and len(match.group(1)) < depth:
            names.insert(0, match.group(2))
            depth = len(match.group(1))
    return ".".join(names)


def helper_unfinished(relative: str, data: bytes) -> List[Unfinished]:
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return [Unfinished(relative, "file", "not UTF-8 text: save it again as UTF-8")]
    out = []
    for index in code_stubs(lines):
        function, used = _enclosing(lines, index), _stub_use(lines[index])
        where = f"{function} (line {index + 1})" if function else f"line {index + 1}"
        out.append(Unfinished(relative, "code", where + (f", used in {used}" if used else "")))
    return out


def notebook_part(cells: List[dict]) -> str:
    """The homework part named in the title's last parentheses ("homework part b")."""
    for cell in cells:
        source = _lines(cell.get("source"))
        if cell.get("cell_type") == "markdown" and source.strip():
            found = re.findall(r"\(([^()]*)\)", source.strip().splitlines()[0])
            return found[-1] if found else ""
    return ""


def _check_state(cell: dict, check: str, alone: bool) -> str:
    """Why the saved output of a check cell does not show ``check`` passed ("" when it does)."""
    outputs = [o for o in cell.get("outputs") or [] if isinstance(o, dict)]
    if cell.get("execution_count") is None and not outputs:
        return "it never ran"
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if errors:
        return f"it stopped with {errors[0].get('ename') or 'an error'}"
    printed = "\n".join(_lines(o.get("text")) for o in outputs if o.get("output_type") == "stream")
    passes = [line for line in printed.splitlines() if line.startswith("PASS")]
    if any(re.match(rf"PASS\W+{re.escape(check)}\b", line) for line in passes) or (alone and passes):
        return ""
    return "its output has no PASS line"


def _place(number: int, heading: str) -> str:
    return f'cell {number}, under "{heading}"' if heading else f"cell {number}"


def notebook_unfinished(relative: str, data: bytes) -> Tuple[str, List[Unfinished]]:
    """The notebook's homework part and what is unfinished in it, from its saved cells and outputs."""
    try:
        notebook = json.loads(data.decode("utf-8"))
        cells = [c for c in notebook["cells"] if isinstance(c, dict)]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        return "", [Unfinished(relative, "file", "not a readable notebook (it was cut short or edited as text): "
                                                 "download or save it again from Jupyter")]
    out, answers, heading, ran = [], [], "", False
    for number, cell in enumerate(cells, start=1):
        source, kind = _lines(cell.get("source")), cell.get("cell_type")
        if kind == "markdown":
            fenced = False
            for line in source.split("\n"):
                if line.lstrip().startswith("```"):
                    fenced = not fenced
                match = None if fenced else _HEADING.match(line)
                if match:
                    heading = match.group(1).strip()
                elif line.strip() == ANSWER_STUB:
                    answers.append(len(out))
                    out.append(Unfinished(relative, "answer", _place(number, heading)))
        elif kind == "code":
            ran = ran or cell.get("execution_count") is not None or bool(cell.get("outputs"))
            lines = source.split("\n")
            out += [Unfinished(relative, "code", _place(number, heading)) for _ in code_stubs(lines)]
            checks = list(dict.fromkeys(_CHECK_CALL.findall(source)))
            for check in checks:
                why = _check_state(cell, check, len(checks) == 1)
                if why:
                    out.append(Unfinished(relative, "check", f"{check}, {_place(number, heading)}: {why}"))
    for count, index in enumerate(answers, start=1):  # the grader numbers them so, too
        if len(answers) > 1:
            out[index] = out[index]._replace(where=f"{out[index].where} (answer {count} of {len(answers)})")
    if not ran and cells:
        out.append(Unfinished(relative, "run", "no cell has an output: run it from the top and save it"))
    return notebook_part(cells), out


# ---------------------------------------------------------------- the zip and the report
def write_zip(files: List[Tuple[str, bytes]], out: Path, root: Path) -> None:
    """Write ``files`` into the zip ``out`` (replaced whole, never left half written)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".handin-", suffix=".zip", dir=out.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for relative, data in files:
                try:
                    modified = (root / relative).stat().st_mtime
                except OSError:
                    modified = time.time()
                stamp = time.localtime(max(modified, 315532800))  # zip dates start in 1980
                info = zipfile.ZipInfo(relative, date_time=stamp[:6])
                info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
                archive.writestr(info, data)
        os.replace(temporary, out)
    except BaseException:
        os.unlink(temporary)
        raise


def check(root: Optional[Path] = None, out: Optional[Path] = None) -> Handin:
    """List what is unfinished in the course folder ``root`` and write the zip ``out``
    (``root/handin.zip``); prints nothing."""
    root = Path(root).resolve() if root is not None else default_root()
    out = Path(out).resolve() if out is not None else root / ZIP_NAME
    files, problems, left_out = graded_files(root)
    unfinished, parts = [], {}
    for relative, data in files:
        if relative.startswith("notebooks/"):
            parts[relative], found = notebook_unfinished(relative, data)
        else:
            found = helper_unfinished(relative, data)
        unfinished += found
    unfinished += problems
    try:
        write_zip(files, out, root)
    except OSError as error:
        raise HandinError(f"{out} cannot be written: {error}") from error
    unfinished.sort(key=lambda u: (not u.file.startswith("notebooks/"), u.file))  # stable: a file's items in order
    return Handin(out, [relative for relative, _ in files], unfinished, parts, left_out)


def report(result: Handin) -> str:
    """What :func:`hand_in` prints: the unfinished parts by file, then where the zip is."""
    lines = []
    if result.unfinished:
        lines.append(f"Not finished yet ({len(result.unfinished)}):")
        for file in dict.fromkeys(u.file for u in result.unfinished):
            part = result.parts.get(file)
            lines.append(f"  {file}" + (f" ({part})" if part else ""))
            lines += [f"    - {KINDS[u.kind]}: {u.where}" for u in result.unfinished if u.file == file]
        lines.append("")
    if result.left_out:
        lines += ["Not handed in (the grader reads only helpers/<name>.py and notebooks/<name>.ipynb, names of "
                  "letters, digits and _): " + ", ".join(result.left_out),
                  "  If one of them holds your work, rename it to the course's file name.", ""]
    where = f"{result.zip_path} ({len(result.files)} files: helpers/*.py and notebooks/*.ipynb)"
    if result.finished:
        lines.append(f"Everything is finished. Hand in {where}.")
    else:
        lines.append(f"Written all the same: {where}. You may hand it in as it is, or finish what is listed "
                     "above, run each notebook from the top, save, and hand in again.")
    return "\n".join(lines)


def _colab_files():
    """``google.colab.files`` in Colab, else None."""
    try:
        from google.colab import files
    except Exception:  # noqa: BLE001 - anything that is not Colab
        return None
    return files


def hand_in(root=None, out=None) -> bool:
    """List what is unfinished, write ``handin.zip`` in the course folder (``root``: the folder
    that holds ``helpers/``) and, in Colab, offer it for download. True when everything is finished."""
    files = _colab_files()
    if files is not None:
        print("Colab: this reads the notebooks as saved in the course folder; save each one first (File, Save).\n")
    result = check(root, out)
    print(report(result), flush=True)
    if files is not None:
        files.download(str(result.zip_path))
    return result.finished


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="List what is unfinished and write handin.zip (what is graded).")
    parser.add_argument("--root", type=Path, default=None, help="the course folder (default: the one holding helpers/)")
    parser.add_argument("--out", type=Path, default=None, help=f"the zip to write (default: ROOT/{ZIP_NAME})")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when something is unfinished")
    args = parser.parse_args(argv)
    try:
        result = check(args.root, args.out)
    except HandinError as error:
        print(f"hand-in failed: {error}", file=sys.stderr)
        return 2
    print(report(result), flush=True)
    return 1 if args.strict and not result.finished else 0  # a written zip is a success: partial work may be handed in


if __name__ == "__main__":
    sys.exit(main())
