"""Tools for the Newton-Schulz lecture (notebook 07): the scalar maps that act on
singular values, a trace of the iteration on a real matrix, and timings."""

from __future__ import annotations

import time

import numpy as np
import torch

from helpers.device import to_numpy
from helpers.optimizers import newton_schulz


def polynomial_map(coefficients, s):
    """``p(s) = a s + b s^3 + c s^5``: what one Newton-Schulz step does to a singular value."""
    a, b, c = coefficients
    return a * s + b * s**3 + c * s**5


def iterate_map(coefficients, s, steps: int) -> np.ndarray:
    """``[s, p(s), p(p(s)), ...]``, shape [steps + 1, len(s)]."""
    values = [np.asarray(s, dtype=np.float64)]
    for _ in range(steps):
        values.append(polynomial_map(coefficients, values[-1]))
    return np.stack(values)


def exact_polar_factor(G: torch.Tensor, rank_tol: float = 1e-4) -> torch.Tensor:
    """``U_r V_r^T`` over the singular values above ``rank_tol * s_max`` (float64).

    A gradient from a batch of B examples has rank <= B; its zero singular values
    stay zero under Newton-Schulz (p(0) = 0), so the fair target keeps them zero."""
    U, S, Vh = torch.linalg.svd(G.detach().double().cpu(), full_matrices=False)
    keep = S > rank_tol * S[0]
    return U[:, keep] @ Vh[keep]


def newton_schulz_trace(G: torch.Tensor, steps: int, coefficients, dtype=None) -> dict:
    """Run Newton-Schulz for 0..steps iterations and record, after each, the
    singular values of the result and its relative Frobenius error against
    :func:`exact_polar_factor`."""
    target = exact_polar_factor(G)
    svals, errors = [], []
    for k in range(steps + 1):
        X = newton_schulz(G, steps=k, coefficients=coefficients, dtype=dtype).detach().double().cpu()
        svals.append(torch.linalg.svdvals(X))
        errors.append(torch.linalg.matrix_norm(X - target) / torch.linalg.matrix_norm(target))
    return {"singular_values": to_numpy(torch.stack(svals)), "relative_error": to_numpy(torch.stack(errors))}


def _timed(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up (kernels, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats


def time_orthogonalization(sizes, device, repeats: int = 5, steps: int = 5, seed: int = 0) -> dict:
    """Seconds per call of ``newton_schulz`` (float32) and of ``torch.linalg.svd``
    plus ``U @ Vh`` on square matrices of each size, on ``device``."""
    device = torch.device(device)
    result = {"sizes": list(sizes), "newton_schulz": [], "svd": []}
    for n in sizes:
        G = torch.randn(n, n, generator=torch.Generator().manual_seed(seed)).to(device)
        svd_device = G.cpu() if device.type == "mps" else G  # no linalg.svd on MPS
        result["newton_schulz"].append(_timed(lambda: newton_schulz(G, steps=steps), device, repeats))

        def svd_polar():
            U, _, Vh = torch.linalg.svd(svd_device, full_matrices=False)
            return U @ Vh

        result["svd"].append(_timed(svd_polar, device, repeats))
    return result
