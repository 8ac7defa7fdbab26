"""Newton-Schulz orthogonalisation and the Muon optimizer."""

import math

import numpy as np
import pytest
import torch

from helpers.experiments import train_with_lr
from helpers.models import MLP
from helpers.norms import spectral_norm
from helpers.optimizers import Muon, MuonAdam, muon_param_groups
from helpers.orthogonal_updates import CUBIC, MUON_SCALES, muon_shape_scale, newton_schulz

SHAPES = [(64, 256), (256, 64), (1024, 256)]
BAND = (0.6, 1.25)


def gaussian(shape, seed=0, device="cpu"):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)


def with_condition_number(shape, condition, seed=0, device="cpu"):
    """A matrix whose singular values spread log-uniformly from 1 down to 1/condition."""
    gen = torch.Generator().manual_seed(seed)
    m, n = shape
    k = min(m, n)
    U, _ = torch.linalg.qr(torch.randn(m, k, generator=gen, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64))
    s = torch.logspace(0, -math.log10(condition), k, dtype=torch.float64)
    return (U @ torch.diag(s) @ V.T).float().to(device)


def singular_values(X):
    return torch.linalg.svdvals(X.detach().cpu().double())


def polar(X):
    U, _, Vh = torch.linalg.svd(X.detach().cpu().double(), full_matrices=False)
    return U @ Vh


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("condition", [None, 100])
def test_quintic_lands_in_the_band(shape, condition, device):
    G = gaussian(shape, device=device) if condition is None else with_condition_number(shape, condition, device=device)
    X = newton_schulz(G)
    s = singular_values(X)
    assert BAND[0] <= s.min() and s.max() <= BAND[1], (s.min().item(), s.max().item())
    # the singular vectors are G's: the polar factor of the result is U V^T
    assert torch.linalg.matrix_norm(polar(X) - polar(G)) / math.sqrt(min(shape)) < 1e-3
    assert X.shape == G.shape and X.dtype == G.dtype and X.device == G.device


@pytest.mark.parametrize("shape", SHAPES)
def test_condition_1000_needs_more_steps(shape):
    G = with_condition_number(shape, 1000)
    five, eight = singular_values(newton_schulz(G, steps=5)), singular_values(newton_schulz(G, steps=8))
    assert five.min() < BAND[0]  # the smallest singular values (about 1e-3 of the norm) have not grown enough
    assert BAND[0] <= eight.min() and eight.max() <= BAND[1]


def test_cubic_converges_to_the_polar_factor():
    G = gaussian((64, 256), seed=3)
    X = newton_schulz(G, steps=20, coefficients=CUBIC)
    assert X.dtype == torch.float32
    assert (X.double() - polar(G)).abs().max() < 1e-4


def test_odd_polynomial_commutes_with_the_svd():
    G = gaussian((40, 90), seed=1).double()
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    a, b, c = 0.7, -0.3, 0.05
    A = G @ G.T
    p_of_G = a * G + (b * A + c * A @ A) @ G
    via_svd = U @ torch.diag(a * S + b * S**3 + c * S**5) @ Vh
    assert torch.allclose(p_of_G, via_svd, rtol=1e-10, atol=1e-8)


def test_bfloat16_iteration_stays_close():
    G = gaussian((256, 1024), seed=2)
    X = newton_schulz(G, dtype=torch.bfloat16)
    assert X.dtype == torch.float32
    s = singular_values(X)
    assert 0.5 <= s.min() and s.max() <= 1.3
    assert (X - newton_schulz(G)).abs().max() < 0.05


def test_newton_schulz_rejects_non_matrices():
    with pytest.raises(ValueError, match="needs a matrix"):
        newton_schulz(torch.ones(3, 4, 5))


@pytest.mark.parametrize("scale", MUON_SCALES)
@pytest.mark.parametrize("shape", [(64, 256), (256, 64)])
def test_one_muon_step_has_spectral_norm_lr_times_scale(scale, shape, device):
    lr = 0.05
    W = torch.nn.Parameter(gaussian(shape, seed=4, device=device))
    before = W.detach().clone()
    opt = Muon([W], lr=lr, scale=scale)
    W.grad = gaussian(shape, seed=5, device=device)
    opt.step()
    ratio = spectral_norm(W.detach() - before) / (lr * muon_shape_scale(shape[0], shape[1], scale))
    assert BAND[0] <= ratio <= BAND[1], ratio


def test_shape_scales():
    assert muon_shape_scale(256, 64, "spectral") == pytest.approx(2.0)
    assert muon_shape_scale(64, 256, "spectral") == pytest.approx(0.5)
    assert muon_shape_scale(64, 256, "keller") == 1.0
    assert muon_shape_scale(64, 256, "moonlight") == pytest.approx(0.2 * 16)
    with pytest.raises(ValueError, match="Unknown Muon scale"):
        muon_shape_scale(4, 4, "adam")


def test_muon_rejects_vectors():
    with pytest.raises(ValueError, match=r"shape \(8,\).*Adam"):
        Muon([torch.nn.Parameter(torch.ones(8))])
    with pytest.raises(ValueError, match="lr must be"):
        Muon([torch.nn.Parameter(torch.ones(2, 2))], lr=0)


def test_param_groups_send_only_hidden_matrices_to_muon():
    model = MLP(input_size=30, hidden_sizes=(16, 32, 8), num_classes=5)
    groups = {g["role"]: g["params"] for g in muon_param_groups(model)}
    assert [tuple(p.shape) for p in groups["hidden"]] == [(32, 16), (8, 32)]
    assert [tuple(p.shape) for p in groups["input"]] == [(16, 30)]
    assert [tuple(p.shape) for p in groups["output"]] == [(5, 8)]
    assert len(groups["bias"]) == 4
    by_position = MuonAdam(model.parameters(), lr=0.1)
    by_groups = MuonAdam(muon_param_groups(model), lr=0.1)
    assert by_position.roles == by_groups.roles


def test_muon_adam_trains_the_course_mlp(mnist_subset):
    torch.manual_seed(4)
    model = MLP(hidden_sizes=(64, 64, 64))
    (images, labels), _ = mnist_subset
    with torch.no_grad():
        init_loss = torch.nn.functional.cross_entropy(model(images[:512])[0], labels[:512]).item()
    final = train_with_lr((64, 64, 64), MuonAdam, 0.1, steps=100, data=mnist_subset, device="cpu")
    assert final <= init_loss - 1.0, (init_loss, final)
    assert np.isfinite(final)


def test_muon_default_is_nesterov_and_plain_momentum_is_the_textbook_form():
    """The docstring's claim: with nesterov=True (the default) Muon orthogonalises (1 - mu) g_t + mu m_t,
    with nesterov=False the plain form B_t = mu B_{t-1} + g_t (up to the factor 1 - mu that NS removes)."""
    torch.manual_seed(0)
    grads = [torch.randn(6, 4) for _ in range(3)]
    mu, lr = 0.95, 0.1
    runs = {}
    for nesterov in (True, False):
        w = torch.nn.Parameter(torch.zeros(6, 4))
        opt = Muon([w], lr=lr, momentum=mu, nesterov=nesterov, scale="spectral")
        steps = []
        for g in grads:
            before = w.detach().clone()
            w.grad = g
            opt.step()
            steps.append((before - w.detach()) / lr)
        runs[nesterov] = steps
    factor = muon_shape_scale(6, 4, "spectral")
    m, B = torch.zeros(6, 4), torch.zeros(6, 4)
    for t, g in enumerate(grads):
        m = mu * m + (1 - mu) * g
        B = mu * B + g
        nesterov_direction = newton_schulz((1 - mu) * g + mu * m) * factor
        plain_direction = newton_schulz(B) * factor
        assert torch.allclose(runs[True][t], nesterov_direction, atol=1e-5)
        assert torch.allclose(runs[False][t], plain_direction, atol=1e-5)
        if t > 0:  # after the first step the two differ
            assert not torch.allclose(runs[True][t], runs[False][t], atol=1e-3)
    assert Muon([torch.nn.Parameter(torch.zeros(2, 2))]).param_groups[0]["nesterov"] is True
