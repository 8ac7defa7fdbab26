"""research 10: the epsilon that replays a learning-rate factor (helpers/schedules.py)."""

from __future__ import annotations

import numpy as np
import torch

from grading import cases
from grading.collect import attempt, tensor
from grading.judge import Criterion, Finding, Tally, array
from grading.parts import Part

PART = Part("r10_matching_eps", 1, "research 10: the epsilon that replays a learning-rate factor (`matching_epsilon`)",
            "helpers/schedules.py", ("matching_epsilon",), (("the epsilon reproduces the scaled step", 1),), order=110)

# ---------------------------------------------------------------- hidden inputs
EPSILON_CASES = (
    dict(factor=1.0, seed=601, eps=1e-8),
    dict(factor=0.5, seed=602, eps=1e-8),
    dict(factor=0.1, seed=603, eps=1e-3),
    dict(factor=0.013, seed=604, eps=1e-8),
    dict(factor=0.7, seed=605, eps=0.05),
)


def epsilon_v_hat(case: dict) -> torch.Tensor:
    v = cases.gaussian((6, 7), case["seed"]).square() * 1e-4
    v[0, :3] = 0.0  # coordinates that have seen no gradient
    return v


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    from helpers.schedules import matching_epsilon

    return dict(values=[attempt(lambda c=case: tensor(matching_epsilon(c["factor"], epsilon_v_hat(c), c["eps"])))
                        for case in EPSILON_CASES])


# ---------------------------------------------------------------- in the grader: verdicts
def judge(part, measured: dict, ref) -> list[Criterion]:
    tally = Tally("hidden cases")
    for case, entry in zip(EPSILON_CASES, measured["values"]):
        value = tally.take(entry)
        if value is None:
            continue
        v_hat = epsilon_v_hat(case)
        expected = ref.schedules.matching_epsilon(case["factor"], v_hat, case["eps"]).double().numpy()
        got = array(value)
        if got is None or got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-5, atol=1e-15):
            tally.fail(got, dict(case=case, v_hat=v_hat.double().numpy(), expected=expected))

    def without_eps_scaling(got, c):
        f, v = c["case"]["factor"], c["v_hat"]
        return np.allclose(got, (1 / f - 1) * np.sqrt(v) + c["case"]["eps"], rtol=1e-5)

    return [tally.criterion(*part.criteria[0], [
        (without_eps_scaling, Finding("the result is wrong where sqrt(v_hat) is small next to eps",
                                      "check the step equation at a coordinate that has seen no gradient")),
        (lambda got, c: c["case"]["factor"] == 1.0, Finding(
            "at the full rate the epsilon changes the step", "at factor one the step must stay Adam's own")),
    ], Finding("the epsilon does not reproduce the scaled step", "solve the step equation for eps_t at one "
                                                                  "coordinate"))]


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {}
