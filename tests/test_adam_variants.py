"""SimpleAdam's zero-init and bias-correction switches (issue 8's first piece):
the first step in each of the four combinations against its closed form."""

import math

import pytest
import torch

from helpers import batched
from helpers.optimizers import SimpleAdam


def first_step_factor(b1, b2, zero_init, bias_correction):
    """|step| / lr on the first step, derived by hand:
    ZI: m1 = (1-b1) g, v1 = (1-b2) g^2; not ZI: m1 = g, v1 = g^2 (they start at g and g^2).
    BC divides by (1-b1) and (1-b2) once more."""
    m, v = ((1 - b1), (1 - b2)) if zero_init else (1.0, 1.0)
    if bias_correction:
        m, v = m / (1 - b1), v / (1 - b2)
    return m / math.sqrt(v)


@pytest.mark.parametrize("b1, b2", [(0.9, 0.999), (0.95, 0.95)])
@pytest.mark.parametrize("zero_init", [True, False])
@pytest.mark.parametrize("bias_correction", [True, False])
def test_first_step_matches_its_closed_form(b1, b2, zero_init, bias_correction):
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.randn(6, 5, generator=gen, dtype=torch.float64))
    grad = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    before = w.detach().clone()
    opt = SimpleAdam([w], lr=0.01, b1=b1, b2=b2, zero_init=zero_init, bias_correction=bias_correction)
    w.grad = grad
    opt.step()
    expected = -0.01 * first_step_factor(b1, b2, zero_init, bias_correction) * torch.sign(grad)
    torch.testing.assert_close(w.detach() - before, expected, rtol=1e-6, atol=0)


def test_closed_forms_of_the_course_betas():
    assert first_step_factor(0.9, 0.999, True, True) == pytest.approx(1.0)
    assert first_step_factor(0.9, 0.999, True, False) == pytest.approx(0.1 / math.sqrt(0.001))  # 3.16
    assert first_step_factor(0.9, 0.999, False, True) == pytest.approx(math.sqrt(0.001) / 0.1)  # 0.316
    assert first_step_factor(0.9, 0.999, False, False) == pytest.approx(1.0)


def test_defaults_are_unchanged_and_variants_are_batched():
    assert SimpleAdam([torch.nn.Parameter(torch.ones(2))]).defaults["bias_correction"] is True
    assert SimpleAdam([torch.nn.Parameter(torch.ones(2))]).defaults["zero_init"] is True
    assert batched.supports(SimpleAdam)
    assert batched.supports(lambda params, lr: SimpleAdam(params, lr=lr, zero_init=False))
