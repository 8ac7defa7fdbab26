"""Issue 8's helper pieces: epsilon schedules (and the equivalence to a learning-rate
schedule), the three-phase schedule, and the linear-regression problem of notebook 11."""

import functools

import numpy as np
import pytest
import torch

from helpers.experiments import train_model
from helpers.linear_regression import gradient, loss, make_problem, train
from helpers.optimizers import ADAM_EPS, EpsilonScheduledAdam, SimpleAdam
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


def test_three_phase_schedule_matches_the_notes_formula():
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
    # the notes' A and B with a steeper ramp still meet both ends
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


def test_regression_training_converges_and_reports_divergence():
    problem = make_problem(400, 10, 4, seed=2)
    sgd = train(problem, "SGD", 0.1, steps=200)
    assert sgd.distance[-1] < 1e-3 and sgd.excess_loss[0] > 100 * abs(sgd.excess_loss[-1])
    blown = train(problem, "SGD", 1e3, steps=50)
    assert np.isinf(blown.excess_loss[-1]) and len(blown.excess_loss) == 50
    muon = train(problem, "Muon", 0.1, steps=50)
    assert ((muon.ns_singular_values > 0.6) & (muon.ns_singular_values < 1.25)).all()
    with pytest.raises(ValueError, match="Unknown optimizer"):
        train(problem, "Lion", 0.1)
