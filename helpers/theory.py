"""Monte Carlo checks of the written question 1 (RMS scaling of a dense layer).

Shapes follow the handout: input ``x`` in R^{d1}, weights ``W`` in R^{d2 x d1}.

* At init, with ``W`` and ``x`` i.i.d. standard Gaussian, ``y_i = sum_j W_ij x_j``
  has variance ``d1``, so ``E[RMS(W x)^2] = d1`` whatever ``d2`` is: multiply ``W``
  by ``1/sqrt(d1)``.
* Under SignGD with a rank-one gradient ``g x^T``, the update is
  ``sign(g x^T) = sign(g) sign(x)^T`` and the feature change is
  ``y' = sign(g) (sign(x)^T x) = sign(g) ||x||_1``: every coordinate has size
  ``||x||_1``, so ``E[RMS(y')^2] = E[||x||_1^2] = d1 + d1 (d1 - 1) 2/pi``, which
  grows like ``d1^2``: ``RMS(y')`` grows like ``d1``; multiply the update by ``1/d1``.
"""

from __future__ import annotations

import math

import torch

from helpers.norms import rms


def init_rms_squared(d1: int, d2: int, trials: int = 2000, seed: int = 0) -> float:
    """Monte Carlo estimate of ``E[RMS(W x)^2]`` for Gaussian ``W`` (d2 x d1) and ``x``."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(trials, d2, d1, generator=gen, dtype=torch.float64)
    x = torch.randn(trials, d1, 1, generator=gen, dtype=torch.float64)
    return rms((W @ x).squeeze(-1), dim=-1).square().mean().item()


def signgd_rms_squared(d1: int, d2: int, trials: int = 2000, seed: int = 0) -> float:
    """Monte Carlo estimate of ``E[RMS(y')^2]`` with ``y' = sign(g x^T) x``,
    ``x`` and ``g`` standard Gaussian (the same ``x`` that made the gradient)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(trials, d1, 1, generator=gen, dtype=torch.float64)
    g = torch.randn(trials, d2, 1, generator=gen, dtype=torch.float64)
    update = torch.sign(g @ x.transpose(1, 2))  # (trials, d2, d1): the shape of W
    return rms((update @ x).squeeze(-1), dim=-1).square().mean().item()


def signgd_rms_squared_exact(d1: int) -> float:
    """``E[||x||_1^2] = d1 E[x^2] + d1 (d1-1) E[|x|]^2 = d1 + d1 (d1-1) * 2/pi``."""
    return d1 + d1 * (d1 - 1) * 2 / math.pi
