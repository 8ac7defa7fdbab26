"""What every notebook does before and after its experiments: pick the device,
load the data once, seed, save figures, and store the answers it computed in
``build/answers/<notebook>.json`` (read by the tests and by instructors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from helpers.data import load_mnist
from helpers.device import get_device, seed_everything, to_numpy
from helpers.plotting import inline_backend, render_png, save_figure, show_inline

ROOT = Path(__file__).resolve().parents[1]
ANSWER_DIR = ROOT / "build" / "answers"


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "detach"):
        value = to_numpy(value)
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    return value


class NotebookSession:
    """Device, data and bookkeeping for one notebook run.

    ``data_source=None`` skips loading MNIST (for notebooks that do not use it).
    """

    def __init__(self, name: str, *, device="auto", data_source="auto", seed=0, save_figures=False):
        self.name = name
        self.seed = int(seed)
        self.save_figures = bool(save_figures)
        self.device = get_device(device)
        if os.environ.get("COURSE_EXECUTION_LOG"):  # the test suite counts executions: one per notebook
            with open(os.environ["COURSE_EXECUTION_LOG"], "a") as log:
                log.write(f"{name}\t{Path.cwd().resolve()}\t{data_source}\n")
        seed_everything(self.seed)
        self.data = load_mnist(data_source) if data_source else None
        self.answers: dict = {"notebook": name, "device": self.device.type}
        sizes = ""
        if self.data is not None:
            (train, _), (valid, _) = self.data
            sizes = f", MNIST: {len(train)} train / {len(valid)} validation images"
            self.answers["train_size"] = len(train)
        print(f"device: {self.device}{sizes}, seed: {self.seed}")

    def save(self, fig, name: str) -> None:
        """Show ``fig`` here and, when save_figures is on, save it under
        build/figures/<notebook>/, rendering it once for both. Returns None, so a cell that
        ends with it prints no path."""
        if fig is None or not (self.save_figures or inline_backend()):
            return
        png = render_png(fig)
        if self.save_figures:
            save_figure(fig, name, subdir=self.name, png=png)
        show_inline(fig, png)

    def record(self, **answers) -> None:
        """Store computed answers and write them to build/answers/<notebook>.json
        (``$COURSE_ANSWERS_DIR`` overrides the folder). Returns None, so a cell that
        ends with it prints nothing."""
        self.answers.update(_plain(answers))
        directory = ROOT / Path(os.environ.get("COURSE_ANSWERS_DIR") or ANSWER_DIR)  # relative: from the root
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{self.name}.json").write_text(json.dumps(self.answers, indent=2))


def show_source(*objects) -> None:
    """Print where each function lives and its current source: the student's
    code for a part that later notebooks reuse is written in ``helpers/``."""
    import inspect

    for obj in objects:
        path = Path(inspect.getsourcefile(obj)).resolve()
        lines, start = inspect.getsourcelines(obj)
        print(f"# {path.relative_to(ROOT)}, line {start}: {obj.__qualname__}")
        print("".join(lines))
