"""Notebook kernels forked from one process that has already imported torch, numpy,
matplotlib and ipykernel.

A fresh kernel spends ~2.5 s of CPU starting Python and importing those before the
notebook's first line does anything (measured on the 2-core CPU machine: 0.7 s to a
ready kernel, 1.5 s for ``import torch``, 0.5 s for matplotlib); thirteen notebooks
pay it thirteen times. Here one *zygote* process imports them once, and every kernel
is a ``fork()`` of it: a copy of a process that has imported those modules and done
nothing else (no tensor, no thread pool, no CUDA, no event loop, no socket), so the
notebook runs exactly as in a fresh kernel that imported them. Only third-party
modules are imported: the course's ``helpers`` are imported by each notebook from
its own folder (the student release's stubs, in the release's tests).

How jupyter_client sees it: a kernelspec ``<kernel>-forked`` whose command is this
file's tiny ``launch`` (standard library only). The launcher hands its connection
file, environment, folder and standard streams to the zygote over a Unix socket, the
zygote forks the kernel, and the launcher stands in for it: it passes on SIGINT and
SIGTERM and exits with the kernel's exit status. If the launcher is killed, the
zygote kills its kernel. Used by ``run_notebooks.execute_all``
(``COURSE_FORKED_KERNELS=0`` turns it off).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# What a course kernel imports before its first cell: a notebook's first cell imports these.
PRELOADED = ("numpy", "torch", "matplotlib", "matplotlib.pyplot", "IPython", "ipykernel.kernelapp", "tqdm.auto")
_MAX_MESSAGE = 1 << 20


class KernelZygote:
    """A zygote for the kernel ``kernel_name`` (its Python and interpreter flags),
    started with ``env``; ``kernel_name`` / ``jupyter_path`` name the forked kernelspec.
    A context manager: leaving it stops the zygote and every kernel it forked."""

    def __init__(self, kernel_name: str, env: dict[str, str]):
        from jupyter_client.kernelspec import KernelSpecManager

        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
        if "-m" not in argv:
            raise ValueError(f"kernel {kernel_name!r} is not started as 'python ... -m <module>': {argv}")
        python = argv[: argv.index("-m")]  # the interpreter and its flags, e.g. -Xfrozen_modules=off
        self.folder = Path(tempfile.mkdtemp(prefix="course-zygote-"))
        self.socket_path = str(self.folder / "zygote.sock")
        self.kernel_name = f"{kernel_name}-forked"
        spec_dir = self.folder / "kernels" / self.kernel_name
        spec_dir.mkdir(parents=True)
        # Not waited for here: its imports overlap the callers' own start; a launcher waits for it.
        self.process = subprocess.Popen([*python, str(Path(__file__).resolve()), "serve", self.socket_path],
                                        env=env, stdin=subprocess.DEVNULL)
        spec = dict(argv=[*python, str(Path(__file__).resolve()), "launch", self.socket_path, str(self.process.pid),
                          *argv[argv.index("-m") + 2:]],
                    display_name=f"{kernel_name} (forked)", language="python", interrupt_mode="signal")
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
def _read_line(connection: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(64)
        if not chunk:
            return ""
        data += chunk
    return data.decode().strip()


def _wait_for(socket_path: str, zygote_pid: int, timeout: float) -> bool:
    """Wait until the zygote's socket exists; False if the zygote died first or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(socket_path):
        if not _running(zygote_pid) or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead zygote stays one until its parent reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def launch(socket_path: str, zygote_pid: int, kernel_args: list[str]) -> int:
    """Stand in for one forked kernel: hand over what a kernel process gets, forward
    SIGINT/SIGTERM, return its exit status."""
    if not _wait_for(socket_path, zygote_pid, 120.0):
        print(f"the kernel zygote {zygote_pid} died or is not ready: no kernel", file=sys.stderr)
        return 1
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(socket_path)
    request = json.dumps(dict(args=kernel_args, env=dict(os.environ), cwd=os.getcwd())).encode()
    socket.send_fds(connection, [len(request).to_bytes(8, "big") + request], [0, 1, 2])
    pid = int(_read_line(connection))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: os.kill(pid, number))
    status = _read_line(connection)
    return int(status) if status else 1


# ---------------------------------------------------------------- the zygote
def _receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    """A launcher's request (8-byte length, then JSON) and the three streams it sent along."""
    data, fds, _, _ = socket.recv_fds(connection, _MAX_MESSAGE, 3)
    size = int.from_bytes(data[:8], "big")
    while len(data) < 8 + size:
        chunk = connection.recv(_MAX_MESSAGE)
        if not chunk:
            raise ConnectionError("the launcher went away while sending its request")
        data += chunk
    return json.loads(data[8:8 + size]), list(fds)


def _become_kernel(request: dict, fds: list[int]) -> None:
    """In the forked child: take the launcher's streams, folder and environment, run the kernel."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # ipykernel read JPY_PARENT_PID when the zygote imported it; the kernel's parent is the zygote,
    # and like any kernel it exits when its parent does
    sys.argv = ["ipykernel_launcher", *request["args"], f"--IPKernelApp.parent_handle={os.getppid()}"]
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
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def serve(socket_path: str) -> None:
    """Import ``PRELOADED``, then fork a kernel for every launcher that connects; report each
    kernel's exit status to its launcher; on SIGTERM, kill every kernel and exit."""
    import importlib
    import selectors

    for module in PRELOADED:
        importlib.import_module(module)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path + ".tmp")
    listener.listen(16)
    os.rename(socket_path + ".tmp", socket_path)  # the socket appears only once it accepts
    kernels: dict[int, socket.socket] = {}  # kernel pid -> its launcher's connection
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while not stopping:
        for key, _ in selector.select(timeout=0.05):
            if key.fileobj is listener:
                connection, _ = listener.accept()
                request, fds = _receive_request(connection)
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    connection.close()
                    for other in kernels.values():
                        other.close()
                    _become_kernel(request, fds)
                for fd in fds:
                    os.close(fd)
                connection.sendall(f"{pid}\n".encode())
                kernels[pid] = connection
                selector.register(connection, selectors.EVENT_READ, pid)
            else:  # a launcher went away (killed): its kernel goes too
                if not key.fileobj.recv(64):
                    selector.unregister(key.fileobj)
                    _kill(key.data)
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
    for pid in kernels:
        _kill(pid)
    for pid in kernels:
        os.waitpid(pid, 0)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    command, socket_path, *rest = sys.argv[1:]
    if command == "serve":
        serve(socket_path)
    elif command == "launch":
        sys.exit(launch(socket_path, int(rest[0]), rest[1:]))
    else:
        sys.exit(f"usage: {sys.argv[0]} serve SOCKET | launch SOCKET ZYGOTE_PID -f CONNECTION_FILE")
