"""research 11: the gradient of the regression loss (helpers/least_squares.py)."""

from __future__ import annotations

import numpy as np
import torch

from grading import cases
from grading.collect import attempt, tensor
from grading.judge import Criterion, Finding, Tally, array
from grading.parts import Part

PART = Part("r11_gradient", 1, "research 11: the gradient of the regression loss (`gradient`)",
            "helpers/least_squares.py", ("gradient",), (("the gradient of the squared loss", 1),), order=120)

# ---------------------------------------------------------------- hidden inputs
GRADIENT_CASES = (dict(n=50, d=6, outputs=3, seed=701), dict(n=7, d=30, outputs=2, seed=702),
                  dict(n=200, d=4, outputs=9, seed=703))


def gradient_inputs(case: dict):
    n, d, outputs, seed = case["n"], case["d"], case["outputs"], case["seed"]
    return (cases.gaussian((d, outputs), seed, dtype=torch.float64),
            cases.gaussian((n, d), seed + 1, dtype=torch.float64),
            cases.gaussian((n, outputs), seed + 2, dtype=torch.float64))


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    from helpers.least_squares import gradient

    return dict(values=[attempt(lambda c=case: tensor(gradient(*gradient_inputs(c))))
                        for case in GRADIENT_CASES])


# ---------------------------------------------------------------- in the grader: verdicts
def judge(part, measured: dict, ref) -> list[Criterion]:
    tally = Tally("hidden problems")
    for case, entry in zip(GRADIENT_CASES, measured["values"]):
        value = tally.take(entry)
        if value is None:
            continue
        W, X, Y = gradient_inputs(case)
        expected = ref.regression.gradient(W, X, Y).numpy()
        got = array(value)
        if got is None or got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-6, atol=1e-9):
            tally.fail(got, dict(expected=expected, n=case["n"]))

    def scaled(factor):
        return lambda got, c: got.shape == c["expected"].shape and np.allclose(got, factor(c) * c["expected"],
                                                                                rtol=1e-6, atol=1e-9)

    return [tally.criterion(*part.criteria[0], [
        (scaled(lambda c: 0.5), Finding("the gradient is off by a constant factor", "differentiate the square")),
        (scaled(lambda c: -1.0), Finding("the gradient has the wrong sign", "it must point uphill")),
        (lambda got, c: scaled(lambda c: 1 / c["n"])(got, c) or scaled(lambda c: 0.5 / c["n"])(got, c), Finding(
            "the gradient is divided by the number of samples", "the loss is a sum over samples, not a mean")),
        (lambda got, c: got.shape != c["expected"].shape, Finding("the gradient's shape differs from W's",
                                                                  "it has one entry per entry of W")),
    ], Finding("the gradient is wrong", "compare it with a finite difference of the loss"))]


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {}
