"""Learning-rate and epsilon schedules for Adam (notebook 10).

Steps are counted t = 1, ..., total, as Adam counts them. A learning-rate
schedule is a factor ``f_t`` in (0, 1] on the base rate ``lr``; an epsilon
schedule gives the ``eps_t`` of ``W <- W - lr * m_hat / (sqrt(v_hat) + eps_t)``.

Why an epsilon schedule can replay a learning-rate schedule exactly: ask for

    lr * f_t / (s + eps) = lr / (s + eps_t),   s = sqrt(v_hat),

and its solution depends on ``s``, i.e. on every coordinate's own second
moment: the matching epsilon is a tensor, not one number per step.
"""

from __future__ import annotations

import math

import torch

from helpers.optimizers import ADAM_EPS, check_positive


def _check_step(t: int, total: int) -> None:
    if total < 1:
        raise ValueError(f"total={total}: a schedule needs at least one step.")
    if not 1 <= t <= total:
        raise ValueError(f"step {t} is outside 1..{total} (Adam counts steps from 1).")


def cosine_lr_factor(t: int, total: int, final: float = 0.1) -> float:
    """Cosine decay from 1 at step 1 to ``final`` at step ``total``."""
    _check_step(t, total)
    if not 0 < final <= 1:
        raise ValueError(f"final={final}: the last factor must be in (0, 1] (0 would need an infinite epsilon).")
    progress = (t - 1) / (total - 1) if total > 1 else 1.0
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))


def matching_epsilon(lr_factor: float, v_hat: torch.Tensor, eps: float = ADAM_EPS) -> torch.Tensor:
    """The per-coordinate epsilon that turns Adam's step with ``eps`` at the full
    rate into the step at ``lr_factor`` times the rate (solve the equation in the
    module docstring for ``eps_t``; notebook 10)."""
    check_positive("lr_factor", lr_factor)
    ### BEGIN SOLUTION
    return (1 / lr_factor - 1) * v_hat.sqrt() + eps / lr_factor
    ### END SOLUTION


def three_phase_epsilon(t: int, total: int, *, eps0: float = 1e-8, eps_max: float = 1e-2, warm: float = 0.3,
                        end: float = 0.8, efolds: float | None = None) -> float:
    """The three-phase epsilon schedule: ``eps0`` for the first ``warm * total`` steps,
    then ``A exp(k (t - warm*total)) + B`` up to step ``end * total``, then ``eps_max``.

    ``A`` and ``B`` make the ramp start at ``eps0`` and end at ``eps_max``:
    ``A = (eps_max - eps0) / (exp(K) - 1)``, ``B = eps0 - A`` with
    ``K = k * total * (end - warm)`` the number of e-folds of the ramp. The default
    ``K = ln(eps_max / eps0)`` gives ``B = 0``: plain geometric growth. Once
    ``eps_max`` dwarfs ``sqrt(v_hat)``, the step ``lr * m_hat / eps_max`` is
    momentum SGD at rate ``lr / eps_max``."""
    _check_step(t, total)
    check_positive("eps0", eps0)
    if not eps_max > eps0:
        raise ValueError(f"eps_max={eps_max} must exceed eps0={eps0}.")
    if not 0 <= warm < end <= 1:
        raise ValueError(f"need 0 <= warm < end <= 1, got warm={warm}, end={end}.")
    efolds = math.log(eps_max / eps0) if efolds is None else check_positive("efolds", efolds)
    start_step, end_step = warm * total, end * total
    if t < start_step:
        return eps0
    if t >= end_step:
        return eps_max
    a = (eps_max - eps0) / math.expm1(efolds)
    return a * math.exp(efolds * (t - start_step) / (end_step - start_step)) + eps0 - a
