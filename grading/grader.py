"""Grade a folder of submissions: hidden tests per part, each part in its own sandboxed process.

    python scripts/grade.py SUBMISSIONS [--out build/grades] [--time-limit 10] [--memory-mb 2048] [--jobs 1]
    python benchmarks/bench_grading.py 20       # time the grader on 20 synthetic submissions

What happens (see the README's grading section):

1. The instructor's files are read into memory (:class:`TreeGuard`); ``grading/`` is copied to a
   private folder from which the worker process starts, so a submission can change neither.
2. The student release is built from the source (for the written questions and to tell an
   untouched stub), and the hidden tests are run on the instructor's own code first: every
   part must pass, or grading stops (a broken hidden test or sandbox would zero everyone).
3. For every submission (a progress bar counts them) and every part (``grading/parts/*.py``, discovered):
   the part's functions are taken from the submission's file into the student release's helpers
   (plus the references the part's tests call) in a fresh folder; a child of the worker runs
   them there under a time limit, a memory limit, Landlock and an audit hook
   (:mod:`grading.sandbox`) and returns raw results; this process judges them
   (:mod:`grading.judge`). The instructor's tree is compared with its snapshot after every part
   and restored if anything changed (the part gets a zero).
4. ``grades.csv`` (one row per student, a column per part, the total, a status; sorted and free of
   timings, so the same submissions give the same bytes), ``grades.json`` (the same with every
   part's status), ``feedback/<student>.md`` and ``written_answers.md`` are written under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from coursetools import release as release_builder
from grading import judge, written
from grading import parts as parts_package
from grading.judge import Finding
from grading.parts import PARTS, STATUSES, VERDICT_STATUSES
from grading.submission import SourceProblem, Submission, discover, notebook_module, read_submission, substitute

ROOT = Path(__file__).resolve().parents[1]

SKIPPED_DIRS = {".git", ".venv", "venv", "build", "__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".ruff_cache",
                ".mypy_cache"}
MAX_RESULT = 64 * 2**20


def _mistakes(result) -> list[str]:
    """The mistakes a part's findings name (its own, else its criteria's)."""
    return [f.mistake for f in result.findings] or [f.mistake for c in result.criteria for f in c.findings]


class GraderError(RuntimeError):
    """Grading cannot go on (the reference fails its own hidden tests, the worker does not start)."""


@dataclass
class Options:
    time_limit: float = 10.0  # seconds per part (a correct part takes well under one)
    memory_mb: int = 2048  # address space per part, on top of what the worker maps
    jobs: int = 1  # submissions graded at the same time (one, whatever this says, without Landlock)
    landlock: bool = True  # False: the instructor's explicit choice to grade without it (--no-landlock)
    progress: bool = True
    self_test: bool = True
    container: bool = False  # in a disposable container (Gradescope's, the README's): no Landlock is accepted
    parts_dirs: tuple = ()  # folders of extra part files, graded after grading/parts/ (one file per part)


NO_LANDLOCK = ("this kernel has no Landlock (Linux >= 5.13 with Landlock enabled), so graded code could read the "
               "instructor's files through native code. Grade in the container of the README (Grading a class), "
               "or pass --no-landlock to grade here all the same, one part at a time")


# ---------------------------------------------------------------- the instructor's files
class TreeGuard:
    """The instructor's files, kept in memory; :meth:`restore` puts back anything that changed."""

    def __init__(self, roots: list[Path], skip: list[Path]):
        self.roots, self.skip = [r.resolve() for r in roots], {s.resolve() for s in skip}
        self.snapshot = self._read()

    def _walk(self):
        for root in self.roots:
            for directory, dirs, files in os.walk(root):
                here = Path(directory)
                dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and (here / d).resolve() not in self.skip)
                for name in sorted(files):
                    if not name.endswith(".pyc"):
                        yield here / name

    def _read(self) -> dict[Path, bytes]:
        out = {}
        for path in self._walk():
            try:
                out[path] = path.read_bytes() if not path.is_symlink() else os.readlink(path).encode()
            except OSError:
                continue
        return out

    def text(self, relative: str) -> str:
        return self.snapshot[self.roots[0] / relative].decode()

    def restore(self) -> list[str]:
        """The files that differ from the snapshot (relative to their root), each put back."""
        now = self._read()
        changed = sorted({p for p in now if self.snapshot.get(p) != now[p]} | (self.snapshot.keys() - now.keys()))
        for path in changed:
            if path.is_symlink() or path.is_dir():
                path.unlink() if path.is_symlink() else shutil.rmtree(path)
            if path in self.snapshot:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.snapshot[path])
            else:
                path.unlink(missing_ok=True)
        return [str(self._relative(p)) for p in changed]

    def _relative(self, path: Path) -> Path:
        for root in self.roots:
            if root in path.parents:
                return path.relative_to(root)
        return path


# ---------------------------------------------------------------- the worker process
def clean_environment(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
            "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": ""}


class Worker:
    """One ``grading/zygote.py`` process (torch imported once); restarted if it dies."""

    def __init__(self, staging: Path, log: Path, wait: bool = True):
        self.staging, self.log = staging, log
        self.process = None
        self.start(wait)

    def start(self, wait: bool = True) -> None:
        home = self.staging / "home"
        home.mkdir(exist_ok=True)
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-B", str(self.staging / "grading" / "zygote.py")], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, env=clean_environment(home), cwd=home, start_new_session=True,
                text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True).start()
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        hello = self._next(300)
        if not hello or not hello.get("ready"):
            raise GraderError(f"the grading worker did not start; see {self.log}")
        self.landlock = int(hello.get("landlock", 0))

    @staticmethod
    def _read(stream, lines: queue.Queue) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _next(self, timeout: float) -> dict | None:
        try:
            line = self.lines.get(timeout=max(timeout, 0.01))
        except queue.Empty:
            return None
        if line is None:
            return None
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            return {}
        return answer if isinstance(answer, dict) else {}

    def run(self, request: dict, timeout: float) -> dict:
        """Send one part to the worker; its answer, or ``outcome: worker-died``."""
        nonce = secrets.token_hex(16)
        deadline = time.monotonic() + timeout
        try:
            self.process.stdin.write(json.dumps(dict(request, nonce=nonce)) + "\n")
            self.process.stdin.flush()
            while True:
                answer = self._next(deadline - time.monotonic())
                if answer is None:
                    break
                if answer.get("nonce") == nonce:
                    return answer
        except (BrokenPipeError, OSError):
            pass
        self.close()
        self.start()
        return dict(outcome="worker-died", nonce=nonce)

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
        if self.process:
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass


# ---------------------------------------------------------------- results
@dataclass
class PartResult:
    part: object
    status: str
    points: float
    criteria: list = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


@dataclass
class SubmissionResult:
    name: str
    parts: dict[str, PartResult] = field(default_factory=dict)
    problem: str | None = None
    notes: list[str] = field(default_factory=list)
    answers: dict = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(result.points for result in self.parts.values())

    @property
    def status(self) -> str:
        if self.problem:
            return f"unreadable: {self.problem}"
        broken = [f"{name} {result.status}" for name, result in self.parts.items()
                  if result.status not in VERDICT_STATUSES]
        return "; ".join(broken) if broken else "ok"


SIGNAL_HINTS = {
    "SIGSEGV": "a crash in native code (an out-of-bounds index in a C extension, a stack overflow)",
    "SIGKILL": "the system killed it, most likely for memory",
    "SIGXFSZ": "it wrote a file (or printed) past the 64 MB limit",
    "SIGXCPU": "it used more CPU time than the time limit",
}


def _signal_name(answer: dict) -> str:
    import signal

    try:
        return signal.Signals(int(answer.get("signal"))).name
    except (TypeError, ValueError):
        return "a signal"


def _part_failure(part, status: str, mistake: str, hint: str) -> PartResult:
    return PartResult(part, status, 0.0, findings=[Finding(mistake, hint)])


# ---------------------------------------------------------------- the grader
class Grader:
    def __init__(self, options: Options | None = None, protect: list[Path] = ()):
        from grading import sandbox

        self.options = options or Options()
        self.landlock_abi = sandbox.landlock_abi()  # the kernel's, the same for the worker's children
        if self.options.landlock and not self.landlock_abi and not self.options.container:
            raise GraderError(NO_LANDLOCK)
        self.tmp = Path(tempfile.mkdtemp(prefix="grading-")).resolve()
        self.staging = self.tmp / "instructor"
        self.parts = parts_package.discover(self.options.parts_dirs)
        shutil.copytree(ROOT / "grading", self.staging / "grading",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for folder in self.options.parts_dirs:  # extra parts: the worker discovers them in its private copy
            for path in sorted(Path(folder).glob("*.py")):
                shutil.copyfile(path, self.staging / "grading" / "parts" / path.name)
        self.guard = TreeGuard([ROOT, self.staging], skip=[self.tmp, *protect])
        workers = [Worker(self.staging, self.tmp / f"worker-{index}.log", wait=False)
                   for index in range(self.jobs)]  # they import torch while the release is built
        self.helpers = {f"helpers/{p.name}": self.guard.text(f"helpers/{p.name}")
                        for p in sorted((ROOT / "helpers").glob("*.py"))}
        self.release_dir = self.tmp / "release"
        release_builder.build_student(ROOT, self.release_dir)
        self.questions = written.questions(self.release_dir)
        self.stubs = self._read_release()
        self.reference = judge.Reference(self._notebook_functions())
        self.workers: queue.Queue = queue.Queue()
        for worker in workers:
            worker.wait_ready()
            self.workers.put(worker)
        self.lock = threading.Lock()

    @property
    def confined(self) -> bool:
        """Whether the parts run under Landlock."""
        return bool(self.options.landlock and self.landlock_abi)

    @property
    def jobs(self) -> int:
        """Submissions graded at once: one without Landlock, so that a change the tree check finds
        is charged to the only part running."""
        return max(1, self.options.jobs) if self.confined else 1

    def _read_release(self) -> dict[str, bytes]:
        return {p.relative_to(self.release_dir).as_posix(): p.read_bytes()
                for folder in ("helpers", "notebooks") for p in sorted((self.release_dir / folder).iterdir())}

    def _notebook_functions(self) -> dict:
        functions = {}
        for part in self.parts:
            if part.notebook:
                text, _ = notebook_module((ROOT / part.file).read_bytes(), part.functions[0], part.file)
                namespace = {"__name__": "reference_notebook"}
                exec(compile(text, part.file, "exec"), namespace)  # noqa: S102 - the instructor's own code
                functions[part.functions[0]] = namespace[part.functions[0]]
        return functions

    def close(self) -> None:
        while not self.workers.empty():
            self.workers.get().close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ one part
    def _module(self, part, files: dict[str, bytes]):
        """The module the part runs with: the release's module, the references the part's tests
        need, and the submission's functions (SourceProblem if they cannot be taken)."""
        if part.notebook:
            return notebook_module(files[part.file], part.functions[0], part.file)
        base = self.stubs[part.file].decode()
        if part.needs:
            base, _ = substitute(base, self.helpers[part.file].encode(), part.needs, part.file)
        return substitute(base, files[part.file], part.functions, part.file)

    def grade_part(self, part, files: dict[str, bytes], worker: Worker, workdir: Path) -> PartResult:
        if part.file not in files:
            return _part_failure(part, "missing", f"{part.file} is not in the submission",
                                 "hand in the whole release folder, with every notebook and helpers/")
        try:
            text, segments = self._module(part, files)
            untouched = self._module(part, self.stubs)[0] == text
        except SourceProblem as problem:
            return _part_failure(part, problem.status, problem.reason,
                                 "open the file in JupyterLab or an editor and fix it; the rest was graded")
        if untouched:
            return _part_failure(part, "not attempted", "the stub is still there", "replace it with your code")
        folder = workdir / part.name
        (folder / "helpers").mkdir(parents=True)
        for relative, source in self.stubs.items():  # the student release's helpers: no reference answer
            if relative.startswith("helpers/"):
                (folder / relative).write_bytes(source)
        module_file = folder / (f"{part.module}.py" if part.notebook else part.file)
        module_file.write_text(text)
        (folder / "spec.json").write_text(json.dumps(dict(module_file=str(module_file), segments=segments)))
        limit = self.options.time_limit
        answer = worker.run(dict(part=part.name, folder=str(folder), time_limit=limit,
                                 memory_mb=self.options.memory_mb, landlock=self.options.landlock), limit + 60)
        with self.lock:
            changed = self.guard.restore()
        result = self._read_result(folder / "result.json", answer.get("nonce"))
        attempts = [str(a) for a in result.get("attempts", [])][:5] if isinstance(result, dict) else []
        denied = sorted({str(e.get("message")) for e in judge.recorded_errors(result)  # refused by Landlock
                         if e.get("type") == "PermissionError" or "permission denied" in str(e.get("message")).lower()
                         }) if isinstance(result, dict) else []
        if changed or attempts or denied:
            where = judge.without_machine_paths("; ".join(
                attempts + [f"{path} (changed, restored)" for path in changed]
                + [f"the system refused ({message})" for message in denied if not attempts][:3]))
            return _part_failure(part, "tampered", f"it tried to reach outside its own folder: {where}",
                                 "graded code must only compute: it may not read or write files outside its folder, "
                                 "start processes or call C libraries")
        outcome = answer.get("outcome")
        if outcome == "timeout":
            return _part_failure(part, "timeout", f"it did not finish within the {limit:g} s limit for this part",
                                 "look for a loop that never ends or work that grows much faster than the input")
        if outcome == "signal":
            return _part_failure(part, "crashed", f"the process running it was killed by {_signal_name(answer)}",
                                 SIGNAL_HINTS.get(_signal_name(answer), "a crash in native code"))
        if outcome != "exited" or result is None:
            return _part_failure(part, "crashed", "the process running it ended without a result",
                                 "the code ended the process (os._exit, a signal) or killed the grader's worker")
        if "fatal" in result:
            fatal = result["fatal"] if isinstance(result["fatal"], dict) else {}
            if fatal.get("memory"):
                return _part_failure(part, "memory", f"it ran out of the {self.options.memory_mb} MB memory limit",
                                     "look for an allocation that grows with a size or a loop")
            return _part_failure(part, "crashed", f"the grader could not run it ({fatal.get('type')})",
                                 "tell the instructor: this is the grader's problem, not yours")
        verdict = judge.judge(part, result, self.reference, self.options.memory_mb)
        return PartResult(part, verdict.status, round(part.points * verdict.fraction, 6), verdict.criteria,
                          verdict.findings)

    @staticmethod
    def _read_result(path: Path, nonce) -> dict | None:
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RESULT:
                return None
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return result if isinstance(result, dict) and result.get("nonce") == nonce else None

    # ------------------------------------------------------------ one submission
    def grade_files(self, name: str, files: dict[str, bytes]) -> SubmissionResult:
        result = SubmissionResult(name)
        worker = self.workers.get()
        workdir = Path(tempfile.mkdtemp(prefix="submission-", dir=self.tmp))
        try:
            for part in self.parts:
                result.parts[part.name] = self.grade_part(part, files, worker, workdir)
        finally:
            self.workers.put(worker)
            shutil.rmtree(workdir, ignore_errors=True)
        result.answers = written.answers(self.release_dir, files, self.questions)
        return result

    def grade_submission(self, submission: Submission) -> SubmissionResult:
        if submission.problem:
            result = SubmissionResult(submission.name, problem=submission.problem, notes=submission.notes)
            for part in self.parts:
                result.parts[part.name] = _part_failure(part, "missing", f"the submission could not be read: "
                                                        f"{submission.problem}", "hand in a folder or a .zip of the "
                                                        "release")
            result.answers = written.answers(self.release_dir, {}, self.questions)
            return result
        result = self.grade_files(submission.name, submission.files)
        result.notes = submission.notes
        return result

    def self_test(self) -> None:
        """The instructor's own code must pass every hidden test (else the tests or the sandbox are broken)."""
        files = {f"helpers/{p.name}": self.guard.snapshot[(ROOT / "helpers" / p.name).resolve()]
                 for p in sorted((ROOT / "helpers").glob("*.py"))}
        files.update({f"notebooks/{p.name}": p.read_bytes() for p in sorted((ROOT / "notebooks").glob("*.ipynb"))})
        result = self.grade_files("reference", files)
        failing = {name: r for name, r in result.parts.items() if r.status != "passed"}
        if failing:
            details = "; ".join(f"{name}: {r.status} ({_mistakes(r)})"
                                for name, r in failing.items())
            raise GraderError(f"the instructor's reference does not pass its own hidden tests: {details}")

    # ------------------------------------------------------------ a folder
    def grade_folder(self, folder: Path, out: Path) -> dict:
        start = time.monotonic()
        if self.options.self_test:
            self.self_test()
        entries = discover(folder)
        results = []
        progress = _progress(len(entries), self.options.progress)

        def one(entry):
            name, path = entry
            graded = self.grade_submission(read_submission(name, path))
            progress.update(1)
            return graded

        jobs = self.jobs
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, entries))
        progress.close()
        write_outputs(out, results, self.questions, self.parts)
        seconds = time.monotonic() - start
        failed = sum(1 for r in results if not r.problem and r.status != "ok")
        unreadable = sum(1 for r in results if r.problem)
        summary = dict(graded=len(results), failed_to_run=failed, unreadable=unreadable, seconds=round(seconds, 1),
                       landlock=self.landlock_abi if self.confined else 0, jobs=jobs, out=str(out))
        return summary


class _NoProgress:
    def update(self, n): pass

    def close(self): pass


def _progress(total: int, show: bool):
    if not show:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, desc="grading", unit="submission", file=sys.stderr)


# ---------------------------------------------------------------- outputs
def format_score(value: float) -> str:
    return f"{value:.2f}"


def grades_csv(results: list[SubmissionResult], parts=PARTS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *(part.name for part in parts), "total", "status"])
    for result in sorted(results, key=lambda r: r.name):
        writer.writerow([result.name, *(format_score(result.parts[p.name].points) for p in parts),
                         format_score(result.total), result.status])
    return buffer.getvalue()


def grades_json(results: list[SubmissionResult], parts=PARTS) -> str:
    data = {
        "parts": {part.name: dict(points=part.points, title=part.title, file=part.file) for part in parts},
        "students": {r.name: dict(total=round(r.total, 6), status=r.status, parts={
            name: dict(points=round(p.points, 6), status=p.status,
                       criteria={c.name: c.state for c in p.criteria}) for name, p in r.parts.items()})
            for r in sorted(results, key=lambda r: r.name)},
    }
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


INTRO = ("Each part was graded on its own: your code for that part ran inside the course's reference helpers, on "
         "hidden tests with other shapes, widths, seeds and settings than the notebook's self-check, so a mistake in "
         "one part costs only that part.")


def part_feedback(part, r: PartResult) -> list[str]:
    """The feedback on one part, under its heading (also each test's output on Gradescope)."""
    lines = [f"{format_score(r.points)} / {part.points:g} points; status **{r.status}** ({STATUSES[r.status]}). Graded "
             f"code: {', '.join(f'`{f}`' for f in part.functions)} in `{part.file}`.", ""]
    for finding in r.findings:
        lines += [f"- {finding.mistake}.", f"  Hint: {finding.hint}."]
    for criterion in r.criteria:
        mark = {"passed": "passed", "failed": "failed", "not attempted": "not attempted"}[criterion.state]
        lines.append(f"- {criterion.name}: {mark}")
        for finding in criterion.findings:
            lines += [f"  - Measured: {finding.mistake}.", f"    Hint: {finding.hint}."]
    return lines


def feedback(result: SubmissionResult) -> str:
    parts = [r.part for r in result.parts.values()]  # in the grader's order
    possible = sum(part.points for part in parts)
    lines = [f"# Feedback for {result.name}", "", f"**Total: {format_score(result.total)} / {possible:g}**", ""]
    if result.problem:
        lines += [f"Your submission could not be read: {result.problem}.", ""]
    lines += ["| part | points | status |", "| --- | --- | --- |"]
    for part in parts:
        r = result.parts[part.name]
        lines.append(f"| {part.name} | {format_score(r.points)} / {part.points:g} | {r.status} |")
    lines += ["", INTRO, ""]
    for part in parts:
        lines += [f"## {part.name}: {part.title}", ""] + part_feedback(part, result.parts[part.name]) + [""]
    if result.notes:
        lines += ["## Files not read", ""] + [f"- {note}" for note in result.notes] + [""]
    return "\n".join(lines)


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".") or "student"


def write_outputs(out: Path, results: list[SubmissionResult], questions, parts=PARTS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if (out / "feedback").exists():
        shutil.rmtree(out / "feedback")
    (out / "feedback").mkdir()
    (out / "grades.csv").write_text(grades_csv(results, parts))
    (out / "grades.json").write_text(grades_json(results, parts))
    for result in results:
        (out / "feedback" / f"{safe_name(result.name)}.md").write_text(feedback(result))
    written.write(out / "written_answers.md", questions, {r.name: r.answers for r in results})


# ---------------------------------------------------------------- entry points
def grade(submissions: Path, out: Path, options: Options | None = None) -> dict:
    """Grade every submission of ``submissions`` into ``out``; returns the summary."""
    start = time.monotonic()
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    grader = Grader(options, protect=[submissions, out])
    try:
        summary = grader.grade_folder(submissions, out)
    finally:
        grader.close()
    summary["seconds"] = round(time.monotonic() - start, 1)  # start-up included
    return summary


def summary_line(summary: dict) -> str:
    return (f"graded {summary['graded']} submissions in {summary['seconds']:.1f} s: "
            f"{summary['failed_to_run']} with a part that could not be graded (missing, unreadable, error, timeout, "
            f"memory, crash, tampering), "
            f"{summary['unreadable']} unreadable; grades in {summary['out']}/grades.csv")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Grade a folder of submissions of the student release.")
    parser.add_argument("submissions", nargs="?", type=Path, help="a folder of subfolders and .zip files")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "grades")
    parser.add_argument("--time-limit", type=float, default=Options.time_limit, help="seconds per part (10)")
    parser.add_argument("--memory-mb", type=int, default=Options.memory_mb, help="memory per part in MB (2048)")
    parser.add_argument("--jobs", type=int, default=Options.jobs, help="submissions graded at once (1)")
    parser.add_argument("--no-landlock", action="store_true",
                        help="grade without Landlock, one part at a time (needed on a kernel without it: native "
                             "code could then read the instructor's files; see the README)")
    parser.add_argument("--container", action="store_true",
                        help="running in a disposable container (the README's command): a kernel without Landlock "
                             "is accepted, one part at a time")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-self-test", action="store_true",
                        help="skip grading the instructor's own code first (it must pass every hidden test)")
    args = parser.parse_args(argv)
    if args.submissions is None or not args.submissions.is_dir():
        parser.error("give the folder of submissions (SUBMISSIONS=<folder> with make grade)")
    options = Options(args.time_limit, args.memory_mb, args.jobs, not args.no_landlock, not args.no_progress,
                      not args.no_self_test, args.container)
    try:
        summary = grade(args.submissions, args.out, options)
    except GraderError as error:
        print(f"grading stopped: {error}", file=sys.stderr)
        return 1
    print(summary_line(summary))
    if not summary["landlock"]:
        print("note: graded without Landlock, one part at a time: the audit hook refused what Python code tried "
              "outside each part's folder; what native code did is seen only where it changed the course tree "
              "(undone, and the part zeroed)", file=sys.stderr)
    return 0
