"""Verdicts: what a child measured, compared with the instructor's reference, in the parent.

Runs in the grader's own process, never in the one that ran submission code. The reference
values come from the instructor's helpers (imported from the instructor's tree before any
submission runs) on the inputs of :mod:`grading.cases`. A failed test is reported as the
mistake the measurement looks like (each candidate mistake is computed and matched) and a
hint; findings give counts ("3 of 11 hidden matrices") but never an input, an expected value
or the correct formula.
"""

from __future__ import annotations

import math
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REL = 1e-3


@dataclass(frozen=True)
class Finding:
    mistake: str
    hint: str


@dataclass
class Criterion:
    name: str
    weight: float
    state: str  # passed, failed, not attempted
    findings: list[Finding] = field(default_factory=list)
    errored: bool = False  # every hidden test of it raised an error


@dataclass
class Verdict:
    status: str
    fraction: float  # of the part's points
    criteria: list[Criterion] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # about the part as a whole


def close(a: float, b: float, rel: float = REL) -> bool:
    return a is not None and b is not None and math.isfinite(a) and math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def array(entry) -> np.ndarray | None:
    """A measured tensor (``{"shape", "dtype", "values"}``) as a float64 array, None if malformed."""
    try:
        return np.asarray(entry["values"], dtype=np.float64).reshape(entry["shape"])
    except (KeyError, TypeError, ValueError):
        return None


def svd_values(matrix: np.ndarray) -> np.ndarray:
    return np.linalg.svd(matrix, compute_uv=False)


def polar(matrix: np.ndarray) -> np.ndarray:
    u, _, vh = np.linalg.svd(matrix, full_matrices=False)
    return u @ vh


ERROR_HINTS = {
    "KeyError": "a lookup failed for a key that was never stored: code that reads stored state must create every "
                "entry the first time it sees a parameter",
    "NameError": "only the code of the graded functions and what your file adds at its top level is graded, inside "
                 "the course's own helpers: a name defined elsewhere is not there",
}
IMPORT_HINT = ("the graded functions are loaded with what your file adds at its top level (imports, new "
               "functions, other statements); restart the kernel and run the notebook from the top to see the error")
GENERIC_ERROR_HINT = ("the notebook's self-check calls this code too: run it and read the traceback; the hidden tests "
                      "use other shapes and settings, so the code must not depend on the self-check's")


class Tally:
    """The entries of one criterion: failures with their context, errors grouped, stubs counted."""

    def __init__(self, noun: str):
        self.noun, self.total, self.stubs = noun, 0, 0
        self.failures: list[tuple[object, dict]] = []
        self.errors: dict[tuple, int] = {}

    def take(self, entry):
        """The value of an entry, or None (its error recorded)."""
        self.total += 1
        if isinstance(entry, dict) and "ok" in entry:
            return entry["ok"]
        error = entry.get("error") if isinstance(entry, dict) else None
        error = error if isinstance(error, dict) else dict(type="malformed result", message="")
        if error.get("stub"):
            self.stubs += 1
        else:
            key = (str(error.get("type")), str(error.get("message", ""))[:240], error.get("where"))
            self.errors[key] = self.errors.get(key, 0) + 1
        return None

    def fail(self, got, context: dict | None = None) -> None:
        self.failures.append((got, context or {}))

    def count(self, n: int) -> str:
        return f"{n} of {self.total} {self.noun}"

    def error_findings(self) -> list[Finding]:
        out = []
        for (kind, message, where), n in sorted(self.errors.items(), key=lambda item: (-item[1], str(item[0]))):
            out.append(Finding(f"{error_text(kind, message, where)}, on {self.count(n)}",
                               ERROR_HINTS.get(kind, GENERIC_ERROR_HINT)))
        return out[:3]

    def criterion(self, name: str, weight: float, candidates=(), fallback: Finding | None = None) -> Criterion:
        """``candidates``: ``(test(got, context) -> bool, Finding)``; the ones that explain the most
        failures are reported, the unexplained rest with ``fallback``."""
        if self.total and self.stubs == self.total:
            stub = Finding("the stub is still there", "replace it with your code")
            return Criterion(name, weight, "not attempted", [stub])
        if not self.failures and not self.errors and not self.stubs:
            return Criterion(name, weight, "passed")
        findings = self.error_findings()
        if self.stubs:
            findings.append(Finding(f"raised NotImplementedError on {self.count(self.stubs)}",
                                    "a stub is left in the code this part calls"))
        unexplained = list(range(len(self.failures)))
        for _ in range(2):  # greedily: the mistake that explains the most failures not yet explained
            best = max(((([i for i in unexplained if _safe(test, *self.failures[i])]), order, finding)
                        for order, (test, finding) in enumerate(candidates)),
                       key=lambda item: (len(item[0]), -item[1]), default=([], 0, None))
            explained, _, finding = best
            if not explained:
                break
            findings.append(Finding(f"{finding.mistake} ({self.count(len(explained))})", finding.hint))
            unexplained = [i for i in unexplained if i not in explained]
        if unexplained and fallback is not None:
            findings.append(Finding(f"{fallback.mistake} ({self.count(len(unexplained))})", fallback.hint))
        errored = sum(self.errors.values()) == self.total
        return Criterion(name, weight, "failed", findings, errored)


# Paths on the grading machine (the course tree, temporary folders) say nothing to a student and may
# hold digits that look like hidden values: feedback names them by what they are.
_COURSE_ROOT = str(Path(__file__).resolve().parents[1])
_TEMP_ROOT = str(Path(tempfile.gettempdir()).resolve())


def without_machine_paths(message: str) -> str:
    message = re.sub(r"/proc/\d+", "/proc/<pid>", message.replace(_COURSE_ROOT, "<course files>"))
    return re.sub(re.escape(_TEMP_ROOT) + r"/[^\s'\"]*", "<its folder>", message)


def error_text(kind: str, message: str, where: str | None) -> str:
    message = without_machine_paths(message)
    return f"raised {kind}" + (f": {message}" if message else "") + (f" ({where})" if where else "")


def _safe(test, got, context) -> bool:
    try:
        return bool(test(got, context))
    except Exception:  # noqa: BLE001 - a candidate that cannot be computed explains nothing
        return False


def trend(xs, ratios) -> str:
    """How measured/expected ratios move with ``xs``: constant, up, down or mixed."""
    logs = np.log(np.abs(np.asarray(ratios, dtype=float)) + 1e-300)
    if np.ptp(logs) < 0.01:
        return "constant"
    x = np.log(np.asarray(xs, dtype=float))
    if np.ptp(x) == 0:
        return "mixed"
    correlation = np.corrcoef(x, logs)[0, 1]
    return "up" if correlation > 0.9 else "down" if correlation < -0.9 else "mixed"


class Reference:
    """The instructor's implementations, and what parts compute from them once per grading run
    (:meth:`cached`)."""

    def __init__(self, notebook_functions: dict):
        import helpers.least_squares
        import helpers.models
        import helpers.norms
        import helpers.optimizers
        import helpers.orthogonal_updates
        import helpers.schedules

        self.models, self.optimizers = helpers.models, helpers.optimizers
        self.orthogonal = helpers.orthogonal_updates
        self.schedules, self.regression, self.norms = helpers.schedules, helpers.least_squares, helpers.norms
        self.notebook = notebook_functions  # function name -> the instructor's function
        self._cache: dict = {}
        self._lock = threading.Lock()

    def cached(self, key: str, compute):
        """``compute()``, once per key (parts are judged from several threads with --jobs)."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = compute()
            return self._cache[key]


def recorded_errors(data):
    """Every error description recorded anywhere in a result."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("error", "import_error") and isinstance(value, dict):
                yield value
            else:
                yield from recorded_errors(value)
    elif isinstance(data, list):
        for value in data:
            yield from recorded_errors(value)


def _ran_out_of_memory(data) -> bool:
    """Whether any recorded error of a result is a failed allocation."""
    return any(error.get("memory") for error in recorded_errors(data))


def judge(part, result: dict, ref: Reference, memory_mb: int) -> Verdict:
    """The verdict of one part from the child's result (``measured``, or ``import_error``)."""
    if "import_error" in result:
        error = result["import_error"] if isinstance(result["import_error"], dict) else {}
        if error.get("memory"):
            return Verdict("memory", 0.0, findings=[_memory_finding(memory_mb)])
        kind = str(error.get("type"))
        text = error_text(kind, str(error.get("message", "")), error.get("where"))
        return Verdict("error", 0.0, findings=[Finding(f"importing your code {text}", IMPORT_HINT)])
    measured = result.get("measured")
    if _ran_out_of_memory(measured):
        return Verdict("memory", 0.0, findings=[_memory_finding(memory_mb)])
    try:
        criteria = part.judge(part, measured, ref)
    except Exception as error:  # noqa: BLE001 - a malformed result is the part's failure, not the grader's
        return Verdict("error", 0.0, findings=[Finding(f"its results could not be judged ({type(error).__name__})",
                                                       "run the notebook's self-check")])
    total = sum(c.weight for c in criteria)
    fraction = sum(c.weight for c in criteria if c.state == "passed") / total
    states = {c.state for c in criteria}
    if states == {"passed"}:
        status = "passed"
    elif states == {"not attempted"}:
        status = "not attempted"
    elif fraction == 0 and all(c.errored for c in criteria if c.state == "failed"):
        status = "error"
        findings = list(dict.fromkeys(f for c in criteria for f in c.findings))  # the same error, said once
        for c in criteria:
            c.findings = []
        return Verdict(status, fraction, criteria, findings)
    else:
        status = "failed"
    return Verdict(status, fraction, criteria)


def _memory_finding(memory_mb: int) -> Finding:
    return Finding(f"it ran out of the {memory_mb} MB memory limit",
                   "nothing in this part needs more than a few megabytes: look for an allocation that grows with "
                   "a size or a loop")
