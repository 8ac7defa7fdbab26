"""Protocols of the research notebooks 09 and 10 (Adam's zero init and bias
correction; epsilon schedules), on the course MLP. Results are numpy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from helpers import schedules
from helpers.device import to_numpy
from helpers.experiments import build_model, lr_sweep, train_model
from helpers.models import MLP
from helpers.optimizers import ADAM_EPS, EpsilonScheduledAdam, SimpleAdam
from helpers.verdicts import (
    PairedComparison,
    SelectThenCompare,
    SwitchAblation,
    choose_rates,
    clear_winner,
    paired_comparison,
    select_then_compare,
    switch_ablation,
)

# (zero_init, bias_correction) of the four cells of the ablation.
ZI_BC_VARIANTS = {
    "ZI+BC (Adam)": (True, True),
    "ZI, no BC": (True, False),
    "BC, no ZI": (False, True),
    "no BC, no ZI": (False, False),
}


SWITCHES = ("zero init", "bias correction")  # the order of the (zero_init, bias_correction) keys above


@dataclass
class AblationTable:
    """The ZI/BC ablation of one beta pair: each variant's learning rate chosen on some seeds, the
    four variants compared at those rates on other seeds (``selection``, a
    :class:`helpers.verdicts.SelectThenCompare`; final validation losses)."""

    betas: tuple
    width: int
    steps: int
    selection: SelectThenCompare

    @property
    def variants(self) -> tuple:
        return self.selection.names

    @property
    def lrs(self) -> np.ndarray:
        return self.selection.rates

    @property
    def chosen_lrs(self) -> list:
        return [float(self.lrs[k]) for k in self.selection.chosen]

    def per_seed(self) -> np.ndarray:
        """``[seed, variant]``: the losses on the comparison seeds, each variant at its chosen rate."""
        return self.selection.compared

    def switches(self, **test) -> SwitchAblation:
        """Both simple effects of each switch and their interaction
        (:func:`helpers.verdicts.switch_ablation` of the comparison seeds' losses); ``test``:
        ``alpha`` and ``power`` if not the defaults."""
        cells = {ZI_BC_VARIANTS[name]: self.selection.values(name) for name in self.variants}
        return switch_ablation(cells, SWITCHES, **test)

    def winner(self) -> str | None:
        """The variant that beats the three others on every comparison seed, each at its chosen
        rate (:func:`helpers.verdicts.clear_winner`), or None."""
        return clear_winner(self.per_seed(), self.variants)

    def lr_at_grid_edge(self) -> list:
        return self.selection.at_grid_edge()

    def table(self) -> str:
        """The grid on the seeds that choose (one row per learning rate, one column per variant,
        mean +- std over those seeds), the chosen rates, then each variant at its chosen rate on
        the comparison seeds (mean +- std)."""
        sel = self.selection
        head = f"{'lr':>12} | " + " | ".join(f"{v:>15}" for v in self.variants)
        mean, std = sel.grid.mean(axis=1), sel.grid.std(axis=1, ddof=1)
        rows = [f"betas {self.betas}, width {self.width}, {self.steps} steps",
                f"choosing the rate, seeds {_seed_list(sel.choose_on)} (mean +- std over these seeds):", head]
        for k, lr in enumerate(self.lrs):
            rows.append(f"{lr:>12.4g} | " + " | ".join(f"{mean[v, k]:7.3f} +- {std[v, k]:5.3f}"
                                                        for v in range(len(self.variants))))
        rows.append(f"{'chosen lr':>12} | " + " | ".join(f"{lr:>15g}" for lr in self.chosen_lrs))
        compared = self.per_seed()
        rows.append(f"comparing, seeds {_seed_list(sel.compare_on)} (mean +- std over these seeds):")
        rows.append(f"{'at chosen lr':>12} | " + " | ".join(
            f"{m:7.3f} +- {d:5.3f}" for m, d in zip(compared.mean(axis=0), compared.std(axis=0, ddof=1))))
        return "\n".join(rows)

    def as_record(self) -> dict:
        """What a notebook records: enough to recompute every verdict (:meth:`from_record`)."""
        sel = self.selection
        return dict(lrs=sel.rates, variants=sel.names, choose_on=sel.choose_on, compare_on=sel.compare_on,
                    grid=sel.grid, chosen_lr=self.chosen_lrs, compared=sel.compared)

    @classmethod
    def from_record(cls, betas, width: int, steps: int, record: dict) -> "AblationTable":
        """The table of :meth:`as_record`'s numbers; the rates are chosen again from the grid."""
        grid = np.array(record["grid"], dtype=float)
        selection = SelectThenCompare(tuple(record["variants"]), np.array(record["lrs"], dtype=float),
                                      tuple(record["choose_on"]), tuple(record["compare_on"]), grid,
                                      choose_rates(grid), np.array(record["compared"], dtype=float))
        return cls(tuple(betas), width, steps, selection)


def claim_parts(switches: SwitchAblation, matters: str, barely: str) -> dict[str, tuple[str, str]]:
    """The claim "``barely`` barely matters, ``matters`` does", part by part, against the simple
    effects of a :class:`helpers.verdicts.SwitchAblation`: ``{part: (status, sentence)}``.

    "``matters`` matters" is *supported* where dropping it is detected (with the other switch
    on and off; *supported in one setting* if in one only), otherwise *not shown*. "``barely``
    barely matters" is *contradicted* where dropping it is detected; where it is not, a
    difference test cannot show it (it can only fail to detect): *not shown*, with the smallest
    detectable effect of each setting."""

    def settings(switch):
        other = switches.names[1] if switch == switches.names[0] else switches.names[0]
        detected, items = 0, []
        for other_on in (True, False):
            comparison = switches.simple[(switch, other_on)]
            where = f"{'with' if other_on else 'without'} {other}"
            if comparison.detected:
                detected += 1
                items.append(f"{where}: detected, {'raises' if comparison.mean > 0 else 'lowers'} the loss by "
                             f"{abs(comparison.mean):.3f}")
            else:
                items.append(f"{where}: not detected with {comparison.n} seeds (smallest detectable effect "
                             f"{comparison.detectable:.3f})")
        return detected, "dropping it, " + "; ".join(items)

    detected, text = settings(matters)
    status = {2: "supported", 1: "supported in one setting", 0: "not shown"}[detected]
    parts = {f"{matters} matters": (status, f"{status}: {text}")}
    detected, text = settings(barely)
    status = "contradicted" if detected else "not shown"
    note = "" if detected else " (a difference test can only fail to detect)"
    parts[f"{barely} barely matters"] = (status, f"{status}{note}: {text}")
    return parts


def _seed_list(seeds) -> str:
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(str(s) for s in seeds)


def zi_bc_ablation(width: int, lrs, *, choose_on, compare_on, steps: int, betas=(0.9, 0.999), depth: int = 3,
                   data=None, device=None) -> AblationTable:
    """SimpleAdam in the four zero-init / bias-correction combinations (course protocol, batched
    sweeps; the score is the mean of the last 5 validation losses): every learning rate of
    ``lrs`` on the seeds ``choose_on``, then each combination at its chosen rate on the seeds
    ``compare_on`` (:func:`helpers.verdicts.select_then_compare`)."""
    b1, b2 = betas

    def run(name, rates, seeds):
        zero_init, bias_correction = ZI_BC_VARIANTS[name]
        optimizer = functools.partial(SimpleAdam, b1=b1, b2=b2, zero_init=zero_init, bias_correction=bias_correction)
        sweep = lr_sweep((width,), rates, optimizer, depth=depth, steps=steps, seeds=seeds, data=data, device=device,
                         progress=False)
        return sweep.losses[:, 0, :]

    selection = select_then_compare(tuple(ZI_BC_VARIANTS), lrs, run, choose_on=choose_on, compare_on=compare_on)
    return AblationTable(tuple(betas), width, steps, selection)


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
    model_0 = build_model(MLP, hiddens, seed, next(model_lr.parameters()).device)  # train_model's initial weights
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
    ``eps_t`` at the last step (``eps_above[name][seed]``) and below ``eps_t / 10``
    (``eps_far_above``). Adam's step ``lr m_hat / (sqrt(v_hat) + eps)`` is the momentum-SGD
    step ``lr m_hat / eps`` times ``eps / (sqrt(v_hat) + eps)``: more than 1/2 of it where
    ``eps > sqrt(v_hat)``, more than 10/11 (within 10%) where ``eps > 10 sqrt(v_hat)``; it is
    momentum SGD at rate ``lr / eps`` only where ``eps`` is far above ``sqrt(v_hat)``."""

    names: tuple
    curves: dict
    eps_above: dict
    last: int = 10
    eps_far_above: dict = field(default_factory=dict)

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
        return clear_winner(self.per_seed(), self.names)

    def versus(self, reference: str = "constant lr") -> dict[str, PairedComparison]:
        """Every other schedule's final loss minus the reference's, per seed (same seeds,
        same initial weights and batches): :func:`helpers.verdicts.paired_comparison`."""
        return versus_reference(self.per_seed(), self.names, reference)


def versus_reference(per_seed, names, reference: str) -> dict[str, PairedComparison]:
    """``per_seed[seed, method]`` -> every other method minus ``reference``, per seed, as
    :func:`helpers.verdicts.paired_comparison`."""
    values, names = np.asarray(per_seed, dtype=float), list(names)
    k = names.index(reference)
    return {name: paired_comparison(values[:, j] - values[:, k]) for j, name in enumerate(names) if j != k}


def _tallied_three_phase(eps_max: float, steps: int, tally: list):
    """The three-phase schedule; at the last step it adds to ``tally`` the number of
    coordinates with ``sqrt(v_hat) < eps_t``, the number of coordinates, and the number with
    ``10 sqrt(v_hat) < eps_t``."""

    def schedule(t, v_hat):
        eps = schedules.three_phase_epsilon(t, steps, eps_max=eps_max)
        if t == steps:
            root = v_hat.sqrt()
            tally[0] += int((root < eps).sum())
            tally[1] += v_hat.numel()
            tally[2] += int((10 * root < eps).sum())
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
    eps_far_above = {name: [] for name in names[2:]}
    common = dict(lr=lr, steps=steps, data=data, device=device)
    for seed in seeds:
        curves["constant lr"].append(train_model(hiddens, SimpleAdam, seed=seed, **common)[1])
        curves["cosine lr"].append(train_model(hiddens, SimpleAdam, lr_factor=cosine, seed=seed, **common)[1])
        for name, eps_max in zip(names[2:], eps_max_values):
            tally = [0, 0, 0]
            optimizer = functools.partial(EpsilonScheduledAdam,
                                          eps_schedule=_tallied_three_phase(eps_max, steps, tally))
            curves[name].append(train_model(hiddens, optimizer, seed=seed, **common)[1])
            eps_above[name].append(tally[0] / tally[1])
            eps_far_above[name].append(tally[2] / tally[1])
    return ScheduleComparison(names, {name: np.array(c) for name, c in curves.items()},
                              {name: np.array(v) for name, v in eps_above.items()},
                              eps_far_above={name: np.array(v) for name, v in eps_far_above.items()})
