"""The student's loop in a real kernel: run a notebook of the student release to its imports,
write a wrong answer where the student writes it, run the check (it fails, its message first),
write the right answer (it passes), write the wrong one again (it fails again): no restart.

One kernel serves every part, so each edit is also checked against everything that ran before
it in the same session, as a student who works through the notebooks without restarting would.
Every test runs twice: on this environment's IPython and on the IPython and ipykernel that
Google Colab ships (installed once into build/, put first on the kernel's path).
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from grading_fixtures import replace_function
from kernel_session import KernelSession

from grading.submission import function_source

ROOT = Path(__file__).resolve().parents[1]

def instructor(file: str, name: str) -> str:
    return function_source((ROOT / file).read_text(), name)


def swap(source: str, old: str, new: str) -> str:
    assert old in source, (old, source)
    return source.replace(old, new)


ORTHO = "helpers/orthogonal_updates.py"
NS_NORMALISE = 'X = X / (torch.linalg.matrix_norm(X, ord="fro") + eps)'
# (part, notebook, file, function, wrong source, the check's call, a phrase of the wrong answer's failure)
PARTS = [
    ("b", "02_update_norms", "helpers/norms.py", "rms_to_rms_norm",
     "def rms_to_rms_norm(W):\n    return spectral_norm(W)\n", "check_update_norms(", "spectral norm"),
    ("c", "03_mup_optimizer", "helpers/mup_lr.py", "layer_lr",
     swap(instructor("helpers/mup_lr.py", "layer_lr"), "fan_in = shape[1]", "fan_in = shape[0]"),
     "check_mup_optimizer(", "fan-out"),
    ("d", "04_per_weight_multipliers", "helpers/mup_multipliers.py", "initial_weight",
     "def initial_weight(weight, multiplier):\n    return weight\n", "check_scaled_mlp(", "forward pass"),
    ("e", "06_shampoo_orthogonalization", ORTHO, "orthogonalize_svd",
     swap(instructor(ORTHO, "orthogonalize_svd"), "return (u @ vh)", "return -(u @ vh)"), "check_shampoo(", ""),
    ("bonus", "06_shampoo_orthogonalization", ORTHO, "shampoo_shape_scale",
     "def shampoo_shape_scale(fan_out, fan_in):\n    return math.sqrt(fan_in / fan_out)\n",
     "check_scaled_shampoo(", "swapped"),
    ("newton-schulz", "07_muon_newton_schulz", ORTHO, "newton_schulz",
     swap(instructor(ORTHO, "newton_schulz"), NS_NORMALISE, "pass"), "check_newton_schulz(", "Frobenius"),
    ("muon-factor", "08_muon_training", ORTHO, "muon_shape_scale",
     swap(instructor(ORTHO, "muon_shape_scale"), "math.sqrt(fan_out / fan_in)", "math.sqrt(fan_in / fan_out)"),
     "check_muon_shape_scale(", "(fan_out, fan_in)"),
]
# The functions a part's file needs besides the one under test, written right before the part starts.
COMPANIONS = {
    "b": ["frobenius_norm", "spectral_norm"],
    "d": ["mup_multipliers", "layer_output"],
}


# The kernel side of Colab's runtime (its pinned IPython, ipykernel and what they talk through)
COLAB_KERNEL = ("ipython==7.34.0", "ipykernel==6.17.1", "jupyter-client==6.1.12", "tornado==6.3.3",
                "traitlets==5.7.1", "pyzmq==24.0.1")


def colab_kernel_packages() -> Path:
    """Colab's IPython and ipykernel, installed once into build/ (pip from the package index)."""
    target = ROOT / "build" / "colab-kernel" / "-".join(COLAB_KERNEL).replace("==", "")
    if not (target / "IPython").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--target", str(target), *COLAB_KERNEL], check=True)
    return target


def Kernel(cwd: Path, packages: Path | None = None) -> KernelSession:
    """A kernel of this environment (``packages`` first on its path), run from the release's notebooks/."""
    env = dict(os.environ, COURSE_DATA_SOURCE="subset", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               KERAS_BACKEND="torch", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("COURSE_ANSWERS_DIR", None)
    if packages is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(packages), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return KernelSession(cwd, env)


@pytest.fixture(scope="module", params=["this IPython", "Colab's IPython"])
def release(tmp_path_factory, request):
    """A fresh student release for each kernel (``release.kernel_kind``)."""
    from coursetools import release as release_builder

    out = tmp_path_factory.mktemp("loop") / "student"
    release_builder.build_student(ROOT, out)
    return KindOfPath(out, request.param)


class KindOfPath(type(Path())):
    """The release folder, knowing which kernel it is for."""

    def __new__(cls, path, kind):
        self = super().__new__(cls, path)
        self.kernel_kind = kind
        return self


@pytest.fixture(scope="module")
def kernel(release):
    packages = colab_kernel_packages() if release.kernel_kind == "Colab's IPython" else None
    kernel = Kernel(release / "notebooks", packages)
    version = kernel.run("import IPython, ipykernel; print(IPython.__version__, ipykernel.__version__)")["stdout"]
    if packages is not None:
        assert version.split() == [spec.split("==")[1] for spec in COLAB_KERNEL[:2]], version
    yield kernel
    kernel.close()


def notebook_cells(release: Path, name: str):
    return nbformat.read(release / "notebooks" / f"{name}.ipynb", as_version=4).cells


def open_notebook(kernel: Kernel, release: Path, name: str):
    """Run the notebook's parameters and imports cells, as a student who opens it does."""
    cells = notebook_cells(release, name)
    parameters = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    imports = next(c for c in cells if "NotebookSession(" in c.source)
    for cell in (parameters, imports):
        result = kernel.run(cell.source)
        assert result["error"] is None, (name, result)
    return cells


def check_call(cells, call: str) -> str:
    """The first statement of the notebook's check cell: the check itself."""
    cell = next(c for c in cells if c.cell_type == "code" and call in c.source and "show_source" not in c.source)
    tree = ast.parse(cell.source)
    first = tree.body[0]
    return "\n".join(cell.source.splitlines()[first.lineno - 1:first.end_lineno])


def write_function(release: Path, file: str, name: str, source: str) -> None:
    path = release / file
    path.write_text(replace_function(path.read_text(), name, source))


def assert_fails_with_its_message_first(result: dict, check: str, phrase: str):
    error = result["error"]
    assert error is not None and error["ename"] == "CheckFailed", result
    assert result["first"] == ("error", f"{check} failed"), result["first"]
    assert not any(line.startswith("Traceback") or "File " in line for line in error["lines"]), error["lines"]
    assert phrase in "\n".join(error["lines"])


@pytest.mark.parametrize("part, notebook, file, name, wrong, call, phrase", PARTS, ids=[p[0] for p in PARTS])
def test_an_edit_is_what_the_next_check_runs(kernel, release, part, notebook, file, name, wrong, call, phrase):
    cells = open_notebook(kernel, release, notebook)
    check = check_call(cells, call)
    for companion in COMPANIONS.get(part, []):
        write_function(release, file, companion, instructor(file, companion))

    stub = kernel.run(check)  # the stub, as released: its message first, no traceback
    assert stub["error"] and stub["error"]["ename"] == "NotImplementedError", stub
    assert stub["first"][0] == "error" and stub["first"][1].startswith(f"NotImplementedError: {name} in {file}")
    assert "replace this stub" in stub["first"][1] and not any("Traceback" in x for x in stub["error"]["lines"])

    check_name = call.rstrip("(")
    write_function(release, file, name, wrong)
    assert_fails_with_its_message_first(kernel.run(check), check_name, phrase)
    write_function(release, file, name, instructor(file, name))
    passed = kernel.run(check)
    assert passed["error"] is None and f"PASS {check_name}" in passed["stdout"], passed
    write_function(release, file, name, wrong)
    assert_fails_with_its_message_first(kernel.run(check), check_name, phrase)
    write_function(release, file, name, instructor(file, name))  # later parts of the same file build on it


def test_part_a_is_written_in_its_cell_and_checked_without_a_restart(kernel, release):
    cells = open_notebook(kernel, release, "01_activation_deltas")
    check = check_call(cells, "check_alternating_widths(")
    answer = next(c for c in nbformat.read(ROOT / "notebooks" / "01_activation_deltas.ipynb", as_version=4).cells
                  if "alternating = (16, 256" in c.source).source
    right = "\n".join(line for line in answer.splitlines() if "SOLUTION" not in line)
    wrong = right.replace("alternating = (16, 256, 16, 256, 16, 256, 16, 256)",
                          "alternating = (256, 16, 256, 16, 256, 16, 256, 16)")
    for source, passes in ((wrong, False), (right, True), (wrong, False)):
        assert kernel.run(source)["error"] is None
        result = kernel.run(check)
        if passes:
            assert result["error"] is None and "PASS check_alternating_widths" in result["stdout"], result
        else:
            assert_fails_with_its_message_first(result, "check_alternating_widths", "wrong widths")


def test_show_source_shows_the_edit_and_a_broken_file_says_so_until_fixed(kernel, release):
    cells = open_notebook(kernel, release, "02_update_norms")
    path = release / "helpers" / "norms.py"
    write_function(release, "helpers/norms.py", "frobenius_norm",
                   "def frobenius_norm(W):\n    # first try\n    return 0.0\n")
    shown = kernel.run("show_source(norms.frobenius_norm)")["stdout"]
    assert "# first try" in shown and "return 0.0" in shown and shown.count("def ") == 1, shown
    good = path.read_text()
    path.write_text(good + "\ndef broken(:\n")  # a student's half-typed line
    result = kernel.run(check_call(cells, "check_update_norms("))
    error = result["error"]
    assert error and error["ename"] == "EditedFileError", result
    reported = r"helpers/norms\.py, line \d+: SyntaxError"
    assert re.match(reported, result["stderr"]) and result["stderr"].count("\n") == 1, result  # said before the cell
    assert re.match("EditedFileError: " + reported, error["lines"][0]) and len(error["lines"]) == 2, error
    path.write_text(replace_function(good, "frobenius_norm", instructor("helpers/norms.py", "frobenius_norm")))
    for name in ("spectral_norm", "rms_to_rms_norm"):
        write_function(release, "helpers/norms.py", name, instructor("helpers/norms.py", name))
    passed = kernel.run(check_call(cells, "check_update_norms("))
    assert passed["error"] is None and "PASS check_update_norms" in passed["stdout"], passed
    shown = kernel.run("show_source(norms.frobenius_norm)")["stdout"]
    assert "# first try" not in shown and "def frobenius_norm" in shown


def test_a_typo_left_in_one_file_stops_only_what_uses_that_file(release):
    """A fresh kernel (a restart, a new notebook, a new Colab runtime) with a syntax error left in
    orthogonal_updates.py: notebook 02 imports and checks part b as usual, with the typo reported
    once; notebook 07, which uses that file, stops at its imports with the short message."""
    path = release / ORTHO
    good = path.read_text()
    path.write_text(good + "\ndef half_typed(:\n")
    packages = colab_kernel_packages() if release.kernel_kind == "Colab's IPython" else None
    fresh = Kernel(release / "notebooks", packages)
    try:
        cells = notebook_cells(release, "02_update_norms")
        parameters = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
        assert fresh.run(parameters.source)["error"] is None
        imported = fresh.run(next(c for c in cells if "NotebookSession(" in c.source).source)
        assert imported["error"] is None, imported
        assert re.search(r"helpers/orthogonal_updates\.py, line \d+: SyntaxError", imported["stderr"]), imported
        for name in ("frobenius_norm", "spectral_norm", "rms_to_rms_norm"):
            write_function(release, "helpers/norms.py", name, instructor("helpers/norms.py", name))
        assert "PASS check_update_norms" in fresh.run(check_call(cells, "check_update_norms("))["stdout"]
        cells = notebook_cells(release, "07_muon_newton_schulz")
        stopped = fresh.run(next(c for c in cells if "NotebookSession(" in c.source).source)
        assert stopped["error"] and stopped["error"]["ename"] == "EditedFileError", stopped
        assert re.match(r"EditedFileError: helpers/orthogonal_updates\.py, line \d+: SyntaxError",
                        stopped["error"]["lines"][0]), stopped["error"]["lines"]
        path.write_text(good)
        assert fresh.run(next(c for c in cells if "NotebookSession(" in c.source).source)["error"] is None
    finally:
        path.write_text(good)
        fresh.close()
