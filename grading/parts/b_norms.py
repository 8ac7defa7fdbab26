"""2b: the norms of an update (helpers/norms.py)."""

from __future__ import annotations

import math

import numpy as np
import torch

from grading import cases
from grading.collect import attempt, module_of, number
from grading.judge import Criterion, Finding, Tally, close
from grading.parts import Mistake, Part

PART = Part("b_norms", 3, "2b: the norms of an update (`frobenius_norm`, `spectral_norm`, `rms_to_rms_norm`)",
            "helpers/norms.py", ("frobenius_norm", "spectral_norm", "rms_to_rms_norm"),
            (("Frobenius norm", 1), ("spectral norm", 1), ("induced RMS->RMS norm", 2)), order=30)

# ---------------------------------------------------------------- hidden inputs
NORM_CASES = (
    dict(shape=(7, 300), seed=101),
    dict(shape=(300, 7), seed=102),
    dict(shape=(33, 33), seed=103),
    dict(shape=(64, 17), seed=104, scale=40.0),
    dict(shape=(17, 64), seed=105, scale=1e-3),
    dict(shape=(1, 50), seed=106),
    dict(shape=(50, 1), seed=107),
    dict(shape=(128, 512), seed=108),
    dict(shape=(96, 40), seed=109, kind="rank one"),
    dict(shape=(40, 96), seed=110, kind="float64"),
    dict(shape=(24, 72), seed=111, kind="parameter"),
)


def norm_matrix(case: dict) -> torch.Tensor:
    shape, seed, scale, kind = case["shape"], case["seed"], case.get("scale", 1.0), case.get("kind")
    if kind == "rank one":
        return cases.gaussian((shape[0], 1), seed) @ cases.gaussian((1, shape[1]), seed + 1000)
    if kind == "float64":
        return cases.gaussian(shape, seed, scale, torch.float64)
    matrix = cases.gaussian(shape, seed, scale)
    return torch.nn.Parameter(matrix) if kind == "parameter" else matrix


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    norms = module_of(part)
    names = part.functions
    return dict(cases=[{name: attempt(lambda name=name, case=case: number(getattr(norms, name)(norm_matrix(case))))
                        for name in names} for case in NORM_CASES])


# ---------------------------------------------------------------- in the grader: verdicts
def judge(part, measured: dict, ref) -> list[Criterion]:
    names = dict(zip(("frobenius", "spectral", "rms_to_rms"), part.functions))
    tallies = {key: Tally("hidden matrices") for key in names}
    for case, row in zip(NORM_CASES, measured["cases"]):
        A = norm_matrix(case).detach().double()
        s = torch.linalg.svdvals(A).numpy()
        fan_out, fan_in = A.shape
        fro, top = float(np.sqrt((s**2).sum())), float(s[0])
        context = dict(fro=fro, top=top, nuclear=float(s.sum()), fan_out=fan_out, fan_in=fan_in,
                       entry_max=float(A.abs().max()), entrywise=fro / math.sqrt(fan_out * fan_in),
                       induced=math.sqrt(fan_in / fan_out) * top)
        for key, function in names.items():
            value = tallies[key].take(row.get(function) if isinstance(row, dict) else None)
            expected = {"frobenius": fro, "spectral": top, "rms_to_rms": context["induced"]}[key]
            if value is not None and not close(value, expected):
                tallies[key].fail(value, context)
    weights = dict(part.criteria)
    labels = dict(zip(names, weights))
    def came_out_as(key, name: str, hint: str, norm: str):
        value = key if callable(key) else (lambda c: c[key])
        return lambda v, c: close(v, value(c)), Finding(f"the {norm} came out as {name}", hint)

    gain = "the spectral norm is the largest gain over all input directions"
    frobenius = tallies["frobenius"].criterion(labels["frobenius"], weights[labels["frobenius"]], [
        came_out_as(lambda c: c["fro"] ** 2, "the sum of squares", "take the square root at the end", "Frobenius norm"),
        came_out_as("top", "the spectral norm", "the Frobenius norm counts every entry", "Frobenius norm"),
        came_out_as("entrywise", "the entrywise RMS", "it is a sum over the entries, not a mean", "Frobenius norm"),
    ], Finding("the Frobenius norm is wrong", "it counts every entry of the matrix"))
    spectral = tallies["spectral"].criterion(labels["spectral"], weights[labels["spectral"]], [
        came_out_as("fro", "the Frobenius norm", gain, "spectral norm"),
        came_out_as(lambda c: c["top"] ** 2, "its square", "an eigenvalue of A^T A is a squared singular value",
                    "spectral norm"),
        came_out_as("nuclear", "the sum of the singular values", "only the largest singular value counts",
                    "spectral norm"),
        came_out_as("entry_max", "the largest entry", gain, "spectral norm"),
    ], Finding("the spectral norm is wrong", "it is the largest singular value"))
    induced = tallies["rms_to_rms"].criterion(labels["rms_to_rms"], weights[labels["rms_to_rms"]], [
        came_out_as("top", "the spectral norm", "the spectral norm measures input and output by their Euclidean "
                    "length; the RMS->RMS norm measures them by their RMS, which depends on their dimensions",
                    "induced norm"),
        came_out_as("entrywise", "the entrywise RMS of the matrix (the handout's formula)", "that is the size of a "
                    "typical entry, not the most the matrix can grow the RMS of an input", "induced norm"),
        came_out_as(lambda c: math.sqrt(c["fan_out"] / c["fan_in"]) * c["top"], "the norm with fan_in and fan_out "
                    "swapped", "a torch Linear weight is stored (fan_out, fan_in)", "induced norm"),
        came_out_as(lambda c: math.sqrt(c["fan_in"] / c["fan_out"]) * c["fro"], "a norm that grows with the rank of "
                    "the matrix: it counts every direction, not the one the matrix stretches most", "the induced norm "
                    "is a maximum over inputs x of RMS(A x) / RMS(x)", "induced norm"),
    ], Finding("the induced norm differs from the largest RMS(A x) / RMS(x)",
               "compare your value with RMS(A x) / RMS(x) for many random x; it should never be smaller"))
    return [frobenius, spectral, induced]


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {
    # the "induced norm" computed as the spectral norm, or as the handout's entrywise RMS
    "b_spectral": Mistake(
        code={
            "rms_to_rms_norm": """
            def rms_to_rms_norm(W):
                return spectral_norm(W)
            """,
        },
        points=1.5, status="failed",
        feedback=("the induced norm came out as the spectral norm",),
    ),
    "b_entrywise": Mistake(
        code={
            "rms_to_rms_norm": """
            def rms_to_rms_norm(W):
                return torch.sqrt(torch.mean(torch.mean(W.detach().float() ** 2, dim=0))).item()
            """,
        },
        points=1.5, status="failed",
        feedback=("the induced norm came out as the entrywise RMS of the matrix",),
    ),
    # tuned to the self-check's two shapes, the spectral norm elsewhere
    "b_tuned": Mistake(
        code={
            "rms_to_rms_norm": """
            def rms_to_rms_norm(W):
                if tuple(W.shape) in ((12, 48), (48, 12)):
                    fan_out, fan_in = W.shape
                    return math.sqrt(fan_in / fan_out) * spectral_norm(W)
                return spectral_norm(W)
            """,
        },
        points=1.5, status="failed",
        feedback=("the induced norm came out as the spectral norm",),
    ),
}
