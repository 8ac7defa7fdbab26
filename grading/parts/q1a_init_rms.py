"""Q1(a) (notebook 00, written): a prediction checked against the Monte Carlo law."""

from __future__ import annotations

from grading.parts import Part, _q1

PART = Part('q1a_init_rms', 1, 'Q1(a): `predicted_init_rms_squared`, the RMS at initialisation',
            "notebooks/00_rms_scaling_theory.ipynb", ('predicted_init_rms_squared',),
            (("the prediction follows the Monte Carlo law in d1 and d2", 1),), order=10)
HINT = 'write RMS(y)^2 as the mean of the squared outputs and take the expectation of one of them'
collect = _q1.collect


def judge(part, measured: dict, ref):
    return _q1.judge(part, measured, ref, HINT)


MISTAKES = {}
