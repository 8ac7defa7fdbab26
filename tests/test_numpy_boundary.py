"""Tensors become numpy only in helpers.device.to_numpy (.detach().cpu()), so
every plot and number regenerates on CUDA and MPS as on the CPU."""

import json
import re
import sys
from pathlib import Path

import pytest
import torch

import helpers.device
from helpers.experiments import lr_sweep, train_one_step, train_one_step_matrices
from helpers.plotting import save_figure

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = [re.compile(p) for p in (r"\.numpy\(", r"__array__", r"\.cpu\(\)\.detach\(\)")]


def sources():
    for path in sorted((ROOT / "helpers").glob("*.py")):
        yield path, path.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        yield path, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_no_file_converts_tensors_outside_to_numpy():
    offenders = []
    for path, text in sources():
        if path.name == "device.py":
            text = text.replace("return x.detach().cpu().numpy()", "")  # the one allowed place
        offenders += [f"{path.relative_to(ROOT)}: {p.pattern}" for p in FORBIDDEN if p.search(text)]
    assert not offenders, offenders


@pytest.fixture
def only_to_numpy_converts(monkeypatch):
    """Make any tensor->numpy conversion other than to_numpy's raise, as CUDA does."""
    real_numpy = torch.Tensor.numpy

    def guarded_numpy(self, *args, **kwargs):
        if sys._getframe(1).f_code is not helpers.device.to_numpy.__code__:
            raise TypeError("tensor converted to numpy outside helpers.device.to_numpy")
        return real_numpy(self, *args, **kwargs)

    def refuse_array(self, *args, **kwargs):
        raise TypeError("implicit np.array(tensor) outside helpers.device.to_numpy")

    monkeypatch.setattr(torch.Tensor, "numpy", guarded_numpy)
    monkeypatch.setattr(torch.Tensor, "__array__", refuse_array)


def test_experiments_and_plots_use_only_to_numpy(mnist_subset, only_to_numpy_converts, tmp_path, device):
    import numpy as np

    with pytest.raises(TypeError):  # the guard is live
        np.asarray(torch.ones(2))
    assert helpers.device.to_numpy(torch.ones(2)).tolist() == [1.0, 1.0]
    figures = [
        train_one_step(hiddens=(8, 16, 32), data=mnist_subset, device=device).figure,
        train_one_step_matrices(hiddens=(8, 16, 32), data=mnist_subset, device=device).figure,
        lr_sweep((8, 16), (0.01, 0.1), seeds=(0, 1), steps=5, data=mnist_subset, device=device,
                 progress=False).plot(),
    ]
    for i, fig in enumerate(figures):
        path = save_figure(fig, f"figure_{i}", directory=tmp_path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_figure_rejects_odd_names(tmp_path):
    import matplotlib.pyplot as plt

    fig = plt.figure()
    with pytest.raises(ValueError, match="Figure name"):
        save_figure(fig, "../escape", directory=tmp_path)
    assert save_figure(fig, "ok", subdir="01_test", directory=tmp_path) == tmp_path / "01_test" / "ok.png"


def test_relative_figure_dir_is_taken_from_the_repository_root(monkeypatch, tmp_path):
    import shutil

    import matplotlib.pyplot as plt

    from helpers.plotting import ROOT

    monkeypatch.setenv("COURSE_FIGURE_DIR", "build/test-relative-figures")
    monkeypatch.chdir(tmp_path)  # a kernel runs in notebooks/, not at the root
    try:
        path = save_figure(plt.figure(), "probe", subdir="nb")
        assert path == ROOT / "build" / "test-relative-figures" / "nb" / "probe.png" and path.exists()
    finally:
        shutil.rmtree(ROOT / "build" / "test-relative-figures", ignore_errors=True)


SAVE_IN_A_KERNEL = r'''
import json, sys
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output
ip = start_ipython()
ip.run_line_magic("matplotlib", "inline")
ip.run_cell("""
import io
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from helpers.notebook import NotebookSession
renders = []
original = Figure.savefig
def counted(self, *args, **kwargs):
    renders.append(kwargs.get("format"))
    return original(self, *args, **kwargs)
Figure.savefig = counted
def inline_width(fig):  # what the inline backend would draw
    buffer = io.BytesIO()
    original(fig, buffer, format="png", bbox_inches="tight")
    return int.from_bytes(buffer.getvalue()[16:20], "big")
""")
results = {}
for save in (True, False):
    with capture_output() as captured:
        ip.run_cell("renders.clear()\n"
                    f"nb = NotebookSession('probe', data_source=None, save_figures={save})\n"
                    "fig, ax = plt.subplots(figsize=(6, 4))\n"
                    "ax.plot([1, 2, 3])\n"
                    "width = inline_width(fig)\n"
                    f"nb.save(fig, 'curve_{save}')\n"
                    "print('printed after the figure')\n", store_history=True)
    results[str(save)] = dict(
        renders=len(ip.user_ns["renders"]), inline_width=ip.user_ns["width"],
        images=[o.data["image/png"] for o in captured.outputs if "image/png" in o.data],
        widths=[o.metadata.get("image/png", {}).get("width") for o in captured.outputs])
print(json.dumps(results))
'''


def test_a_saved_figure_is_rendered_once_for_the_notebook_and_the_file(tmp_path):
    """Under the inline backend ``nb.save`` shows the figure and writes the file from one render
    (~0.5 s each on a CPU); the backend does not draw it again at the end of the cell. Without
    save_figures the figure is shown, from one render, and no file is written."""
    import base64
    import os
    import subprocess

    env = {**os.environ, "COURSE_FIGURE_DIR": str(tmp_path), "MPLBACKEND": "Agg"}
    script = SAVE_IN_A_KERNEL.replace("ROOT", repr(str(ROOT)), 1)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(results) == {"True", "False"}
    for save, result in results.items():
        assert result["renders"] == 1 and len(result["images"]) == 1, (save, result["renders"])
        png = base64.b64decode(result["images"][0])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        # shown at the size the inline backend would draw it, drawn at the file's 110 dpi
        assert abs(result["widths"][-1] - result["inline_width"]) <= 2
        assert int.from_bytes(png[16:20], "big") > result["inline_width"]
        saved = tmp_path / "probe" / f"curve_{save}.png"
        assert saved.exists() == (save == "True")
        if save == "True":
            assert saved.read_bytes() == png


def test_outside_a_notebook_an_unsaved_figure_is_not_rendered(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from helpers.notebook import NotebookSession

    renders = []
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: renders.append(1))
    nb = NotebookSession("probe", data_source=None, save_figures=False)
    fig = plt.figure()
    nb.save(fig, "curve")
    assert renders == [] and plt.fignum_exists(fig.number)  # left open for the caller
    # a script whose MPLBACKEND names the inline backend is still not a notebook: the figure is
    # saved and left open, nothing is displayed
    import matplotlib

    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("COURSE_FIGURE_DIR", str(tmp_path))
    monkeypatch.setattr(Figure, "savefig", lambda self, target, **k: target.write(b"png"))
    NotebookSession("probe", data_source=None, save_figures=True).save(fig, "curve")
    assert (tmp_path / "probe" / "curve.png").read_bytes() == b"png" and plt.fignum_exists(fig.number)
    plt.close(fig)
