"""2e: Shampoo without accumulation (helpers/orthogonal_updates.py, through SimpleShampoo)."""

from __future__ import annotations

import numpy as np
import torch

from grading import cases
from grading.collect import attempt, tensor
from grading.judge import Criterion, Finding, Tally, array, polar, svd_values
from grading.parts import Mistake, Part

PART = Part("e_shampoo", 2, "2e: Shampoo without accumulation (`orthogonalize_svd`)",
            "helpers/orthogonal_updates.py", ("orthogonalize_svd",),
            (("every singular value of the result is one", 1), ("the result keeps the input's singular vectors", 1),
             ("shape and dtype, and the Shampoo step built on it", 1)), order=60)

# ---------------------------------------------------------------- hidden inputs
ORTHO_CASES = (
    dict(shape=(9, 70), seed=201),
    dict(shape=(70, 9), seed=202),
    dict(shape=(31, 31), seed=203, scale=1e-3),
    dict(shape=(128, 40), seed=204, scale=50.0),
    dict(shape=(3, 200), seed=205),
    dict(shape=(40, 128), seed=206),
    dict(shape=(25, 60), seed=207, kind="float64"),
    dict(shape=(60, 25), seed=208, kind="conditioned"),
)


def ortho_matrix(case: dict) -> torch.Tensor:
    shape, seed, scale, kind = case["shape"], case["seed"], case.get("scale", 1.0), case.get("kind")
    if kind == "conditioned":
        return cases.conditioned(shape, seed, 100.0, 0.01)
    return cases.gaussian(shape, seed, scale, torch.float64 if kind == "float64" else torch.float32)


SHAMPOO_SHAPES = ((20, 50), (50, 20))


SHAMPOO_LR, SHAMPOO_STEPS = 0.05, 2


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    from helpers.optimizers import SimpleShampoo
    from helpers.orthogonal_updates import orthogonalize_svd

    outputs = [attempt(lambda c=case: tensor(orthogonalize_svd(ortho_matrix(c)))) for case in ORTHO_CASES]
    steps = attempt(lambda: [[tensor(u) for u in step] for step in cases.shampoo_updates(
        SimpleShampoo, SHAMPOO_SHAPES, SHAMPOO_LR, SHAMPOO_STEPS)])
    return dict(outputs=outputs, steps=steps)


# ---------------------------------------------------------------- in the grader: verdicts
def judge(part, measured: dict, ref) -> list[Criterion]:
    ortho, vectors, form = Tally("hidden matrices"), Tally("hidden matrices"), Tally("hidden checks")
    for case, entry in zip(ORTHO_CASES, measured["outputs"]):
        M = ortho_matrix(case)
        value = ortho.take(entry)
        vectors.take(entry)
        form.take(entry)
        if value is None:
            continue
        out = array(value)
        if out is None or out.shape != tuple(M.shape):
            for tally in (ortho, vectors, form):
                tally.fail(None, dict(shape=True))
            continue
        if value.get("dtype") != str(M.dtype).replace("torch.", ""):
            form.fail(value.get("dtype"), dict(dtype=True))
        if not np.all(np.isfinite(out)):
            ortho.fail(None, dict(finite=False))
            vectors.fail(None, dict(finite=False))
            continue
        s = svd_values(out)
        expected = polar(M.double().numpy())
        if not np.allclose(s, 1.0, atol=2e-3):
            ortho.fail(s, dict(M=M.double().numpy()))
        if np.abs(polar(out) - expected).max() > 2e-3:
            vectors.fail(out, dict(expected=expected))
    steps = form.take(measured["steps"])
    if steps is not None:
        try:
            got = [[array(u) for u in step] for step in steps]
            ok = all(g is not None and g.shape == e.shape and np.allclose(g, e, atol=1e-5)
                     for step, ref_step in zip(got, reference_steps(ref)) for g, e in zip(step, ref_step))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            form.fail(None, dict(steps=True))
    shape = Finding("the result's shape differs from the input's on non-square inputs",
                    "the reduced SVD gives U and V^T whose product has the input's shape")
    orthogonal = ortho.criterion(*part.criteria[0], [
        (lambda got, c: c.get("shape"), shape),
        (lambda got, c: c.get("finite") is False, Finding("the result has infinite or NaN entries",
                                                          "take the SVD of the input itself")),
        (lambda got, c: np.allclose(got / got[0], svd_values(c["M"]) / svd_values(c["M"])[0], rtol=1e-3), Finding(
            "the result keeps the spread of the input's singular values: it is rescaled, not orthogonalised",
            "every singular value of U V^T is one")),
    ], Finding("the singular values of the result are not all one", "every singular value of U V^T is one"))
    keeps = vectors.criterion(*part.criteria[1], [
        (lambda got, c: c.get("shape"), shape),
        (lambda got, c: c.get("finite") is False, Finding("the result has infinite or NaN entries",
                                                          "take the SVD of the input itself")),
        (lambda got, c: np.abs(polar(got) + c["expected"]).max() < 2e-3, Finding(
            "the result points the opposite way", "U V^T, not its negative: the optimizer subtracts the update")),
    ], Finding("the result's singular vectors are not the input's", "take U and V from the SVD of the input itself"))
    shape_dtype = form.criterion(*part.criteria[2], [
        (lambda got, c: c.get("shape"), shape),
        (lambda got, c: c.get("dtype"), Finding("the result's dtype differs from the input's",
                                                "return the update in the parameter's dtype")),
        (lambda got, c: c.get("steps"), Finding("SimpleShampoo's steps built on your function are wrong",
                                                "the optimizer subtracts lr times your result from each weight")),
    ])
    return [orthogonal, keeps, shape_dtype]


def reference_steps(ref) -> list[list[np.ndarray]]:
    """The reference SimpleShampoo's updates on the hidden gradients."""
    def compute():
        updates = cases.shampoo_updates(ref.optimizers.SimpleShampoo, SHAMPOO_SHAPES, SHAMPOO_LR, SHAMPOO_STEPS)
        return [[u.double().numpy() for u in step] for step in updates]

    return ref.cached(PART.name, compute)


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {
    # reads state it never created (KeyError 'precond')
    "e_keyerror": Mistake(
        code={
            "orthogonalize_svd": """
            def orthogonalize_svd(m):
                state = _SHAMPOO_STATE.setdefault(m.shape, {})
                precond = state["precond"]
                return precond @ m
            """,
        },
        points=0.0, status="error", added='\n_SHAMPOO_STATE = {}\n',
        feedback=(
            "raised KeyError: 'precond'",
            "in `orthogonalize_svd`",
            "code that reads stored state must create every entry",
        ),
    ),
}
