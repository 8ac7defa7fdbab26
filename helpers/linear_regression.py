"""Multi-output linear regression, the simplest problem on which Muon's update is defined
(notebook 11).

    X = [1 | Z] in R^{N x (d+1)},  Z_ij ~ N(0, 1) (columns optionally rescaled to a
    chosen condition number), W* in R^{(d+1) x D} Gaussian, Y = X W* + e * noise,

    L(W) = ||Y - X W||_F^2 (its gradient: notebook 11).

W is used as ``X @ W``: it maps a row ``x`` with d+1 entries to ``x @ W`` with D, so its
fan-in is d+1 and its fan-out D. PyTorch's layers store the same map the other way round,
as a ``(fan_out, fan_in)`` matrix, and the course's ``Muon`` reads its shape that way; the
training below therefore hands Muon ``W^T`` (shape D x (d+1)), never ``W`` itself.

Training uses the per-example mean ``L / n`` of a batch of n rows (so that full and
mini-batch learning rates are comparable), i.e. ``G = gradient(W, X_b, Y_b) / n``. The
least-squares solution ``W_ls = argmin L`` (not W*, which the noise hides) is what every
optimizer converges towards. Two exact identities keep the bookkeeping cheap:

* with ``X = Q R`` (reduced QR), ``X^T X = R^T R`` and ``X^T Y = R^T Q^T Y``: the full-batch
  gradient, which depends on the data through these two products only, is
  ``gradient(W, R, Q^T Y)``, from d+1 rows instead of N;
* ``W_ls`` minimises ``L``, so the excess loss is ``L(W) - L(W_ls) = ||R (W - W_ls)||_F^2``,
  evaluated in float64 from the float32 weights (never negative, no cancellation).

Columns of a multi-output regression are independent, so the runs of several learning
rates on one problem are one regression with their weights side by side,
``[W_1 | W_2 | ...]`` against ``[Y | Y | ...]``: one call of ``gradient`` gives every
run its own gradient.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from helpers import least_squares, orthogonal_updates
from helpers.device import to_numpy
from helpers.optimizers import adam_direction, check_positive

FLOAT32_ULPS = 10  # a float32 run "at float precision": within this many roundings of W_ls per entry


@dataclass
class Problem:
    X: torch.Tensor  # [N, d+1], first column ones
    Y: torch.Tensor  # [N, D]
    W_star: torch.Tensor  # [d+1, D], the generating weights
    W_ls: torch.Tensor  # [d+1, D], the least-squares solution
    seed: int = 0

    @property
    def loss_ls(self) -> float:
        return float(least_squares.loss(self.W_ls, self.X, self.Y))

    @functools.cached_property
    def _qr(self) -> tuple[torch.Tensor, torch.Tensor]:
        Q, R = torch.linalg.qr(self.X.double(), mode="reduced")
        return R, Q.T @ self.Y.double()

    @property
    def R(self) -> torch.Tensor:
        """The triangular factor of ``X = Q R`` (float64), with ``R.T @ R = X.T @ X``."""
        return self._qr[0]

    @property
    def QtY(self) -> torch.Tensor:
        """``Q^T Y`` (float64): with ``R``, the full-batch gradient is ``gradient(W, R, Q^T Y)``."""
        return self._qr[1]

    def excess_loss(self, W: torch.Tensor) -> torch.Tensor:
        """``(L(W) - L(W_ls)) / N`` for W of shape ``[..., d+1, D]``, in float64."""
        return (self.R @ (W.double() - self.W_ls.double())).square().sum(dim=(-2, -1)) / len(self.X)

    def float32_floor(self) -> float:
        """The excess loss of ``W_ls`` with every entry off by ``FLOAT32_ULPS`` float32
        roundings (relative ``FLOAT32_ULPS * 2^-24``, random signs): below this, a float32
        run's excess loss is rounding, and differences between runs mean nothing."""
        signs = torch.randint(0, 2, self.W_ls.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
        rounding = self.W_ls.double() * (1 + FLOAT32_ULPS * 2.0 ** -24 * signs)
        return float(self.excess_loss(rounding))


def make_problem(n: int = 1000, d: int = 50, D: int = 20, *, noise: float = 0.1, condition: float = 1.0,
                 seed: int = 0, dtype=torch.float64) -> Problem:
    """Draw the problem. ``condition`` > 1 gives Z singular values spread over
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
    return Problem(X, Y, W_star, W_ls, seed)


OPTIMIZERS = ("SGD", "Adam", "Muon")
MOMENTUM = 0.95  # SGD's and Muon's (Nesterov), so that the comparison isolates Muon's orthogonalisation


def _direction(name: str, state: dict, G: torch.Tensor) -> torch.Tensor:
    """The step direction of ``name`` for gradients ``G[..., d+1, D]`` (any leading axes,
    one run each), before the learning rate:

    * SGD: PyTorch's Nesterov momentum, ``b <- 0.95 b + G`` (``b = G`` at the first step),
      direction ``G + 0.95 b``;
    * Adam: the course's ``SimpleAdam`` direction ``m_hat / (sqrt(v_hat) + eps)``
      (betas 0.9, 0.999; no weight decay, which would pull W away from W_ls);
    * Muon: the course's ``Muon`` on ``W^T`` (see the module docstring): Nesterov momentum
      ``b <- lerp(b, G, 0.05)``, direction ``newton_schulz(lerp(G, b, 0.95))`` times
      ``muon_shape_scale(fan_out=D, fan_in=d+1, "spectral")``."""
    if name == "SGD":
        state["buffer"] = G.clone() if "buffer" not in state else state["buffer"].mul_(MOMENTUM).add_(G)
        return G + MOMENTUM * state["buffer"]
    if name == "Adam":
        return adam_direction(state, G, 0.9, 0.999)
    if name == "Muon":
        if "buffer" not in state:
            state["buffer"] = torch.zeros_like(G)
        nesterov = G.lerp(state["buffer"].lerp_(G, 1 - MOMENTUM), MOMENTUM)
        fan_in, fan_out = G.shape[-2:]  # W is (d+1) x D = (fan_in, fan_out): the map x -> x @ W
        as_torch_layout = nesterov.transpose(-2, -1).reshape(-1, fan_out, fan_in)  # W^T: (fan_out, fan_in)
        ortho = torch.vmap(orthogonal_updates.newton_schulz)(as_torch_layout).reshape(*G.shape[:-2], fan_out, fan_in)
        return ortho.transpose(-2, -1) * orthogonal_updates.muon_shape_scale(fan_out, fan_in, "spectral")
    raise ValueError(f"Unknown optimizer {name!r}; use one of {OPTIMIZERS}.")


@dataclass
class Sweep:
    """Runs of one optimizer at every learning rate on every problem (seed):
    ``excess[seed, lr, k]`` and ``distance[seed, lr, k]`` after step ``logged_steps[k]``
    (the last entry is the end of the run; a diverged run is inf)."""

    optimizer: str
    lrs: np.ndarray
    seeds: tuple
    batch_size: int | None
    logged_steps: np.ndarray
    excess: np.ndarray
    distance: np.ndarray
    first_update: np.ndarray  # [seed, lr, d+1, D]: W_1 - W_0
    singular_value_steps: np.ndarray  # steps t at which the next two were logged (first run only)
    gradient_singular_values: np.ndarray | None  # [logged, min(d+1, D)]: of G_t
    ns_singular_values: np.ndarray | None  # [logged, min(d+1, D)]: of newton_schulz(G_t)

    @property
    def final(self) -> np.ndarray:  # [seed, lr]
        return self.excess[:, :, -1]

    @property
    def best_lr_index(self) -> int:
        """The learning rate with the lowest mean final excess loss over the seeds
        (diverged runs count as inf, so a rate that diverges on any seed loses)."""
        return int(np.argmin(self.final.mean(axis=0)))


def sweep(problems, optimizer: str, lrs, *, steps: int = 300, batch_size: int | None = None, decay: bool = True,
          log_every: int | None = None, singular_values_every: int | None = None) -> Sweep:
    """Train W (from zero, float32 like the course) with ``optimizer`` at every learning
    rate on every problem, full batch (``batch_size=None``) or on mini-batches drawn with
    a generator seeded by the problem's seed (the same batches for every learning rate).
    ``decay`` lowers the rate linearly to 0 over the run (without it Muon, whose step
    has a fixed spectral size, stalls at a distance set by lr). The excess loss and the
    distance ``||W - W_ls|| / ||W_ls||`` are logged every ``log_every`` steps (default:
    only at the end). ``singular_values_every``: also log, every that many steps, the
    singular values of the gradient ``G_t`` of the first run and of ``newton_schulz(G_t)``
    (``Sweep.gradient_singular_values``, ``Sweep.ns_singular_values``)."""
    problems = list(problems)
    lrs = np.array([check_positive("every learning rate", lr) for lr in lrs])
    if steps < 1:
        raise ValueError(f"steps={steps}: need at least one step.")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer!r}; use one of {OPTIMIZERS}.")
    shapes = {tuple(p.W_ls.shape) for p in problems}
    if len(shapes) != 1:
        raise ValueError(f"every problem of a sweep needs the same shape, got {sorted(shapes)}.")
    (rows, D), L = shapes.pop(), len(lrs)
    if batch_size is None:  # full batch: the same gradient from R and Q^T Y (module docstring)
        data = [(p.R.float(), p.QtY.float()) for p in problems]
        rows_per_mean = len(problems[0].X)
    else:
        data = [(p.X.float(), p.Y.float()) for p in problems]
        rows_per_mean = batch_size
        generators = [torch.Generator().manual_seed(p.seed) for p in problems]
    rate = torch.tensor(lrs, dtype=torch.float32)[None, :, None, None]
    W = torch.zeros(len(problems), L, rows, D)
    state: dict = {}
    logged, excess, distance, first_update = [], [], [], None
    sv_steps, grad_sv, ns_sv = [], [], []
    log_every = log_every or steps
    for step in range(steps):
        grads = []
        for s, (X, Y) in enumerate(data):
            if batch_size is not None:
                index = torch.randint(0, len(X), (batch_size,), generator=generators[s])
                X, Y = X[index], Y[index]
            side_by_side = W[s].permute(1, 0, 2).reshape(rows, L * D)  # [W_1 | W_2 | ...]
            G = least_squares.gradient(side_by_side, X, Y.repeat(1, L)) / rows_per_mean
            grads.append(G.reshape(rows, L, D).permute(1, 0, 2))
        grads = torch.stack(grads)
        if singular_values_every and step % singular_values_every == 0:
            sv_steps.append(step)
            grad_sv.append(torch.linalg.svdvals(grads[0, 0].double()))
            ns_sv.append(torch.linalg.svdvals(orthogonal_updates.newton_schulz(grads[0, 0]).double()))
        direction = _direction(optimizer, state, grads)
        W = W - rate * (1 - step / steps if decay else 1.0) * direction
        if step == 0:
            first_update = to_numpy(W)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            logged.append(step + 1)
            excess.append(torch.stack([p.excess_loss(W[s]) for s, p in enumerate(problems)]))
            distance.append(torch.stack([(W[s].double() - p.W_ls).flatten(-2).norm(dim=-1) / p.W_ls.norm()
                                         for s, p in enumerate(problems)]))
    excess, distance = to_numpy(torch.stack(excess, dim=-1)), to_numpy(torch.stack(distance, dim=-1))
    diverged = ~np.isfinite(excess).cumprod(axis=-1).astype(bool)  # once non-finite, inf for the rest
    excess[diverged], distance[diverged] = np.inf, np.inf
    singular = [to_numpy(torch.stack(v)) if v else None for v in (grad_sv, ns_sv)]
    return Sweep(optimizer, lrs, tuple(p.seed for p in problems), batch_size, np.array(logged), excess, distance,
                 first_update, np.array(sv_steps), *singular)


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


@dataclass
class SettingResult:
    """One setting of :func:`compare`: every optimizer's sweep over the learning rates and
    seeds, the rate each is compared at (lowest mean final excess loss over the seeds),
    and the verdict."""

    setting: Setting
    sweeps: dict  # optimizer -> Sweep
    floors: np.ndarray  # [seed]: Problem.float32_floor of each seed's problem

    @property
    def lr(self) -> dict:
        return {name: float(s.lrs[s.best_lr_index]) for name, s in self.sweeps.items()}

    @property
    def lr_at_grid_edge(self) -> list:
        """Optimizers whose chosen rate is the smallest or largest of the grid (the grid
        may have cut off a better one)."""
        return [name for name, s in self.sweeps.items() if s.best_lr_index in (0, len(s.lrs) - 1)]

    @property
    def finals(self) -> np.ndarray:
        """``[seed, optimizer]``: final excess loss at each optimizer's chosen rate."""
        return np.stack([s.final[:, s.best_lr_index] for s in self.sweeps.values()], axis=1)

    @property
    def at_float32_precision(self) -> list:
        """Optimizers that end within float32 rounding of W_ls on every seed."""
        below = self.finals <= self.floors[:, None]
        return [name for name, ok in zip(self.sweeps, below.all(axis=0)) if ok]

    @property
    def winner(self) -> str | None:
        """``helpers.verdicts.clear_winner`` on the final excess losses, each first raised to
        its seed's float32 floor: two runs that both end within float rounding of W_ls tie,
        whatever their last digits say. None: no clear winner."""
        from helpers.verdicts import clear_winner

        return clear_winner(np.maximum(self.finals, self.floors[:, None]), list(self.sweeps))

    def row(self) -> dict:
        """What the notebook records: plain numbers only."""
        s = self.setting
        return dict(setting=s.label, condition=s.condition, d=s.d, D=s.D, batch_size=s.batch_size,
                    seeds=list(next(iter(self.sweeps.values())).seeds), optimizers=list(self.sweeps),
                    finals=self.finals.tolist(), floors=self.floors.tolist(), lr=self.lr,
                    lr_at_grid_edge=self.lr_at_grid_edge, at_float32_precision=self.at_float32_precision,
                    winner=self.winner)


def compare(settings, lrs, *, seeds=(0, 1, 2), steps: int = 300, n: int = 1000, noise: float = 0.1,
            log_every: int | None = None) -> list[SettingResult]:
    """Every optimizer on every setting: one problem per seed (the seed also draws the
    mini-batches), every learning rate of ``lrs`` (:func:`sweep`)."""
    results = []
    for setting in settings:
        problems = [make_problem(n, setting.d, setting.D, noise=noise, condition=setting.condition, seed=seed)
                    for seed in seeds]
        sweeps = {name: sweep(problems, name, lrs, steps=steps, batch_size=setting.batch_size, log_every=log_every)
                  for name in OPTIMIZERS}
        results.append(SettingResult(setting, sweeps, np.array([p.float32_floor() for p in problems])))
    return results
