"""Google Colab: the course folder lives in Google Drive and every notebook uses it.

A simulated Colab: a stub ``google.colab`` whose ``drive.mount(path)`` links ``path`` to a
local folder (the "Drive", ``$COURSE_TEST_DRIVE``), and ``$COURSE_COLAB_CONTENT`` in place of
``/content`` (a new empty folder for each runtime), so that nothing here touches the real ones.
In-process tests run the setup cell's text; the runtime tests start a fresh kernel for each
notebook that is opened (``jupyter_client``, the release's kernel ``mup-course``) and execute only
its first cells and a probe."""

import json
import os
import re
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import nbformat
import pytest
from kernel_session import KernelSession

from coursetools import colab_cell, release

ROOT = Path(__file__).resolve().parents[1]

CELL = (ROOT / "release" / "colab_cell.py").read_text()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COURSE = Path("drive") / "MyDrive" / "mup-course"  # under /content, as the cell puts it

# google.colab.drive, as the stub: Drive "mounted" at a path is a link to $COURSE_TEST_DRIVE.
DRIVE_STUB = '''import os


def mount(mountpoint, force_remount=False, **kwargs):
    drive = os.environ["COURSE_TEST_DRIVE"]
    os.makedirs(os.path.join(drive, "MyDrive"), exist_ok=True)
    if not os.path.lexists(mountpoint):
        os.makedirs(os.path.dirname(mountpoint), exist_ok=True)
        os.symlink(drive, mountpoint)
    print("Mounted at", mountpoint)
'''


def zip_folder(folder: Path, archive: Path, top: str | None = "mup-course-student") -> Path:
    """``folder`` zipped as a student would get it: under one top folder (or none)."""
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, str(Path(top or "") / path.relative_to(folder)))
    return archive


# ---------------------------------------------------------------- the cell itself, in this process
@pytest.fixture
def colab(tmp_path, monkeypatch):
    """``google.colab`` importable as in Colab; /content and Drive are folders of tmp_path.
    Returns (content, drive's folder, course folder as the runtime sees it)."""
    drive_module = types.ModuleType("google.colab.drive")
    exec(compile(DRIVE_STUB, "<google.colab.drive stub>", "exec"), drive_module.__dict__)  # noqa: S102
    google, colab_module = types.ModuleType("google"), types.ModuleType("google.colab")
    google.__path__, colab_module.drive, google.colab = [], drive_module, colab_module
    for name, module in (("google", google), ("google.colab", colab_module), ("google.colab.drive", drive_module)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys, "path", list(sys.path))
    content, drive = tmp_path / "content", tmp_path / "drive"
    content.mkdir()
    monkeypatch.chdir(content)  # where Colab starts; the cell moves into the course folder
    monkeypatch.setenv("COURSE_COLAB_CONTENT", str(content))
    monkeypatch.setenv("COURSE_TEST_DRIVE", str(drive))
    monkeypatch.delenv("COURSE_RELEASE_URL", raising=False)
    return content, drive, content / COURSE


def run_cell(namespace=None):
    namespace = {} if namespace is None else namespace
    exec(compile(CELL, "<colab cell>", "exec"), namespace)  # noqa: S102 - the cell, as Jupyter runs it
    return namespace


def fake_release(folder: Path, requirements="numpy==2.4.6\njupyterlab==4.6.6\n") -> Path:
    """The least a release needs for the cell: helpers/ with colab.py, notebooks/, requirements.txt."""
    (folder / "helpers").mkdir(parents=True)
    (folder / "notebooks").mkdir()
    (folder / "notebooks" / "00_first.ipynb").write_text("{}")
    (folder / "helpers" / "__init__.py").write_text("")
    (folder / "helpers" / "norms.py").write_text("released = True\n")
    shutil.copyfile(ROOT / "helpers" / "colab.py", folder / "helpers" / "colab.py")
    (folder / "requirements.txt").write_text(requirements)
    return folder


def test_outside_colab_the_cell_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_RELEASE_URL", str(tmp_path / "nowhere"))
    monkeypatch.setenv("COURSE_COLAB_CONTENT", str(tmp_path))
    monkeypatch.setitem(sys.modules, "google.colab", None)  # import google.colab fails, as off Colab
    path, modules = list(sys.path), set(sys.modules)
    namespace = run_cell({"__name__": "__main__"})
    assert set(namespace) == {"__name__", "__builtins__"}
    assert sys.path == path and list(tmp_path.iterdir()) == [] and Path.cwd() == tmp_path
    assert set(sys.modules) == modules


@pytest.mark.parametrize("kind", ["folder", "zip", "git"])
def test_the_cell_mounts_drive_and_fetches_the_release_into_it_once(kind, tmp_path, monkeypatch, colab):
    content, drive, course = colab
    source = fake_release(tmp_path / "published" / "mup-course-student")
    if kind == "zip":
        location = zip_folder(source, tmp_path / "release.zip")
    elif kind == "git":
        if shutil.which("git") is None:
            pytest.skip("git is not installed")
        commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "r"]
        for command in (["init", "-q"], ["add", "."], commit):
            subprocess.run(["git", *command], cwd=source, check=True)
        location = f"file://{source}"
    else:
        location = source
    monkeypatch.setenv("COURSE_RELEASE_URL", str(location))
    assert set(run_cell()) == {"__builtins__"}
    in_drive = drive / "MyDrive" / "mup-course"
    assert (in_drive / "helpers" / "colab.py").exists() and not (in_drive / ".git").exists()
    assert sys.path[0] == str(course) and Path.cwd() == in_drive / "notebooks"  # the stub's Drive is a link
    (in_drive / "helpers" / "norms.py").write_text("mine = True\n")  # the student's code
    monkeypatch.setenv("COURSE_RELEASE_URL", str(tmp_path / "gone.zip"))  # a second fetch would fail
    monkeypatch.chdir(content)
    run_cell()
    assert (in_drive / "helpers" / "norms.py").read_text() == "mine = True\n"
    assert sys.path.count(str(course)) == 1 and Path.cwd() == in_drive / "notebooks"


def test_without_a_published_release_the_cell_uses_the_zip_uploaded_to_drive(tmp_path, colab):
    content, drive, course = colab
    (drive / "MyDrive").mkdir(parents=True)
    zip_folder(fake_release(tmp_path / "student"), drive / "MyDrive" / "mup-course.zip")
    run_cell()  # RELEASE_URL is empty in this repository
    assert (drive / "MyDrive" / "mup-course" / "helpers" / "norms.py").read_text() == "released = True\n"
    assert sys.path[0] == str(course)


def test_without_a_release_or_a_zip_in_drive_the_cell_says_what_to_upload(colab):
    with pytest.raises(FileNotFoundError, match=r"upload the course zip .* My Drive as mup-course\.zip"):
        run_cell()


def test_the_fetch_never_replaces_a_file_the_student_already_has(tmp_path, monkeypatch, colab):
    content, drive, course = colab
    mine = drive / "MyDrive" / "mup-course" / "helpers" / "norms.py"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine = True\n")  # e.g. uploaded by hand, without the rest
    monkeypatch.setenv("COURSE_RELEASE_URL", str(fake_release(tmp_path / "release")))
    run_cell()
    assert mine.read_text() == "mine = True\n" and (mine.parent / "colab.py").exists()


def test_the_cell_installs_only_what_colab_lacks(tmp_path, monkeypatch, colab, capsys):
    requirements = "numpy==2.4.6\nsurely-not-installed-pkg==1.0  # comment\njupyterlab==4.6.6\n"
    monkeypatch.setenv("COURSE_RELEASE_URL", str(fake_release(tmp_path / "release", requirements)))
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: calls.append(command))
    run_cell()
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", "surely-not-installed-pkg==1.0"]]
    assert "installed surely-not-installed-pkg==1.0" in capsys.readouterr().out


# ---------------------------------------------------------------- the cell's place and form
def setup_cells(notebook):
    return [(i, c) for i, c in enumerate(notebook.cells) if colab_cell.TAG in c.metadata.get("tags", [])]


def assert_collapsed_after_the_title(notebook, where):
    [(index, cell)] = setup_cells(notebook)
    first_markdown = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown")
    assert index == first_markdown + 1 and notebook.cells[first_markdown].source.startswith("# "), where
    assert all(c.cell_type != "code" for c in notebook.cells[:index]), where
    assert cell.cell_type == "code" and cell.source == CELL.rstrip("\n"), where
    assert re.match(r'#@title \S.*\{ display-mode: "form" \}$', cell.source.splitlines()[0]), where
    assert cell.metadata.get("cellView") == "form", where  # Colab: only the title shows
    assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, where  # JupyterLab: source hidden


def test_the_setup_cell_is_collapsed_and_comes_after_the_title_of_every_notebook(tmp_path):
    for path in NOTEBOOKS:
        assert_collapsed_after_the_title(nbformat.read(path, as_version=4), path.name)
    assert colab_cell.sync(NOTEBOOKS, check=True) == []
    release.build_student(ROOT, tmp_path / "student")  # and so in the student release
    built = sorted((tmp_path / "student" / "notebooks").glob("*.ipynb"))
    assert [p.name for p in built] == [p.name for p in NOTEBOOKS]
    for path in built:
        assert_collapsed_after_the_title(nbformat.read(path, as_version=4), f"student release: {path.name}")


def test_the_setup_cell_is_short_bootstrap_and_the_rest_is_a_shipped_module():
    lines = CELL.rstrip("\n").splitlines()
    assert len(lines) <= 36
    assert "drive.mount(" in CELL and 'runpy.run_path(os.path.join(course, "helpers", "colab.py"))' in CELL
    assert '"pip"' not in CELL and "sys.path.insert" not in CELL  # helpers/colab.py does those


def test_sync_colab_cell_places_it_after_the_title_idempotently(tmp_path):
    paths = []
    for path in NOTEBOOKS[:3]:
        shutil.copyfile(path, tmp_path / path.name)
        paths.append(tmp_path / path.name)
    notebook = nbformat.read(paths[0], as_version=4)
    notebook.cells = [c for c in notebook.cells if colab_cell.TAG not in c.metadata.get("tags", [])]
    notebook.cells.insert(0, colab_cell.colab_cell("#@title an old version, first"))
    notebook.cells.insert(4, colab_cell.colab_cell("#@title another copy"))
    notebook.cells[4].id = "another-copy"
    nbformat.write(notebook, paths[0])
    other = nbformat.read(paths[1], as_version=4)
    [(index, _)] = setup_cells(other)
    other.cells[index].metadata.pop("jupyter")  # an old form: not hidden in JupyterLab
    nbformat.write(other, paths[1])
    assert colab_cell.sync(paths, check=True) == paths[:2]
    colab_cell.sync(paths)
    after = [p.read_bytes() for p in paths]
    assert colab_cell.sync(paths) == [] and [p.read_bytes() for p in paths] == after
    for path in paths:
        assert_collapsed_after_the_title(nbformat.read(path, as_version=4), path.name)


def test_the_student_release_refuses_notebooks_out_of_step_with_the_cell(tmp_path):
    source = tmp_path / "src"
    (source / "notebooks").mkdir(parents=True)
    shutil.copytree(ROOT / "release", source / "release")
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    setup_cells(notebook)[0][1].source = "#@title an old cell\nRELEASE_URL = ''"
    nbformat.write(notebook, source / "notebooks" / NOTEBOOKS[0].name)
    with pytest.raises(release.ReleaseError, match="sync_colab_cell"):
        release.build_student(source, tmp_path / "out")


def test_the_solutions_html_leaves_the_setup_cell_out(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 97 · Title (test)\n\nIntroduction."),
                                               nbformat.v4.new_code_cell("print('the first code')")])
    notebook.metadata["kernelspec"] = {"name": "mup-course", "display_name": "Python (muP course)",
                                       "language": "python"}
    colab_cell.synced(notebook, colab_cell.colab_cell())
    path = tmp_path / "97_title.ipynb"
    nbformat.write(notebook, path)
    html = release.export_html(path, tmp_path / "97_title.html").read_text()
    assert "97 · Title" in html and "the first code" in html
    assert "RELEASE_URL" not in html and "Course setup" not in html and "drive.mount" not in html
    assert len(setup_cells(nbformat.read(path, as_version=4))) == 1  # the notebook itself keeps it


# ---------------------------------------------------------------- runtimes: one fresh kernel per notebook opened
class Runtime:
    """A fresh Colab runtime: a kernel of the release's kernel spec, started in a new empty
    /content, with the stub google.colab and the shared Drive."""

    def __init__(self, tmp_path: Path, name: str, stub: Path, drive: Path, release_url: str | None):
        self.content = tmp_path / name / "content"
        self.content.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHONPATH"))}
        env.update(PYTHONPATH=str(stub), COURSE_COLAB_CONTENT=str(self.content), COURSE_TEST_DRIVE=str(drive),
                   COURSE_DATA_SOURCE="subset", COURSE_DEVICE="cpu", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        if release_url is not None:
            env["COURSE_RELEASE_URL"] = release_url
        self.kernel = KernelSession(self.content, env, kernel_name="mup-course")

    def run(self, code: str) -> str:
        """Execute ``code``; its printed text, or a failed assertion with the kernel's error."""
        result = self.kernel.run(code)
        error = result["error"]
        assert error is None, f"{error and error['ename']}: {error and error['evalue']}\n--- in:\n{code[:2000]}" \
                              f"\n--- printed:\n{result['stdout']}"
        return result["stdout"] + result["stderr"]

    def open(self, notebook: Path, through: str = "") -> str:
        """Run the notebook's code cells from the top to its setup cell, and on to the first cell
        whose source contains ``through`` (only the setup cell when it is empty)."""
        printed = []
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            printed.append(self.run(cell.source))
            setup = colab_cell.TAG in cell.metadata.get("tags", [])
            if (setup and not through) or (not setup and through and through in cell.source):
                break
        return "".join(printed)

    def stop(self):
        self.kernel.close()


def drive_files(drive: Path) -> dict:
    """Every file of the Drive but Python's caches: relative path -> (bytes, mtime)."""
    return {str(p.relative_to(drive)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(drive.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


PROBE = """import inspect, json, os, sys
from helpers.norms import rms_to_rms_norm
import torch
source = os.path.realpath(inspect.getsourcefile(rms_to_rms_norm))
print(json.dumps({"norm": rms_to_rms_norm(torch.eye(3)), "file": source, "cwd": os.getcwd(), "path": sys.path}))"""

# The student's code, written into helpers/norms.py of the Drive folder while working on 02 (a
# marker in place of the stub: no answer is written here).
EDIT = """import os, re
path = os.path.join(os.getcwd(), "..", "helpers", "norms.py")
head, tail = open(path).read().split("def rms_to_rms_norm", 1)
tail, count = re.subn(r"raise NotImplementedError\\(.*\\)", "return -2.5  # written while working on 02", tail, count=1)
assert count == 1, "no stub in rms_to_rms_norm"
open(path, "w").write(head + "def rms_to_rms_norm" + tail)
print("edited", os.path.realpath(path))"""


@pytest.mark.notebooks  # starts kernels
def test_code_written_in_one_notebook_is_there_in_the_next_and_after_a_recycled_runtime(tmp_path):
    """Notebook 02 opened in a fresh runtime (nothing in Drive but the zip the student uploaded):
    the setup cell fetches the release into the Drive folder and the student's code goes into
    helpers/norms.py there. Notebook 06 opened in a new runtime (new empty /content, same Drive)
    imports that code. After a recycled runtime, the code is still there and nothing is fetched
    over it (the release location now offers a different release)."""
    out = tmp_path / "student"
    release.build_student(ROOT, out)
    stub = tmp_path / "stub" / "google" / "colab"  # `google` stays a namespace package
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    (stub / "drive.py").write_text(DRIVE_STUB)
    drive = tmp_path / "drive"
    (drive / "MyDrive").mkdir(parents=True)
    zip_folder(out, drive / "MyDrive" / "mup-course.zip")
    course_in_drive = (drive / "MyDrive" / "mup-course").resolve()  # where the stub's mount links lead

    # Working on 02: the first runtime; RELEASE_URL is empty, so the zip in Drive is used.
    runtime = Runtime(tmp_path, "runtime1", stub.parent.parent, drive, release_url=None)
    try:
        printed = runtime.open(out / "notebooks" / "02_update_norms.ipynb")
        assert f"Colab setup: course files in {runtime.content / COURSE}" in printed and "installed" not in printed
        assert "Mounted at" in printed
        assert (course_in_drive / "helpers" / "colab.py").exists() and (course_in_drive / "notebooks").is_dir()
        with pytest.raises(AssertionError, match="NotImplementedError: rms_to_rms_norm in helpers/norms.py"):
            runtime.run(PROBE)
        assert str(course_in_drive / "helpers" / "norms.py") in runtime.run(EDIT)
    finally:
        runtime.stop()
    assert sorted(p.name for p in runtime.content.iterdir()) == ["drive"]  # nothing of the course in /content

    # 06, opened in a new runtime: its own cells down to its imports, then the probe.
    runtime = Runtime(tmp_path, "runtime2", stub.parent.parent, drive, release_url=str(tmp_path / "nowhere.zip"))
    try:
        runtime.open(out / "notebooks" / "06_shampoo_orthogonalization.ipynb", through="from helpers")
        seen = json.loads(runtime.run(PROBE))
    finally:
        runtime.stop()
    assert seen["norm"] == -2.5 and seen["file"] == str(course_in_drive / "helpers" / "norms.py")
    assert seen["cwd"] == str(course_in_drive / "notebooks") and str(runtime.content / COURSE) in seen["path"]

    # A recycled runtime: a new empty /content, the same Drive; the release location now holds
    # another release, which must not be fetched over the student's folder.
    other = tmp_path / "other_release"
    shutil.copytree(out, other)
    (other / "REFETCHED").write_text("")
    (other / "helpers" / "norms.py").write_text("raise RuntimeError('the release was fetched again')\n")
    before = drive_files(drive)
    runtime = Runtime(tmp_path, "runtime3", stub.parent.parent, drive, release_url=str(other))
    try:
        runtime.open(out / "notebooks" / "06_shampoo_orthogonalization.ipynb")
        seen = json.loads(runtime.run(PROBE))
    finally:
        runtime.stop()
    assert seen["norm"] == -2.5 and seen["file"] == str(course_in_drive / "helpers" / "norms.py")
    assert drive_files(drive) == before
