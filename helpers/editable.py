"""The files in ``helpers/`` that a student edits, and what makes an edit the code that runs next.

Before each notebook cell runs, :func:`refresh` reads every module of :data:`EDITABLE` that
has been imported and, where its file's text differs from the text the module was last
executed from, executes the new text in the same module object (its old names are cleared
first). Two rules make that enough:

* every caller reaches a student's function through its module at call time
  (``norms.frobenius_norm(A)``; ``from helpers.norms import frobenius_norm`` would keep the
  old function), so the next call runs the file as it is now;
* these modules define no classes, so no instance made earlier can keep old code: the
  course's classes live in other modules and call these functions.

A file that no longer executes (a syntax error, say) is reported at once, and from then on
every use of its module raises that error with the file and line, until the file is fixed:
the notebook never runs an older version in silence. Outside IPython (scripts, the grader)
nothing is watched: files do not change during those runs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import linecache
import sys
from pathlib import Path

EDITABLE = (
    "helpers.norms",  # part b
    "helpers.mup_lr",  # part c
    "helpers.mup_multipliers",  # part d
    "helpers.orthogonal_updates",  # part e, the bonus, Newton-Schulz and Muon's shape factors
    "helpers.coord_verdict",  # the coordinate check's verdict (notebook 12)
    "helpers.schedules",  # the matching epsilon (notebook 10)
    "helpers.least_squares",  # the regression gradient (notebook 11)
)
_KEEP = {"__name__", "__file__", "__spec__", "__loader__", "__package__", "__builtins__", "__doc__", "__cached__"}
_executed: dict[str, str] = {}  # module name -> the text it was last executed from


class EditedFileError(ImportError):
    """An edited helper file does not execute; the message names the file, the line and what to do."""


def _where(path: Path) -> str:
    parts = path.parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else str(path)


def _broken(module, message: str):
    def __getattr__(name):  # only called for names the failed execution did not define
        raise EditedFileError(message)

    return __getattr__


def _clear(module) -> None:
    for name in [name for name in module.__dict__ if name not in _KEEP]:
        del module.__dict__[name]


def _execute(module, text: str) -> str | None:
    """Execute ``text`` as ``module``'s new source; return an error message, or None."""
    path = Path(module.__file__)
    _clear(module)
    lines = text.splitlines(keepends=True)
    linecache.cache[str(path)] = (len(text), None, lines, str(path))  # inspect shows what runs (show_source)
    try:
        exec(compile(text, str(path), "exec", dont_inherit=True), module.__dict__)
    except Exception as error:  # noqa: BLE001 - any error of the student's file is reported, not raised here
        line = getattr(error, "lineno", None)
        if line is None:
            tb = error.__traceback__
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == str(path):
                    line = tb.tb_lineno
                tb = tb.tb_next
        where = f"{_where(path)}, line {line}" if line else _where(path)
        message = (f"{where}: {type(error).__name__}: {getattr(error, 'msg', None) or error}. "
                   f"Fix the file and run the cell again (its functions cannot run until it loads).")
        _clear(module)  # nothing a half-executed file defined may run
        module.__getattr__ = _broken(module, message)
        return message
    return None


def refresh() -> list[str]:
    """Re-execute every imported editable module whose file changed; return the error messages
    of those that no longer execute (each is also printed)."""
    errors = []
    for name in EDITABLE:
        module = sys.modules.get(name)
        if module is None or not getattr(module, "__file__", None):
            continue
        try:
            text = Path(module.__file__).read_text(encoding="utf-8")
        except OSError:
            continue
        if _executed.get(name) == text:
            continue
        message = _execute(module, text)
        if message is None:
            _executed[name] = text
        else:
            _executed.pop(name, None)  # tried again before every cell until it loads
            print(message, file=sys.stderr)
            errors.append(message)
    importlib.invalidate_caches()
    return errors


class _EditableLoader(importlib.abc.Loader):
    """Executes an editable module from its text, as :func:`refresh` does: a file that does not
    execute is reported and its module raises that error on use, instead of failing the import of
    everything above it (a student's typo in one file must not stop every notebook at its imports)."""

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module) -> None:
        text = Path(module.__file__).read_text(encoding="utf-8")
        message = _execute(module, text)
        if message is None:
            _executed[module.__name__] = text
        else:
            print(message, file=sys.stderr)


class _EditableFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name not in EDITABLE:
            return None
        found = importlib.machinery.PathFinder.find_spec(name, path)
        if found is None or not str(found.origin).endswith(".py"):
            return None
        return importlib.util.spec_from_file_location(name, found.origin, loader=_EditableLoader())


def install_loader() -> None:
    """Import the editable modules through :class:`_EditableLoader` from now on (in a notebook:
    ``helpers`` calls this before it imports anything else)."""
    if not any(isinstance(finder, _EditableFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _EditableFinder())


def _before_cell(*_info) -> None:  # IPython 7 and later pass an ExecutionInfo; older ones nothing
    refresh()


def watch(shell) -> None:
    """Run :func:`refresh` before every cell of ``shell`` (an IPython shell); once per shell."""
    previous = getattr(shell, "_course_refresh", None)
    if previous is not None:
        try:
            shell.events.unregister("pre_run_cell", previous)
        except ValueError:
            pass
    shell.events.register("pre_run_cell", _before_cell)
    shell._course_refresh = _before_cell
