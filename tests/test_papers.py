"""helpers.papers (notebook 13): the rules table, the one-step measurement against the coordinate check, and
the best rate's move per doubling."""

import functools

import numpy as np
import pytest
import torch

from helpers import norms
from helpers.coord_check import coord_check, course_mlp
from helpers.experiments import SweepResult
from helpers.models import TP5MLP
from helpers.optimizers import SimpleAdam, SimpleAdamMuP
from helpers.papers import best_rate_shift, one_step_spectral, parameterization_rules, width_exponent

TP5 = (functools.partial(course_mlp, depth=2, mlp=TP5MLP), functools.partial(SimpleAdamMuP, lr=0.1, readout="tp5"))


def test_width_exponent_is_the_power():
    assert width_exponent([8, 32, 128], 3.0 * np.array([8, 32, 128]) ** -1.5) == pytest.approx(-1.5)


def test_rules_of_tp5_and_sp():
    rules = parameterization_rules({"SP": (functools.partial(course_mlp, depth=2), SimpleAdam), "TP5": TP5},
                                   (32, 128), seeds=(0, 1))
    assert rules.exponents["TP5"]["Adam lr"]["readout weights"] == pytest.approx(-1)
    assert rules.exponents["TP5"]["init variance"]["readout weights"] == pytest.approx(-2, abs=0.1)
    assert rules.exponents["SP"]["Adam lr"]["hidden weights"] == pytest.approx(0)
    assert rules.exponents["SP"]["init variance"]["readout weights"] == pytest.approx(-1, abs=0.1)


def test_one_step_is_the_coordinate_checks_first_step_and_norms_are_the_students(mnist_subset):
    widths, seeds = (16, 32), (0, 1)
    result = one_step_spectral(*TP5, widths, seeds=seeds, data=mnist_subset, device="cpu")
    check = coord_check(*TP5, widths, steps=1, seeds=seeds, data=mnist_subset, device="cpu", progress=False)
    np.testing.assert_allclose(result.delta, check.delta[:, :, 1], rtol=1e-5)
    np.testing.assert_allclose(result.rms, check.rms[:, :, 0], rtol=1e-5)
    torch.manual_seed(0)
    model = TP5[0](16)
    assert result.weight_norm[0, 0, 1] == pytest.approx(norms.rms_to_rms_norm(model.layers[1].weight), rel=1e-6)
    assert np.all(result.update_alignment <= 1 + 1e-6) and np.all(result.weight_alignment <= 1 + 1e-6)


def test_best_rate_shift_counts_the_seed_spread():
    lrs = np.array([1.0, 4.0, 16.0])
    losses = np.array([[[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], [[1.1, 2.0, 3.0], [3.0, 2.0, 1.1]]])  # seed, width, lr
    shift = best_rate_shift(SweepResult("x", np.array([8, 32]), lrs, (0, 1), losses))
    assert shift.shift == pytest.approx(2.0) and shift.smallest == pytest.approx(2.0) == shift.largest
    losses[:, 1, 0] = 1.05  # the narrow width's best rate is now within the spread of the best at the wide one
    shift = best_rate_shift(SweepResult("x", np.array([8, 32]), lrs, (0, 1), losses))
    assert shift.smallest == 0.0 and shift.largest == pytest.approx(2.0)
