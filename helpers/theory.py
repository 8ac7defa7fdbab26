"""Monte Carlo estimates for the written question 1 (RMS scaling of a dense layer).

Shapes follow the handout: input ``x`` in R^{d1}, weights ``W`` in R^{d2 x d1},
everything i.i.d. standard Gaussian. The closed forms are the student's answer
(notebook 00); these functions only sample. With ``stderr=True`` each returns
``(estimate, standard error of the estimate)``, the sampling noise to compare a
prediction against.
"""

from __future__ import annotations

import functools
import math

import torch

from helpers import norms


def _mean(samples: torch.Tensor, stderr: bool):
    mean = samples.mean().item()
    if not stderr:
        return mean
    return mean, samples.std().item() / math.sqrt(samples.numel())


def init_rms_squared(d1: int, d2: int, trials: int = 2000, seed: int = 0, *, stderr: bool = False):
    """Monte Carlo estimate of ``E[RMS(W x)^2]`` for Gaussian ``W`` (d2 x d1) and ``x``."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(trials, d2, d1, generator=gen, dtype=torch.float64)
    x = torch.randn(trials, d1, 1, generator=gen, dtype=torch.float64)
    return _mean(norms.rms((W @ x).squeeze(-1), dim=-1).square(), stderr)


@functools.lru_cache(maxsize=64)
def _signgd_feature_changes(d1: int, d2: int, trials: int, seed: int) -> torch.Tensor:
    """``y' = sign(g x^T) x`` for ``trials`` independent draws, shape ``(trials, d2)``; cached, so that
    the mean and the mean square come from the same draws without drawing them twice (never modified;
    the RMS is taken at call time, through ``norms``)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(trials, d1, 1, generator=gen, dtype=torch.float64)
    g = torch.randn(trials, d2, 1, generator=gen, dtype=torch.float64)
    update = torch.sign(g @ x.transpose(1, 2))  # (trials, d2, d1): the shape of W
    return (update @ x).squeeze(-1)


def _signgd_rms_samples(d1: int, d2: int, trials: int, seed: int) -> torch.Tensor:
    """``RMS(y')`` for ``trials`` independent draws of ``y' = sign(g x^T) x``."""
    return norms.rms(_signgd_feature_changes(d1, d2, trials, seed), dim=-1)


def signgd_rms_squared(d1: int, d2: int, trials: int = 2000, seed: int = 0, *, stderr: bool = False):
    """Monte Carlo estimate of ``E[RMS(y')^2]`` with ``y' = sign(g x^T) x``,
    ``x`` and ``g`` standard Gaussian (the same ``x`` that made the gradient)."""
    return _mean(_signgd_rms_samples(d1, d2, trials, seed).square(), stderr)


def signgd_rms(d1: int, d2: int, trials: int = 2000, seed: int = 0, *, stderr: bool = False):
    """Monte Carlo estimate of ``E[RMS(y')]`` (not squared), the same draws as
    :func:`signgd_rms_squared` under the same ``seed``: what Q1(b)'s constant is asked to make 1."""
    return _mean(_signgd_rms_samples(d1, d2, trials, seed), stderr)
