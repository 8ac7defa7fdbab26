"""bonus: the shape factor of ScaledSimpleShampoo (helpers/orthogonal_updates.py)."""

from __future__ import annotations

import math

import torch

from grading import cases
from grading.collect import attempt, number, tensor
from grading.judge import Criterion, Finding, Tally, array, close, svd_values
from grading.parts import Mistake, Part

PART = Part("bonus_shape_scale", 1, "bonus: the shape factor of `ScaledSimpleShampoo` (`shampoo_shape_scale`)",
            "helpers/orthogonal_updates.py", ("shampoo_shape_scale",),
            (("every layer's update has the same RMS->RMS norm, whatever its shape", 1),), needs=("orthogonalize_svd",),
            order=70)

# ---------------------------------------------------------------- hidden inputs
SCALE_SHAPES = ((8, 784), (784, 8), (64, 16), (16, 64), (33, 33), (1000, 10), (10, 1000), (50, 3))


SCALE_STEP_SHAPES = ((24, 96), (96, 24), (40, 40))


SCALE_LR = 0.02


def scale_parameters() -> list[torch.Tensor]:
    return [torch.nn.Parameter(cases.gaussian(shape, 400 + i)) for i, shape in enumerate(SCALE_SHAPES)]


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    from helpers.optimizers import ScaledSimpleShampoo

    params = scale_parameters()
    optimizer = ScaledSimpleShampoo(params, lr=SCALE_LR)
    factors = [attempt(lambda p=p: number(optimizer.shape_scale(p))) for p in params]
    step = attempt(lambda: [tensor(u) for u in cases.shampoo_updates(
        ScaledSimpleShampoo, SCALE_STEP_SHAPES, SCALE_LR, 1)[0]])
    return dict(factors=factors, step=step)


# ---------------------------------------------------------------- in the grader: verdicts
def judge(part, measured: dict, ref) -> list[Criterion]:
    tally = Tally("hidden shapes")
    params = scale_parameters()
    reference = ref.optimizers.ScaledSimpleShampoo(params, lr=SCALE_LR)
    for p, entry in zip(params, measured["factors"]):
        value = tally.take(entry)
        fan_out, fan_in = p.shape
        if value is not None and not close(value, reference.shape_scale(p)):
            tally.fail(value, dict(fan_out=fan_out, fan_in=fan_in))
    step = measured.get("step")
    if not tally.failures and not tally.errors and isinstance(step, dict) and "ok" in step:
        for shape, update in zip(SCALE_STEP_SHAPES, step["ok"]):
            u = array(update)
            induced = math.sqrt(shape[1] / shape[0]) * svd_values(u)[0] if u is not None and u.shape == shape else -1
            if not close(induced, SCALE_LR):
                tally.fail(None, {})

    def factor(c, kind):
        fan_out, fan_in = c["fan_out"], c["fan_in"]
        return dict(rms=math.sqrt(max(fan_out, fan_in)), fro=1 / math.sqrt(min(fan_out, fan_in)),
                    inverted=math.sqrt(fan_in / fan_out), ratio=fan_out / fan_in)[kind]

    return [tally.criterion(*part.criteria[0], [
        (lambda v, c: close(v, factor(c, "rms")), Finding(
            "the factor equalises the entrywise RMS of the update, not its RMS->RMS norm",
            "the RMS->RMS norm is an operator norm: how much the update can change the RMS of a layer's output")),
        (lambda v, c: close(v, factor(c, "fro")), Finding(
            "the factor equalises the Frobenius norm of the update, not its RMS->RMS norm",
            "the RMS->RMS norm is an operator norm: how much the update can change the RMS of a layer's output")),
        (lambda v, c: close(v, factor(c, "inverted")), Finding(
            "the factor is inverted: fan_in and fan_out are swapped", "a torch weight is stored (fan_out, fan_in)")),
        (lambda v, c: close(v, factor(c, "ratio")), Finding(
            "the factor grows too fast with the shape's aspect ratio",
            "work out the RMS->RMS norm of U V^T, whose spectral norm is one")),
        (lambda v, c: close(v, 1.0), Finding(
            "the factor is one for every shape, so the RMS->RMS norm of the update still depends on the shape",
            "work out the RMS->RMS norm of U V^T, whose spectral norm is one")),
    ], Finding("the updates' RMS->RMS norms still depend on the layer's shape",
               "work out the RMS->RMS norm of U V^T, whose spectral norm is one"))]


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {
    # scaled by 1 / RMS(U V^T) of a U V^T of the layer's shape
    "bonus_rms": Mistake(
        code={
            "shampoo_shape_scale": """
            def shampoo_shape_scale(fan_out, fan_in):
                u = orthogonalize_svd(torch.randn(fan_out, fan_in))
                return (1 / torch.sqrt(torch.mean(u ** 2))).item()
            """,
        },
        points=0.0, status="failed",
        feedback=("the factor equalises the entrywise RMS of the update, not its RMS->RMS norm",),
    ),
}
