"""The batched LR sweep gives the per-run loop's losses."""

import functools

import numpy as np
import pytest

from helpers import batched
from helpers.experiments import lr_sweep
from helpers.optimizers import MuonAdam, SimpleAdam, SimpleAdamMuP, SimpleShampoo

# Batched and single matrix products round differently in the last bit. Below a width's optimum
# the runs are stable and the two paths agree to 1e-5; at and above it training is on the edge of
# stability and those ulps grow over 100 steps (measured: 0.036 for width 4 at its best lr 0.1,
# 0.024 for width 8 at lr 0.1 with seed 5, 0.005 for muP at lr 3). The equality grid below stays in
# the stable regime; on the full course grids the best learning rates must be the same.


@pytest.mark.parametrize("optimizer, lrs", [
    (SimpleAdam, (0.0001, 0.001, 0.01)),
    (SimpleAdamMuP, (0.03, 0.3, 1.0)),
    (functools.partial(SimpleAdamMuP, input_mult=3.0), (0.3, 1.0)),
])
def test_batched_sweep_equals_the_loop(mnist_subset, optimizer, lrs, device):
    kwargs = dict(widths=(8, 64, 256), lrs=lrs, optimizer=optimizer, seeds=(4, 5), data=mnist_subset,
                  progress=False, device=device)
    loop = lr_sweep(batched=False, **kwargs)
    fast = lr_sweep(batched=True, **kwargs)
    assert np.isfinite(loop.losses).all()
    np.testing.assert_allclose(fast.losses, loop.losses, rtol=0, atol=1e-4)


@pytest.mark.parametrize("optimizer, lrs", [
    (SimpleAdam, (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)),
    (SimpleAdamMuP, (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)),
])
def test_batched_course_grid_picks_the_same_learning_rates(mnist_subset, optimizer, lrs):
    kwargs = dict(widths=(4, 8, 16, 32, 64, 128, 256), lrs=lrs, optimizer=optimizer, data=mnist_subset,
                  progress=False, device="cpu")
    loop, fast = lr_sweep(batched=False, **kwargs), lr_sweep(batched=True, **kwargs)
    assert np.array_equal(fast.best_lr, loop.best_lr)
    below_best = loop.lrs[None, None, :] < loop.best_lr[None, :, None]
    assert below_best.sum() >= 2 * len(loop.widths)
    np.testing.assert_allclose(fast.losses[below_best], loop.losses[below_best], rtol=0, atol=1e-4)


def test_diverged_runs_stay_diverged_and_do_not_disturb_the_others(mnist_subset):
    result = lr_sweep((256,), (0.003, 1.0), SimpleAdam, data=mnist_subset, progress=False, device="cpu",
                      batched=True)
    assert result.losses[0, 0, 1] > 10 and result.losses[0, 0, 0] < 1.0


def test_unsupported_optimizers_run_one_at_a_time(mnist_subset):
    assert batched.supports(SimpleAdam) and batched.supports(SimpleAdamMuP)
    assert not batched.supports(SimpleShampoo) and not batched.supports(MuonAdam)
    result = lr_sweep((8,), (0.01,), SimpleShampoo, steps=10, data=mnist_subset, progress=False, device="cpu")
    assert np.isfinite(result.losses).all()
    with pytest.raises(ValueError, match="no batched form"):
        lr_sweep((8,), (0.01,), SimpleShampoo, steps=10, data=mnist_subset, progress=False, batched=True)
    assert lr_sweep((8,), (0.01,), SimpleAdam, steps=10, data=mnist_subset, progress=False).losses.shape == (1, 1, 1)
