"""Notebook kernels forked from one process that has already imported torch, numpy,
matplotlib and ipykernel (Linux).

A fresh kernel spends ~2.5 s of CPU starting Python and importing those before the
notebook's first line does anything (measured on the 2-core CPU machine: 0.7 s to a
ready kernel, 1.5 s for ``import torch``, 0.5 s for matplotlib); thirteen notebooks
pay it thirteen times. Here one *zygote* process imports them once, and every kernel
is a ``fork()`` of it: a copy of a process that has imported those modules and done
nothing else (no tensor, no thread pool, no CUDA, no event loop, no socket), so the
notebook runs as in a fresh kernel that imported them. Only third-party modules are
imported, and none that registers anything with an IPython shell (ipywidgets would
miss its comm targets): the course's ``helpers`` are imported by each notebook from
its own folder (the student release's stubs, in the release's tests).

How jupyter_client sees it: a kernelspec ``<kernel>-forked`` (the original spec with
another command) whose command is this file's small ``launch`` (standard library
only). The launcher hands its connection file, environment, folder and standard
streams to the zygote over a Unix socket; the zygote forks the kernel into a session
of its own, as jupyter_client starts a fresh one; the launcher stands in for it: it
passes SIGINT and SIGTERM to the kernel's process group and exits with the kernel's
exit status. If the launcher goes away (killed, or its parent died, which would end a
fresh kernel), the zygote kills that kernel's group; the zygote stops when its owner
does. If the zygote cannot serve, the launcher starts a fresh kernel instead: slower,
never wrong. Used by ``run_notebooks.execute_all`` on Linux (``COURSE_FORKED_KERNELS=0``
turns it off).
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# What a course kernel imports before its first cell (each is optional: a missing one is not preloaded).
PRELOADED = ("numpy", "torch", "matplotlib", "matplotlib.pyplot", "IPython", "ipykernel.kernelapp")
_MAX_MESSAGE = 1 << 20
SUPPORTED = sys.platform == "linux"  # fork after torch's import is safe on Linux, not on macOS


class KernelZygote:
    """A zygote for the kernel ``kernel_name`` (its Python and interpreter flags),
    started with ``env``; ``kernel_name`` / ``jupyter_path`` name the forked kernelspec.
    A context manager: leaving it stops the zygote and every kernel it forked."""

    def __init__(self, kernel_name: str, env: dict[str, str]):
        from jupyter_client.kernelspec import KernelSpecManager

        original = KernelSpecManager().get_kernel_spec(kernel_name)
        argv = original.argv
        if "-m" not in argv:
            raise ValueError(f"kernel {kernel_name!r} is not started as 'python ... -m <module>': {argv}")
        python = argv[: argv.index("-m")]  # the interpreter and its flags, e.g. -Xfrozen_modules=off
        self.folder = Path(tempfile.mkdtemp(prefix="course-zygote-"))
        self.socket_path = str(self.folder / "zygote.sock")
        self.kernel_name = f"{kernel_name}-forked"
        spec_dir = self.folder / "kernels" / self.kernel_name
        spec_dir.mkdir(parents=True)
        here = str(Path(__file__).resolve())
        # Not waited for here: its imports overlap the callers' own start; a launcher waits for it.
        self.process = subprocess.Popen([*python, here, "serve", self.socket_path], env=env,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        spec = original.to_dict()
        spec.update(argv=[*python, here, "launch", self.socket_path, str(self.process.pid),
                          *argv[argv.index("-m") + 2:]],
                    display_name=f"{original.display_name} (forked)", interrupt_mode="signal")
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once the zygote accepts launchers; raise if it died or took longer than ``timeout``."""
        if not _wait_for(self.socket_path, self.process.pid, timeout):
            raise RuntimeError(f"the kernel zygote is not ready (exit status {self.process.poll()}); run "
                               f"python {__file__} serve <socket> to see why")

    @property
    def jupyter_path(self) -> str:
        """The folder to put first on JUPYTER_PATH so that jupyter_client finds ``kernel_name``."""
        return str(self.folder)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the zygote kills the kernels it forked, then exits
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in sorted(self.folder.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        self.folder.rmdir()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- the launcher (standard library only)
def _wait_for(socket_path: str, zygote_pid: int, timeout: float) -> bool:
    """Wait until the zygote's socket exists; False if the zygote died first or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(socket_path):
        if not _running(zygote_pid) or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return _running(zygote_pid)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead zygote stays one until its parent reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc: alive is all we can tell
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def _fresh_kernel(kernel_args: list[str]) -> None:
    """Become a fresh kernel: the command the original kernelspec would have run."""
    script = sys.orig_argv.index(sys.argv[0]) if sys.argv[0] in sys.orig_argv else 1
    flags = sys.orig_argv[1:script]
    os.execv(sys.executable, [sys.executable, *flags, "-m", "ipykernel_launcher", *kernel_args])


def launch(socket_path: str, zygote_pid: int, kernel_args: list[str]) -> int:
    """Stand in for one forked kernel: hand over what a kernel process gets, forward
    SIGINT/SIGTERM to its process group, return its exit status. A fresh kernel if the
    zygote cannot serve."""
    kernel: list[int] = []
    pending: list[int] = []

    def forward(number, _frame):
        if kernel:
            _signal(kernel[0], number)
        else:
            pending.append(number)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    parent = os.getppid()
    try:
        if not _wait_for(socket_path, zygote_pid, 120.0):
            raise ConnectionError("the zygote is not serving")
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(socket_path)
        request = json.dumps(dict(args=kernel_args, env=dict(os.environ), cwd=os.getcwd())).encode()
        socket.send_fds(connection, [len(request).to_bytes(8, "big") + request], [0, 1, 2])
        kernel.append(int(_read_line(connection, parent)))
    except (OSError, ValueError):
        print(f"forked_kernels: the kernel zygote {zygote_pid} cannot serve; starting a fresh kernel",
              file=sys.stderr)
        _fresh_kernel(kernel_args)
    for number in pending:
        forward(number, None)
    status = _read_line(connection, parent)
    return int(status) if status else 1


def _read_line(connection: socket.socket, parent: int) -> str:
    """The zygote's next line; "" if it hung up or this launcher's parent died (a fresh kernel
    would exit then: returning closes the connection, and the zygote kills the kernel)."""
    data = b""
    connection.settimeout(0.5)
    while not data.endswith(b"\n"):
        try:
            chunk = connection.recv(64)
        except TimeoutError:
            if os.getppid() != parent:
                return ""
            continue
        except InterruptedError:
            continue
        if not chunk:
            return ""
        data += chunk
    return data.decode().strip()


# ---------------------------------------------------------------- the zygote
def _receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    """A launcher's request (8-byte length, then JSON) and the three streams it sent along."""
    data, fds, _, _ = socket.recv_fds(connection, _MAX_MESSAGE, 3)
    try:
        if len(fds) != 3 or len(data) < 8:
            raise ValueError("a request is 8 bytes of length, JSON and three file descriptors")
        size = int.from_bytes(data[:8], "big")
        while len(data) < 8 + size:
            chunk = connection.recv(_MAX_MESSAGE)
            if not chunk:
                raise ConnectionError("the launcher went away while sending its request")
            data += chunk
        return json.loads(data[8:8 + size]), list(fds)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _become_kernel(request: dict, fds: list[int]) -> None:
    """In the forked child: a session of its own, the launcher's streams, folder and
    environment, then the kernel, as ``python -m ipykernel_launcher`` would run it."""
    import importlib.util

    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if "numpy" in sys.modules:  # fresh entropy, as a new process gets (CPython reseeds `random` itself)
        sys.modules["numpy"].random.seed()
    # ipykernel read JPY_PARENT_PID when the zygote imported it; the kernel's parent is the zygote,
    # and like any kernel it exits when its parent does (the launcher covers the kernel's owner)
    sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, *request["args"],
                f"--IPKernelApp.parent_handle={os.getppid()}"]
    status = 0
    try:
        from ipykernel.kernelapp import launch_new_instance

        launch_new_instance()
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on the kernel's stderr, like a crashed kernel
        import traceback

        traceback.print_exc()
        status = 1
    finally:
        atexit._run_exitfuncs()  # what a normal interpreter exit runs
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def serve(socket_path: str) -> None:
    """Import ``PRELOADED``, then fork a kernel for every launcher that connects and report
    each kernel's exit status to its launcher. Stops on SIGTERM or when its owner dies,
    killing every kernel it forked."""
    import importlib

    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # this script's folder: not on a kernel's path
    for module in PRELOADED:
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # the kernel imports it itself (or fails the notebook that needs it, as it would anyway)
    owner = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path + ".tmp")
    listener.listen(16)
    os.rename(socket_path + ".tmp", socket_path)  # the socket appears only once it accepts
    kernels: dict[int, socket.socket] = {}  # kernel pid -> its launcher's connection
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    try:
        while not stopping and os.getppid() == owner:
            for key, _ in selector.select(timeout=0.05):
                if key.fileobj is listener:
                    _start_kernel(listener, selector, kernels)
                elif not _receive(key.fileobj):  # a launcher went away: its kernel goes too
                    selector.unregister(key.fileobj)
                    _kill(key.data)
            _reap(selector, kernels)
    finally:
        for pid in kernels:
            _kill(pid)
        for pid in kernels:
            os.waitpid(pid, 0)


def _receive(connection: socket.socket) -> bytes:
    try:
        return connection.recv(64)
    except OSError:
        return b""


def _start_kernel(listener: socket.socket, selector: selectors.BaseSelector, kernels: dict) -> None:
    """Accept one launcher and fork its kernel; a launcher that fails midway costs only itself."""
    connection, _ = listener.accept()
    try:
        request, fds = _receive_request(connection)
    except (OSError, ValueError) as problem:
        print(f"forked_kernels: a launcher's request failed ({problem})", file=sys.stderr)
        connection.close()
        return
    try:
        pid = os.fork()
    except OSError as problem:
        print(f"forked_kernels: cannot fork a kernel ({problem})", file=sys.stderr)
        for fd in fds:
            os.close(fd)
        connection.close()
        return
    if pid == 0:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        selector.close()
        listener.close()
        connection.close()
        for other in kernels.values():
            other.close()
        _become_kernel(request, fds)
    for fd in fds:
        os.close(fd)
    kernels[pid] = connection
    try:
        connection.sendall(f"{pid}\n".encode())
        selector.register(connection, selectors.EVENT_READ, pid)
    except OSError:  # the launcher went away meanwhile: so does its kernel
        _kill(pid)


def _reap(selector: selectors.BaseSelector, kernels: dict) -> None:
    """Tell each launcher whose kernel exited its status (128 + N for signal N)."""
    for pid, connection in list(kernels.items()):
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            continue
        code = os.waitstatus_to_exitcode(status)  # negative: killed by that signal
        try:
            connection.sendall(f"{code if code >= 0 else 128 - code}\n".encode())
        except OSError:
            pass  # its launcher is gone
        if connection in (key.fileobj for key in selector.get_map().values()):
            selector.unregister(connection)
        connection.close()
        del kernels[pid]


def _signal(pid: int, number: int) -> None:
    """The kernel and whatever it started (its own process group; just the kernel in the
    moment after the fork, before it has made the group)."""
    for send in (os.killpg, os.kill):
        try:
            send(pid, number)
            return
        except (ProcessLookupError, PermissionError):
            continue


def _kill(pid: int) -> None:
    _signal(pid, signal.SIGKILL)


if __name__ == "__main__":
    command, socket_path, *rest = sys.argv[1:]
    if command == "serve":
        serve(socket_path)
    elif command == "launch":
        sys.exit(launch(socket_path, int(rest[0]), rest[1:]))
    else:
        sys.exit(f"usage: {sys.argv[0]} serve SOCKET | launch SOCKET ZYGOTE_PID -f CONNECTION_FILE")
