"""Kernels forked from a zygote that has imported torch and matplotlib (scripts/forked_kernels.py)
run a notebook exactly as a fresh kernel does, die cleanly, and leave no process behind."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import forked_kernels  # noqa: E402
import run_notebooks  # noqa: E402

pytestmark = pytest.mark.notebooks  # starts kernels

PROBE = """
import hashlib, json, os, sys
import numpy as np
import torch
import matplotlib
torch.manual_seed(0)
print(json.dumps(dict(
    cwd=os.getcwd(), probe=os.environ.get("COURSE_PROBE"), threads=torch.get_num_threads(),
    omp=os.environ.get("OMP_NUM_THREADS"), backend=matplotlib.get_backend(), hash=hash("muP"),
    tensor=torch.rand(3).tolist(), normal=float(np.random.default_rng(0).normal()),
    answers=os.environ.get("COURSE_ANSWERS_DIR"), executable=sys.executable,
    course_modules_loaded=sorted(m for m in ("helpers", "helpers.optimizers", "ipywidgets") if m in sys.modules),
    path=sys.path, argv0=sys.argv[0], session_leader=os.getsid(0) == os.getpid(),
    comm_targets=sorted(__import__("comm").get_comm_manager().targets),
    parent=open(f"/proc/{os.getppid()}/cmdline").read().replace(chr(0), " "),
)))
"""


def probe_notebook(folder: Path, *cells: str, name: str = "99_probe") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook(metadata=dict(
        kernelspec=dict(name="python3", display_name="Python 3", language="python"), language_info=dict(name="python")))
    notebook.cells = [nbformat.v4.new_code_cell("device = 'cpu'\ndata_source = None\nseed = 0\nsave_figures = False")]
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.cells += [nbformat.v4.new_code_cell(cell) for cell in cells]
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def printed(execution) -> dict:
    notebook = nbformat.read(execution.output, as_version=4)
    text = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []) if o.get("name") == "stdout")
    return json.loads(text.strip().splitlines()[-1])


def test_a_forked_kernel_runs_a_notebook_as_a_fresh_kernel_does(tmp_path, monkeypatch):
    """Same folder, environment, sys.path, sys.argv[0], session, thread count, backend, hash seed,
    random numbers and comm targets; the course's helpers are not preloaded (a notebook imports
    them from its own folder). A forked kernel that dies fails its own notebook only, as a fresh
    one does."""
    dead = probe_notebook(tmp_path / "notebooks", "import os\nos._exit(3)", name="98_dies")
    path = probe_notebook(tmp_path / "notebooks", PROBE)
    monkeypatch.setenv("COURSE_PROBE", "from the caller")
    monkeypatch.setenv("COURSE_KERNEL_THREADS", "1")  # the same in both runs, whatever the jobs
    runs, results = {}, {}
    for forked, notebooks in (("1", [dead, path]), ("0", [path])):
        monkeypatch.setenv("COURSE_FORKED_KERNELS", forked)
        start = time.monotonic()
        results[forked] = run_notebooks.execute_all(notebooks, tmp_path / f"out{forked}", jobs=len(notebooks),
                                                    data_source="subset", answers_dir=tmp_path / "answers")
        assert time.monotonic() - start < 60
        assert results[forked]["99_probe"].error is None, results[forked]["99_probe"].error
        runs[forked] = printed(results[forked]["99_probe"])
    died = results["1"]["98_dies"].error
    assert died and "DeadKernelError" in died.splitlines()[0], died
    assert "forked_kernels.py serve" in runs["1"].pop("parent")  # the kernel was forked from the zygote
    assert "forked_kernels.py" not in runs["0"].pop("parent")
    assert runs["1"] == runs["0"]
    seen = runs["1"]
    assert seen["cwd"] == str(path.parent) and seen["probe"] == "from the caller"
    assert seen["threads"] == int(seen["omp"]) and "inline" in seen["backend"] and seen["course_modules_loaded"] == []
    assert seen["session_leader"] and seen["argv0"].endswith("ipykernel_launcher.py")
    assert not any(entry.endswith("scripts") for entry in seen["path"])
    assert seen["answers"] == str(tmp_path / "answers")


def kernel_pids(zygote_pid: int) -> set[int]:
    children = Path(f"/proc/{zygote_pid}/task/{zygote_pid}/children")
    return {int(p) for p in children.read_text().split()} if children.exists() else set()


def _forked_spec(monkeypatch, zygote):
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [zygote.jupyter_path,
                                                                    os.environ.get("JUPYTER_PATH")])))


def _wait_until(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_a_killed_launcher_takes_its_kernel_and_closing_the_zygote_leaves_nothing(tmp_path, monkeypatch):
    """Also: a client that connects and hangs up, or dies before its kernel is forked, costs the
    zygote nothing; an interrupt reaches the running cell as KeyboardInterrupt."""
    import socket

    from jupyter_client.manager import KernelManager

    env = {**os.environ, **run_notebooks.kernel_environment(1)}
    with forked_kernels.KernelZygote(run_notebooks.KERNEL, env) as zygote:
        zygote.wait_ready()
        _forked_spec(monkeypatch, zygote)
        for payload in (b"", b"\x00" * 8 + b"{}"):  # hangs up at once; sends no streams
            rude = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            rude.connect(zygote.socket_path)
            rude.sendall(payload)
            rude.close()
        managers = [KernelManager(kernel_name=zygote.kernel_name) for _ in range(2)]
        for manager in managers:
            manager.start_kernel(cwd=str(tmp_path))
        assert _wait_until(lambda: len(kernel_pids(zygote.process.pid)) == 2)
        kernels = kernel_pids(zygote.process.pid)

        client = managers[1].client()
        client.start_channels()
        client.wait_for_ready(timeout=30)
        started = time.monotonic()
        message = client.execute("import time\ntime.sleep(60)")
        time.sleep(1.0)
        managers[1].interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == message
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - started < 20
        client.stop_channels()

        launcher = managers[0].provisioner.process
        launcher.send_signal(signal.SIGKILL)  # the launcher, not the kernel
        launcher.wait()
        assert _wait_until(lambda: len(kernel_pids(zygote.process.pid)) == 1)
        managers[0].cleanup_resources()
        socket_path = zygote.socket_path
    # closing the zygote ends (and reaps) the kernel that was still running, and removes its socket
    assert zygote.process.poll() is not None and not Path(socket_path).exists()
    assert not any(Path(f"/proc/{kernel}").exists() for kernel in kernels)
    managers[1].provisioner.process.wait()
    managers[1].cleanup_resources()


def test_without_a_zygote_the_launcher_starts_a_fresh_kernel(tmp_path, monkeypatch):
    """A zygote that died (or never started) costs speed, not the notebook."""
    from jupyter_client.manager import KernelManager

    env = {**os.environ, **run_notebooks.kernel_environment(1)}
    with forked_kernels.KernelZygote(run_notebooks.KERNEL, env) as zygote:
        zygote.process.kill()
        zygote.process.wait()
        _forked_spec(monkeypatch, zygote)
        manager = KernelManager(kernel_name=zygote.kernel_name)
        manager.start_kernel(cwd=str(tmp_path))
        try:
            client = manager.client()
            client.start_channels()
            client.wait_for_ready(timeout=60)
            outputs = []
            client.execute_interactive("import os; print(os.getpid())", timeout=30,
                                       output_hook=lambda m: outputs.append(m["content"].get("text", "")))
            assert int("".join(outputs).strip()) == manager.provisioner.process.pid  # the launcher became it
            client.stop_channels()
        finally:
            manager.shutdown_kernel(now=True)


def test_a_zygote_that_cannot_start_is_reported(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    (tmp_path / "torch.py").write_text("import os\nos._exit(3)\n")  # the zygote dies importing torch
    zygote = forked_kernels.KernelZygote(run_notebooks.KERNEL, env)
    try:
        with pytest.raises(RuntimeError, match="kernel zygote is not ready"):
            zygote.wait_ready(timeout=60)
    finally:
        zygote.close()
