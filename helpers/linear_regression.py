"""Multi-output linear regression, the research notes' toy problem for Muon (notebook 11).

    X = [1 | Z] in R^{N x (d+1)},  Z_ij ~ N(0, 1) (columns optionally rescaled to a
    chosen condition number), W* in R^{(d+1) x D} Gaussian, Y = X W* + e * noise,

    L(W) = ||Y - X W||_F^2 (its gradient: notebook 11).

Training uses the per-example mean ``L / n`` of a batch of n rows (so that full
and mini-batch learning rates are comparable), i.e. ``G = gradient(W, X_b, Y_b) / n``.
The least-squares solution ``W_ls = argmin L`` (not W*, which the noise hides) is
what every optimizer converges towards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from helpers.device import to_numpy
from helpers.optimizers import Muon, check_positive, newton_schulz


@dataclass
class Problem:
    X: torch.Tensor  # [N, d+1], first column ones
    Y: torch.Tensor  # [N, D]
    W_star: torch.Tensor  # [d+1, D], the generating weights
    W_ls: torch.Tensor  # [d+1, D], the least-squares solution

    @property
    def loss_ls(self) -> float:
        return float(loss(self.W_ls, self.X, self.Y))


def make_problem(n: int = 1000, d: int = 50, D: int = 20, *, noise: float = 0.1, condition: float = 1.0,
                 seed: int = 0, dtype=torch.float64) -> Problem:
    """Draw the notes' problem. ``condition`` > 1 gives Z singular values spread over
    ``logspace(0, -log10(condition))`` along random directions (Z = G diag(s) Q^T with
    Q a random rotation): ill-conditioned, but not along the coordinate axes, where
    Adam's per-coordinate scaling would undo it for free."""
    for name, value in (("n", n), ("d", d), ("D", D)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value}: need a positive integer.")
    if n <= d + 1:
        raise ValueError(f"n={n} rows for d+1={d + 1} columns: need n > d+1 for a unique least-squares solution.")
    check_positive("condition", condition)
    if condition < 1:
        raise ValueError(f"condition={condition}: a condition number is at least 1.")
    gen = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=dtype))
    scales = torch.logspace(0, -np.log10(condition), d, dtype=dtype)
    Z = (torch.randn(n, d, generator=gen, dtype=dtype) * scales) @ rotation.T
    X = torch.cat([torch.ones(n, 1, dtype=dtype), Z], dim=1)
    W_star = torch.randn(d + 1, D, generator=gen, dtype=dtype)
    Y = X @ W_star + noise * torch.randn(n, D, generator=gen, dtype=dtype)
    W_ls = torch.linalg.lstsq(X, Y).solution
    return Problem(X, Y, W_star, W_ls)


def loss(W: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``||Y - X W||_F^2`` (the squared Frobenius norm, summed over all entries)."""
    return (Y - X @ W).square().sum()


def gradient(W: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """The gradient of :func:`loss` with respect to W (notebook 11 derives it)."""
    ### BEGIN SOLUTION
    return 2 * X.T @ (X @ W - Y)
    ### END SOLUTION


OPTIMIZERS = ("SGD", "AdamW", "Muon")


def _optimizer(name: str, params, lr: float):
    # Momentum 0.95 (Nesterov) for both SGD and Muon, so that the comparison isolates
    # Muon's orthogonalisation; AdamW without weight decay, which would pull W away from W_ls.
    if name == "SGD":
        return torch.optim.SGD(params, lr=lr, momentum=0.95, nesterov=True)
    if name == "AdamW":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    if name == "Muon":
        return Muon(params, lr=lr)
    raise ValueError(f"Unknown optimizer {name!r}; use one of {OPTIMIZERS}.")


@dataclass
class RegressionRun:
    optimizer: str
    lr: float
    batch_size: int | None
    excess_loss: np.ndarray  # per step: (L(W_t) - L(W_ls)) / N, on all rows
    distance: np.ndarray  # per step: ||W_t - W_ls||_F / ||W_ls||_F
    gradient_singular_values: np.ndarray  # [logged steps, min(d+1, D)] of the training gradient G_t
    ns_singular_values: np.ndarray  # the same for newton_schulz(G_t)
    logged_steps: np.ndarray


def train(problem: Problem, optimizer: str, lr: float, *, steps: int = 300, batch_size: int | None = None,
          decay: bool = True, seed: int = 0, log_every: int = 10) -> RegressionRun:
    """Train W (from zero) with ``optimizer`` on the per-example mean loss, full batch
    (``batch_size=None``) or mini-batches drawn with a seeded generator. The gradient
    is :func:`gradient`, set as ``W.grad``. ``decay`` lowers the rate linearly to 0
    over the run (without it Muon, whose step has a fixed spectral norm, stalls at a
    distance set by lr). Runs in float32, like the course."""
    check_positive("lr", lr)
    X, Y = problem.X.float(), problem.Y.float()
    W_ls = problem.W_ls.float()
    loss_ls = float(loss(W_ls, X, Y))
    W = torch.zeros_like(W_ls, requires_grad=True)
    opt = _optimizer(optimizer, [W], lr)
    gen = torch.Generator().manual_seed(seed)
    excess, distance, grad_sv, ns_sv, logged = [], [], [], [], []
    for step in range(steps):
        if batch_size is None:
            Xb, Yb = X, Y
        else:
            index = torch.randint(0, len(X), (batch_size,), generator=gen)
            Xb, Yb = X[index], Y[index]
        with torch.no_grad():
            G = gradient(W, Xb, Yb) / len(Xb)
        if not torch.isfinite(G).all():  # diverged: the rest of the run is infinite
            excess += [np.inf] * (steps - step)
            distance += [np.inf] * (steps - step)
            break
        W.grad = G
        if decay:
            for group in opt.param_groups:
                group["lr"] = lr * (1 - step / steps)
        if step % log_every == 0:
            grad_sv.append(torch.linalg.svdvals(G.double()))
            ns_sv.append(torch.linalg.svdvals(newton_schulz(G).double()))
            logged.append(step)
        opt.step()
        with torch.no_grad():
            excess.append((float(loss(W, X, Y)) - loss_ls) / len(X))
            distance.append(float((W - W_ls).norm() / W_ls.norm()))
    return RegressionRun(optimizer, lr, batch_size, np.array(excess), np.array(distance),
                         to_numpy(torch.stack(grad_sv)), to_numpy(torch.stack(ns_sv)), np.array(logged))


def tuned(problem: Problem, optimizer: str, lrs, **kwargs) -> RegressionRun:
    """The run with the lowest final excess loss over ``lrs`` (diverged runs lose)."""
    runs = [train(problem, optimizer, lr, **kwargs) for lr in lrs]
    finals = [run.excess_loss[-1] if np.isfinite(run.excess_loss[-1]) else np.inf for run in runs]
    return runs[int(np.argmin(finals))]


@dataclass
class Setting:
    condition: float
    d: int
    D: int
    batch_size: int | None

    @property
    def label(self) -> str:
        batch = "full batch" if self.batch_size is None else f"batch {self.batch_size}"
        return f"cond {self.condition:g}, d:D = {self.d}:{self.D}, {batch}"


def compare(settings, lrs, *, steps: int = 300, n: int = 1000, noise: float = 0.1, seed: int = 0) -> list[dict]:
    """For every setting and optimizer, the tuned run's final excess loss, distance
    to W_ls and learning rate; one row per setting with the winner."""
    rows = []
    for setting in settings:
        problem = make_problem(n, setting.d, setting.D, noise=noise, condition=setting.condition, seed=seed)
        runs = {name: tuned(problem, name, lrs, steps=steps, batch_size=setting.batch_size, seed=seed)
                for name in OPTIMIZERS}
        excess = {name: float(run.excess_loss[-1]) for name, run in runs.items()}
        rows.append(dict(setting=setting.label, condition=setting.condition, d=setting.d, D=setting.D,
                         batch_size=setting.batch_size, excess=excess,
                         distance={name: float(run.distance[-1]) for name, run in runs.items()},
                         lr={name: run.lr for name, run in runs.items()},
                         winner=min(excess, key=excess.get)))
    return rows
