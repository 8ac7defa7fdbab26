"""Orthogonalised updates, measured: the lecture pieces of notebooks 06 and 07.

* The update on the gradient's rank (06): :func:`numerical_rank`,
  :func:`polar_factor_on_rank` (``U_r V_r^T``), Shampoo with accumulation switched
  off computed as Shampoo does (:func:`shampoo_without_accumulation`), and the
  optimizers that use it (:class:`RankShampoo`, :class:`ScaledRankShampoo`).
* Steepest descent under the spectral norm, checked on random trials (07):
  :func:`spectral_steepest_descent`.
* Newton-Schulz (07): the scalar maps that act on singular values
  (:func:`polynomial_map`, :func:`iterate_map`, :func:`quintic_band`), a trace of the
  iteration on a real gradient (:func:`newton_schulz_trace`), the same in float32 and bfloat16
  over several gradients (:func:`low_precision_survey`), and timings against
  the SVD (:func:`time_orthogonalization`, :func:`speed_verdicts`).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from helpers import orthogonal_updates
from helpers.device import to_numpy
from helpers.optimizers import ScaledSimpleShampoo, SimpleShampoo

# ---------------------------------------------------------------- the update on the gradient's rank (06)
ROUNDING_RTOL = 1e-6  # float32 rounding puts spurious singular values near 1e-7 of the largest


def numerical_rank(G: torch.Tensor, rtol: float = ROUNDING_RTOL) -> int:
    """How many singular values of ``G`` exceed ``rtol`` times the largest (float64 SVD)."""
    s = torch.linalg.svdvals(G.detach().double().cpu())
    return int((s > rtol * s[0]).sum()) if s[0] > 0 else 0


def polar_factor_on_rank(G: torch.Tensor, rtol: float = ROUNDING_RTOL) -> torch.Tensor:
    """``U_r V_r^T``: the SVD ``G = U S V^T`` (float64) kept on the r singular values
    above ``rtol * s_max``, each of them set to 1, the rest to 0 (notebook 06 compares it
    with the reduced SVD's ``U V^T``)."""
    U, S, Vh = torch.linalg.svd(G.detach().double().cpu(), full_matrices=False)
    r = int((S > rtol * S[0]).sum()) if S[0] > 0 else 0
    return (U[:, :r] @ Vh[:r]).to(device=G.device, dtype=G.dtype)


def _pseudo_inverse_fourth_root(M: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``M^{-1/4}`` of a symmetric positive semi-definite M on its eigenvalues above ``cutoff``, 0 on the rest."""
    eigenvalues, Q = torch.linalg.eigh(M)
    keep = eigenvalues > cutoff
    roots = torch.zeros_like(eigenvalues)
    roots[keep] = eigenvalues[keep] ** -0.25
    return (Q * roots) @ Q.T


def shampoo_without_accumulation(G: torch.Tensor, rtol: float = ROUNDING_RTOL) -> torch.Tensor:
    """Shampoo's direction from one gradient, ``L^{-1/4} G R^{-1/4}`` with ``L = G G^T``
    and ``R = G^T G`` (accumulation switched off), computed in float64 by
    eigendecompositions of L and R, as Shampoo computes it.

    The fourth roots are pseudo-inverse: only eigenvalues above ``(rtol * s_max)^2``
    (the squares of the singular values above ``rtol * s_max``) are inverted. With
    ``G = U S V^T``: ``L = U S^2 U^T``, ``R = V S^2 V^T``, so the product is
    ``U_r S_r^{-1/2} (U_r^T G V_r) S_r^{-1/2} V_r^T = U_r V_r^T``."""
    G64 = G.detach().double().cpu()
    cutoff = (rtol * torch.linalg.matrix_norm(G64, ord=2)) ** 2
    left = _pseudo_inverse_fourth_root(G64 @ G64.T, cutoff)
    right = _pseudo_inverse_fourth_root(G64.T @ G64, cutoff)
    return (left @ G64 @ right).to(device=G.device, dtype=G.dtype)


class RankShampoo(SimpleShampoo):
    """``SimpleShampoo`` whose matrix direction is ``U_r V_r^T`` on the momentum's numerical
    rank, times ``shape_scale``: what :func:`shampoo_without_accumulation` gives (notebook 06
    checks that they agree), computed by the cheaper SVD (:func:`polar_factor_on_rank`)."""

    def __init__(self, params, lr: float = 0.1, b1: float = 0.9, rtol: float = ROUNDING_RTOL):
        super().__init__(params, lr=lr, b1=b1)
        self.rtol = float(rtol)

    def matrix_update(self, m: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return polar_factor_on_rank(m, self.rtol) * self.shape_scale(p)


class ScaledRankShampoo(RankShampoo, ScaledSimpleShampoo):
    """:class:`RankShampoo` with the bonus's shape factor (``ScaledSimpleShampoo.shape_scale``)."""


def gradient_ranks(hiddens, *, data, seed: int = 0, batch_size: int = 64, rtol: float = ROUNDING_RTOL) -> dict:
    """Numerical rank of every weight gradient on the fixed batch of
    ``experiments.train_one_step``, with the model and data in float32 and again in
    float64 (same init, same batch, CPU). Rounding-level singular values of the float32
    gradient that are real directions would also show up in float64."""
    from helpers.experiments import build_model, fixed_batch
    from helpers.models import MLP

    ranks = {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        model = build_model(MLP, hiddens, seed, torch.device("cpu")).to(dtype)
        images, labels = fixed_batch(data, batch_size, seed, "cpu")
        nn.functional.cross_entropy(model(images.to(dtype))[0], labels).backward()
        ranks[name] = [numerical_rank(layer.weight.grad, rtol) for layer in model.layers]
    return ranks


# ---------------------------------------------------------------- steepest descent under the spectral norm (07)
def spectral_steepest_descent(G: torch.Tensor, trials: int = 500, seed: int = 0) -> dict:
    """Is ``U V^T`` the matrix of spectral norm 1 with the largest inner product with G?

    Returns ``<G, U V^T>``, the nuclear norm ``||G||_nuc = sum of singular values``, and,
    for each family of random trials ``D`` (each rescaled to ``||D||_2 = 1``), the
    largest ``<G, D>``: Gaussian matrices, ``U V^T`` plus Gaussian noise of relative
    size 0.01, 0.1 and 1, and two directions an optimizer might take instead:
    ``sign(G)`` (Adam's first step) and ``G`` itself (gradient descent)."""
    G = G.detach().double().cpu()
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    polar = U @ Vh
    generator = torch.Generator().manual_seed(10_000 + seed)  # not the stream a test matrix G may come from

    def best(D):
        D = D / torch.linalg.matrix_norm(D, ord=2, keepdim=True)
        return float((D * G).sum(dim=(-2, -1)).max())

    noise = lambda: torch.randn(trials, *G.shape, generator=generator, dtype=torch.float64)  # noqa: E731
    families = {"Gaussian": best(noise())}
    for size in (0.01, 0.1, 1.0):
        families[f"U V^T + {size:g} noise"] = best(polar + size * noise() / np.sqrt(min(G.shape)))
    families["sign(G)"] = best(torch.sign(G)[None])
    families["G"] = best(G[None])
    return {"inner": float((G * polar).sum()), "nuclear": float(S.sum()), "families": families,
            "trials": trials, "best_trial": max(families.values())}


# ---------------------------------------------------------------- Newton-Schulz (07)
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


def quintic_band(coefficients, steps: int = 5) -> dict:
    """Where the iterates of ``p`` live, on a fine grid of starting values in [1e-4, 1].

    * ``settled``: the range of the iterates 30..60 (after the transient);
    * ``peak``: ``(s, p(s))`` at the maximum of ``p`` on [0, 1];
    * ``threshold``: the smallest start ``t`` such that every start ``s >= t`` is at
      or above ``settled[0]`` after ``steps`` steps;
    * ``after``: the range of ``p^steps(s)`` over the starts ``s >= t``: both ends,
      so that values above the settled band are not missed."""
    grid = np.geomspace(1e-4, 1, 4000)
    settled = iterate_map(coefficients, grid, 60)[30:]
    low, high = float(settled.min()), float(settled.max())
    after = iterate_map(coefficients, grid, steps)[-1]
    below = np.flatnonzero(after < low)
    first = below.max() + 1 if below.size else 0
    fine = np.linspace(0, 1, 100001)
    values = polynomial_map(coefficients, fine)
    return {"settled": (low, high), "peak": (float(fine[values.argmax()]), float(values.max())),
            "threshold": float(grid[first]), "after": (float(after[first:].min()), float(after[first:].max())),
            "steps": steps}


def lift_threshold(coefficients, target: float, steps: int) -> float:
    """The smallest start ``t`` on the grid of :func:`quintic_band` (starts in [1e-4, 1]) such that
    every start ``s >= t`` is at or above ``target`` after ``steps`` steps of ``p`` (1.0 if none)."""
    grid = np.geomspace(1e-4, 1, 4000)
    below = np.flatnonzero(iterate_map(coefficients, grid, steps)[-1] < target)
    if not below.size:
        return float(grid[0])
    return float(grid[below.max() + 1]) if below.max() + 1 < len(grid) else 1.0


def steps_to_lift(coefficients, start: float, target: float, max_steps: int = 1000) -> int:
    """How many steps of ``p`` take the singular value ``start`` to ``target`` or above
    (``max_steps + 1`` if it never gets there)."""
    value = float(start)
    for k in range(max_steps + 1):
        if value >= target:
            return k
        value = float(polynomial_map(coefficients, value))
    return max_steps + 1


def newton_schulz_trace(G: torch.Tensor, steps: int, coefficients, dtype=None, rtol: float = ROUNDING_RTOL,
                        eps: float = 1e-7) -> dict:
    """Run ``newton_schulz`` for 0..steps iterations (in ``dtype``) and measure each result X:

    * ``singular_values``: those of X (float64), largest first;
    * ``rounding_error``: ``||X - U p^k(S / (||G||_F + eps)) V^T||_F`` relative to the
      latter, i.e. against what the iteration gives in exact arithmetic (the scalar map
      applied to the normalised singular values of G): only rounding makes it nonzero;
    * ``polar_error``: ``||X - U_r V_r^T||_F / ||U_r V_r^T||_F`` (r: the numerical rank);
    * ``outside``: the spectral norm of the part of X outside G's rank-r subspaces,
      ``X - U_r U_r^T X V_r V_r^T``: directions that G does not have.

    Also returns the normalised singular values of G (``initial``) and the rank r."""
    G64 = G.detach().double().cpu()
    U, S, Vh = torch.linalg.svd(G64, full_matrices=False)
    r = int((S > rtol * S[0]).sum())
    Ur, Vr = U[:, :r], Vh[:r]
    polar = Ur @ Vr
    initial = S / (torch.linalg.matrix_norm(G64) + eps)
    result = {"singular_values": [], "rounding_error": [], "polar_error": [], "outside": []}
    for k in range(steps + 1):
        X = orthogonal_updates.newton_schulz(G, steps=k, coefficients=coefficients, dtype=dtype).detach().double().cpu()
        exact = (U * torch.as_tensor(iterate_map(coefficients, to_numpy(initial), k)[-1])) @ Vh
        outside = X - Ur @ (Ur.T @ X @ Vr.T) @ Vr
        result["singular_values"].append(torch.linalg.svdvals(X))
        result["rounding_error"].append(torch.linalg.matrix_norm(X - exact) / torch.linalg.matrix_norm(exact))
        result["polar_error"].append(torch.linalg.matrix_norm(X - polar) / torch.linalg.matrix_norm(polar))
        result["outside"].append(torch.linalg.matrix_norm(outside, ord=2))
    result = {name: to_numpy(torch.stack(values)) for name, values in result.items()}
    result.update(initial=to_numpy(initial), rank=r)
    return result


def gradients_after_training(hiddens=(128, 128, 128), optimizer=None, lr: float = 0.003, *, steps: int = 100,
                             data=None, batch_size: int = 64, seed: int = 0, device=None) -> list:
    """Train the course MLP ``steps`` steps (``experiments.train_model``, default SimpleAdam),
    then return the gradient of every layer's weight, in model order, on the fixed batch of
    ``batch_size`` training images of ``experiments.train_one_step`` (the seed sets the initial
    weights, the training batches and that batch)."""
    from helpers.experiments import fixed_batch, train_model
    from helpers.optimizers import SimpleAdam

    model, _ = train_model(hiddens, optimizer or SimpleAdam, lr, steps=steps, seed=seed, data=data, device=device,
                           evaluate_from=steps)  # no validation curve needed: only the last step is evaluated
    images, labels = fixed_batch(data, batch_size, seed, next(model.parameters()).device)
    model.zero_grad()
    nn.functional.cross_entropy(model(images)[0], labels).backward()
    return [layer.weight.grad.detach() for layer in model.layers]


def gradient_after_training(hiddens=(128, 128, 128), optimizer=None, lr: float = 0.003, *, steps: int = 100,
                            layer: int = 2, data=None, batch_size: int = 64, seed: int = 0, device=None):
    """``gradients_after_training(...)[layer]``: one layer's gradient after ``steps`` steps of training."""
    return gradients_after_training(hiddens, optimizer, lr, steps=steps, data=data, batch_size=batch_size, seed=seed,
                                    device=device)[layer]


def low_precision_survey(gradients: dict, steps: int, coefficients, band, after: int = 5) -> dict:
    """:func:`newton_schulz_trace` in float32 and in bfloat16 for each gradient of ``gradients``
    (name -> matrix), counted against ``band = (low, high)``: per gradient its shape, its rank r,
    the number of singular values of the result in the band after 0..steps steps in each dtype,
    ``first_exceeding`` (the first step count at which bfloat16 has more of them than r: directions
    the gradient does not have; None if never) and ``outside`` (the spectral norm of the part of the
    result outside the gradient's rank-r subspaces) after ``after`` steps in each dtype."""
    low, high = band
    rows = {}
    for name, G in gradients.items():
        traces = {dtype_name: newton_schulz_trace(G, steps, coefficients, dtype)
                  for dtype_name, dtype in (("float32", None), ("bfloat16", torch.bfloat16))}
        rank = traces["float32"]["rank"]
        counts = {dtype_name: [int(((v >= low) & (v <= high)).sum()) for v in trace["singular_values"]]
                  for dtype_name, trace in traces.items()}
        exceeding = [k for k in range(steps + 1) if counts["bfloat16"][k] > rank]
        rows[name] = dict(shape=tuple(G.shape), rank=rank, counts=counts,
                          first_exceeding=exceeding[0] if exceeding else None,
                          outside={dtype_name: float(trace["outside"][after]) for dtype_name, trace in traces.items()})
    return {"rows": rows, "steps": steps, "after": after, "band": (float(low), float(high))}


# ---------------------------------------------------------------- timings (07)
def _timed(fn, device: torch.device, repeats: int) -> float:
    """The fastest of ``repeats`` calls, in seconds, after one warm-up call: the least disturbed by other load."""
    fn()  # warm-up (kernels, allocator)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def time_orthogonalization(sizes, device, repeats: int = 5, steps: int = 5, seed: int = 0) -> dict:
    """Seconds per call (fastest of ``repeats``) of ``newton_schulz`` (float32) and of
    ``torch.linalg.svd`` plus ``U @ Vh`` on square matrices of each size, on ``device``."""
    device = torch.device(device)
    result = {"device": str(device), "sizes": list(sizes), "newton_schulz": [], "svd": []}
    for n in sizes:
        G = torch.randn(n, n, generator=torch.Generator().manual_seed(seed)).to(device)
        svd_device = G.cpu() if device.type == "mps" else G  # no linalg.svd on MPS
        result["newton_schulz"].append(
            _timed(lambda G=G: orthogonal_updates.newton_schulz(G, steps=steps), device, repeats))

        def svd_polar(svd_device=svd_device):
            U, _, Vh = torch.linalg.svd(svd_device, full_matrices=False)
            return U @ Vh

        result["svd"].append(_timed(svd_polar, device, repeats))
    return result


def speed_verdicts(timing: dict, margin: float = 1.5) -> list[str]:
    """Per size: "Newton-Schulz faster" or "SVD faster" when one takes less than
    1/``margin`` of the other's time, else "about the same" (timings on a shared
    machine move by tens of percent from run to run)."""
    verdicts = []
    for t_ns, t_svd in zip(timing["newton_schulz"], timing["svd"]):
        if t_ns * margin < t_svd:
            verdicts.append("Newton-Schulz faster")
        elif t_svd * margin < t_ns:
            verdicts.append("SVD faster")
        else:
            verdicts.append("about the same")
    return verdicts
