"""Time the suite: ``make run``, ``make test``, every notebook, and the learning-rate
sweeps one run at a time against batched.

    python benchmarks/bench_sweeps.py [--skip-notebooks] [--skip-tests]      (make bench)

In one process on one machine: (a) the per-run loop exactly as the course
protocol does it and (b) the batched sweep, for the Adam sweep (7 widths x 9
learning rates x 100 steps), the muP sweep (7 x 6 x 100) and a Muon sweep
(3 x 5 x 100, notebook 08's kind), each width timed ``--repeats`` times
alternating loop and batched, the fastest timing counting (a shared machine's
load only ever adds time). Then ``make run`` (scripts/run_notebooks.py, every
notebook, kernels in parallel) and ``make test`` (pytest tests), each as a
subprocess, wall clock. Prints a table and writes build/bench.json. "max |diff|"
is the largest loss difference on runs below the loop's best learning rate (the
stable regime; above it training is chaotic and last-bit differences grow).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

from helpers.data import default_source, load_mnist  # noqa: E402
from helpers.device import get_device  # noqa: E402
from helpers.experiments import lr_sweep  # noqa: E402
from helpers.optimizers import MuonAdam, SimpleAdam, SimpleAdamMuP  # noqa: E402

WIDTHS = (4, 8, 16, 32, 64, 128, 256)
SWEEPS = {
    "Adam (7 x 9 x 100)": (SimpleAdam, (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0), WIDTHS),
    "muP (7 x 6 x 100)": (SimpleAdamMuP, (0.03, 0.1, 0.3, 1.0, 3.0, 10.0), WIDTHS),
    "Muon (3 x 5 x 100)": (functools.partial(MuonAdam, scale="spectral"), (0.01, 0.03, 0.1, 0.3, 1.0),
                           (16, 64, 256)),
}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def time_sweep(optimizer, lrs, widths, data, device, repeats: int):
    """Per width, the fastest of ``repeats`` timings of the loop and of the batched
    sweep (alternating, so both see the same machine load), and both results."""
    loop_s = np.full((repeats, len(widths)), np.inf)
    fast_s = np.full((repeats, len(widths)), np.inf)
    loop_losses, fast_losses = [], []  # [seed, lr] per width, from the first repeat
    for r in range(repeats):
        for w, width in enumerate(widths):
            loop, loop_s[r, w] = timed(lambda width=width: lr_sweep((width,), lrs, optimizer, data=data, device=device,
                                                        progress=False, batched=False))
            fast, fast_s[r, w] = timed(lambda width=width: lr_sweep((width,), lrs, optimizer, data=data, device=device,
                                                        progress=False, batched=True))
            if r == 0:
                loop_losses.append(loop.losses[:, 0])
                fast_losses.append(fast.losses[:, 0])
    return loop_s.min(0), fast_s.min(0), np.stack(loop_losses, axis=1), np.stack(fast_losses, axis=1)


def wall_clock(command: list[str]) -> float:
    """Run ``command`` from the repository root (its output shown) and return its wall-clock seconds."""
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, env=os.environ.copy())
    return round(time.perf_counter() - start, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebooks", action="store_true", help="do not time make run")
    parser.add_argument("--skip-tests", action="store_true", help="do not time make test")
    parser.add_argument("--skip-grading", action="store_true", help="do not time the grader")
    parser.add_argument("--repeats", type=int, default=3, help="timings per sweep and width; the fastest counts")
    args = parser.parse_args(argv)
    device = get_device()
    data = load_mnist(default_source())
    report = {"device": str(device), "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "train_images": len(data[0][0]), "repeats": args.repeats,
              "widths": list(WIDTHS), "sweeps": {}}
    print(f"device {device}, {torch.get_num_threads()} threads, {len(data[0][0])} training images, "
          f"fastest of {args.repeats} timings")
    rows = []
    for name, (optimizer, lrs, widths) in SWEEPS.items():
        loop_s, fast_s, loop_losses, fast_losses = time_sweep(optimizer, lrs, widths, data, device, args.repeats)
        lrs = np.array(lrs)
        mean_loop, mean_fast = loop_losses.mean(0), fast_losses.mean(0)
        best_loop, best_fast = lrs[mean_loop.argmin(1)], lrs[mean_fast.argmin(1)]
        below = lrs[None, None, :] < best_loop[None, :, None]
        diff = float(np.abs(fast_losses - loop_losses)[below].max())
        report["sweeps"][name] = dict(
            loop_s=float(loop_s.sum()), batched_s=float(fast_s.sum()), speedup=float(loop_s.sum() / fast_s.sum()),
            loop_s_per_width=loop_s.tolist(), batched_s_per_width=fast_s.tolist(),
            max_diff_below_best=diff, best_lr_loop=best_loop.tolist(), best_lr_batched=best_fast.tolist(),
            widths=list(widths))
        rows.append((name, loop_s, fast_s, diff, best_loop, best_fast, widths))
    print(f"{'sweep':<20} {'loop (s)':>9} {'batched (s)':>12} {'speed-up':>9} {'max |diff|':>11}  best lr per width")
    for name, loop_s, fast_s, diff, best_loop, best_fast, _ in rows:
        same = "same" if np.array_equal(best_loop, best_fast) else f"loop {best_loop} / batched {best_fast}"
        print(f"{name:<20} {loop_s.sum():9.2f} {fast_s.sum():12.2f} {loop_s.sum() / fast_s.sum():8.1f}x "
              f"{diff:11.1e}  {same}")
    print("per width (loop s / batched s):")
    for name, loop_s, fast_s, *_, widths in rows:
        cells = "  ".join(f"{w}: {a:.2f}/{b:.2f}" for w, a, b in zip(widths, loop_s, fast_s))
        print(f"  {name:<20} {cells}")
    if not args.skip_notebooks:
        out = ROOT / "build" / "executed"
        report["make_run_s"] = wall_clock([sys.executable, "scripts/run_notebooks.py", "--out", str(out)])
        times = json.loads((out / "run_times.json").read_text())["seconds"]
        report["notebooks_s"] = times
        report["notebooks_sum_s"] = round(sum(times.values()), 1)
        # the order in which later runs start the notebooks (longest first) follows this measurement
        (ROOT / "benchmarks" / "notebook_seconds.json").write_text(json.dumps(
            {"source": f"make bench on this machine, {time.strftime('%Y-%m-%d')}", "seconds": times}, indent=2))
        print(f"{'make run (wall clock)':<40} {report['make_run_s']:6.1f} s "
              f"({report['notebooks_sum_s']:.1f} s of notebook time in parallel kernels)")
    if not args.skip_grading:
        from bench_grading import bench as grading_bench

        report["grading"] = graded = grading_bench(20)  # 20 synthetic submissions, one worker
        print(f"{'make grade, 20 submissions':<40} {graded['total_s']:6.1f} s "
              f"({graded['per_submission_s']:.2f} s per submission)")
    if not args.skip_tests:
        report["make_test_s"] = wall_clock([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"])
        print(f"{'make test (wall clock)':<40} {report['make_test_s']:6.1f} s")
    out = ROOT / "build" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
