"""The loss of multi-output linear regression and its gradient (notebook 11).

Plain functions only (see ``helpers.editable``): the optimizers of
``helpers.linear_regression`` look ``gradient`` up here at every step.
"""

from __future__ import annotations

import torch


def loss(W: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``||Y - X W||_F^2`` (the squared Frobenius norm, summed over all entries)."""
    return (Y - X @ W).square().sum()


def gradient(W: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """The gradient of :func:`loss` with respect to W (notebook 11 derives it)."""
    ### BEGIN SOLUTION
    return 2 * X.T @ (X @ W - Y)
    ### END SOLUTION
