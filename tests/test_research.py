"""The research notebooks' helper pieces: epsilon schedules (and the equivalence to a learning-rate
schedule), the three-phase schedule, Adam's step under the ZI/BC switches, and the linear-regression
problem of notebook 11 with its batched sweep."""

import functools
import math

import numpy as np
import pytest
import torch

from helpers.experiments import train_model
from helpers.least_squares import gradient, loss
from helpers.linear_regression import Setting, SettingResult, Sweep, make_problem, sweep
from helpers.norms import rms_to_rms_norm
from helpers.optimizers import ADAM_EPS, EpsilonScheduledAdam, Muon, SimpleAdam
from helpers.orthogonal_updates import newton_schulz
from helpers.research import epsilon_equivalence, parameters_distance
from helpers.schedules import cosine_lr_factor, matching_epsilon, three_phase_epsilon


def test_epsilon_schedule_reproduces_the_learning_rate_schedule(mnist_subset, device):
    """Acceptance: same parameters after 50 steps of the course MLP, to 1e-6 relative, while the
    weights moved by a large fraction of their norm (so the test is not trivially passed)."""
    result = epsilon_equivalence((64, 64, 64), lr=0.01, steps=50, data=mnist_subset, device=device)
    assert result.moved > 0.3
    assert result.relative_difference < 1e-6
    # and the matching epsilon is per coordinate: it spans many orders of magnitude
    assert result.eps_quantiles[-1] / result.eps_quantiles[0] > 1e6


def test_a_scalar_epsilon_does_not_replay_the_schedule(mnist_subset):
    """The same comparison with one epsilon per step (the median coordinate's) is far off."""
    steps, factor = 50, functools.partial(cosine_lr_factor, total=50, final=0.1)
    scalar = functools.partial(EpsilonScheduledAdam, eps_schedule=lambda t, v: float(matching_epsilon(
        factor(t), v.flatten().median().reshape(1))))
    common = dict(steps=steps, seed=4, data=mnist_subset, device="cpu")
    model_lr, _ = train_model((64, 64, 64), SimpleAdam, 0.01, lr_factor=factor, **common)
    model_scalar, _ = train_model((64, 64, 64), scalar, 0.01, **common)
    assert parameters_distance(model_lr, model_scalar) > 1e-3


def test_constant_epsilon_is_simple_adam(mnist_subset):
    common = dict(steps=20, seed=4, data=mnist_subset, device="cpu")
    plain, _ = train_model((32, 32, 32), SimpleAdam, 0.01, **common)
    constant = functools.partial(EpsilonScheduledAdam, eps_schedule=lambda t, v: ADAM_EPS)
    scheduled, _ = train_model((32, 32, 32), constant, 0.01, **common)
    assert parameters_distance(plain, scheduled) == 0.0


def test_matching_epsilon_solves_the_equation():
    v_hat = torch.tensor([1e-12, 1e-6, 1e-2, 1.0])
    for factor in (1.0, 0.5, 0.01):
        eps = matching_epsilon(factor, v_hat)
        lhs = factor / (v_hat.sqrt() + ADAM_EPS)
        torch.testing.assert_close(1 / (v_hat.sqrt() + eps), lhs, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="lr_factor"):
        matching_epsilon(0.0, v_hat)
    with pytest.raises(TypeError, match="eps_schedule"):
        EpsilonScheduledAdam([torch.nn.Parameter(torch.ones(1))], eps_schedule=1e-3)


def test_cosine_factor_ends():
    assert cosine_lr_factor(1, 100) == 1.0 and cosine_lr_factor(100, 100, final=0.1) == pytest.approx(0.1)
    values = [cosine_lr_factor(t, 100) for t in range(1, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError, match="final"):
        cosine_lr_factor(1, 10, final=0.0)
    with pytest.raises(ValueError, match="outside"):
        cosine_lr_factor(0, 10)


def test_three_phase_schedule_ramp_meets_both_ends():
    total, eps0, eps_max = 200, 1e-8, 1e-2
    values = [three_phase_epsilon(t, total, eps0=eps0, eps_max=eps_max) for t in range(1, total + 1)]
    assert values[0] == eps0 and values[59 - 1] == eps0  # before warm * total = 60
    assert values[60 - 1] == pytest.approx(eps0)  # the ramp starts at eps0 (A + B = eps0)
    assert values[160 - 1] == eps_max and values[-1] == eps_max
    assert all(a <= b for a, b in zip(values, values[1:]))
    # default e-folds make B = 0: geometric growth, equal ratios between equal steps
    ramp = np.array(values[60:159])
    ratios = ramp[1:] / ramp[:-1]
    assert ratios.std() / ratios.mean() < 1e-6
    # A and B with a steeper ramp still meet both ends
    steep = [three_phase_epsilon(t, total, eps0=eps0, eps_max=eps_max, efolds=40.0) for t in (60, 159, 160)]
    assert steep[0] == pytest.approx(eps0) and steep[1] < eps_max and steep[2] == eps_max
    for kwargs, match in [(dict(warm=0.8, end=0.3), "warm"), (dict(eps_max=1e-9), "eps_max"),
                          (dict(eps0=0.0), "eps0")]:
        with pytest.raises(ValueError, match=match):
            three_phase_epsilon(1, total, **kwargs)


def test_regression_gradient_matches_autograd():
    problem = make_problem(300, 9, 5, seed=3)
    W = torch.randn(10, 5, dtype=torch.float64, requires_grad=True)
    loss(W, problem.X, problem.Y).backward()
    torch.testing.assert_close(gradient(W.detach(), problem.X, problem.Y), W.grad, rtol=1e-12, atol=1e-10)
    assert gradient(problem.W_ls, problem.X, problem.Y).abs().max() < 1e-8  # W_ls is the minimiser
    assert loss(problem.W_ls, problem.X, problem.Y) <= loss(problem.W_star, problem.X, problem.Y)


def test_regression_problem_shapes_and_conditioning():
    problem = make_problem(500, 20, 6, condition=100.0, seed=1)
    assert problem.X.shape == (500, 21) and problem.W_star.shape == (21, 6) and problem.Y.shape == (500, 6)
    assert (problem.X[:, 0] == 1).all()
    singular = torch.linalg.svdvals(problem.X[:, 1:])
    assert 50 < float(singular[0] / singular[-1]) < 250  # about the requested 100
    # the ill-conditioning is rotated: no single column carries the small directions
    column_norms = problem.X[:, 1:].norm(dim=0)
    assert float(column_norms.max() / column_norms.min()) < 10
    for kwargs, match in [(dict(n=10, d=20), "n=10"), (dict(condition=0.5), "condition"), (dict(D=0), "D=0")]:
        with pytest.raises(ValueError, match=match):
            make_problem(**kwargs)


def test_regression_sweep_converges_and_reports_divergence():
    problem = make_problem(400, 10, 4, seed=2)
    runs = sweep([problem], "SGD", [0.1, 1e3], steps=200, log_every=1)
    assert runs.excess.shape == (1, 2, 200) and list(runs.logged_steps[[0, -1]]) == [1, 200]
    assert runs.distance[0, 0, -1] < 1e-3 and runs.excess[0, 0, 0] > 100 * runs.excess[0, 0, -1] >= 0
    assert np.isinf(runs.excess[0, 1, -1]) and np.isinf(runs.distance[0, 1, -1])  # diverged, kept as inf
    assert runs.best_lr_index == 0
    muon = sweep([problem], "Muon", [0.1], steps=50, singular_values_every=10)
    assert list(muon.singular_value_steps) == [0, 10, 20, 30, 40]
    assert ((muon.ns_singular_values > 0.6) & (muon.ns_singular_values < 1.25)).all()
    with pytest.raises(ValueError, match="Unknown optimizer"):
        sweep([problem], "Lion", [0.1])
    with pytest.raises(ValueError, match="same shape"):
        sweep([problem, make_problem(400, 9, 4)], "SGD", [0.1])


def test_regression_bookkeeping_identities():
    """The full-batch gradient from (R, Q^T Y) and the excess loss ||R (W - W_ls)||^2 / N are exact."""
    problem = make_problem(300, 9, 5, seed=3)
    W = torch.randn(10, 5, dtype=torch.float64)
    Q, R = torch.linalg.qr(problem.X)
    torch.testing.assert_close(gradient(W, R, Q.T @ problem.Y), gradient(W, problem.X, problem.Y))
    excess = (loss(W, problem.X, problem.Y) - loss(problem.W_ls, problem.X, problem.Y)) / 300
    assert float(problem.excess_loss(W)) == pytest.approx(float(excess), rel=1e-9)
    assert 0 < problem.float32_floor() < 1e-8


def _one_run(problem, name, lr, steps, batch_size):
    """One run with the course's optimizers as a PyTorch user would write it: the weight in
    PyTorch's (fan_out, fan_in) layout, i.e. W^T for the map x -> x @ W."""
    X, Y = problem.X.float(), problem.Y.float()
    weight = torch.nn.Parameter(torch.zeros(problem.W_ls.shape[1], problem.W_ls.shape[0]))
    opt = {"SGD": lambda: torch.optim.SGD([weight], lr=lr, momentum=0.95, nesterov=True),
           "Adam": lambda: SimpleAdam([weight], lr=lr), "Muon": lambda: Muon([weight], lr=lr)}[name]()
    generator = torch.Generator().manual_seed(problem.seed)
    for step in range(steps):
        Xb, Yb = X, Y
        if batch_size:
            index = torch.randint(0, len(X), (batch_size,), generator=generator)
            Xb, Yb = X[index], Y[index]
        weight.grad = gradient(weight.detach().T, Xb, Yb).T.contiguous() / len(Xb)
        for group in opt.param_groups:
            group["lr"] = lr * (1 - step / steps)
        opt.step()
    return weight.detach().T


@pytest.mark.parametrize("name", ["SGD", "Adam", "Muon"])
@pytest.mark.parametrize("batch_size", [None, 16])
def test_sweep_is_the_course_optimizers_one_run_at_a_time(name, batch_size):
    """The batched sweep (all learning rates and problems at once) is SGD with Nesterov momentum,
    the course's SimpleAdam and the course's Muon given W^T, one run at a time, to float32 rounding."""
    problems = [make_problem(200, 12, 5, condition=10, seed=seed) for seed in (0, 1)]
    lrs = [0.03, 0.3]
    runs = sweep(problems, name, lrs, steps=20, batch_size=batch_size)
    for s, problem in enumerate(problems):
        for k, lr in enumerate(lrs):
            expected = float(problem.excess_loss(_one_run(problem, name, lr, 20, batch_size)))
            assert runs.final[s, k] == pytest.approx(expected, rel=1e-4), (s, lr)


@pytest.mark.parametrize("d, D", [(9, 4), (3, 12)])
def test_muon_first_step_has_rms_norm_lr_for_the_map_as_used(d, D):
    """W is used as x -> x @ W: fan-in d+1, fan-out D. Muon's first step, as that map, has RMS->RMS norm
    lr times the largest singular value of NS(G) (about 1), for either aspect. Handing Muon W itself
    (which it reads as (fan_out, fan_in) = (d+1, D)) would make it (d+1)/D times that."""
    problem = make_problem(100, d, D, seed=5)
    lr = 0.1
    first = torch.as_tensor(sweep([problem], "Muon", [lr], steps=1).first_update[0, 0])
    G = (gradient(torch.zeros(d + 1, D, dtype=torch.float64), problem.X, problem.Y) / 100).float()
    top = float(torch.linalg.matrix_norm(newton_schulz(G).double(), ord=2))
    assert rms_to_rms_norm(first.T) == pytest.approx(lr * top, rel=1e-4)


def test_a_tie_within_float32_rounding_is_no_win():
    """Two optimizers both within float32 rounding of W_ls tie; one clearly above loses."""
    def fake(name, finals):
        finals = np.array(finals, dtype=float)[:, None, None]
        return Sweep(name, np.array([0.1]), (0, 1), None, np.array([1]), finals, finals, None, np.array([]), None,
                     None)

    floors = np.array([1e-10, 2e-10])
    result = SettingResult(Setting(1, 5, 2, None),
                           {"SGD": fake("SGD", [1e-12, 3e-11]), "Adam": fake("Adam", [5e-11, 1e-10]),
                            "Muon": fake("Muon", [1e-6, 2e-6])}, floors)
    assert result.at_float32_precision == ["SGD", "Adam"] and result.winner is None
    result.sweeps["Adam"] = fake("Adam", [1e-7, 1e-7])
    assert result.winner == "SGD"


def test_step_factor_for_a_constant_gradient_is_the_first_step_with_b_to_the_t():
    """Notebook 09: for a constant gradient, each ZI/BC variant's step at step t relative to Adam's
    is the first-step factor with b^t in place of b."""
    b1, b2 = 0.9, 0.999

    def first_step_factor(b1, b2, zero_init, bias_correction):
        m, v = (1 - b1, 1 - b2) if zero_init else (1.0, 1.0)
        if bias_correction:
            m, v = m / (1 - b1), v / (1 - b2)
        return m / math.sqrt(v)

    g = torch.full((3,), 0.5, dtype=torch.float64)
    for zero_init in (True, False):
        for bias_correction in (True, False):
            w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
            opt = SimpleAdam([w], lr=1.0, b1=b1, b2=b2, zero_init=zero_init, bias_correction=bias_correction)
            for t in range(1, 301):
                before = w.detach().clone()
                w.grad = g.clone()
                opt.step()
                step = float((before - w.detach())[0])
                assert step == pytest.approx(first_step_factor(b1 ** t, b2 ** t, zero_init, bias_correction),
                                             rel=1e-9), (zero_init, bias_correction, t)
