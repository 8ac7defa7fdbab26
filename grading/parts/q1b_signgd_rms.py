"""Q1(b) (notebook 00, written): a prediction checked against the Monte Carlo law."""

from __future__ import annotations

from grading.parts import Part, _q1

PART = Part('q1b_signgd_rms', 1, 'Q1(b): `predicted_signgd_rms_squared`, the feature change after one SignGD step',
            "notebooks/00_rms_scaling_theory.ipynb", ('predicted_signgd_rms_squared',),
            (("the prediction follows the Monte Carlo law in d1 and d2", 1),), order=20)
HINT = 'write the change of the features on that input as a sum over the inputs and take its expected square'
collect = _q1.collect


def judge(part, measured: dict, ref):
    return _q1.judge(part, measured, ref, HINT)


MISTAKES = {}
