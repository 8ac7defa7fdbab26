"""The batched LR sweep gives the per-run loop's losses; StackedAdam is SimpleAdam."""

import functools

import numpy as np
import pytest
import torch

from helpers import batched
from helpers.experiments import lr_sweep
from helpers.models import MLP, TP5MLP, ScaledMLP
from helpers.optimizers import MuonAdam, SimpleAdam, SimpleAdamMuP, SimpleShampoo, adam_direction

# Batched and single matrix products (and the fused and op-by-op Adam) round differently in the
# last bit. Below a width's optimum the runs are stable and the two paths agree to 1e-5; at and
# above it training is on the edge of stability and those ulps grow over 100 steps (measured: 0.11
# for width 4 at lr 0.1, 3.5 for width 64 at lr 1.0, where the loss is 8). The equality grid stays
# in the stable regime; on the full course grids the best learning rates must agree up to a near-tie.

VARIANTS = {
    "ZI+BC": SimpleAdam,
    "ZI only": functools.partial(SimpleAdam, bias_correction=False),
    "BC only": functools.partial(SimpleAdam, zero_init=False),
    "neither": functools.partial(SimpleAdam, bias_correction=False, zero_init=False),
}


# The switches and Muon's stacking do not depend on the width: those cases stop at 64 (the loop
# at width 256 is most of this file's time).
@pytest.mark.parametrize("optimizer, lrs, widths", [
    (SimpleAdam, (0.0001, 0.001, 0.01), (8, 64, 256)),
    (SimpleAdamMuP, (0.03, 0.1, 0.3), (8, 64, 256)),
    (functools.partial(SimpleAdamMuP, input_mult=3.0), (0.3, 1.0), (8, 64)),
    (functools.partial(SimpleAdam, b1=0.95, b2=0.95, zero_init=False), (0.0003, 0.003), (8, 64)),
    (VARIANTS["ZI only"], (0.0001, 0.001), (8, 64)),
    (functools.partial(MuonAdam, scale="spectral"), (0.03, 0.1), (8, 64)),
    (functools.partial(MuonAdam, scale="moonlight", nesterov=False), (0.03, 0.1), (16, 64)),
])
def test_batched_sweep_equals_the_loop(mnist_subset, optimizer, lrs, widths, device):
    kwargs = dict(widths=widths, lrs=lrs, optimizer=optimizer, seeds=(4, 5), data=mnist_subset,
                  progress=False, device=device)
    loop = lr_sweep(batched=False, **kwargs)
    fast = lr_sweep(batched=True, **kwargs)
    assert (loop.mode, fast.mode) == ("one run at a time", "batched over lrs and seeds")
    assert np.isfinite(loop.losses).all()
    np.testing.assert_allclose(fast.losses, loop.losses, rtol=0, atol=1e-4)


def test_batched_sweep_equals_the_loop_for_tp5_mup(mnist_subset, device):
    """TP5's muP: its readout rate comes through ``layer_lr`` and its readout init through ``mlp``
    (``TP5MLP``, the course MLP's forward pass), so the stacked sweep runs it and gives the loop's
    losses; a model with another forward pass runs one model at a time."""
    kwargs = dict(widths=(8, 32), lrs=(0.3, 1.0), optimizer=functools.partial(SimpleAdamMuP, readout="tp5"),
                  mlp=TP5MLP, seeds=(4, 5), data=mnist_subset, progress=False, device=device)
    loop = lr_sweep(batched=False, **kwargs)
    fast = lr_sweep(batched=True, **kwargs)
    assert (loop.mode, fast.mode) == ("one run at a time", "batched over lrs and seeds")
    assert np.isfinite(loop.losses).all()
    np.testing.assert_allclose(fast.losses, loop.losses, rtol=0, atol=1e-4)
    assert batched.supports_model(TP5MLP) and not batched.supports_model(ScaledMLP)
    assert not batched.supports_model(functools.partial(MLP, bias=False))
    other = lr_sweep((8,), (0.01,), SimpleAdam, mlp=functools.partial(ScaledMLP, output_mult=0.1), steps=5,
                     data=mnist_subset, progress=False, device="cpu")
    assert other.mode == "one run at a time: no batched form of this model" and np.isfinite(other.losses).all()


@pytest.mark.parametrize("optimizer, lrs", [
    (SimpleAdam, (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)),
    (SimpleAdamMuP, (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)),
])
def test_batched_course_grid_picks_the_same_learning_rates(mnist_subset, optimizer, lrs):
    """Notebook 05's grid of rates at its narrowest, a middle and its widest width (make bench times
    all seven): the batched sweep picks the loop's rates."""
    kwargs = dict(widths=(4, 32, 256), lrs=lrs, optimizer=optimizer, data=mnist_subset,
                  progress=False, device="cpu")
    loop, fast = lr_sweep(batched=False, **kwargs), lr_sweep(batched=True, **kwargs)
    below_best = loop.lrs[None, None, :] < loop.best_lr[None, :, None]
    assert below_best.sum() >= 2 * len(loop.widths)
    np.testing.assert_allclose(fast.losses[below_best], loop.losses[below_best], rtol=0, atol=1e-4)
    # Where the picks differ, the batched pick is a neighbour on the grid that the loop itself
    # scores within 0.02 of its best: a near-tie decided by chaotic last-bit differences.
    picked = np.searchsorted(loop.lrs, fast.best_lr)
    best = np.searchsorted(loop.lrs, loop.best_lr)
    assert (np.abs(picked - best) <= 1).all()
    loop_loss_of_pick = loop.mean_losses[np.arange(len(loop.widths)), picked]
    assert (loop_loss_of_pick - loop.best_loss <= 0.02).all()
    assert (picked == best).sum() >= len(loop.widths) - 1


@pytest.mark.parametrize("name", list(VARIANTS))
def test_stacked_adam_is_simple_adam_for_every_run_and_layer(name, device):
    """50 steps of random gradients on 3 stacked runs with a different rate for every run and
    parameter: StackedAdam against adam_direction applied run by run, to 1e-6 of the distance moved."""
    optimizer = VARIANTS[name]
    group = optimizer([torch.nn.Parameter(torch.ones(1))], lr=1.0).param_groups[0]
    generator = torch.Generator().manual_seed(0)
    shapes = [(3, 5, 7), (3, 5), (3, 2, 5)]
    start = [torch.randn(shape, generator=generator).to(device) for shape in shapes]
    rates = [[0.01, 0.02, 0.003], [0.1, 0.5, 1e-4], [1.0, 0.03, 0.3]]
    stacked = [p.clone() for p in start]
    reference = [p.clone() for p in start]
    states = [[{} for _ in shapes] for _ in rates]
    adam = batched.StackedAdam(stacked, rates, {key: group[key] for key in ("b1", "b2", "bias_correction",
                                                                            "zero_init")})
    for _ in range(50):
        scales = [10 ** torch.randint(-4, 1, (), generator=generator) for _ in shapes]
        grads = [torch.randn(shape, generator=generator).to(device) * scale for shape, scale in zip(shapes, scales)]
        adam.step(grads)
        for run in range(3):
            for j, g in enumerate(grads):
                direction = adam_direction(states[run][j], g[run], group["b1"], group["b2"],
                                           bias_correction=group["bias_correction"], zero_init=group["zero_init"])
                reference[j][run] -= rates[run][j] * direction
    for p, ref, p0 in zip(stacked, reference, start):
        moved = (ref - p0).abs().max()
        assert moved > 0
        assert (p - ref).abs().max() <= 1e-6 * moved


def test_strided_gradients_are_applied_entry_by_entry():
    """PyTorch's fused CPU Adam reads a strided gradient as if it were contiguous; StackedAdam
    must not pass it one. A transposed gradient of mixed signs shows any mix-up: the first step
    of Adam is -rate * sign(g), entry by entry."""
    g = torch.randn(2, 4, 3).transpose(1, 2)  # [2, 3, 4], not contiguous
    assert not g.is_contiguous()
    p = torch.zeros(2, 3, 4)
    batched.StackedAdam([p], [[0.1], [0.2]], dict(b1=0.9, b2=0.999, bias_correction=True, zero_init=True)).step([g])
    expected = -torch.tensor([0.1, 0.2]).view(2, 1, 1) * g.sign()
    torch.testing.assert_close(p, expected, rtol=1e-5, atol=1e-7)


def test_diverged_runs_stay_diverged_and_do_not_disturb_the_others(mnist_subset):
    result = lr_sweep((256,), (0.003, 1.0), SimpleAdam, data=mnist_subset, progress=False, device="cpu")
    assert result.mode.startswith("batched")
    assert result.losses[0, 0, 1] > 10 and result.losses[0, 0, 0] < 1.0


def test_unsupported_optimizers_fall_back_to_one_run_at_a_time(mnist_subset, capsys):
    assert batched.supports(SimpleAdam) and batched.supports(SimpleAdamMuP) and batched.supports(MuonAdam)

    class MuonAdamVariant(MuonAdam):  # a changed step has no stacked form
        def update_parameter(self, p, group):
            super().update_parameter(p, group)

    assert not batched.supports(SimpleShampoo) and not batched.supports(MuonAdamVariant)
    result = lr_sweep((8,), (0.01,), SimpleShampoo, steps=10, data=mnist_subset, progress=True, device="cpu")
    assert np.isfinite(result.losses).all()
    assert result.mode == "one run at a time: no batched form of this optimizer"
    assert "no batched form" in capsys.readouterr().err  # the note in the progress bar
    forced = lr_sweep((8,), (0.01,), SimpleAdam, steps=10, data=mnist_subset, progress=False, batched=False)
    assert forced.mode == "one run at a time" and forced.losses.shape == (1, 1, 1)
    with pytest.raises(ValueError, match="at least 5 steps"):
        lr_sweep((8,), (0.01,), SimpleAdam, steps=4, data=mnist_subset, progress=False)
