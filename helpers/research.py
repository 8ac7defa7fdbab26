"""Protocols of the research notebooks 09 and 10 (Adam's zero init and bias
correction; epsilon schedules), on the course MLP. Results are numpy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from helpers.device import to_numpy
from helpers.experiments import _build, lr_sweep, train_model
from helpers.models import MLP
from helpers.optimizers import ADAM_EPS, EpsilonScheduledAdam, SimpleAdam
from helpers.schedules import cosine_lr_factor, matching_epsilon, three_phase_epsilon

# (zero_init, bias_correction) of the four cells of the ablation, in the notes' order.
ZI_BC_VARIANTS = {
    "ZI+BC (Adam)": (True, True),
    "ZI, no BC": (True, False),
    "BC, no ZI": (False, True),
    "no BC, no ZI": (False, False),
}


@dataclass
class AblationTable:
    """Final validation losses ``losses[variant, seed, lr]`` of the ZI/BC ablation."""

    betas: tuple
    width: int
    steps: int
    seeds: tuple
    lrs: np.ndarray
    variants: tuple
    losses: np.ndarray

    @property
    def mean(self) -> np.ndarray:  # [variant, lr]
        return self.losses.mean(axis=1)

    @property
    def std(self) -> np.ndarray:  # [variant, lr], across seeds
        return self.losses.std(axis=1, ddof=1) if self.losses.shape[1] > 1 else np.zeros_like(self.mean)

    @property
    def best_lr_index(self) -> np.ndarray:
        """Per variant, the learning rate with the lowest seed-mean loss."""
        return np.nanargmin(np.where(np.isfinite(self.mean), self.mean, np.nan), axis=1)

    def at_best(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of each variant at its own best learning rate."""
        rows = np.arange(len(self.variants))
        return self.mean[rows, self.best_lr_index], self.std[rows, self.best_lr_index]

    def effects(self) -> dict[str, float]:
        """Main effects at each variant's best learning rate: how much the loss rises
        when zero init is dropped (averaged over BC on/off), and when bias correction is
        dropped (averaged over ZI on/off); ``noise`` is the mean standard error of a cell."""
        mean, std = self.at_best()
        cell = {ZI_BC_VARIANTS[name]: mean[i] for i, name in enumerate(self.variants)}  # (zi, bc) -> loss
        drop_zi = np.mean([cell[(False, bc)] - cell[(True, bc)] for bc in (True, False)])
        drop_bc = np.mean([cell[(zi, False)] - cell[(zi, True)] for zi in (True, False)])
        return {"drop_zero_init": float(drop_zi), "drop_bias_correction": float(drop_bc),
                "noise": float(np.mean(std) / np.sqrt(self.losses.shape[1]))}

    def table(self) -> str:
        """The notes' Table 6.1 layout: one column per variant, mean +- std over seeds;
        one row per learning rate, then each variant at its own best learning rate."""
        head = f"{'lr':>10} | " + " | ".join(f"{v:>15}" for v in self.variants)
        rows = [f"betas {self.betas}, width {self.width}, {self.steps} steps, {len(self.seeds)} seeds", head]
        for k, lr in enumerate(self.lrs):
            cells = " | ".join(f"{self.mean[v, k]:7.3f} +- {self.std[v, k]:5.3f}" for v in range(len(self.variants)))
            rows.append(f"{lr:>10.4g} | {cells}")
        mean, std = self.at_best()
        best = " | ".join(f"{m:7.3f} +- {s:5.3f}" for m, s in zip(mean, std))
        rows.append(f"{'best lr':>10} | {best}")
        return "\n".join(rows)


def zi_bc_ablation(width: int, lrs, seeds, *, steps: int, betas=(0.9, 0.999), depth: int = 3, data=None,
                   device=None) -> AblationTable:
    """Train SimpleAdam in the four zero-init / bias-correction combinations at every
    learning rate and seed (course protocol, batched sweep); the score is the mean
    of the last 5 validation losses."""
    b1, b2 = betas
    losses = []
    for zero_init, bias_correction in ZI_BC_VARIANTS.values():
        optimizer = functools.partial(SimpleAdam, b1=b1, b2=b2, zero_init=zero_init, bias_correction=bias_correction)
        sweep = lr_sweep((width,), lrs, optimizer, depth=depth, steps=steps, seeds=seeds, data=data, device=device,
                         progress=False)
        losses.append(sweep.losses[:, 0, :])
    return AblationTable(tuple(betas), width, steps, tuple(seeds), np.array(lrs, dtype=float),
                         tuple(ZI_BC_VARIANTS), np.array(losses))


def parameters_distance(model_a, model_b) -> float:
    """``||a - b|| / ||a||`` over all parameters taken as one vector: 0 for identical models."""
    with torch.no_grad():
        a = torch.cat([p.flatten() for p in model_a.parameters()]).double()
        b = torch.cat([p.flatten() for p in model_b.parameters()]).double()
        return float((a - b).norm() / a.norm())


@dataclass
class EpsilonEquivalence:
    """Adam under a cosine learning-rate schedule vs Adam with the matching
    per-coordinate epsilon schedule, after the same steps."""

    steps: int
    relative_difference: float  # ||W_lr - W_eps|| / ||W_lr||, all parameters as one vector
    moved: float  # ||W_lr - W_0|| / ||W_lr||: how far training went
    eps_quantiles: np.ndarray  # 0, 10, 50, 90, 100 % of the last step's epsilons (all coordinates)
    lr_curve: np.ndarray
    eps_curve: np.ndarray


def epsilon_equivalence(hiddens=(128, 128, 128), lr: float = 0.01, *, steps: int = 50, final: float = 0.1,
                        seed: int = 4, data=None, device=None) -> EpsilonEquivalence:
    """Run both optimizers from the same init on the same batches and compare."""
    factor = functools.partial(cosine_lr_factor, total=steps, final=final)
    last_eps = []

    def eps_schedule(t, v_hat):
        eps = matching_epsilon(factor(t), v_hat, ADAM_EPS)
        if t == steps:
            last_eps.append(eps.flatten())
        return eps

    scheduled = functools.partial(EpsilonScheduledAdam, eps_schedule=eps_schedule)
    common = dict(steps=steps, seed=seed, data=data, device=device)
    model_lr, curve_lr = train_model(hiddens, SimpleAdam, lr, lr_factor=factor, **common)
    model_eps, curve_eps = train_model(hiddens, scheduled, lr, **common)
    model_0 = _build(MLP, hiddens, seed, next(model_lr.parameters()).device)  # train_model's initial weights
    moved = parameters_distance(model_lr, model_0)
    eps = torch.cat(last_eps)
    quantiles = torch.quantile(eps.double().cpu()[:: max(1, len(eps) // 100000)],
                               torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64))
    return EpsilonEquivalence(steps, parameters_distance(model_lr, model_eps), moved, to_numpy(quantiles),
                              curve_lr, curve_eps)


@dataclass
class ScheduleComparison:
    """Validation-loss curves ``curves[name][seed, step]`` of several schedules."""

    names: tuple
    curves: dict

    def final(self, last: int = 10) -> dict[str, tuple[float, float]]:
        """Per schedule: mean and std over seeds of the mean of the last ``last`` losses."""
        out = {}
        for name in self.names:
            finals = self.curves[name][:, -last:].mean(axis=1)
            out[name] = (float(finals.mean()), float(finals.std(ddof=1)) if len(finals) > 1 else 0.0)
        return out


def schedule_comparison(hiddens=(128, 128, 128), lr: float = 0.01, *, steps: int = 300, seeds=(4, 5, 6),
                        eps_max_values=(1e-3, 1e-2), final: float = 0.1, data=None,
                        device=None) -> ScheduleComparison:
    """Constant rate, cosine learning-rate decay, and the three-phase epsilon
    schedule (eps0 = 1e-8, warm 30%, ramp to 80%) for each ``eps_max``."""
    runs = {"constant lr": dict(optimizer=SimpleAdam),
            "cosine lr": dict(optimizer=SimpleAdam,
                              lr_factor=functools.partial(cosine_lr_factor, total=steps, final=final))}
    for eps_max in eps_max_values:
        schedule = functools.partial(three_phase_epsilon, total=steps, eps_max=eps_max)
        runs[f"3-phase eps, max {eps_max:g}"] = dict(
            optimizer=functools.partial(EpsilonScheduledAdam, eps_schedule=lambda t, v_hat, s=schedule: s(t)))
    curves = {name: np.array([train_model(hiddens, lr=lr, steps=steps, seed=seed, data=data, device=device,
                                          **kwargs)[1] for seed in seeds])
              for name, kwargs in runs.items()}
    return ScheduleComparison(tuple(runs), curves)
