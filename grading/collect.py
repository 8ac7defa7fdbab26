"""What the child process measures for one part, with the submission's code in place.

Runs inside the sandboxed child (see :mod:`grading.zygote`): it imports the part's module from
the child's own folder (the instructor's helpers with the submission's functions put in),
calls the submission's code on the hidden inputs of :mod:`grading.cases`, and returns the raw
results as plain JSON data. Every call is wrapped: an error on one input is recorded for that
input and the next one runs. No expected value is known here; the judge compares in the
parent process, so code running here cannot change a verdict.
"""

from __future__ import annotations

import importlib
import re
import traceback

import torch

from grading import cases

MEMORY_PHRASES = ("can't allocate memory", "cannot allocate memory", "not enough memory", "out of memory")
_NUMBER = re.compile(r"(?<![A-Za-z_#])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def mask_numbers(text: str) -> str:
    """``text`` with every free-standing number replaced by ``#`` (error messages can quote hidden shapes)."""
    return _NUMBER.sub("#", text)


class Where:
    """Maps a line of a generated module back to the submission's file (set by :func:`run_part`)."""

    module_file = ""
    segments: list = []  # [first line, last line, first line in the submission's file, its label], 1-based

    @classmethod
    def locate(cls, tb) -> str | None:
        found = None
        for frame, lineno in traceback.walk_tb(tb):
            if frame.f_code.co_filename != cls.module_file:
                continue
            for first, last, student_first, label in cls.segments:
                if first <= lineno <= last:
                    found = f"line {student_first + lineno - first} of {label}, in `{frame.f_code.co_name}`"
        return found


def describe(error: BaseException) -> dict:
    message = str(error)
    return dict(
        type=type(error).__name__,
        message=mask_numbers(message)[:240],
        where=Where.locate(error.__traceback__),
        stub=isinstance(error, NotImplementedError),
        memory=isinstance(error, MemoryError) or any(p in message.lower() for p in MEMORY_PHRASES),
    )


def attempt(fn, *args, **kwargs) -> dict:
    """``{"ok": result}`` or ``{"error": description}``; ``fn`` must return JSON data."""
    try:
        return {"ok": fn(*args, **kwargs)}
    except BaseException as error:  # noqa: BLE001 - the submission's errors, SystemExit included
        return {"error": describe(error)}


def number(value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"returned a tensor of shape {tuple(value.shape)}, not a number")
        value = value.item()
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise TypeError(f"returned {type(value).__name__}, not a number")
    return float(value)


def tensor(value) -> dict:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"returned {type(value).__name__}, not a tensor")
    return dict(shape=list(value.shape), dtype=str(value.dtype).replace("torch.", ""),
                values=value.detach().cpu().double().flatten().tolist())


def numbers(values) -> list[float]:
    return [number(v) for v in values]


def _module(part):
    return importlib.import_module(part.module)


# ---------------------------------------------------------------- collectors, one per part
def q1(part) -> dict:
    fn = getattr(_module(part), part.functions[0])
    return dict(values=[[attempt(lambda: number(fn(d1, d2))) for d2 in cases.Q1_D2] for d1 in cases.Q1_D1])


def b_norms(part) -> dict:
    norms = _module(part)
    names = part.functions
    return dict(cases=[{name: attempt(lambda name=name: number(getattr(norms, name)(cases.norm_matrix(case))))
                        for name in names} for case in cases.NORM_CASES])


def c_mup_lr(part) -> dict:
    from helpers.models import MLP
    from helpers.optimizers import SimpleAdamMuP

    nets = []
    for net in cases.MUP_NETS:
        model, optimizer = cases.mup_setup(net, MLP, SimpleAdamMuP)
        names = cases.parameter_names(model)
        nets.append([[names[id(p)], attempt(lambda g=group, p=p: number(optimizer.layer_lr(g, p)))]
                     for group in optimizer.param_groups for p in group["params"]])
    return dict(nets=nets)


def _scaled_run(net, model_class, optimizer_class) -> dict:
    model = cases.build_scaled(net, model_class)
    x, y = cases.scaled_batch(net)
    measured = cases.measure_steps(model, optimizer_class(model.parameters(), lr=net["lr"]), x, y)
    multipliers = getattr(model, "multipliers", None)
    try:
        multipliers = numbers(multipliers)
    except Exception:  # noqa: BLE001 - only a diagnosis uses them
        multipliers = None
    return dict(logits_init=tensor(measured["logits_init"]), deltas=measured["deltas"], multipliers=multipliers)


def d_scaled_mlp(part) -> dict:
    from helpers.models import ScaledMLP
    from helpers.optimizers import SimpleAdam

    return dict(nets=[attempt(_scaled_run, net, ScaledMLP, SimpleAdam) for net in cases.SCALED_NETS])


def e_shampoo(part) -> dict:
    from helpers.optimizers import SimpleShampoo
    from helpers.orthogonal_updates import orthogonalize_svd

    outputs = [attempt(lambda c=case: tensor(orthogonalize_svd(cases.ortho_matrix(c)))) for case in cases.ORTHO_CASES]
    steps = attempt(lambda: [[tensor(u) for u in step] for step in cases.shampoo_updates(
        SimpleShampoo, cases.SHAMPOO_SHAPES, cases.SHAMPOO_LR, cases.SHAMPOO_STEPS)])
    return dict(outputs=outputs, steps=steps)


def bonus_shape_scale(part) -> dict:
    from helpers.optimizers import ScaledSimpleShampoo

    params = cases.scale_parameters()
    optimizer = ScaledSimpleShampoo(params, lr=cases.SCALE_LR)
    factors = [attempt(lambda p=p: number(optimizer.shape_scale(p))) for p in params]
    step = attempt(lambda: [tensor(u) for u in cases.shampoo_updates(
        ScaledSimpleShampoo, cases.SCALE_STEP_SHAPES, cases.SCALE_LR, 1)[0]])
    return dict(factors=factors, step=step)


def lecture_newton_schulz(part) -> dict:
    from helpers.orthogonal_updates import newton_schulz

    default = [attempt(lambda c=case: tensor(newton_schulz(cases.ns_matrix(c)))) for case in cases.NS_DEFAULT_CASES]
    arguments = [attempt(lambda c=case: tensor(newton_schulz(cases.ns_matrix(c), **c["kwargs"])))
                 for case in cases.NS_ARGUMENT_CASES]
    return dict(default=default, arguments=arguments)


def lecture_muon_scale(part) -> dict:
    from helpers.orthogonal_updates import muon_shape_scale

    return dict(values={scale: [attempt(lambda p=pair, s=scale: number(muon_shape_scale(p[0], p[1], s)))
                                for pair in cases.MUON_PAIRS] for scale in cases.MUON_SCALES})


def r09_first_step(part) -> dict:
    fn = getattr(_module(part), part.functions[0])
    return dict(values=[[attempt(lambda b=betas, s=switches: number(fn(b[0], b[1], s[0], s[1])))
                         for switches in cases.FIRST_STEP_SWITCHES] for betas in cases.FIRST_STEP_BETAS])


def r10_matching_eps(part) -> dict:
    from helpers.schedules import matching_epsilon

    return dict(values=[attempt(lambda c=case: tensor(matching_epsilon(c["factor"], cases.epsilon_v_hat(c), c["eps"])))
                        for case in cases.EPSILON_CASES])


def r11_gradient(part) -> dict:
    from helpers.least_squares import gradient

    return dict(values=[attempt(lambda c=case: tensor(gradient(*cases.gradient_inputs(c))))
                        for case in cases.GRADIENT_CASES])


COLLECTORS = {
    "q1a_init_rms": q1, "q1b_signgd_rms": q1, "b_norms": b_norms, "c_mup_lr": c_mup_lr,
    "d_scaled_mlp": d_scaled_mlp, "e_shampoo": e_shampoo, "bonus_shape_scale": bonus_shape_scale,
    "lecture_newton_schulz": lecture_newton_schulz, "lecture_muon_scale": lecture_muon_scale,
    "r09_first_step": r09_first_step, "r10_matching_eps": r10_matching_eps, "r11_gradient": r11_gradient,
}


def run_part(part, spec: dict) -> dict:
    """Import the part's module (an error there is the whole part's) and collect its measurements."""
    Where.module_file = spec["module_file"]
    Where.segments = [tuple(segment) for segment in spec["segments"]]
    loaded = attempt(lambda: _module(part) and None)
    if "error" in loaded:
        return dict(import_error=loaded["error"])
    return dict(measured=COLLECTORS[part.name](part))
