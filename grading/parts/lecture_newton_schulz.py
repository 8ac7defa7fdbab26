"""lecture: the Newton-Schulz iteration (helpers/orthogonal_updates.py)."""

from __future__ import annotations

import numpy as np
import torch

from grading import cases
from grading.collect import attempt, tensor
from grading.judge import Criterion, Finding, Tally, array, polar, svd_values
from grading.parts import Part

PART = Part("lecture_newton_schulz", 2, "lecture: the Newton-Schulz iteration (`newton_schulz`)",
            "helpers/orthogonal_updates.py", ("newton_schulz",),
            (("the default quintic iteration", 2), ("the `steps` and `coefficients` arguments", 1)), order=80)

# ---------------------------------------------------------------- hidden inputs
NS_DEFAULT_CASES = (
    dict(shape=(20, 90), seed=501, scale=1e-2),
    dict(shape=(90, 20), seed=502),
    dict(shape=(48, 48), seed=503, scale=300.0),
    dict(shape=(128, 32), seed=504),
)


NS_ARGUMENT_CASES = (
    dict(shape=(30, 60), seed=505, kwargs=dict(steps=0)),
    dict(shape=(30, 60), seed=505, kwargs=dict(steps=1)),
    dict(shape=(60, 30), seed=506, kwargs=dict(steps=12)),
    dict(shape=(30, 60), seed=507, kwargs=dict(steps=40, coefficients=(1.5, -0.5, 0.0)), well_conditioned=True),
    dict(shape=(30, 60), seed=508, kwargs=dict(steps=3, coefficients=(2.0, -1.5, 0.5))),
)


def ns_matrix(case: dict) -> torch.Tensor:
    if case.get("well_conditioned"):
        return cases.conditioned(case["shape"], case["seed"], 2.0, 0.5)
    return cases.gaussian(case["shape"], case["seed"], case.get("scale", 1.0))


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    from helpers.orthogonal_updates import newton_schulz

    default = [attempt(lambda c=case: tensor(newton_schulz(ns_matrix(c)))) for case in NS_DEFAULT_CASES]
    arguments = [attempt(lambda c=case: tensor(newton_schulz(ns_matrix(c), **c["kwargs"])))
                 for case in NS_ARGUMENT_CASES]
    return dict(default=default, arguments=arguments)


# ---------------------------------------------------------------- in the grader: verdicts
def _ns_variant(matrix: torch.Tensor, steps=5, coefficients=(3.4445, -4.7750, 2.0315), norm="fro") -> np.ndarray:
    """The quintic iteration with another normalisation (a candidate mistake)."""
    a, b, c = coefficients
    X = matrix.double()
    tall = X.shape[0] > X.shape[1]
    X = X.T if tall else X
    if norm == "fro":
        X = X / (torch.linalg.matrix_norm(X) + 1e-7)
    elif norm == "spectral":
        X = X / (torch.linalg.matrix_norm(X, ord=2) + 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    return (X.T if tall else X).numpy()


def judge(part, measured: dict, ref) -> list[Criterion]:
    default, arguments = Tally("hidden matrices"), Tally("hidden calls with other arguments")
    for case, entry in zip(NS_DEFAULT_CASES, measured["default"]):
        value = default.take(entry)
        if value is None:
            continue
        G = ns_matrix(case)
        out, expected = array(value), reference(ref, G)
        if out is None or out.shape != expected.shape or not np.all(np.isfinite(out)) \
                or np.abs(out - expected).max() > 2e-3:
            default.fail(out, dict(G=G, expected=expected))
    for case, entry in zip(NS_ARGUMENT_CASES, measured["arguments"]):
        value = arguments.take(entry)
        if value is None:
            continue
        G = ns_matrix(case)
        out, expected = array(value), reference(ref, G, **case["kwargs"])
        if out is None or out.shape != expected.shape or not np.all(np.isfinite(out)) \
                or np.abs(out - expected).max() > 2e-3:
            arguments.fail(out, dict(G=G, kwargs=case["kwargs"]))

    def near(got, other) -> bool:
        return got is not None and got.shape == other.shape and np.all(np.isfinite(got)) and \
            np.abs(got - other).max() < 2e-3

    polynomial = "an odd polynomial of X (X, (X X^T) X, (X X^T)^2 X) keeps the singular vectors of X"
    return [
        default.criterion(*part.criteria[0], [
            (lambda got, c: got is None or got.shape != c["expected"].shape, Finding(
                "the result's shape differs from the input's", "the code around your region transposes a tall "
                "matrix before and after; iterate on X as it is given")),
            (lambda got, c: not np.all(np.isfinite(got)) or svd_values(got)[0] > 10, Finding(
                "the iteration diverges on inputs with large entries: singular values start above one",
                "the polynomial maps (0, 1] near one; scale X first as the docstring says")),
            (lambda got, c: near(got, _ns_variant(c["G"], norm=None)), Finding(
                "the input is not scaled before the iteration", "scale X first as the docstring says")),
            (lambda got, c: near(got, _ns_variant(c["G"], norm="spectral")), Finding(
                "the input is scaled by another norm than the docstring's", "scale X as the docstring says")),
            (lambda got, c: np.abs(polar(got) - polar(c["G"].double().numpy())).max() > 2e-3, Finding(
                "the result's singular vectors differ from the input's", polynomial)),
        ], Finding("the result differs from the quintic iteration's", "five steps of X <- a X + (b A + c A^2) X")),
        arguments.criterion(*part.criteria[1], [
            (lambda got, c: "steps" in c["kwargs"] and near(got, reference(ref, c["G"], coefficients=c["kwargs"].get(
                "coefficients", ref.orthogonal.QUINTIC))), Finding(
                "the number of iterations does not follow `steps`", "loop `steps` times")),
            (lambda got, c: "coefficients" in c["kwargs"] and near(got, reference(ref, c["G"], steps=c["kwargs"][
                "steps"])), Finding("the `coefficients` argument is ignored", "use the a, b, c given")),
        ], Finding("the iteration with other `steps` or `coefficients` differs from the reference", polynomial)),
    ]


def reference(ref, matrix: torch.Tensor, **kwargs) -> np.ndarray:
    return ref.orthogonal.newton_schulz(matrix, **kwargs).double().numpy()


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {}
