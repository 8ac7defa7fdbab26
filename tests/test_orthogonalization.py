"""The helpers behind notebooks 06-08: the update on the gradient's rank, Shampoo without
accumulation, steepest descent under the spectral norm, the quintic's range, the Newton-Schulz
trace, the timing verdicts, and the batched Muon sweep (equal to one run at a time)."""

import functools

import numpy as np
import pytest
import torch

from helpers import batched
from helpers.experiments import muon_lr_sweep, train_with_lr
from helpers.optimizers import MuonAdam
from helpers.orthogonal_updates import QUINTIC, newton_schulz, orthogonalize_svd
from helpers.orthogonalization import (
    RankShampoo,
    iterate_map,
    newton_schulz_trace,
    numerical_rank,
    polar_factor_on_rank,
    quintic_band,
    shampoo_without_accumulation,
    spectral_steepest_descent,
    speed_verdicts,
)


def low_rank(rows, cols, rank, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, rank, generator=g, dtype=dtype) @ torch.randn(rank, cols, generator=g, dtype=dtype))


@pytest.mark.parametrize("shape", [(30, 12), (12, 30), (20, 20)])
def test_shampoo_without_accumulation_is_the_polar_factor_on_the_rank(shape):
    G = low_rank(*shape, rank=5)
    assert numerical_rank(G) == 5
    P, Q = shampoo_without_accumulation(G), polar_factor_on_rank(G)
    torch.testing.assert_close(P, Q, rtol=0, atol=1e-8)
    s = torch.linalg.svdvals(P)
    torch.testing.assert_close(s[:5], torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-8)
    assert s[5:].abs().max() < 1e-8
    # the reduced SVD (float32 inside orthogonalize_svd) adds min(shape) - 5 unit directions
    extra = torch.linalg.matrix_norm(orthogonalize_svd(G) - Q) ** 2
    assert extra.item() == pytest.approx(min(shape) - 5, abs=1e-4)


def test_full_rank_polar_factor_is_the_reduced_svd():
    G = torch.randn(9, 14, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(shampoo_without_accumulation(G), orthogonalize_svd(G), rtol=0, atol=1e-6)


def test_rank_shampoo_first_step_is_u_r_v_r_t():
    layer = torch.nn.Linear(12, 30, bias=False).double()
    grad = low_rank(30, 12, rank=3, seed=2)
    before = layer.weight.detach().clone()
    layer.weight.grad = grad
    RankShampoo(layer.parameters(), lr=0.5).step()
    torch.testing.assert_close(before - layer.weight.detach(), 0.5 * polar_factor_on_rank(grad), rtol=0, atol=1e-10)


def test_u_v_t_beats_every_trial():
    G = torch.randn(15, 25, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    result = spectral_steepest_descent(G, trials=200, seed=0)
    assert result["inner"] == pytest.approx(result["nuclear"], rel=1e-12)
    assert result["best_trial"] < result["inner"]
    assert result["families"]["G"] == pytest.approx((G**2).sum().item() / torch.linalg.matrix_norm(G, ord=2).item())


def test_quintic_band_reports_both_ends_after_five_steps():
    band = quintic_band(QUINTIC, steps=5)
    low, high = band["settled"]
    after_low, after_high = band["after"]
    assert after_low >= low and after_high > high  # values above the settled band after 5 steps
    grid = np.geomspace(band["threshold"], 1, 500)
    values = iterate_map(QUINTIC, grid, 5)[-1]
    assert values.min() >= after_low - 1e-5 and values.max() <= after_high + 1e-5  # grids of different resolution
    assert band["peak"][1] == pytest.approx(1.2024, abs=1e-3)


def test_newton_schulz_trace_follows_the_scalar_map_in_float64():
    G = low_rank(40, 40, rank=10, seed=4)
    trace = newton_schulz_trace(G.float(), steps=3, coefficients=QUINTIC)
    assert trace["rank"] == 10
    assert max(trace["rounding_error"]) < 1e-5
    assert trace["outside"].max() < 1e-4


def test_speed_verdicts():
    timing = {"newton_schulz": [1.0, 1.0, 1.0], "svd": [2.0, 1.2, 0.5]}
    assert speed_verdicts(timing) == ["Newton-Schulz faster", "about the same", "SVD faster"]


# ---------------------------------------------------------------- the batched Muon sweep
@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (6, 6)])
def test_batched_newton_schulz_is_newton_schulz_per_matrix(shape):
    G = torch.randn(4, *shape, generator=torch.Generator().manual_seed(5))
    fast = batched.batched_newton_schulz(G, 5, QUINTIC)
    for i in range(4):
        torch.testing.assert_close(fast[i], newton_schulz(G[i]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale", ["spectral", "keller", "moonlight"])
def test_batched_muon_sweep_equals_the_loop(mnist_subset, scale):
    hiddens, lrs, seeds = (8, 24, 8), (0.03, 0.3), (4, 5)
    sweep = muon_lr_sweep((24,), lrs, hiddens=lambda w: (8, w, 8), scale=scale, seeds=seeds, steps=30,
                          data=mnist_subset, progress=False, device="cpu")
    loop = np.array([[train_with_lr(hiddens, functools.partial(MuonAdam, scale=scale), lr, steps=30, seed=s,
                                    data=mnist_subset, device="cpu") for lr in lrs] for s in seeds])
    np.testing.assert_allclose(sweep.losses[:, 0, :], loop, rtol=0, atol=1e-5)
