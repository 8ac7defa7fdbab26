"""The grader's worker process: imports torch once, then forks one child per part.

Started by :class:`grading.grader.Worker` as ``python -I -B <copy>/grading/zygote.py`` with a
clean environment, from a private copy of ``grading/`` (never from the instructor's tree, which
a submission might have touched). It never runs submission code itself: for each request (one
JSON line on stdin: part, folder, limits, a nonce) it forks a child that

* starts a new session (so its whole process group can be killed), closes every inherited file
  descriptor, sends its output to ``output.txt`` in its folder,
* confines itself (:func:`grading.sandbox.confine`: memory, CPU, Landlock, audit hook),
* drops every part's judge from its memory, imports the part's module from its folder and
  collects the measurements (:func:`grading.collect.run_part`: the part's ``collect``), then
  writes ``result.json`` there and exits;

and answers with one JSON line (the nonce, how the child ended, its wall time). A child that
outlives the time limit is killed with its process group, and every process it left behind
(the worker is a child subreaper, so orphans come back to it) is killed too.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import sys
import time

STAGING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the private copy holding grading/
sys.path.insert(0, STAGING)
os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"

import torch  # noqa: E402  (imported once here, shared by every child through fork)
import torch.nn.functional  # noqa: E402,F401

from grading import collect, parts, sandbox  # noqa: E402

torch.set_num_threads(1)
_PR_SET_CHILD_SUBREAPER, _PR_SET_PDEATHSIG = 36, 1


def _warm_up() -> None:
    """Import what torch loads lazily on first use (building an optimizer imports torch._dynamo,
    seconds of work) once here rather than in every child."""
    weight = torch.nn.Parameter(torch.zeros(3, 2))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(torch.ones(4, 2) @ weight.T, torch.zeros(4, dtype=torch.long)).backward()
    optimizer.step()
    torch.linalg.svd(torch.ones(3, 2), full_matrices=False)
    torch.linalg.svdvals(torch.ones(2, 2, dtype=torch.float64))
    torch.linalg.qr(torch.ones(3, 2))
    torch.linalg.matrix_norm(torch.ones(2, 2), ord=2)


_warm_up()


def _hide_sources() -> None:
    """Give every module of the private copy an empty entry in ``linecache``: a traceback formatted
    in a child (torch formats one when seeding) must not read their files, which the sandbox
    refuses (and reports as an attempt to reach outside the folder)."""
    import linecache

    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.startswith(STAGING + os.sep):
            linecache.cache[path] = (0, None, [], path)  # no modification time: never reloaded


_hide_sources()


def _child(request: dict) -> None:
    folder = request["folder"]
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # never outlive the worker
    os.setsid()
    null = os.open("/dev/null", os.O_RDONLY)
    output = os.open(os.path.join(folder, "output.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.closerange(3, 65536)
    os.chdir(folder)
    for key in list(os.environ):
        if key not in ("PATH", "LANG", "LC_ALL", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            del os.environ[key]
    os.environ.update(HOME=folder, TMPDIR=folder, MPLCONFIGDIR=folder, COURSE_DEVICE="cpu",
                      COURSE_DATA_SOURCE="subset", MPLBACKEND="Agg")
    # The submission's folder and the installed packages only: no other course tree (the instructor's
    # checkout, which an editable install puts on the path), so a module missing from the submission
    # fails to import instead of coming from the instructor's copy.
    sys.path[:] = [folder] + [p for p in sys.path
                              if p and p != STAGING and not os.path.isdir(os.path.join(p, "helpers"))]
    sys.dont_write_bytecode = True
    result = dict(nonce=request["nonce"])
    try:
        with open(os.path.join(folder, "spec.json")) as handle:
            spec = json.load(handle)
        part = parts.BY_NAME[request["part"]]
        parts.forget_judges()
        attempts = sandbox.confine(folder, request["memory_mb"], int(request["time_limit"]) + 2, request["landlock"])
        result.update(collect.run_part(part, spec))
        result["attempts"] = list(attempts)
    except BaseException as error:  # noqa: BLE001 - reported to the parent as the part's error
        result["fatal"] = collect.describe(error)
    text = json.dumps(result, allow_nan=True)
    with open(os.path.join(folder, "result.json.tmp"), "w") as handle:
        handle.write(text)
    os.replace(os.path.join(folder, "result.json.tmp"), os.path.join(folder, "result.json"))
    os._exit(0)


def _kill_leftovers() -> None:
    """Kill every process left by a child (reparented to this subreaper) and reap it."""
    me = str(os.getpid())
    for _ in range(50):
        orphans = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if fields[1] == me:
                    orphans.append(int(entry))
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
        if not orphans:
            return
        time.sleep(0.01)


def _run(request: dict) -> dict:
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            _child(request)
        finally:
            os._exit(70)
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd], [], [], request["time_limit"])
    outcome = "exited"
    if not ready:
        outcome = "timeout"
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except ProcessLookupError:
                pass
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    _kill_leftovers()
    answer = dict(nonce=request["nonce"], outcome=outcome, seconds=round(time.monotonic() - start, 3))
    if outcome == "exited":
        if os.WIFSIGNALED(status):
            answer.update(outcome="signal", signal=os.WTERMSIG(status))
        else:
            answer["code"] = os.WEXITSTATUS(status)
    return answer


def main() -> None:
    ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by imported code goes to the log, not into the replies
    replies.write(json.dumps(dict(ready=True, landlock=sandbox.landlock_abi())) + "\n")
    for line in sys.stdin:
        try:
            request = json.loads(line)
            answer = _run(request)
        except Exception as error:  # noqa: BLE001 - a bad request is answered, not fatal
            answer = dict(nonce=None, outcome="worker-error", message=repr(error))
        replies.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
