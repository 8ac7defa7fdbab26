"""The orthogonalised update of Shampoo and Muon: the pieces you write (notebooks 06-08).

* part e: :func:`orthogonalize_svd`, Shampoo's direction computed with an SVD;
* the bonus: :func:`shampoo_shape_scale`, the factor ``ScaledSimpleShampoo`` multiplies it by;
* the lecture: :func:`newton_schulz`, the same direction without an SVD, and
  :func:`muon_shape_scale`, Muon's factors.

The optimizers of ``helpers.optimizers`` look these functions up here at every step. Plain
functions only (see ``helpers.editable``), so an edit is what the next cell runs.
"""

from __future__ import annotations

import math

import torch


def orthogonalize_svd(m: torch.Tensor) -> torch.Tensor:
    """Shampoo's update direction (without accumulation) for the momentum matrix ``m``, computed
    with ``torch.linalg.svd`` (part e; notebook 06 states it). Returns a tensor of ``m``'s shape,
    dtype and device."""
    ### BEGIN SOLUTION
    source = m.cpu() if m.device.type == "mps" else m  # linalg.svd is not implemented on MPS
    u, _, vh = torch.linalg.svd(source.float(), full_matrices=False)
    return (u @ vh).to(device=m.device, dtype=m.dtype)
    ### END SOLUTION


def shampoo_shape_scale(fan_out: int, fan_in: int) -> float:
    """The factor ``ScaledSimpleShampoo`` multiplies the direction of a ``(fan_out, fan_in)``
    weight by, chosen so that every layer's update has the same RMS->RMS norm, ``lr``,
    whatever its shape (the bonus, notebook 06)."""
    ### BEGIN SOLUTION
    return math.sqrt(fan_out / fan_in)
    ### END SOLUTION


QUINTIC = (3.4445, -4.7750, 2.0315)  # Keller Jordan's Muon coefficients: fast, not convergent (f(1) != 1)
CUBIC = (1.5, -0.5, 0.0)  # the classic Newton-Schulz iteration: slow, converges to exactly 1


def newton_schulz(G: torch.Tensor, steps: int = 5, coefficients=QUINTIC, eps: float = 1e-7, dtype=None):
    """Approximate the orthogonal factor ``U V^T`` of ``G = U S V^T`` without an SVD.

    ``X = G / ||G||_F`` puts every singular value in (0, 1]; then ``steps`` times
    ``X <- a X + (b A + c A^2) X`` with ``A = X X^T``, i.e. ``X <- p(X)`` for the odd
    polynomial ``p(s) = a s + b s^3 + c s^5``. An odd polynomial acts on the singular
    values alone, ``p(U S V^T) = U p(S) V^T``, so the singular vectors stay those
    of ``G`` while each singular value follows the scalar map ``s -> p(s)``.
    ``A`` is formed on the short side (a tall matrix is transposed and back).
    ``dtype`` (e.g. ``torch.bfloat16``) runs the iteration in lower precision.
    """
    if G.ndim != 2:
        raise ValueError(f"newton_schulz needs a matrix, got shape {tuple(G.shape)}.")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}.")
    a, b, c = coefficients
    X = G.to(dtype or torch.float32)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    ### BEGIN SOLUTION
    X = X / (torch.linalg.matrix_norm(X, ord="fro") + eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    ### END SOLUTION
    if tall:
        X = X.T
    return X.to(G.dtype)


MUON_SCALES = ("spectral", "keller", "moonlight")


def muon_shape_scale(fan_out: int, fan_in: int, scale: str) -> float:
    """The factor Muon multiplies the orthogonalised direction of a ``(fan_out, fan_in)`` weight by
    (notebook 08):

    * ``"spectral"``: the factor that gives every update RMS->RMS norm ``lr``, whatever its
      shape (steepest descent under the RMS->RMS norm, as in the bonus of notebook 06);
    * ``"keller"``: Keller Jordan's factor, as the lecture gives it;
    * ``"moonlight"``: the factor that gives a full-rank direction an entrywise RMS of 0.2, about
      that of an AdamW step, so that AdamW's learning rate can be reused.

    Any other ``scale`` raises ValueError.
    """
    ### BEGIN SOLUTION
    # spectral: ||U V^T||_2 = 1 and ||A||_RMS->RMS = sqrt(fan_in / fan_out) ||A||_2
    if scale == "spectral":
        return math.sqrt(fan_out / fan_in)
    if scale == "keller":
        return math.sqrt(max(1.0, fan_out / fan_in))
    if scale == "moonlight":
        return 0.2 * math.sqrt(max(fan_out, fan_in))
    ### END SOLUTION
    raise ValueError(f"Unknown Muon scale {scale!r}; use one of {MUON_SCALES}.")
