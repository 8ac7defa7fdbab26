"""Figures from result objects. Every array comes through ``to_numpy``."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from helpers.device import to_numpy

ROOT = Path(__file__).resolve().parents[1]
FIGURE_DIR = ROOT / "build" / "figures"
DIVERGED_LOSS = 3.0  # a diverged run is drawn at this loss, marked with an x


def _bars(ax, values, labels, title, ylabel):
    values = to_numpy(values)
    ax.bar(np.arange(len(values)), values, color="tab:blue")
    ax.set_xticks(np.arange(len(values)), labels, rotation=45, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)


def plot_activation_deltas(result, ax=None):
    """Bar chart of RMS activation deltas, labelled by width and fan-in."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.5))
    labels = [f"{w}\n(fan-in {f})" for w, f in zip(result.widths, result.fan_ins)]
    _bars(ax, result.rms_deltas, labels, f"RMS of activation deltas after one step ({result.label})", "RMS delta")
    ax.set_xlabel("width of the activation (fan-in of the layer producing it)")
    ax.tick_params(axis="x", rotation=0)
    fig = fig or ax.figure
    fig.tight_layout()
    return fig


NORM_TITLES = {
    "frobenius": "Frobenius norm",
    "spectral": "spectral norm",
    "rms_to_rms": "RMS->RMS induced norm",
    "entrywise_rms": "entrywise RMS (handout's formula)",
}


def plot_update_norms(result, axes=None, norms=tuple(NORM_TITLES)):
    """One bar chart per norm of each weight update, labelled by shape (out, in)."""
    if axes is None:
        fig, axes = plt.subplots(1, len(norms), figsize=(4.5 * len(norms), 3.8))
    axes = np.atleast_1d(axes)
    labels = [f"{o}x{i}" for o, i in result.shapes]
    for ax, name in zip(axes, norms):
        _bars(ax, getattr(result, name), labels, f"{NORM_TITLES[name]} ({result.label})", "norm of update")
        ax.set_xlabel("layer shape (fan_out x fan_in)")
    fig = axes[0].figure
    fig.tight_layout()
    return fig


def log_ticks(low: float, high: float, max_ticks: int = 9) -> list[float]:
    """Tick values for a log axis from ``low`` to ``high``: 1, 2 and 5 times the powers of 10
    when that gives at most ``max_ticks`` inside the range, else fewer multipliers (at least
    the powers of 10, every other one when even those are too many), and at least two ticks."""
    low, high = min(low, high), max(low, high)
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0:
        return []
    decades = range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
    for subs in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** k for k in decades for m in subs if low <= m * 10.0 ** k <= high]
        if len(ticks) <= max_ticks:
            break
    while len(ticks) > max_ticks:
        ticks = ticks[::2]
    if len(ticks) < 2:  # less than a factor of 2 between the ends: label the ends themselves
        ticks = sorted({float(f"{low:.2g}"), *ticks, float(f"{high:.2g}")})
    return ticks


def readable_log_axis(axis, values=None, max_ticks: int = 9) -> None:
    """Label a log axis so that a value can be read off it: ticks at ``values`` (e.g. the
    learning rates of a grid) or at :func:`log_ticks` of the axis' current range, written as
    plain numbers (0.02, 5, 300), and no minor ticks. Fixed ticks also draw faster than
    matplotlib's log locators."""
    if values is None:
        ax = axis.axes
        values = log_ticks(*(ax.get_xlim() if axis is ax.xaxis else ax.get_ylim()), max_ticks=max_ticks)
    values = [float(v) for v in values]
    axis.set_major_locator(FixedLocator(values))
    axis.set_major_formatter(FixedFormatter([f"{v:g}" for v in values]))
    axis.set_minor_locator(NullLocator())


def plot_sweep(result, ax=None, legend: bool = True):
    """Validation loss against learning rate (log axis, a tick at every learning rate of the
    grid), one line per width; with several seeds, the mean and a min-max band. A loss of
    ``DIVERGED_LOSS`` or more, or a run that diverged, is drawn at ``DIVERGED_LOSS`` and
    marked with an x (the legend says so). The legend sits below the axes, off the data."""
    from matplotlib.lines import Line2D

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4.6))
    lrs = to_numpy(result.lrs)
    losses = np.where(np.isfinite(result.losses), result.losses, np.inf)
    clipped = np.minimum(losses, DIVERGED_LOSS)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(result.widths)))
    for w, (width, color) in enumerate(zip(result.widths, colors)):
        mean = clipped[:, w].mean(axis=0)
        ax.plot(lrs, mean, "o-", color=color, label=f"width {width}", ms=3)
        if clipped.shape[0] > 1:
            ax.fill_between(lrs, clipped[:, w].min(axis=0), clipped[:, w].max(axis=0), color=color, alpha=0.2)
        bad = (losses[:, w] >= DIVERGED_LOSS).any(axis=0)
        ax.plot(lrs[bad], np.full(bad.sum(), DIVERGED_LOSS), "x", color=color)
    ax.set_xscale("log")
    readable_log_axis(ax.xaxis, lrs)
    ax.tick_params(axis="x", labelsize=7, rotation=45 if len(lrs) > 6 else 0)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("validation loss (mean of last 5)")
    ax.set_ylim(top=DIVERGED_LOSS * 1.05)
    n_seeds = len(result.seeds)
    ax.set_title(f"Loss per learning rate ({result.label}, {n_seeds} seed{'s' if n_seeds > 1 else ''})", fontsize=10)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], marker="x", ls="", color="0.3"))
        labels.append(f"x: some seed's loss >= {DIVERGED_LOSS:g}\nor diverged (drawn at {DIVERGED_LOSS:g})")
        alone = len(ax.figure.axes) == 1  # a panel among others gets a narrower legend
        ax.legend(handles, labels, fontsize=7, ncol=4 if alone else 2, loc="upper center",
                  bbox_to_anchor=(0.5, -0.22), frameon=False)
    fig = fig or ax.figure
    fig.tight_layout()
    return fig


def plot_sweeps(results, figsize=None):
    """Several sweeps side by side on one loss axis (one panel each, :func:`plot_sweep`), with
    one legend below them: they must share their widths."""
    results = list(results)
    fig, axes = plt.subplots(1, len(results), figsize=figsize or (4.6 * len(results), 4.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, result in zip(axes, results):
        plot_sweep(result, ax=ax, legend=False)
    handles, labels = axes[0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles.append(Line2D([], [], marker="x", ls="", color="0.3"))
    labels.append(f"x: some seed's loss >= {DIVERGED_LOSS:g} or diverged (drawn at {DIVERGED_LOSS:g})")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, fontsize=8, ncol=len(labels), loc="lower center", frameon=False)
    return fig


def coord_steps_shown(total_steps: int, panels: int = 3) -> list[int]:
    """About ``panels`` steps from 1 to ``total_steps``, spaced evenly on a log scale."""
    return sorted({int(round(t)) for t in np.geomspace(1, total_steps, min(panels, total_steps))})


def _coord_row(result, steps, quantity, axes):
    values = to_numpy(getattr(result, quantity))
    widths = to_numpy(result.widths)
    colors = plt.cm.plasma(np.linspace(0, 0.85, len(result.layers)))
    for ax, step in zip(axes, steps):
        for k, (layer, color) in enumerate(zip(result.layers, colors)):
            per_seed = values[:, :, step, k]
            ax.plot(widths, per_seed.mean(axis=0), "o-", color=color, ms=3, label=layer)
            if per_seed.shape[0] > 1:
                ax.fill_between(widths, per_seed.min(axis=0), per_seed.max(axis=0), color=color, alpha=0.2)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        # Fixed ticks (log locators are most of the drawing time): the widths on x, 1-2-5 on y.
        readable_log_axis(ax.xaxis, widths)
        readable_log_axis(ax.yaxis)
        ax.tick_params(axis="both", labelsize=7)
        ax.set_title(f"{result.label}, t={step}", fontsize=9)
    axes[0].set_ylabel("RMS of change since init" if quantity == "delta" else "RMS of activation", fontsize=9)
    # The legend goes right of the row, off the data.
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.03, 1.0), borderaxespad=0, frameon=False)


def plot_coord_checks(results, steps=None, quantity: str = "delta"):
    """The coordinate check as microsoft/mup draws it, one row per result: a panel per
    step shown (default: 1, about the middle and the last on a log scale), a line per
    layer (seed mean; band from the smallest to the largest seed), width on a log-2
    axis, ``quantity`` ("delta" or "rms") on a log axis."""
    results = list(results)
    steps = list(steps) if steps is not None else coord_steps_shown(len(results[0].steps) - 1)
    fig, axes = plt.subplots(len(results), len(steps), figsize=(3.6 * len(steps), 2.8 * len(results)),
                             squeeze=False)
    for row, result in zip(axes, results):
        _coord_row(result, steps, quantity, row)
    for ax in axes[-1]:
        ax.set_xlabel("width")
    fig.tight_layout()
    return fig


def plot_coord_check(result, steps=None, quantity: str = "delta", axes=None):
    """One result as one row of :func:`plot_coord_checks`, on new axes or on ``axes``
    (one per step shown)."""
    if axes is None:
        return plot_coord_checks([result], steps=steps, quantity=quantity)
    steps = list(steps) if steps is not None else coord_steps_shown(len(result.steps) - 1)
    axes = np.atleast_1d(axes)
    if len(axes) != len(steps):
        raise ValueError(f"{len(steps)} steps to show but {len(axes)} axes given.")
    _coord_row(result, steps, quantity, axes)
    return axes[0].figure


SAVE_DPI = 110


def render_png(fig) -> bytes:
    """``fig`` as PNG bytes (``SAVE_DPI``, tight bounding box): what ``save_figure`` writes."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=SAVE_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _figure_path(name: str, subdir: str | None, directory: str | Path | None) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"Figure name {name!r}: use letters, digits, '_', '-' and '.' only.")
    root = ROOT / Path(directory or os.environ.get("COURSE_FIGURE_DIR") or FIGURE_DIR)  # absolute paths win
    target = root / subdir if subdir else root
    target.mkdir(parents=True, exist_ok=True)
    return target / f"{name}.png"


def save_figure(fig, name: str, subdir: str | None = None, directory: str | Path | None = None,
                png: bytes | None = None) -> Path:
    """Write ``fig`` as ``<directory>/<subdir>/<name>.png`` (default directory:
    ``build/figures`` at the repository root, or ``$COURSE_FIGURE_DIR``). A relative
    directory is taken from the repository root, not from the kernel's folder.
    ``png``: the figure already rendered by ``render_png`` (written as it is)."""
    path = _figure_path(name, subdir, directory)
    path.write_bytes(png if png is not None else render_png(fig))
    return path


def inline_backend() -> bool:
    """True in an IPython kernel or shell under the inline backend (``%matplotlib inline``)."""
    import matplotlib

    if "inline" not in matplotlib.get_backend() or "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return get_ipython() is not None


def show_inline(fig, png: bytes) -> bool:
    """Under Jupyter's inline backend, show the already rendered ``png`` as ``fig``'s output
    here and close ``fig``, so that the backend does not render it a second time at the end
    of the cell (a render is ~0.5 s on a CPU). Elsewhere (a script, an interactive backend)
    do nothing and return False."""
    if not inline_backend():
        return False
    import base64

    from IPython.display import display

    pixels = int.from_bytes(png[16:20], "big")  # the PNG header's image width
    # shown at the size the inline backend would draw it (at fig.dpi), sharper; text as matplotlib's
    display({"image/png": base64.b64encode(png).decode("ascii"), "text/plain": repr(fig)}, raw=True,
            metadata={"image/png": {"width": round(pixels * fig.dpi / SAVE_DPI)}})
    plt.close(fig)
    return True
