"""Confinement of the child process that runs a submission's code (Linux).

Three layers, applied by :func:`confine` in the child right after ``fork``, before any
submission code runs:

1. **Limits** (``resource.setrlimit``): address space (the memory the process already maps
   plus the memory limit), CPU seconds (a backstop for the parent's wall-clock limit), file
   size, no core files.
2. **Landlock** (Linux >= 5.13, unprivileged, also binds root): the process may write only
   inside its own folder (and ``/dev/null``), read only its folder and the Python and system
   directories (not the instructor's tree, not other submissions), open no TCP connection,
   and signal no process outside itself. Unavailable kernels skip this layer (reported once).
3. **An audit hook** (:func:`sys.addaudithook`, cannot be removed): a read outside the folder
   and the Python installation (:func:`python_roots`; a directory listed, a file opened), a
   write, delete, rename outside the folder, a process start, or loading a C function through
   ``ctypes`` raises ``PermissionError`` and is recorded, so that an attempt the code catches
   and ignores still costs the part. Paths are resolved first, so ``/proc/<pid>/cwd/...`` or a
   symbolic link is judged by where it leads.

The parent also hashes the instructor's tree after every part and restores it if anything
changed (:mod:`grading.grader`). Without Landlock, what native code does (a C extension opening a
file) is seen by neither the hook nor the kernel: the grader then refuses to start unless the
instructor says so explicitly, and grades one part at a time (see the README).
"""

from __future__ import annotations

import ctypes
import os
import resource
import site
import sys

_FILE_RIGHTS = 0b1100000000000111  # EXECUTE, WRITE_FILE, READ_FILE, TRUNCATE, IOCTL_DEV
_READ = 0b1101  # EXECUTE, READ_FILE, READ_DIR
_SYSCALL_CREATE, _SYSCALL_ADD_RULE, _SYSCALL_RESTRICT = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _Ruleset(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when unavailable."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        version = _libc().syscall(_SYSCALL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= 1 << 13  # REFER
    if abi >= 3:
        rights |= 1 << 14  # TRUNCATE
    if abi >= 5:
        rights |= 1 << 15  # IOCTL_DEV
    return rights


def python_roots() -> list[str]:
    """The Python installation: its prefixes (a virtual environment's and its base's), its
    packages, each also as its resolved path."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages()}
    roots |= {os.path.realpath(root) for root in roots}
    return sorted(root for root in roots if os.path.isdir(root) and os.path.realpath(root) != "/")


def readable_roots() -> list[str]:
    """Directories the child may read under Landlock: the Python installation, the system."""
    roots = set(python_roots()) | {os.path.dirname(os.path.realpath(sys.executable))}
    roots |= {"/usr", "/lib", "/lib64", "/bin", "/etc", "/proc", "/sys", "/dev"}
    return sorted(root for root in roots if os.path.isdir(root))


def _landlock(folder: str, abi: int) -> None:
    libc = _libc()
    handled = _handled_fs(abi)
    attr = _Ruleset(handled, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)  # TCP bind+connect; signals, sockets
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(_SYSCALL_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    rules = [(root, _READ) for root in readable_roots()] + [(folder, handled), ("/dev/null", 0b110)]
    for path, rights in rules:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            if not os.path.isdir(path):
                rights &= _FILE_RIGHTS
            rule = _PathBeneath(rights & handled, fd)
            if libc.syscall(_SYSCALL_ADD_RULE, ruleset, ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        finally:
            os.close(fd)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.syscall(_SYSCALL_RESTRICT, ruleset, ctypes.c_uint32(0)) < 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(ruleset)


def _limits(memory_mb: int, cpu_seconds: int) -> None:
    with open("/proc/self/statm") as statm:  # the address space mapped so far (torch is already imported)
        mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (mapped + memory_mb * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 2))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {  # audit event -> positions of the path arguments it modifies
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.truncate": (0,),
    "os.chmod": (0,), "os.chown": (0,), "os.link": (1,), "os.symlink": (1,), "os.utime": (0,),
    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (0, 1),
}
_PROCESS_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                   "pty.spawn")
_NATIVE_EVENTS = ("ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle")  # C functions bypass the checks above


_READABLE_FILES = ("/dev/null", "/dev/urandom", "/dev/random", "/dev/zero")
_LIST_EVENTS = ("os.listdir", "os.scandir")


def _audit_hook(folder: str, attempts: list):
    inside = [folder.rstrip("/") + "/"]
    readable = inside + [root.rstrip("/") + "/" for root in python_roots()] + [f"/proc/{os.getpid()}/"]

    def resolved(path) -> str | None:
        if isinstance(path, int) or path is None:
            return None
        joined = os.path.join(folder, os.fsdecode(path))
        try:
            return os.path.realpath(joined)
        except OSError:  # a link it may not follow (another process's /proc/<pid>/cwd under Landlock)
            return os.path.normpath(joined)

    def outside(path, roots=inside) -> str | None:
        full = resolved(path)
        if full is None or full == "/dev/null" or any((full + "/").startswith(root) for root in roots):
            return None
        return None if roots is readable and full in _READABLE_FILES else full

    def hook(event, args):
        where = None
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            where = outside(path) if writes else outside(path, readable)
        elif event in _LIST_EVENTS and args:
            where = outside(args[0] if args[0] is not None else ".", readable)
        elif event in _PATH_EVENTS:
            where = next((w for i in _PATH_EVENTS[event] if i < len(args) and (w := outside(args[i]))), None)
        elif event in _PROCESS_EVENTS:
            where = f"a new process ({event})"
        elif event in _NATIVE_EVENTS:
            where = f"a C library through ctypes ({event})"
        if where is not None:
            if len(attempts) < 10 and where not in attempts:
                attempts.append(where)
            raise PermissionError(f"the grader does not allow reaching outside the submission's folder: {where}")

    return hook


def confine(folder: str, memory_mb: int, cpu_seconds: int, landlock: bool) -> list:
    """Confine this process to ``folder``; returns the list the audit hook records attempts in."""
    _limits(memory_mb, cpu_seconds)
    abi = landlock_abi() if landlock else 0
    if abi:
        _landlock(folder, abi)
    attempts: list = []
    sys.addaudithook(_audit_hook(folder, attempts))
    return attempts
