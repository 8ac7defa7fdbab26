"""Hidden test inputs that several parts build: seeded Gaussian and conditioned matrices, the
updates of a Shampoo optimizer on seeded gradients. Each part's own inputs are in its file
(``grading/parts/<part>.py``): more shapes, widths, seeds and settings than the students'
self-checks, so that code tuned to a self-check fails there.

Instructor tree only (the student release never contains ``grading/``). Both sides use this
module: the child process that runs a submission's code builds its inputs from it, and the
judge builds the same inputs to compute what the reference gives. Nothing here computes an
expected value. Feedback never quotes these inputs.
"""

from __future__ import annotations

import math

import torch


def gaussian(shape, seed: int, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).to(dtype)


def conditioned(shape, seed: int, largest: float, smallest: float) -> torch.Tensor:
    """A float32 matrix with singular values spread geometrically from ``largest`` to ``smallest``."""
    fan_out, fan_in = shape
    k = min(shape)
    left = torch.linalg.qr(gaussian((fan_out, k), seed, dtype=torch.float64)).Q
    right = torch.linalg.qr(gaussian((fan_in, k), seed + 1, dtype=torch.float64)).Q
    values = torch.logspace(math.log10(largest), math.log10(smallest), k, dtype=torch.float64)
    return ((left * values) @ right.T).float()


SHAMPOO_BIAS = 16  # the bias vector the Shampoo optimizers leave to Adam


def shampoo_updates(optimizer_class, shapes, lr: float, steps: int, seed: int = 300) -> list[list[torch.Tensor]]:
    """The update of every weight matrix at every step of ``optimizer_class`` (gradients seeded)."""
    params = [torch.nn.Parameter(gaussian(shape, seed + i)) for i, shape in enumerate(shapes)]
    bias = torch.nn.Parameter(torch.zeros(SHAMPOO_BIAS))
    optimizer = optimizer_class(params + [bias], lr=lr)
    updates = []
    for step in range(steps):
        before = [p.detach().clone() for p in params]
        for i, p in enumerate(params):
            p.grad = gaussian(p.shape, seed + 100 * (step + 1) + i)
        bias.grad = gaussian((SHAMPOO_BIAS,), seed + 99)
        optimizer.step()
        updates.append([p.detach() - b for p, b in zip(params, before)])
    return updates
