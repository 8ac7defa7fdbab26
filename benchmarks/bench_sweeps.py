"""Time the part-e learning-rate sweeps, one run at a time vs batched, and the notebooks.

    python benchmarks/bench_sweeps.py [--skip-notebooks]      (make bench)

In one process on one machine: (a) the per-run loop exactly as the course
protocol does it and (b) the batched sweep, for the Adam sweep (7 widths x 9
learning rates x 100 steps) and the muP sweep (7 x 6 x 100); then every notebook
under papermill at full size. Prints a table and writes build/bench.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from helpers.data import default_source, load_mnist  # noqa: E402
from helpers.device import get_device  # noqa: E402
from helpers.experiments import lr_sweep  # noqa: E402
from helpers.optimizers import SimpleAdam, SimpleAdamMuP  # noqa: E402

WIDTHS = (4, 8, 16, 32, 64, 128, 256)
SWEEPS = {
    "Adam (7 x 9 x 100)": (SimpleAdam, (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)),
    "muP (7 x 6 x 100)": (SimpleAdamMuP, (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)),
}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebooks", action="store_true")
    args = parser.parse_args(argv)
    device = get_device()
    data = load_mnist(default_source())
    report = {"device": str(device), "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "train_images": len(data[0][0]), "sweeps": {}}
    print(f"device {device}, {torch.get_num_threads()} threads, {len(data[0][0])} training images")
    print(f"{'sweep':<20} {'loop (s)':>9} {'batched (s)':>12} {'speed-up':>9} {'max |diff|':>11} {'same best lr':>13}")
    for name, (optimizer, lrs) in SWEEPS.items():
        loop, t_loop = timed(lambda: lr_sweep(WIDTHS, lrs, optimizer, data=data, device=device, progress=False,
                                              batched=False))
        fast, t_fast = timed(lambda: lr_sweep(WIDTHS, lrs, optimizer, data=data, device=device, progress=False,
                                              batched=True))
        below = loop.lrs[None, None, :] < loop.best_lr[None, :, None]
        diff = float(np.abs(fast.losses - loop.losses)[below].max())
        same = bool(np.array_equal(fast.best_lr, loop.best_lr))
        report["sweeps"][name] = dict(loop_s=t_loop, batched_s=t_fast, speedup=t_loop / t_fast,
                                      max_diff_below_best=diff, same_best_lr=same)
        print(f"{name:<20} {t_loop:9.2f} {t_fast:12.2f} {t_loop / t_fast:8.1f}x {diff:11.1e} {str(same):>13}")
    if not args.skip_notebooks:
        import run_notebooks

        times = {}
        for notebook in run_notebooks.numbered_notebooks():
            times[notebook.name] = run_notebooks.run(notebook, ROOT / "build" / "executed", quick=False)
            print(f"{notebook.name:<40} {times[notebook.name]:6.1f} s", flush=True)
        report["notebooks_s"] = times
        report["notebooks_total_s"] = sum(times.values())
        print(f"{'all notebooks (make run)':<40} {sum(times.values()):6.1f} s")
    out = ROOT / "build" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
