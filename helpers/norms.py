"""Matrix norms of a weight update ``A`` stored as ``(fan_out, fan_in)``.

Notebook 02 (part b) asks which of them predicts how far a layer's output moves.
"""

from __future__ import annotations

import math

import torch


def rms(x: torch.Tensor, dim) -> torch.Tensor:
    """Root mean square along ``dim``: ``sqrt(mean(x**2, dim))``."""
    return torch.sqrt(torch.mean(x**2, dim=dim))


def _as_matrix(W: torch.Tensor) -> torch.Tensor:
    if not isinstance(W, torch.Tensor) or W.ndim != 2:
        shape = tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__
        raise ValueError(f"Expected a 2-D matrix (fan_out, fan_in), got {shape}.")
    return W.detach()


def frobenius_norm(W: torch.Tensor) -> float:
    """``||W||_F = sqrt(sum_ij W_ij^2)``."""
    ### BEGIN SOLUTION
    return torch.linalg.matrix_norm(_as_matrix(W).float(), ord="fro").item()
    ### END SOLUTION


def spectral_norm(W: torch.Tensor) -> float:
    """``||W||_2``, the largest singular value: ``max_x ||W x||_2 / ||x||_2``.

    Measured in float64 on the CPU: on CUDA the float32 SVD misread the norm of
    a 256x256 update with all singular values 1 by 2e-4, larger than the
    effects the notebooks compare."""
    ### BEGIN SOLUTION
    return torch.linalg.matrix_norm(_as_matrix(W).cpu().double(), ord=2).item()
    ### END SOLUTION


def rms_to_rms_norm(W: torch.Tensor) -> float:
    """The induced operator norm between RMS-normed spaces, ``max_x RMS(W x) / RMS(x)``,
    where ``RMS(v) = ||v||_2 / sqrt(dim v)`` (``x`` has fan_in entries, ``W x`` fan_out)."""
    ### BEGIN SOLUTION
    # RMS(W x) / RMS(x) = sqrt(fan_in / fan_out) * ||W x||_2 / ||x||_2, and the largest value of
    # ||W x||_2 / ||x||_2 is the spectral norm: the norm is sqrt(fan_in / fan_out) * ||W||_2.
    fan_out, fan_in = _as_matrix(W).shape
    return math.sqrt(fan_in / fan_out) * spectral_norm(W)
    ### END SOLUTION


def entrywise_rms(W: torch.Tensor) -> float:
    """The typical size of an entry, ``sqrt(mean_ij W_ij^2) = ||W||_F / sqrt(fan_out * fan_in)``.

    This is the formula the handout prints for its "RMS-RMS induced norm"; notebook 02
    measures it beside the other norms (given, not part of the exercise)."""
    W = _as_matrix(W)
    return frobenius_norm(W) / math.sqrt(W.numel())
