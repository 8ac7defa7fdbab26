"""How a notebook shows the errors a student is meant to act on: the message first, and short.

A stub still in place (a ``NotImplementedError`` whose message says "replace this stub"), a
self-check that failed (``CheckFailed``, ``VerdictCheckFailed``) and a helper file that no longer
executes (``EditedFileError``) are the student's next step, not a crash. IPython shows their
message and what to do next, without the traceback through ``helpers/checks.py`` and torch;
every other error keeps its full traceback. Nothing is caught: the cell still fails, so
"Run All" and headless runs stop there as before.
"""

from __future__ import annotations

from helpers.checks import CheckFailed
from helpers.coord_check import VerdictCheckFailed
from helpers.editable import EditedFileError

STUB_PHRASE = "replace this stub"
NEXT_STEP = {
    "stub": "Next: replace that stub with your code where the message says (save the file if it is in helpers/), "
            "then run this cell again.",
    "check": "Next: fix your code (save the helpers/ file you changed), then run this cell again; no restart needed.",
    "file": "Next: fix the file and save it, then run this cell again.",
}


def short_message(error: BaseException) -> list[str] | None:
    """The lines shown for ``error``, the message first; None for an error that keeps its traceback."""
    if isinstance(error, (CheckFailed, VerdictCheckFailed)):
        kind = "check"
    elif isinstance(error, EditedFileError):
        kind = "file"
    elif isinstance(error, NotImplementedError) and STUB_PHRASE in str(error):
        kind = "stub"
    else:
        return None
    lines = str(error).splitlines() or [type(error).__name__]
    if kind != "check":
        lines[0] = f"{type(error).__name__}: {lines[0]}"
    return [*lines, NEXT_STEP[kind]]


def _show(shell, etype, value, tb, tb_offset=None):
    # IPython leaves the display to a custom handler (its return value is not shown)
    lines = short_message(value)
    if lines is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    else:
        shell._showtraceback(etype, value, ["\n".join(lines)])  # the kernel's error message: ename, value, lines


def show_short_errors(shell) -> None:
    """Make ``shell`` (an IPython shell) show the errors above by their message alone."""
    shell.set_custom_exc((CheckFailed, VerdictCheckFailed, EditedFileError, NotImplementedError), _show)
