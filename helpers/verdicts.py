"""Conclusions a notebook prints about its own run, decided so that seed noise and the
learning-rate grid cannot flip them.

* :func:`shared_learning_rates`: which learning rates are "best" at every width. A
  learning rate counts as good at a width when its seed-mean loss there is within the
  seeds' spread (max - min over seeds, at that width's best learning rate) of the
  width's best mean loss. The rates good at every width are shared; if there is one,
  the learning rate transfers.
* :func:`clear_winner`: the method with the lowest mean that beats every other method
  on every seed (paired: the same seeds), by more than float rounding. Otherwise
  there is no clear winner.

Both need at least two seeds: with one seed nothing measures the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROUNDING = 1e-6  # relative: differences below this are float rounding, not a result


def _seed_axis(values, name: str, ndim: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes (seed first), got shape {values.shape}.")
    if values.shape[0] < 2:
        raise ValueError(f"{name} has {values.shape[0]} seed(s): a noise-aware verdict needs at least 2 seeds.")
    return values


@dataclass
class TransferVerdict:
    """Per width: the best learning rate, its seed-mean loss, the noise tolerance; and the
    learning rates within tolerance of the best at every width (``shared``)."""

    lrs: np.ndarray
    best_lr: np.ndarray
    best_loss: np.ndarray
    tolerance: np.ndarray
    good: np.ndarray  # [width, lr]: within tolerance of that width's best
    shared: list

    @property
    def transfers(self) -> bool:
        return bool(self.shared)

    @property
    def grid_steps(self) -> int:
        """How many grid points separate the smallest and the largest best learning rate."""
        index = [int(np.flatnonzero(self.lrs == lr)[0]) for lr in self.best_lr]
        return max(index) - min(index)

    def describe(self) -> str:
        if self.shared:
            return ("one learning rate is within the seed spread of the best at every width: "
                    + ", ".join(f"{lr:g}" for lr in self.shared))
        return "no learning rate is within the seed spread of the best at every width"


def shared_learning_rates(losses, lrs) -> TransferVerdict:
    """``losses[seed, width, lr]`` (diverged runs may be NaN or inf) -> :class:`TransferVerdict`."""
    losses = _seed_axis(losses, "losses", 3)
    lrs = np.asarray(lrs, dtype=float)
    if losses.shape[2] != len(lrs):
        raise ValueError(f"losses has {losses.shape[2]} learning rates on its last axis, lrs has {len(lrs)}.")
    finite = np.where(np.isfinite(losses), losses, np.nan)
    mean = finite.mean(axis=0)  # NaN where any seed diverged: never good
    best = np.array([np.nanargmin(row) if np.isfinite(row).any() else -1 for row in mean])
    if (best < 0).any():
        raise ValueError("every learning rate diverged at some width: widen the grid downwards.")
    width_index = np.arange(len(best))
    best_loss = mean[width_index, best]
    spread = finite[:, width_index, best].max(axis=0) - finite[:, width_index, best].min(axis=0)
    tolerance = np.maximum(spread, ROUNDING * np.abs(best_loss))
    good = (mean - best_loss[:, None]) <= tolerance[:, None]
    good &= np.isfinite(mean)
    shared = [float(lr) for lr, ok in zip(lrs, good.all(axis=0)) if ok]
    return TransferVerdict(lrs, lrs[best], best_loss, tolerance, good, shared)


def clear_winner(values, names, *, lower_is_better: bool = True) -> str | None:
    """``values[seed, method]``: the name of the method that beats every other on every seed
    (by more than float rounding), or None ("no clear winner")."""
    values = _seed_axis(values, "values", 2)
    names = list(names)
    if values.shape[1] != len(names):
        raise ValueError(f"values has {values.shape[1]} methods, names has {len(names)}.")
    signed = values if lower_is_better else -values
    best = int(np.argmin(signed.mean(axis=0)))
    others = [m for m in range(len(names)) if m != best]
    margin = signed[:, others] - signed[:, [best]]
    rounding = ROUNDING * np.abs(signed[:, [best]]) + 1e-300
    return names[best] if (margin > rounding).all() else None
