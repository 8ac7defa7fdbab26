"""The facts the notebooks rely on, pinned on the subset data and run on every
available device. Each would fail on one of the classic mistakes listed in
shared/seeds/README.md."""

import functools
import math

import numpy as np
import pytest
import torch

from helpers.experiments import (
    lr_sweep,
    norm_correlations,
    step_anatomy,
    step_gap,
    train_one_step,
    train_one_step_matrices,
    train_with_lr,
)
from helpers.models import MLP, TP5_BASE_WIDTH, TP5MLP, ScaledMLP
from helpers.norms import entrywise_rms, frobenius_norm, rms_to_rms_norm, spectral_norm
from helpers.optimizers import ScaledSimpleShampoo, SimpleAdam, SimpleAdamMuP, SimpleShampoo

COURSE_HIDDENS = (8, 16, 64, 64, 64, 256, 256, 1024)
DOUBLING_HIDDENS = (8, 16, 32, 64, 128, 256, 512, 1024)
WIDTHS = (4, 8, 16, 32, 64, 128, 256)
ADAM_LRS = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
MUP_LRS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


# 1. Activation deltas under Adam track the fan-in of the producing layer.
def test_adam_deltas_track_fan_in(mnist_subset, device):
    result = train_one_step(hiddens=COURSE_HIDDENS, lr=0.01, data=mnist_subset, device=device, plot=False)
    assert result.fan_ins.tolist() == [8, 16, 64, 64, 64, 256, 256]
    assert result.widths.tolist() == [16, 64, 64, 64, 256, 256, 1024]
    deltas = result.rms_deltas
    from_fan_in_16 = deltas[result.fan_ins == 16][0]
    assert (deltas[result.fan_ins == 256] >= 3 * from_fan_in_16).all()
    # Width alone does not explain it: the two width-256 activations differ 3x (fan-in 64 vs 256).
    assert deltas[5] > 2.5 * deltas[4]


def test_step_anatomy_takes_the_step_of_train_one_step_apart(mnist_subset):
    whole = step_anatomy(hiddens=COURSE_HIDDENS, lr=0.01, data=mnist_subset)
    assert np.allclose(whole.total, train_one_step(hiddens=COURSE_HIDDENS, lr=0.01, data=mnist_subset,
                                                   plot=False).rms_deltas)
    assert whole.fan_ins.tolist() == [8, 16, 64, 64, 64, 256, 256] and "inherited" in whole.table()
    assert np.all((0 < whole.alignment) & (whole.alignment <= 1 + 1e-6))

    def only_layer_1(params, lr):  # steps the weight and bias of the layer that produces activation 0
        return SimpleAdam(list(params)[2:4], lr=lr)

    alone = step_anatomy(hiddens=COURSE_HIDDENS, optimizer=only_layer_1, lr=0.01, data=mnist_subset)
    assert alone.own[0] == pytest.approx(alone.total[0]) and alone.inherited[0] == 0
    assert np.all(alone.own[1:] == 0) and alone.own[0] == pytest.approx(whole.own[0])
    # the first Adam step is lr * sign(G): a sign pattern constant along every row makes the alignment 1
    assert whole.alignment[-1] == pytest.approx(1, abs=1e-3)
    # lr 2 * sqrt(fan_in) per weight (notebook 03's tempting rule) pushes the sigmoids to 0 or 1; the
    # course's muP rate does not
    class LargeSteps(SimpleAdamMuP):
        def layer_lr(self, group, p):
            role = self.roles[id(p)]
            return super().layer_lr(group, p) if role in ("output", "bias") else group["lr"] * p.shape[1] ** 0.5

    saturating = step_anatomy(hiddens=COURSE_HIDDENS, optimizer=LargeSteps, lr=2.0, data=mnist_subset)
    mup = step_anatomy(hiddens=COURSE_HIDDENS, optimizer=SimpleAdamMuP, lr=2.0, data=mnist_subset)
    assert saturating.saturated_before.max() == mup.saturated_before.max() == 0
    assert saturating.saturated_after.min() > 0.9 and mup.saturated_after.max() == 0


def test_held_out_deltas_and_step_gap(mnist_subset):
    plain = train_one_step(hiddens=COURSE_HIDDENS, lr=0.01, data=mnist_subset, plot=False)
    both = train_one_step(hiddens=COURSE_HIDDENS, lr=0.01, data=mnist_subset, plot=False, held_out=True)
    assert plain.held_out_deltas is None and np.array_equal(plain.rms_deltas, both.rms_deltas)
    # other images, the same step: the same sizes, not the same numbers
    assert both.held_out_deltas.shape == both.rms_deltas.shape
    assert not np.allclose(both.held_out_deltas, both.rms_deltas)
    assert np.allclose(both.held_out_deltas, both.rms_deltas, rtol=0.5)
    same = step_gap(SimpleAdam, SimpleAdam, COURSE_HIDDENS, lr=0.01, data=mnist_subset)
    assert set(same) == {"batch", "held_out"} and all(np.all(v == 0) for v in same.values())
    other = step_gap(SimpleAdam, SimpleAdamMuP, COURSE_HIDDENS, lr=0.01, data=mnist_subset)
    assert all(np.all(v > 0.1) for v in other.values())  # plain Adam and muP take different steps


# 2. The first Adam step is -lr * sign(g): entrywise RMS = lr, RMS->RMS ~ lr * fan_in.
def test_first_adam_step_norms(mnist_subset, device):
    lr = 0.01
    torch.manual_seed(0)
    model = MLP(hidden_sizes=COURSE_HIDDENS).to(device)
    images, labels = mnist_subset[0][0][:64].to(device), mnist_subset[0][1][:64].to(device)
    old = [p.detach().clone() for p in model.parameters()]
    opt = SimpleAdam(model.parameters(), lr=lr)
    torch.nn.functional.cross_entropy(model(images)[0], labels).backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    opt.step()
    for p, o, g in zip(model.parameters(), old, grads):
        # m_hat = g and v_hat = g^2, so the step is -lr * g / (|g| + 1e-16): sign(g) up to that epsilon
        # (a 1.5e-13 gradient entry steps 0.9993 lr, not lr).
        assert torch.allclose(p.detach() - o, -lr * g / (g.abs() + 1e-16), atol=1e-8)
        assert torch.allclose(p.detach() - o, -lr * torch.sign(g), atol=1e-5)
    hidden = [(p.detach() - o, g) for p, o, g in zip(model.parameters(), old, grads) if p.ndim == 2][1:-1]
    for delta, grad in hidden:
        # rel 1e-3, not exact: a gradient entry below ~1e-19 has a denormal g^2 in float32 and steps < lr.
        nonzero = (grad != 0).float().mean().item()
        assert entrywise_rms(delta) == pytest.approx(lr * math.sqrt(nonzero), rel=1e-3)
        if nonzero == 1.0:
            assert entrywise_rms(delta) == pytest.approx(lr, rel=1e-3)
        fan_in = delta.shape[1]
        assert rms_to_rms_norm(delta) == pytest.approx(lr * fan_in, rel=0.10)


def brute_force_rms_to_rms(A: torch.Tensor, trials: int = 256, power_steps: int = 30) -> float:
    """max over random inputs x (each refined by power iteration) of RMS(Ax)/RMS(x)."""
    gen = torch.Generator().manual_seed(0)
    A = A.detach().cpu().double()
    x = torch.randn(A.shape[1], trials, generator=gen, dtype=torch.float64)
    best = 0.0
    for _ in range(power_steps + 1):
        ratio = (A @ x).square().mean(0).sqrt() / x.square().mean(0).sqrt()
        best = max(best, ratio.max().item())
        x = A.T @ (A @ x)
        x = x / x.norm(dim=0, keepdim=True)
    return best


@pytest.mark.parametrize("shape", [(16, 8), (64, 16), (256, 64), (10, 1024), (1024, 256)])
def test_rms_to_rms_norm_is_the_induced_norm(shape):
    gen = torch.Generator().manual_seed(1)
    A = torch.sign(torch.randn(shape, generator=gen)) + 0.5 * torch.randn(shape, generator=gen)
    induced = rms_to_rms_norm(A)
    brute = brute_force_rms_to_rms(A)
    assert brute <= induced * (1 + 1e-6)
    assert brute >= induced * 0.999
    # The classic wrong answers are different numbers whenever the matrix is not square.
    if shape[0] != shape[1]:
        assert abs(spectral_norm(A) - induced) > 0.1 * induced
    assert abs(entrywise_rms(A) - induced) > 0.1 * induced


def test_norm_definitions_on_a_known_matrix():
    A = torch.diag(torch.tensor([3.0, 4.0]))
    A = torch.cat([A, torch.zeros(2, 2)], dim=1)  # (fan_out 2, fan_in 4)
    assert frobenius_norm(A) == pytest.approx(5.0)
    assert spectral_norm(A) == pytest.approx(4.0)
    assert rms_to_rms_norm(A) == pytest.approx(math.sqrt(4 / 2) * 4.0)
    assert entrywise_rms(A) == pytest.approx(5.0 / math.sqrt(8))


def test_rms_to_rms_norm_wins_the_correlation(mnist_subset):
    matrices = train_one_step_matrices(data=mnist_subset, plot=False)
    deltas = train_one_step(data=mnist_subset, plot=False)
    corr = norm_correlations(matrices, deltas)
    assert corr["rms_to_rms"] > 0.95
    assert corr["rms_to_rms"] > max(corr["frobenius"], corr["spectral"]) + 0.03
    assert not corr["entrywise_rms"] > 0.5  # constant (NaN) or uncorrelated
    assert matrices.shapes[0] == (8, 784) and matrices.shapes[-1] == (10, 1024)


# 3. muP by per-layer learning rates: flat deltas.
@pytest.mark.parametrize("hiddens", [COURSE_HIDDENS, DOUBLING_HIDDENS])
def test_mup_deltas_are_flat(mnist_subset, device, hiddens):
    result = train_one_step(optimizer=SimpleAdamMuP, lr=2.0, hiddens=hiddens, data=mnist_subset, device=device,
                            plot=False)
    assert result.rms_deltas.max() / result.rms_deltas.min() <= 1.4


def test_mup_learning_rates_use_fan_in_not_shape_order():
    # A Linear weight is stored (fan_out, fan_in); `d_in, d_out = p.shape` swaps them.
    model = MLP(input_size=30, hidden_sizes=(12, 48, 20), num_classes=7)
    opt = SimpleAdamMuP(model.parameters(), lr=2.0, input_mult=10.0, bias_mult=0.01, output_lr=0.003)
    group = opt.param_groups[0]
    weights = [layer.weight for layer in model.layers]
    assert opt.layer_lr(group, weights[0]) == pytest.approx(2.0 * 10 / 30)
    assert opt.layer_lr(group, weights[1]) == pytest.approx(2.0 / 12)  # shape (48, 12)
    assert opt.layer_lr(group, weights[2]) == pytest.approx(2.0 / 48)  # shape (20, 48)
    assert opt.layer_lr(group, weights[3]) == pytest.approx(0.003)  # readout, not found by size 10
    assert opt.layer_lr(group, model.layers[1].bias) == pytest.approx(2.0 * 0.01)


def test_mup_roles_can_be_given_explicitly():
    model = MLP(hidden_sizes=(16, 16))
    groups = [
        {"params": [model.layers[2].weight], "role": "output"},
        {"params": [model.layers[0].weight], "role": "input"},
        {"params": [model.layers[1].weight], "role": "hidden"},
        {"params": [layer.bias for layer in model.layers], "role": "bias"},
    ]
    opt = SimpleAdamMuP(groups, lr=1.0)
    assert opt.layer_lr(opt.param_groups[0], model.layers[2].weight) == pytest.approx(0.003)
    assert opt.layer_lr(opt.param_groups[1], model.layers[0].weight) == pytest.approx(10 / 784)
    with pytest.raises(ValueError, match="role"):
        SimpleAdamMuP([{"params": [model.layers[0].weight], "role": "embedding"}])


# 4. Per-layer multipliers reproduce muP exactly.
@pytest.mark.parametrize("width", [16, 64, 256])
def test_tp5_readout_rate_and_init_follow_table_3(width):
    """TP5's muP for Adam (Tensor Programs V, Table 3): the readout's rate scales as 1/n and its
    initial variance as 1/n^2 (n: its fan-in), equal to the course's at n = base_width; every other
    layer keeps the course's rule and init."""
    base = TP5_BASE_WIDTH
    torch.manual_seed(0)
    plain = MLP(input_size=30, hidden_sizes=(12, width), num_classes=7)
    torch.manual_seed(0)
    tp5 = TP5MLP(input_size=30, hidden_sizes=(12, width), num_classes=7)
    course = SimpleAdamMuP(plain.parameters(), lr=2.0)
    opt = SimpleAdamMuP(tp5.parameters(), lr=2.0, readout="tp5")
    for p_course, p_tp5 in zip(plain.parameters(), tp5.parameters()):
        rate = opt.layer_lr(opt.param_groups[0], p_tp5)
        if p_tp5 is tp5.layers[-1].weight:
            assert rate == pytest.approx(0.003 * base / width)
            torch.testing.assert_close(p_tp5, p_course * math.sqrt(base / width))
        else:
            assert rate == course.layer_lr(course.param_groups[0], p_course)
            assert torch.equal(p_tp5, p_course)
    # the variance: the standard init's 1/(3 n), times base / n
    big = TP5MLP(hidden_sizes=(8, 4096)).layers[-1].weight
    assert big.var().item() == pytest.approx(base / (3 * 4096 ** 2), rel=0.05)


def test_tp5_mup_is_the_course_mup_at_the_base_width(mnist_subset):
    """At n = base_width TP5's readout is the course's (the same rate and init, bit for bit), so
    a sweep there gives the course's losses exactly; at other widths the readout differs."""
    for width, same in ((16, True), (32, False)):
        kwargs = dict(widths=(width,), lrs=(0.3, 1.0), seeds=(4,), steps=10, data=mnist_subset, progress=False,
                      device="cpu")
        course = lr_sweep(optimizer=SimpleAdamMuP, **kwargs)
        tp5 = lr_sweep(optimizer=functools.partial(SimpleAdamMuP, readout="tp5", base_width=16),
                       mlp=functools.partial(TP5MLP, base_width=16), **kwargs)
        assert np.array_equal(course.losses, tp5.losses) == same


def test_tp5_options_are_checked():
    model = MLP(hidden_sizes=(8, 8))
    with pytest.raises(ValueError, match="readout"):
        SimpleAdamMuP(model.parameters(), readout="mup")
    for bad in (0, 64.0, True):
        with pytest.raises(ValueError, match="base_width"):
            SimpleAdamMuP(model.parameters(), readout="tp5", base_width=bad)
        with pytest.raises(ValueError, match="base_width"):
            TP5MLP(hidden_sizes=(8, 8), base_width=bad)


def test_scaled_mlp_matches_mup_at_init(mnist_subset):
    torch.manual_seed(3)
    plain = MLP(hidden_sizes=(16, 32, 64), bias=False)
    torch.manual_seed(3)
    scaled = ScaledMLP(hidden_sizes=(16, 32, 64))
    x = mnist_subset[0][0][:8]
    assert scaled.multipliers == pytest.approx((10 / 784, 1 / 16, 1 / 32, 1.0))  # one per layer, readout 1
    assert torch.allclose(plain(x)[0], scaled(x)[0], rtol=1e-5, atol=1e-6)
    for w_plain, w_eff in zip([layer.weight for layer in plain.layers], scaled.effective_weights()):
        assert torch.allclose(w_plain, w_eff, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("hiddens", [COURSE_HIDDENS, DOUBLING_HIDDENS])
def test_scaled_mlp_with_adam_equals_mup_deltas(mnist_subset, device, hiddens):
    mup = train_one_step(mlp=lambda hidden_sizes: MLP(hidden_sizes=hidden_sizes, bias=False),
                         optimizer=SimpleAdamMuP, lr=2.0, hiddens=hiddens, data=mnist_subset, device=device,
                         plot=False)
    scaled = train_one_step(mlp=ScaledMLP, optimizer=SimpleAdam, lr=2.0, hiddens=hiddens, data=mnist_subset,
                            device=device, plot=False)
    np.testing.assert_allclose(scaled.rms_deltas, mup.rms_deltas, rtol=1e-5)
    assert scaled.rms_deltas.max() / scaled.rms_deltas.min() <= 1.4


def test_scaled_mlp_effective_weights_follow_mup_for_several_steps(mnist_subset, device):
    lr, hiddens = 0.5, (16, 32, 64)
    torch.manual_seed(5)
    plain = MLP(hidden_sizes=hiddens, bias=False).to(device)
    torch.manual_seed(5)
    scaled = ScaledMLP(hidden_sizes=hiddens).to(device)
    opt_plain = SimpleAdamMuP(plain.parameters(), lr=lr, output_lr=lr)
    opt_scaled = SimpleAdam(scaled.parameters(), lr=lr)
    (images, labels), _ = mnist_subset
    for step in range(5):
        x, y = images[64 * step: 64 * (step + 1)].to(device), labels[64 * step: 64 * (step + 1)].to(device)
        for model, opt in ((plain, opt_plain), (scaled, opt_scaled)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x)[0], y).backward()
            opt.step()
    for w_plain, w_eff in zip([layer.weight for layer in plain.layers], scaled.effective_weights()):
        assert torch.allclose(w_plain, w_eff, rtol=1e-4, atol=1e-6)


def test_scaled_mlp_without_init_compensation_would_differ(mnist_subset):
    # The seeds' wrong answer: multiply outputs, keep the init. Then the forward pass changes.
    torch.manual_seed(3)
    scaled = ScaledMLP(hidden_sizes=(16, 32))
    x = mnist_subset[0][0][:8]
    with torch.no_grad():
        for layer, m in zip(scaled.layers, scaled.multipliers):
            layer.weight.mul_(m)  # undo the compensation
    torch.manual_seed(3)
    plain = MLP(hidden_sizes=(16, 32), bias=False)
    assert not torch.allclose(plain(x)[0], scaled(x)[0], atol=1e-3)


# 5. Learning-rate transfer across widths (the course grids, 100 steps, seed 4).
@pytest.fixture(scope="module")
def sweeps(mnist_subset):
    adam = lr_sweep(WIDTHS, ADAM_LRS, SimpleAdam, data=mnist_subset, progress=False, device="cpu")
    mup = lr_sweep(WIDTHS, MUP_LRS, SimpleAdamMuP, data=mnist_subset, progress=False, device="cpu")
    return adam, mup


def test_mup_learning_rate_transfers(sweeps):
    _, mup = sweeps
    values, counts = np.unique(mup.best_lr, return_counts=True)
    assert counts.max() >= 5, f"best lr per width: {mup.best_lr}"
    assert mup.mean_losses[-1].min() <= 1.0  # width 256: well below chance (ln 10 = 2.3) on held-out images


def test_adam_learning_rate_shrinks_with_width(sweeps):
    adam, _ = sweeps
    assert adam.best_lr[0] / adam.best_lr[-1] >= 10, f"best lr per width: {adam.best_lr}"


def test_sweep_records_divergence_and_continues(sweeps):
    adam, _ = sweeps
    assert adam.losses.shape == (1, len(WIDTHS), len(ADAM_LRS))
    assert adam.losses[0, -1, -1] > 5  # width 256 at lr 1.0 blows up, the sweep goes on
    assert np.isfinite(adam.losses[0, :, :5]).all()


def test_sweep_figures_explain_the_crosses_and_keep_the_legend_off_the_data(sweeps):
    """A cross marks a loss of DIVERGED_LOSS or more (or a run that diverged), drawn at that loss:
    the legend says so, sits below the panels, and the learning-rate axis has a labelled tick at
    every rate of the grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.plotting import DIVERGED_LOSS, plot_sweeps

    adam, mup = sweeps
    for fig in (adam.plot(), plot_sweeps([adam, mup])):
        fig.canvas.draw()
        legend = fig.axes[0].get_legend() or fig.legends[0]
        labels = [text.get_text() for text in legend.get_texts()]
        assert any(label.startswith("x:") and f"{DIVERGED_LOSS:g}" in label for label in labels), labels
        assert not any(legend.get_window_extent().overlaps(ax.get_window_extent()) for ax in fig.axes)
        assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [f"{lr:g}" for lr in adam.lrs]
        plt.close(fig)


def test_train_with_lr_is_deterministic(mnist_subset):
    a = train_with_lr((32, 32, 32), SimpleAdam, 0.01, steps=20, data=mnist_subset, device="cpu")
    b = train_with_lr((32, 32, 32), SimpleAdam, 0.01, steps=20, data=mnist_subset, device="cpu")
    c = train_with_lr((32, 32, 32), SimpleAdam, 0.01, steps=20, seed=5, data=mnist_subset, device="cpu")
    assert a == b and a != c


def test_multi_seed_sweep_takes_best_lr_from_the_mean(mnist_subset):
    result = lr_sweep((16,), (0.003, 0.03), SimpleAdam, seeds=(0, 1, 2), steps=20, data=mnist_subset,
                      progress=False, device="cpu")
    assert result.losses.shape == (3, 1, 2)
    expected = result.lrs[np.argmin(result.losses.mean(axis=0)[0])]
    assert result.best_lr[0] == expected


# 6. Shampoo: spectral norm lr; ScaledSimpleShampoo: RMS->RMS norm lr.
def test_shampoo_update_norms(mnist_subset, device):
    lr = 0.01
    result = train_one_step_matrices(optimizer=SimpleShampoo, lr=lr, data=mnist_subset, device=device, plot=False)
    np.testing.assert_allclose(result.spectral, lr, rtol=1e-4)
    expected_frobenius = [lr * math.sqrt(min(shape)) for shape in result.shapes]
    np.testing.assert_allclose(result.frobenius, expected_frobenius, rtol=1e-4)


def test_scaled_shampoo_equalises_rms_to_rms(mnist_subset, device):
    lr = 0.01
    result = train_one_step_matrices(optimizer=ScaledSimpleShampoo, lr=lr, data=mnist_subset, device=device,
                                     plot=False)
    np.testing.assert_allclose(result.rms_to_rms, lr, rtol=1e-4)
    # ...while the plain Shampoo's RMS->RMS norms differ by shape.
    plain = train_one_step_matrices(optimizer=SimpleShampoo, lr=lr, data=mnist_subset, device=device, plot=False)
    assert plain.rms_to_rms.max() / plain.rms_to_rms.min() > 10


def test_shampoo_runs_several_steps_without_missing_state():
    torch.manual_seed(0)
    model = MLP(input_size=20, hidden_sizes=(8, 8), num_classes=3)
    opt = SimpleShampoo(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 20), torch.randint(0, 3, (16,))
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x)[0], y).backward()
        opt.step()
    assert all(opt.state[p]["step"] == 3 for p in model.parameters())


# 8. Bad input gets a clear error.
@pytest.mark.parametrize("hiddens", [(64,), ()])
def test_too_few_hidden_layers(hiddens):
    with pytest.raises(ValueError, match="at least two hidden layers"):
        MLP(hidden_sizes=hiddens)


@pytest.mark.parametrize("hiddens", [(8, 0), (8, -3), (8, 2.5)])
def test_bad_widths(hiddens):
    with pytest.raises(ValueError, match="positive integer"):
        MLP(hidden_sizes=hiddens)


@pytest.mark.parametrize("optimizer", [SimpleAdam, SimpleAdamMuP, SimpleShampoo, ScaledSimpleShampoo])
@pytest.mark.parametrize("lr", [0, -0.1, float("nan")])
def test_non_positive_lr(optimizer, lr):
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        optimizer(MLP(hidden_sizes=(8, 8)).parameters(), lr=lr)


def test_non_positive_lr_in_experiments(mnist_subset):
    with pytest.raises(ValueError, match="> 0"):
        train_with_lr(lr=0.0, data=mnist_subset)
    with pytest.raises(ValueError, match="> 0"):
        lr_sweep((8,), (0.1, -1.0), data=mnist_subset, progress=False)


def test_empty_width_list(mnist_subset):
    with pytest.raises(ValueError, match="widths is empty"):
        lr_sweep((), (0.1,), data=mnist_subset, progress=False)
    with pytest.raises(ValueError, match="lrs is empty"):
        lr_sweep((8,), (), data=mnist_subset, progress=False)


@pytest.mark.parametrize("optimizer", [SimpleAdamMuP, SimpleShampoo, ScaledSimpleShampoo])
def test_parameters_with_more_than_two_dims(optimizer):
    conv = torch.nn.Conv2d(1, 4, 3)
    with pytest.raises(ValueError, match=r"shape \(4, 1, 3, 3\)"):
        optimizer(conv.parameters(), lr=0.1)


# ---------------------------------------------------------------- the validation loss is held out
def _batches_used(n_train: int, steps: int, seed: int, batch_size: int = 64) -> set[int]:
    from helpers.experiments import sample_indices

    generator = torch.Generator().manual_seed(seed)
    return {int(i) for _ in range(steps) for i in sample_indices(n_train, batch_size, generator)}


def test_the_validation_loss_is_measured_on_held_out_images_only(mnist_subset):
    from helpers.experiments import training_curve

    (train_x, train_y), (held_x, held_y) = mnist_subset
    steps, seed = 5, 3
    run = dict(hiddens=(16, 16), optimizer=SimpleAdam, lr=0.01, steps=steps, seed=seed, device="cpu")
    base = training_curve(data=mnist_subset, **run)
    # training images that no batch drew: changing them changes nothing
    unused = sorted(set(range(len(train_x))) - _batches_used(len(train_x), steps, seed))
    assert len(unused) > 100
    other_train = train_x.clone()
    other_train[unused] = torch.rand_like(other_train[unused])
    assert np.array_equal(training_curve(data=((other_train, train_y), (held_x, held_y)), **run), base)
    # the held-out images: changing them changes the validation loss
    other_held = torch.rand_like(held_x)
    assert not np.allclose(training_curve(data=((train_x, train_y), (other_held, held_y)), **run), base)


def test_train_with_lr_evaluates_only_the_last_five_steps_and_gets_the_full_curves_tail(mnist_subset):
    """Skipping the early validation passes changes no loss: train_with_lr is the mean of the last 5
    points of the curve that evaluates after every step (a non-batched optimizer, as lr_sweep runs it)."""
    from helpers.experiments import train_model, training_curve

    run = dict(hiddens=(16, 16, 16), optimizer=SimpleShampoo, lr=0.1, steps=12, seed=3, data=mnist_subset,
               device="cpu")
    full = training_curve(**run)
    tail = train_model(**run, evaluate_from=8)[1]
    assert len(full) == 12 and len(tail) == 5
    assert np.array_equal(tail, full[-5:])
    assert train_with_lr(**run) == float(np.mean(full[-5:]))
    with pytest.raises(ValueError, match="evaluate_from"):
        train_model(**run, evaluate_from=13)
