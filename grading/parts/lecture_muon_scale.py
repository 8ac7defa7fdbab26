"""lecture: Muon's shape factors (helpers/orthogonal_updates.py)."""

from __future__ import annotations

import math

from grading.collect import attempt, number
from grading.judge import Criterion, Finding, Tally, close
from grading.parts import Part

PART = Part("lecture_muon_scale", 1, "lecture: Muon's shape factors (`muon_shape_scale`)",
            "helpers/orthogonal_updates.py", ("muon_shape_scale",),
            (("the `spectral` factor", 1), ("the `keller` factor", 1), ("the `moonlight` factor", 1)), order=90)

# ---------------------------------------------------------------- hidden inputs
MUON_PAIRS = ((1, 1), (8, 784), (784, 8), (64, 64), (10, 256), (256, 10), (3, 5), (1024, 96))


MUON_SCALES = ("spectral", "keller", "moonlight")


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    from helpers.orthogonal_updates import muon_shape_scale

    return dict(values={scale: [attempt(lambda p=pair, s=scale: number(muon_shape_scale(p[0], p[1], s)))
                                for pair in MUON_PAIRS] for scale in MUON_SCALES})


# ---------------------------------------------------------------- in the grader: verdicts
LECTURE = "compare with the lecture's definition of this factor"


def judge(part, measured: dict, ref) -> list[Criterion]:
    out = []
    candidates = {
        "spectral": [
            (lambda v, c: close(v, math.sqrt(c["fan_in"] / c["fan_out"])), Finding(
                "the factor is inverted: it is larger for layers with more inputs than outputs",
                "a torch weight is stored (fan_out, fan_in)")),
            (lambda v, c: close(v, c["fan_out"] / c["fan_in"]), Finding(
                "the factor grows too fast with the shape's aspect ratio", LECTURE)),
        ],
        "keller": [
            (lambda v, c: close(v, math.sqrt(c["fan_out"] / c["fan_in"])), Finding(
                "the factor goes below one for matrices with fewer outputs than inputs", LECTURE)),
            (lambda v, c: close(v, math.sqrt(max(1, c["fan_in"] / c["fan_out"]))), Finding(
                "the factor is inverted: fan_in and fan_out are swapped",
                "a torch weight is stored (fan_out, fan_in)")),
        ],
        "moonlight": [
            (lambda v, c: close(v, 0.2 * math.sqrt(min(c["fan_out"], c["fan_in"]))), Finding(
                "the factor uses the shorter side of the matrix", LECTURE)),
            (lambda v, c: close(v, math.sqrt(max(c["fan_out"], c["fan_in"]))), Finding(
                "the factor misses the constant that matches AdamW's update size", LECTURE)),
            (lambda v, c: close(v, 0.2 * max(c["fan_out"], c["fan_in"])), Finding(
                "the factor grows too fast with the matrix's size", LECTURE)),
        ],
    }
    for (name, weight), scale in zip(part.criteria, MUON_SCALES):
        tally = Tally("hidden shapes")
        for (fan_out, fan_in), entry in zip(MUON_PAIRS, measured["values"][scale]):
            value = tally.take(entry)
            if value is not None and not close(value, ref.orthogonal.muon_shape_scale(fan_out, fan_in, scale)):
                tally.fail(value, dict(fan_out=fan_out, fan_in=fan_in))
        out.append(tally.criterion(name, weight, candidates[scale],
                                   Finding(f"the `{scale}` factor is wrong", LECTURE)))
    return out


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {}
