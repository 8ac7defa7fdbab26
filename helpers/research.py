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
from helpers import schedules

# (zero_init, bias_correction) of the four cells of the ablation.
ZI_BC_VARIANTS = {
    "ZI+BC (Adam)": (True, True),
    "ZI, no BC": (True, False),
    "BC, no ZI": (False, True),
    "no BC, no ZI": (False, False),
}


# t_{0.975} of Student's t with n-1 degrees of freedom, n = 2..11 seeds: a paired two-sided
# t-test at 5%. Beyond 11 seeds, 2.2 is close enough (and conservative).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def paired_effect(per_seed) -> dict:
    """Mean and standard error over seeds of an effect measured on each seed (paired: the
    same seeds everywhere), and whether it is beyond the noise: its mean is more than
    ``t_{0.975, n-1}`` standard errors from zero (a two-sided paired t-test at 5%)."""
    per_seed = np.asarray(per_seed, dtype=float)
    n = len(per_seed)
    if n < 2:
        raise ValueError("an effect's noise needs at least 2 seeds.")
    mean, se = float(per_seed.mean()), float(per_seed.std(ddof=1) / np.sqrt(n))
    threshold = T_975.get(n - 1, 2.2) * se
    return dict(mean=mean, se=se, threshold=threshold, per_seed=per_seed.tolist(),
                beyond_noise=bool(abs(mean) > threshold))


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

    def per_seed_at_best(self) -> np.ndarray:
        """``[seed, variant]``: every seed's loss at its variant's best learning rate."""
        return np.stack([self.losses[v, :, k] for v, k in enumerate(self.best_lr_index)], axis=1)

    def effects(self) -> dict[str, dict]:
        """The main effect of each switch, per seed and at each variant's best learning
        rate: how much the loss rises when zero init is dropped (averaged over bias
        correction on and off), and when bias correction is dropped (averaged over zero
        init on and off); then :func:`paired_effect` of the seeds' values. ``"zero init
        vs bias correction"`` compares their sizes, ``|zero init| - |bias correction|``
        per seed."""
        values = self.per_seed_at_best()
        cell = {ZI_BC_VARIANTS[name]: values[:, i] for i, name in enumerate(self.variants)}  # (zi, bc) -> [seed]
        drop_zi = np.mean([cell[(False, bc)] - cell[(True, bc)] for bc in (True, False)], axis=0)
        drop_bc = np.mean([cell[(zi, False)] - cell[(zi, True)] for zi in (True, False)], axis=0)
        return {"zero init": paired_effect(drop_zi), "bias correction": paired_effect(drop_bc),
                "zero init vs bias correction": paired_effect(np.abs(drop_zi) - np.abs(drop_bc))}

    def matters_more(self) -> str | None:
        """The switch whose effect is larger beyond the noise, or None."""
        e = self.effects()
        if not (e["zero init"]["beyond_noise"] or e["bias correction"]["beyond_noise"]):
            return None
        versus = e["zero init vs bias correction"]
        if not versus["beyond_noise"]:
            return None
        return "zero init" if versus["mean"] > 0 else "bias correction"

    def winner(self) -> str | None:
        """The variant that beats the three others on every seed, each at its best learning
        rate (``helpers.verdicts.clear_winner``), or None."""
        from helpers.verdicts import clear_winner

        return clear_winner(self.per_seed_at_best(), self.variants)

    def lr_at_grid_edge(self) -> list:
        return [v for v, k in zip(self.variants, self.best_lr_index) if k in (0, len(self.lrs) - 1)]

    def table(self) -> str:
        """One column per variant, mean +- std over seeds;
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
    zero_v_hat: float  # fraction of coordinates with v_hat = 0 at the last step (gradient 0 at every step)
    zero_v_hat_first_layer: float  # the share of those that are weights of the first layer
    lr_curve: np.ndarray
    eps_curve: np.ndarray


def epsilon_equivalence(hiddens=(64, 64, 64), lr: float = 0.01, *, steps: int = 50, final: float = 0.1,
                        seed: int = 4, data=None, device=None) -> EpsilonEquivalence:
    """Run both optimizers from the same init on the same batches and compare."""
    factor = functools.partial(schedules.cosine_lr_factor, total=steps, final=final)
    last_eps, zeros = [], []  # at the last step, per parameter in model order

    def eps_schedule(t, v_hat):
        eps = schedules.matching_epsilon(factor(t), v_hat, ADAM_EPS)
        if t == steps:
            last_eps.append(eps.flatten())
            zeros.append(int((v_hat == 0).sum()))
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
                              sum(zeros) / len(eps), zeros[0] / max(1, sum(zeros)), curve_lr, curve_eps)


@dataclass
class ScheduleComparison:
    """Validation-loss curves ``curves[name][seed, step]`` of several schedules, and for
    each epsilon schedule the fraction of coordinates whose ``sqrt(v_hat)`` is below
    ``eps_t`` at the last step (``eps_above[name][seed]``): where Adam's step has
    become momentum SGD at rate ``lr / eps_t``."""

    names: tuple
    curves: dict
    eps_above: dict
    last: int = 10

    def per_seed(self) -> np.ndarray:
        """``[seed, schedule]``: the mean of each run's last ``last`` validation losses."""
        return np.stack([self.curves[name][:, -self.last:].mean(axis=1) for name in self.names], axis=1)

    def final(self) -> dict[str, tuple[float, float]]:
        """Per schedule: mean and std over seeds of the mean of the last ``last`` losses."""
        values = self.per_seed()
        return {name: (float(values[:, k].mean()), float(values[:, k].std(ddof=1)) if len(values) > 1 else 0.0)
                for k, name in enumerate(self.names)}

    def winner(self) -> str | None:
        """``helpers.verdicts.clear_winner`` of the final losses: the schedule lower than
        every other on every seed, or None."""
        from helpers.verdicts import clear_winner

        return clear_winner(self.per_seed(), self.names)

    def versus(self, reference: str = "constant lr") -> dict[str, dict]:
        """Every other schedule's final loss minus the reference's, per seed (same seeds,
        same initial weights and batches): :func:`paired_effect`."""
        values = self.per_seed()
        k = self.names.index(reference)
        return {name: paired_effect(values[:, j] - values[:, k]) for j, name in enumerate(self.names) if j != k}


def _tallied_three_phase(eps_max: float, steps: int, tally: list):
    """The three-phase schedule; at the last step it adds to ``tally`` the number of
    coordinates with ``sqrt(v_hat) < eps_t`` and the number of coordinates."""

    def schedule(t, v_hat):
        eps = schedules.three_phase_epsilon(t, steps, eps_max=eps_max)
        if t == steps:
            tally[0] += int((v_hat.sqrt() < eps).sum())
            tally[1] += v_hat.numel()
        return eps

    return schedule


def schedule_comparison(hiddens=(64, 64, 64), lr: float = 0.01, *, steps: int = 300, seeds=(4, 5, 6),
                        eps_max_values=(1e-3, 1e-2), final: float = 0.1, data=None,
                        device=None) -> ScheduleComparison:
    """Constant rate, cosine learning-rate decay, and the three-phase epsilon
    schedule (eps0 = 1e-8, warm 30%, ramp to 80%) for each ``eps_max``; every run of a
    seed starts from the same weights and sees the same batches."""
    cosine = functools.partial(schedules.cosine_lr_factor, total=steps, final=final)
    names = ("constant lr", "cosine lr") + tuple(f"3-phase eps, max {eps_max:g}" for eps_max in eps_max_values)
    curves = {name: [] for name in names}
    eps_above = {name: [] for name in names[2:]}
    common = dict(lr=lr, steps=steps, data=data, device=device)
    for seed in seeds:
        curves["constant lr"].append(train_model(hiddens, SimpleAdam, seed=seed, **common)[1])
        curves["cosine lr"].append(train_model(hiddens, SimpleAdam, lr_factor=cosine, seed=seed, **common)[1])
        for name, eps_max in zip(names[2:], eps_max_values):
            tally = [0, 0]
            optimizer = functools.partial(EpsilonScheduledAdam,
                                          eps_schedule=_tallied_three_phase(eps_max, steps, tally))
            curves[name].append(train_model(hiddens, optimizer, seed=seed, **common)[1])
            eps_above[name].append(tally[0] / tally[1])
    return ScheduleComparison(names, {name: np.array(c) for name, c in curves.items()},
                              {name: np.array(v) for name, v in eps_above.items()})
