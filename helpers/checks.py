"""Self-checks for the student's work.

Each check runs a small experiment on the CPU in about a second. It returns True and
prints one ``PASS`` line, or raises :class:`CheckFailed` (an ``AssertionError``, so
"Run All" stops there) carrying what was measured, what was expected and a hint that
names the mistake the measurement looks like. An unfinished stub (``NotImplementedError``)
and a helper file that does not load (``EditedFileError``) are not caught. Any other error
raised by the code under test becomes a finding: its message and the lines of the course's
and the student's code that led to it (no traceback through torch).

Expected values are numbers measured once on fixed test shapes, not formulas. Where an
expected number would give the rule away in one step (one division by a size of the small
test shape), the message keeps it hidden and says how far off each layer is instead: the
ratio measured / expected and its direction, or only the direction where the measurement is
the unscaled value itself (the ratio would then be the rule, inverted). Each check
looks at one part only: where the code under test calls another part (the bonus's shape
factor sits on top of the Shampoo orthogonalisation), a stand-in replaces that part, so an
unfinished or wrong part never fails the check of another one.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import math
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from helpers.editable import EditedFileError
from helpers.models import MLP


@dataclass(frozen=True)
class Problem:
    """One finding of a check: what it measured, what it expected, and what that suggests."""

    measured: str
    expected: str
    hint: str


class CheckFailed(AssertionError):
    """A self-check measured a mistake; ``problems`` lists each finding (measured, expected, hint)."""

    def __init__(self, check: str, problems: list[Problem]):
        self.check, self.problems = check, list(problems)
        lines, hints = [f"{check} failed"], list(dict.fromkeys(p.hint for p in self.problems))
        for hint in hints:  # one hint once, after every measurement that led to it
            for problem in (p for p in self.problems if p.hint == hint):
                lines += [f"  measured: {problem.measured}", f"  expected: {problem.expected}"]
            lines.append(f"  hint: {hint}")
        super().__init__("\n".join(lines))

    @property
    def hints(self) -> list[str]:
        return [p.hint for p in self.problems]


class _Report:
    def __init__(self, name: str):
        self.name, self.problems = name, []

    def fail(self, measured: str, expected: str, hint: str) -> None:
        self.problems.append(Problem(measured, expected, hint))

    def done(self, summary: str) -> bool:
        if self.problems:
            raise CheckFailed(self.name, self.problems)
        print(f"PASS {self.name}: {summary}")
        return True


class _OutsideTheCheck(Exception):
    """Raised by a stand-in when the code under test uses it in a way the check cannot judge."""


_LIBRARY = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])


def _where(error: BaseException, keep: int = 3) -> str:
    """The last ``keep`` frames of ``error``'s traceback outside Python's and torch's own files and
    this module: the lines of the course and the student's code that led to it, one per line."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(_LIBRARY) and Path(frame.filename).name != "checks.py"]
    lines = [f"{Path(f.filename).parent.name}/{Path(f.filename).name}, line {f.lineno}, in {f.name}: {f.line}"
             if Path(f.filename).parent.name == "helpers" else f"line {f.lineno}, in {f.name}: {f.line}"
             for f in frames[-keep:]]
    return "\n    ".join(lines)


def _call(report: _Report, what: str, fn, *args, **kwargs):
    """Run the code under test. ``NotImplementedError`` (a stub) propagates; any other
    error becomes a finding that says where it happened (``_where``)."""
    try:
        return fn(*args, **kwargs), True
    except (NotImplementedError, EditedFileError):  # a stub, or a file that does not load: the student's next step
        raise
    except _OutsideTheCheck as error:
        report.fail(f"{what}: {error}", "a number per layer that depends on its shape only", str(error))
    except Exception as error:  # noqa: BLE001 - any error of the code under test becomes a finding
        if isinstance(error, KeyError):
            hint = ("a lookup failed for a key that was never stored: code that reads its optimizer state must "
                    "create every entry the first time it sees a parameter")
        else:
            hint = "the lines under 'measured' show where the error happened"
        where = _where(error)
        report.fail(f"{what} raised {type(error).__name__}: {error}" + (f"\n    at {where}" if where else ""),
                    "no error", hint)
    return None, False


def _close(a: float, b: float, rel: float = 1e-3) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def _as_float(value) -> float | None:
    try:
        return float(value.item() if isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _diagnose(value: float, mistakes: dict[str, float], hints: dict[str, str], fallback: str) -> tuple[str | None, str]:
    """The classic mistake whose value matches ``value`` and its hint, else ``(None, fallback)``."""
    for key, mistaken in mistakes.items():
        if _close(value, mistaken):
            return key, hints[key]
    return None, fallback


# Mistakes that leave a quantity unscaled (the global learning rate, no multiplier, no shape factor, the
# spectral norm as it is): measured / expected is then the expected scale inverted, so it is not shown.
_UNSCALED = {"global_lr", "no_multiplier", "one", "spectral_as_rms"}
# What a message says in place of an expected value from which the rule would follow in one step.
_HIDDEN = "not shown: the rule would follow from it in one step"


def _how_far(got: float, expected: float, mistake: str | None, what: str) -> str:
    """How ``got`` compares with ``expected`` without stating either: "0.5 times the expected step
    (too small)", or only "more than expected" for an unscaled mistake."""
    if mistake in _UNSCALED:
        return f"{'more' if got > expected else 'less'} than expected"
    return f"{got / expected:.3g} times the expected {what} ({'too large' if got > expected else 'too small'})"



def _reveal(blob: str):
    """A table of expected numbers (and of what classic mistakes give), kept out of plain sight:
    a student who opens this file should derive each rule, not read it back from a number on a
    small shape. The course's own tests recompute every table from the reference solution."""
    return ast.literal_eval(base64.b64decode(blob).decode())


def _fixed_matrix(fan_out: int, fan_in: int) -> torch.Tensor:
    """A fixed test matrix with well-spread singular values, made without a random
    generator so that the stored numbers hold on every machine and torch version."""
    i = torch.arange(fan_out, dtype=torch.float64)[:, None]
    j = torch.arange(fan_in, dtype=torch.float64)[None, :]
    return (torch.sin(1.3 * i + 0.7 * j + 0.11 * i * j) + 0.5 * torch.cos(0.37 * i * i - 0.23 * j)).float()


def _test_matrix(fan_out: int, fan_in: int, seed: int = 0) -> torch.Tensor:
    """A Gaussian test matrix (for checks of properties that hold for any matrix)."""
    return torch.randn(fan_out, fan_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float()


def _semi_orthogonal(fan_out: int, fan_in: int) -> torch.Tensor:
    """A fixed (fan_out, fan_in) matrix whose singular values are all 1 (rows or columns of
    the orthonormal DCT-II basis)."""
    n, k = max(fan_out, fan_in), min(fan_out, fan_in)
    t = torch.arange(n, dtype=torch.float64)
    basis = torch.cos(math.pi * (t[None, :] + 0.5) * torch.arange(k, dtype=torch.float64)[:, None] / n)
    basis = basis * math.sqrt(2.0 / n)
    basis[0] /= math.sqrt(2.0)
    return (basis if fan_out <= fan_in else basis.T).float()


# ---------------------------------------------------------------- part b
# The three norms of _fixed_matrix(shape), and what three classic mistakes give in place of the RMS->RMS norm.
_NORM_CASES = _reveal(
    "eygxMiwgNDgpOiB7J2Zyb2Jlbml1cyc6IDE5LjA2NzcsICdzcGVjdHJhbCc6IDguNDY1ODgsICdybXNfdG9fcm1zJzogMTYuOTMx"
    "OCwgJ3NwZWN0cmFsX2FzX3Jtcyc6IDguNDY1ODgsICdlbnRyeXdpc2UnOiAwLjc5NDQ4NiwgJ3N3YXBwZWQnOiA0LjIzMjk0fSwg"
    "KDQ4LCAxMik6IHsnZnJvYmVuaXVzJzogMTguODQwOSwgJ3NwZWN0cmFsJzogNy4zOTYzOSwgJ3Jtc190b19ybXMnOiAzLjY5ODIs"
    "ICdzcGVjdHJhbF9hc19ybXMnOiA3LjM5NjM5LCAnZW50cnl3aXNlJzogMC43ODUwMzksICdzd2FwcGVkJzogMTQuNzkyOH19"
)
_NORM_HINTS = {
    "spectral_as_rms": "that is the spectral norm, which measures input and output by their Euclidean length; "
                       "the RMS->RMS norm measures them by their RMS, which depends on their dimensions",
    "entrywise": "that is the entrywise RMS of the matrix (the handout's formula): the size of a typical entry, "
                 "not the most the matrix can grow the RMS of an input",
    "swapped": "fan_in and fan_out are swapped: a torch Linear weight is stored (fan_out, fan_in)",
}


def check_update_norms(fn) -> bool:
    """``fn(A)`` returns ``{"frobenius": ..., "spectral": ..., "rms_to_rms": ...}`` for a
    matrix ``A`` stored as (fan_out, fan_in); checked on a 12x48 and a 48x12 matrix."""
    report = _Report("check_update_norms")
    generic = {
        "frobenius": "the square root of the sum of the squared entries",
        "spectral": "the largest singular value",
        "rms_to_rms": "RMS(A x) / RMS(x) is largest along the top right singular vector of A",
    }
    for shape, expected in _NORM_CASES.items():
        got, ok = _call(report, f"fn on a {shape[0]}x{shape[1]} matrix", fn, _fixed_matrix(*shape))
        if not ok:
            break
        if not isinstance(got, dict) or not {"frobenius", "spectral", "rms_to_rms"} <= set(got):
            report.fail(repr(got)[:200], "a dict with the keys frobenius, spectral, rms_to_rms",
                        "return all three norms in one dict")
            break
        for name, fallback in generic.items():
            value = _as_float(got[name])
            if value is None:
                report.fail(f"{name} = {got[name]!r}", "a number", "return a float (or a one-element tensor)")
                continue
            if _close(value, expected[name]):
                continue
            if name == "rms_to_rms":  # its expected value is the spectral norm times the answer's factor
                mistake, hint = _diagnose(value, {k: expected[k] for k in _NORM_HINTS}, _NORM_HINTS, fallback)
                report.fail(f"rms_to_rms for a matrix of shape {shape}: "
                            f"{_how_far(value, expected[name], mistake, 'value')}", _HIDDEN, hint)
                continue
            report.fail(f"{name} {value:.6g} for a matrix of shape {shape}", f"{expected[name]:.6g}", fallback)
    return report.done("the three norms on a 12x48 and a 48x12 matrix")


# ---------------------------------------------------------------- part c
_MUP_NET = dict(input_size=30, hidden_sizes=(12, 48, 20), num_classes=7)  # no size is 784 or 10
_MUP_LR = 2.0
# The step each parameter of MLP(**_MUP_NET) takes at lr 2 (its own learning rate), and what classic
# mistakes give instead.
_MUP_STEPS = _reveal(
    "eydsYXllcnMuMC53ZWlnaHQnOiAoJ2lucHV0IGxheWVyICgxMiwgMzApJywgMC42NjY2NjcsIHsnaW5wdXRfYXNfaGlkZGVuJzog"
    "MC4wNjY2NjY3LCAnaW5wdXRfNzg0JzogMC4wMjU1MTAyLCAnc3dhcHBlZCc6IDEuNjY2NjcsICdzcXJ0X3Byb2R1Y3QnOiAxLjA1"
    "NDA5LCAnZ2xvYmFsX2xyJzogMi4wfSksICdsYXllcnMuMS53ZWlnaHQnOiAoJ2hpZGRlbiBsYXllciAoNDgsIDEyKScsIDAuMTY2"
    "NjY3LCB7J3NxcnRfcHJvZHVjdCc6IDAuMDgzMzMzMywgJ3NxcnRfZmFuX2luJzogNi45MjgyLCAnc3FydF9mYW5fb3V0JzogMTMu"
    "ODU2NCwgJ3N3YXBwZWQnOiAwLjA0MTY2NjcsICdnbG9iYWxfbHInOiAyLjB9KSwgJ2xheWVycy4yLndlaWdodCc6ICgnaGlkZGVu"
    "IGxheWVyICgyMCwgNDgpJywgMC4wNDE2NjY3LCB7J3NxcnRfcHJvZHVjdCc6IDAuMDY0NTQ5NywgJ3NxcnRfZmFuX2luJzogMTMu"
    "ODU2NCwgJ3NxcnRfZmFuX291dCc6IDguOTQ0MjcsICdzd2FwcGVkJzogMC4xLCAnZ2xvYmFsX2xyJzogMi4wfSksICdsYXllcnMu"
    "My53ZWlnaHQnOiAoJ3JlYWRvdXQgKDcsIDIwKScsIDAuMDAzLCB7J3JlYWRvdXRfYXNfaGlkZGVuJzogMC4xLCAnZ2xvYmFsX2xy"
    "JzogMi4wfSksICdsYXllcnMuMC5iaWFzJzogKCdiaWFzIG9mIGxlbmd0aCAxMicsIDAuMDIsIHsnZ2xvYmFsX2xyJzogMi4wfSks"
    "ICdsYXllcnMuMS5iaWFzJzogKCdiaWFzIG9mIGxlbmd0aCA0OCcsIDAuMDIsIHsnZ2xvYmFsX2xyJzogMi4wfSksICdsYXllcnMu"
    "Mi5iaWFzJzogKCdiaWFzIG9mIGxlbmd0aCAyMCcsIDAuMDIsIHsnZ2xvYmFsX2xyJzogMi4wfSksICdsYXllcnMuMy5iaWFzJzog"
    "KCdiaWFzIG9mIGxlbmd0aCA3JywgMC4wMiwgeydnbG9iYWxfbHInOiAyLjB9KX0="
)
_MUP_HINTS = {
    "sqrt_product": "the step shrinks with fan-out too (as with 1/sqrt(d_in*d_out)), but how far a layer's output "
                    "moves depends on its fan-in alone (notebook 01)",
    "sqrt_fan_in": "the step grows with fan-in: wide layers now move more, not less",
    "sqrt_fan_out": "the step grows with fan-out (sqrt(d_in) with d_in, d_out = p.shape is sqrt(fan_out): p.shape "
                    "is (fan_out, fan_in)); wide layers now move more, not less",
    "swapped": "the step follows fan-out instead of fan-in: a torch Linear weight is stored (fan_out, fan_in)",
    "global_lr": "the step is the global learning rate: each of these parameters needs a rate of its own",
    "input_as_hidden": "the input layer took the step of a hidden layer with the same fan-in: it misses "
                       "input_mult, or it was not recognised as the input layer (find it by position, the first "
                       "weight matrix, not by the size 784)",
    "input_784": "the input layer's step does not follow this network's input size (30 here): was 784 assumed?",
    "readout_as_hidden": "the readout took a hidden layer's step: it was not recognised as the readout (find it by "
                         "position, the last weight matrix, not by the size 10)",
}


_MUP_FALLBACK = ("no classic mistake gives this step: the layers listed are off by the ratios shown; compare them "
                 "with how far one step moves a layer's output as its fan-in grows (notebook 01)")


def _first_step_sizes(optimizer_class, model: MLP, lr: float) -> dict:
    """Mean |step| of every named parameter after one step with gradient entries of +-1:
    the learning rate each parameter actually got (Adam's first step is lr * sign(g))."""
    opt = optimizer_class(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    before = {}
    for p in model.parameters():
        p.grad = torch.sign(torch.randn(p.shape, generator=gen)) + 0.0
        before[p] = p.detach().clone()
    opt.step()
    return {name: (p.detach() - before[p]).abs().mean().item() for name, p in model.named_parameters()}


def check_mup_optimizer(optimizer_class) -> bool:
    """The learning rate each parameter gets in one step, on a network whose sizes are
    not 784 and 10, then flat RMS activation deltas on the course widths at lr 2."""
    from helpers.data import load_mnist
    from helpers.experiments import train_one_step

    report = _Report("check_mup_optimizer")
    torch.manual_seed(0)
    model = MLP(**_MUP_NET)
    sizes, ok = _call(report, "one optimizer step", _first_step_sizes, optimizer_class, model, _MUP_LR)
    if ok:
        for name, (label, expected, mistakes) in _MUP_STEPS.items():
            got = sizes[name]
            if _close(got, expected):
                continue
            mistake, hint = _diagnose(got, mistakes, _MUP_HINTS, _MUP_FALLBACK)
            report.fail(f"{label}: its step at lr {_MUP_LR:g} is {_how_far(got, expected, mistake, 'step')}",
                        _HIDDEN, hint)
    if ok and not report.problems:
        deltas, ok = _call(report, "train_one_step", train_one_step, optimizer=optimizer_class, lr=_MUP_LR,
                           data=load_mnist("subset"), device="cpu", plot=False)
        if ok:
            spread = float(deltas.rms_deltas.max() / deltas.rms_deltas.min())
            if spread > 1.4:
                report.fail(f"max/min of the RMS activation deltas on the course widths: {spread:.2f}", "<= 1.4",
                            "the per-layer rates do not cancel the growth with fan-in measured in notebook 01")
    return report.done("the step of every parameter, and flat activation deltas at lr 2")


# ---------------------------------------------------------------- part d
# The factor by which one plain-Adam step moves the effective weights (multiplier x stored weights) of
# each layer that produces an activation, relative to lr, for a reference model on _MUP_NET, and what
# classic mistakes give instead.
_SCALED_STEPS = _reveal(
    "ezA6ICgnaW5wdXQgbGF5ZXIgKDEyLCAzMCknLCAwLjMzMzMzMywgeydvdXRfZmVhdHVyZXMnOiAwLjI4ODY3NSwgJ3N3YXBwZWQn"
    "OiAwLjgzMzMzMywgJ2lucHV0Xzc4NCc6IDAuMDEyNzU1MSwgJ2lucHV0X2FzX2hpZGRlbic6IDAuMDMzMzMzMywgJ25vX211bHRp"
    "cGxpZXInOiAxLjAsICdzcXJ0X3Byb2R1Y3QnOiAwLjUyNzA0Nn0pLCAxOiAoJ2hpZGRlbiBsYXllciAoNDgsIDEyKScsIDAuMDgz"
    "MzMzMywgeydvdXRfZmVhdHVyZXMnOiAwLjE0NDMzOCwgJ3N3YXBwZWQnOiAwLjAyMDgzMzMsICdub19tdWx0aXBsaWVyJzogMS4w"
    "LCAnc3FydF9wcm9kdWN0JzogMC4wNDE2NjY3fSksIDI6ICgnaGlkZGVuIGxheWVyICgyMCwgNDgpJywgMC4wMjA4MzMzLCB7J291"
    "dF9mZWF0dXJlcyc6IDAuMjIzNjA3LCAnc3dhcHBlZCc6IDAuMDUsICdub19tdWx0aXBsaWVyJzogMS4wLCAnc3FydF9wcm9kdWN0"
    "JzogMC4wMzIyNzQ5fSl9"
)
_SCALED_HINTS = {
    "out_features": "the multiplier shrinks with the layer's fan-out (like 1/sqrt(out_features)); under Adam a "
                    "multiplier sets the layer's step, and how far a layer's output moves depends on its fan-in "
                    "(notebook 01)",
    "swapped": "the multiplier follows fan-out instead of fan-in: a torch Linear weight is stored (fan_out, fan_in)",
    "input_784": "the input layer's multiplier does not follow this network's input size (30 here): was 784 "
                 "assumed?",
    "input_as_hidden": "the input layer got the multiplier of a hidden layer with the same fan-in: it misses "
                       "input_mult",
    "no_multiplier": "this layer moves as with plain Adam: it has no multiplier",
    "sqrt_product": "the multiplier shrinks with fan-out too (as 1/sqrt(d_in*d_out) does)",
}


_SCALED_FALLBACK = ("no classic mistake gives this step: the layers listed are off by the ratios shown; under Adam "
                    "a layer's multiplier scales its effective step (the question of notebook 04)")


def _effective_weight(model, index: int, fan_in: int) -> torch.Tensor:
    """Layer ``index``'s effective weight matrix (fan_out, fan_in), read through its
    ``layer_output`` (so whatever multiplier the model applies is included)."""
    with torch.no_grad():
        eye, zero = torch.eye(fan_in), torch.zeros(1, fan_in)
        return (model.layer_output(index, eye) - model.layer_output(index, zero)).T.clone()


def _fixed_inputs(batch: int, size: int) -> torch.Tensor:
    """Fixed positive inputs (like pixels, but none exactly 0)."""
    i = torch.arange(batch, dtype=torch.float32)[:, None]
    j = torch.arange(size, dtype=torch.float32)[None, :]
    return 0.55 + 0.45 * torch.sin(0.9 * i + 1.7 * j + 0.05 * i * j)


def _scaled_mlp_measurements(model_class):
    from helpers.optimizers import SimpleAdam

    torch.manual_seed(0)
    plain = MLP(**_MUP_NET, bias=False)
    torch.manual_seed(0)
    model = model_class(**_MUP_NET)
    if not isinstance(model, MLP):
        raise TypeError(f"{type(model).__name__} is not built on helpers.models.MLP (the check reads each layer "
                        "through MLP.layer_output)")
    widths = (_MUP_NET["input_size"], *_MUP_NET["hidden_sizes"], _MUP_NET["num_classes"])
    x = _fixed_inputs(16, widths[0])
    labels = torch.arange(16) % widths[-1]
    with torch.no_grad():
        logit_gap = (plain(x)[0] - model(x)[0]).abs().max().item()
    ratios = []
    for index, layer in enumerate(plain.layers):
        effective = _effective_weight(model, index, widths[index])
        ratios.append((effective.norm() / layer.weight.detach().norm()).item())
    readout = len(plain.layers) - 1
    measured = [*_SCALED_STEPS, readout]
    before = [_effective_weight(model, i, widths[i]) for i in measured]
    opt = SimpleAdam(model.parameters(), lr=1.0)  # first step: lr * sign(g) for every stored entry
    torch.nn.functional.cross_entropy(model(x)[0], labels).backward()
    opt.step()
    steps = [(_effective_weight(model, i, widths[i]) - b).abs().median().item() for i, b in zip(measured, before)]
    count = len(getattr(model, "multipliers", ())) if hasattr(model, "multipliers") else None
    return logit_gap, ratios, steps[:-1], dict(step=steps[-1], multipliers=count, layers=len(plain.layers))


def check_scaled_mlp(model_class) -> bool:
    """``model_class(input_size=30, hidden_sizes=(12, 48, 20), num_classes=7)``: at init
    its forward pass and effective weights equal the bias-free MLP's (same seed); one
    plain-Adam step moves each layer's effective weights by the muP amount for that shape.
    Uses no other part's code."""
    report = _Report("check_scaled_mlp")
    result, ok = _call(report, "building the model and one Adam step", _scaled_mlp_measurements, model_class)
    if ok:
        logit_gap, ratios, steps, readout = result
        if readout["multipliers"] is not None and readout["multipliers"] != readout["layers"]:
            report.fail(f"{readout['multipliers']} multipliers for a network of {readout['layers']} layers",
                        "one multiplier per layer, input layer first, readout last",
                        "the multipliers must be exactly one per layer (extra ones are silently "
                        "dropped, and the readout then gets another layer's multiplier)")
        if not _close(readout["step"], 1.0):  # output_mult = 1: plain Adam's step at lr 1
            report.fail(f"readout: one Adam step at lr 1 moves its effective weights by "
                        f"{readout['step']:.3g} x what its multiplier output_mult (1 here) gives",
                        "1 x", "the readout's multiplier is the argument output_mult, not a fan-in rule")
        if logit_gap > 1e-4 or any(not _close(r, 1.0, 1e-4) for r in ratios):
            # which layers, not the ratios: with the plain init stored, the ratios would be the multipliers
            changed = [f"layer {i} ({'larger' if r > 1 else 'smaller'})" for i, r in enumerate(ratios)
                       if not _close(r, 1.0, 1e-4)]
            report.fail(f"at init the logits differ from the plain MLP's by {logit_gap:.3g}; the effective weights "
                        f"(multiplier x stored) differ from the plain MLP's in {', '.join(changed) or 'no layer'}",
                        "the same logits and effective weights as the plain MLP built with the same seed",
                        "the forward pass changed at init: with its multipliers the network must still start as "
                        "the plain MLP")
        for (label, expected, mistakes), got in zip(_SCALED_STEPS.values(), steps):
            if _close(got, expected):
                continue
            mistake, hint = _diagnose(got, mistakes, _SCALED_HINTS, _SCALED_FALLBACK)
            report.fail(f"{label}: one Adam step at lr 1 moves its effective weights by "
                        f"{_how_far(got, expected, mistake, 'amount')}", _HIDDEN, hint)
    return report.done("the forward pass at init and the step of every layer under plain Adam")


# ---------------------------------------------------------------- part e and bonus
_LR = 0.01
SHAMPOO_SHAPES = [(8, 64), (64, 16), (48, 48)]


def _shampoo_steps(optimizer_class, shapes, lr, steps=3):
    params = [torch.nn.Parameter(_test_matrix(*shape, seed=i)) for i, shape in enumerate(shapes)]
    bias = torch.nn.Parameter(torch.zeros(5))
    opt = optimizer_class(params + [bias], lr=lr)
    updates = []
    for step in range(steps):
        before = [p.detach().clone() for p in params]
        for i, p in enumerate(params):
            p.grad = _test_matrix(*p.shape, seed=100 * step + i)
        bias.grad = torch.ones(5)
        opt.step()
        updates.append([p.detach() - b for p, b in zip(params, before)])
    return updates


def check_shampoo(optimizer_class) -> bool:
    """Three steps without error; every matrix update has all singular values equal
    to lr and points against the gradient."""
    report = _Report("check_shampoo")
    updates, ok = _call(report, "three optimizer steps", _shampoo_steps, optimizer_class, SHAMPOO_SHAPES, _LR)
    if ok:
        for update, shape in zip(updates[0], SHAMPOO_SHAPES):
            s = torch.linalg.svdvals(update.double())
            if not torch.allclose(s, torch.full_like(s, _LR), rtol=1e-3):
                report.fail(f"singular values of the {shape} update in [{s.min():.3g}, {s.max():.3g}]",
                            f"all equal to lr = {_LR}", "the update is U V^T from the SVD of the momentum")
        grad = _test_matrix(*SHAMPOO_SHAPES[0], seed=0)
        if (updates[0][0] * grad).sum() > 0:
            report.fail("the first update points along the gradient", "against it",
                        "the optimizer subtracts lr times what orthogonalize_svd returns: return U V^T itself, "
                        "not its negative")
    return report.done("three steps, every update lr * U V^T against the gradient")


# For each shape: the factor by which the reference scales U V^T, and what classic mistakes give.
_BONUS_FACTORS = _reveal(
    "eyg4LCA3ODQpOiAoMC4xMDEwMTUsIHsnb25lJzogMS4wLCAnaW52ZXJzZV9ybXMnOiAyOC4wLCAnaW52ZXJzZV9mcm9iZW5pdXMn"
    "OiAwLjM1MzU1MywgJ3N3YXBwZWQnOiA5Ljg5OTQ5fSksICg2NCwgMTYpOiAoMi4wLCB7J29uZSc6IDEuMCwgJ2ludmVyc2Vfcm1z"
    "JzogOC4wLCAnaW52ZXJzZV9mcm9iZW5pdXMnOiAwLjI1LCAnc3dhcHBlZCc6IDAuNX0pLCAoMTAyNCwgMjU2KTogKDIuMCwgeydv"
    "bmUnOiAxLjAsICdpbnZlcnNlX3Jtcyc6IDMyLjAsICdpbnZlcnNlX2Zyb2Jlbml1cyc6IDAuMDYyNSwgJ3N3YXBwZWQnOiAwLjV9"
    "KSwgKDEwLCA2NCk6ICgwLjM5NTI4NSwgeydvbmUnOiAxLjAsICdpbnZlcnNlX3Jtcyc6IDguMCwgJ2ludmVyc2VfZnJvYmVuaXVz"
    "JzogMC4zMTYyMjgsICdzd2FwcGVkJzogMi41Mjk4Mn0pLCAoMjAsIDQ1KTogKDAuNjY2NjY3LCB7J29uZSc6IDEuMCwgJ2ludmVy"
    "c2Vfcm1zJzogNi43MDgyLCAnaW52ZXJzZV9mcm9iZW5pdXMnOiAwLjIyMzYwNywgJ3N3YXBwZWQnOiAxLjV9KX0="
)
_BONUS_HINTS = {
    "one": "no shape factor: every update keeps spectral norm lr, so the RMS->RMS norms still differ between shapes",
    "inverse_rms": "scaling by 1/RMS(U V^T) equalises the entrywise RMS of the updates, not their RMS->RMS norm",
    "inverse_frobenius": "scaling by 1/||U V^T||_F equalises the Frobenius norm of the updates, not their RMS->RMS "
                         "norm",
    "swapped": "fan_in and fan_out are swapped in the factor: a torch Linear weight is stored (fan_out, fan_in)",
}


_BONUS_FALLBACK = ("no classic mistake gives this factor: the shapes listed are off by the ratios shown; the "
                   "RMS->RMS norm of lr * U V^T depends on the shape (notebook 02)")


def _equal_singular_values_stand_in(m: torch.Tensor) -> torch.Tensor:
    """Stands in for part e's orthogonalisation while the bonus is checked: the check
    feeds it momenta whose singular values are all equal, so dividing by one of them
    is exact. Anything else means the code under test uses it outside the check's plan."""
    s = torch.linalg.svdvals(m.detach().double().cpu())
    if s.numel() == 0 or s[0] == 0 or (s[0] - s[-1]) > 1e-6 * s[0]:
        raise _OutsideTheCheck("the shape factor was computed from a matrix's values; it should depend on the "
                               "layer's shape (fan_out, fan_in) only")
    return m / s[0].item()


@contextlib.contextmanager
def _stand_in_for_orthogonalization():
    from helpers import orthogonal_updates

    original = orthogonal_updates.orthogonalize_svd
    orthogonal_updates.orthogonalize_svd = _equal_singular_values_stand_in
    try:
        yield
    finally:
        orthogonal_updates.orthogonalize_svd = original


def _bonus_step(optimizer_class, shapes, lr, gradient_scale=3.0):
    """One step on zero matrices whose gradients are ``gradient_scale`` times a matrix with all singular values 1;
    returns each update as a multiple of that matrix: ``update = -factor * lr * direction``."""
    params = [torch.nn.Parameter(torch.zeros(shape)) for shape in shapes]  # the update is then exact in float32
    directions = [_semi_orthogonal(*shape) for shape in shapes]
    bias = torch.nn.Parameter(torch.zeros(5))
    opt = optimizer_class(params + [bias], lr=lr)
    for p, direction in zip(params, directions):
        p.grad = gradient_scale * direction
    bias.grad = torch.ones(5)
    with _stand_in_for_orthogonalization():
        opt.step()
    return [p.detach().double() for p in params], directions


def _bonus_factor(update: torch.Tensor, direction: torch.Tensor) -> float:
    return -(update * direction.double()).sum().item() / (_LR * min(direction.shape))


def check_scaled_shampoo(optimizer_class) -> bool:
    """One step on matrices of five shapes: each update is ``U V^T`` times the shape
    factor the bonus asks for (numbers per shape). Part e's orthogonalisation is
    replaced by a stand-in, so this checks the shape factor alone."""
    report = _Report("check_scaled_shampoo")
    shapes = list(_BONUS_FACTORS)
    result, ok = _call(report, "one optimizer step", _bonus_step, optimizer_class, shapes, _LR)
    if ok:
        rescaled, ok = _call(report, "one optimizer step", _bonus_step, optimizer_class, shapes, _LR, 0.7)
    if ok:
        updates, directions = result
        for update, direction, again, (shape, (expected, mistakes)) in zip(updates, directions, rescaled[0],
                                                                           _BONUS_FACTORS.items()):
            s = torch.linalg.svdvals(update)
            if s[0] > 0 and (s[0] - s[-1]) > 1e-3 * s[0]:
                report.fail(f"singular values of the {shape} update in [{s[-1]:.3g}, {s[0]:.3g}]",
                            "all equal (a multiple of U V^T)", "the shape factor must be one number per layer")
                continue
            factor, other = _bonus_factor(update, direction), _bonus_factor(again, direction)
            if not _close(factor, other):
                report.fail(f"shape {shape}: the factor is {factor:.4g} for one gradient and {other:.4g} for the same "
                            "gradient times 0.23", "the same factor",
                            "the factor changes with the gradient's values: it should depend on the layer's shape "
                            "(fan_out, fan_in) only")
                continue
            if _close(factor, expected):
                continue
            if factor < 0:
                report.fail(f"shape {shape}: the update points along the gradient", "against it",
                            "the update points along the gradient: the factor must be positive")
                continue
            mistake, hint = _diagnose(factor, mistakes, _BONUS_HINTS, _BONUS_FALLBACK)
            report.fail(f"shape {shape}: the factor on lr * U V^T is {_how_far(factor, expected, mistake, 'factor')}",
                        _HIDDEN, hint)
    return report.done("the shape factor on five shapes")


# ---------------------------------------------------------------- lecture
def check_newton_schulz(fn) -> bool:
    """``fn(G)`` keeps the shape, lands every singular value of a Gaussian matrix
    in [0.6, 1.25] (5 quintic steps) and keeps G's singular vectors."""
    report = _Report("check_newton_schulz")
    for shape in [(64, 256), (256, 64)]:
        G = 50.0 * _test_matrix(*shape, seed=7)  # large entries: normalisation is needed
        X, ok = _call(report, f"fn on a {shape[0]}x{shape[1]} matrix", fn, G)
        if not ok:
            break
        if tuple(X.shape) != shape:
            report.fail(f"output shape {tuple(X.shape)}", f"{shape}",
                        "transpose a tall matrix, iterate on the short side, transpose back")
            continue
        normalise = "divide by the Frobenius norm first: the iteration only works for singular values in (0, 1]"
        if not torch.isfinite(X).all():
            report.fail("non-finite entries (the iteration blew up)", "singular values within [0.6, 1.25]", normalise)
            continue
        s = torch.linalg.svdvals(X.double())
        if s.max() > 1.25 or s.min() < 0.6:
            hint = normalise if s.max() > 10 else (
                "use X <- a X + (b A + c A^2) X with A = X X^T and the quintic coefficients, 5 steps")
            report.fail(f"singular values in [{s.min():.3g}, {s.max():.3g}]", "within [0.6, 1.25]", hint)
            continue
        U, _, Vh = torch.linalg.svd(G.double(), full_matrices=False)
        u, _, vh = torch.linalg.svd(X.double(), full_matrices=False)
        gap = ((u @ vh) - (U @ Vh)).abs().max().item()
        if gap > 1e-3:
            report.fail(f"polar factor differs from G's U V^T by {gap:.3g}", "< 1e-3",
                        "apply an odd polynomial of X (X, X X^T X, ...) so the singular vectors stay G's")
    return report.done("shape, singular values and singular vectors on a 64x256 and a 256x64 matrix")


# Muon's factor for a tall, a wide and a square hidden weight (fan_out, fan_in): the expected value and what
# classic mistakes give. Odd sizes, so that no expected number reads back as a formula; messages give ratios.
_MUON_FACTORS = _reveal(
    "eygzNywgMjMpOiB7J3NwZWN0cmFsJzogKDEuMjY4MzQ0LCB7J3N3YXBwZWQnOiAwLjc4ODQzLCAnbm9fcm9vdCc6IDEuNjA4Njk2"
    "fSksICdrZWxsZXInOiAoMS4yNjgzNDQsIHsnc3dhcHBlZCc6IDEuMH0pLCAnbW9vbmxpZ2h0JzogKDEuMjE2NTUzLCB7J3NtYWxs"
    "ZXJfc2lkZSc6IDAuOTU5MTY2LCAnd2l0aG91dF9jb25zdGFudCc6IDYuMDgyNzYzfSl9LCAoMjMsIDM3KTogeydzcGVjdHJhbCc6"
    "ICgwLjc4ODQzLCB7J3N3YXBwZWQnOiAxLjI2ODM0NCwgJ25vX3Jvb3QnOiAwLjYyMTYyMn0pLCAna2VsbGVyJzogKDEuMCwgeydu"
    "b19mbG9vcic6IDAuNzg4NDMsICdzd2FwcGVkJzogMS4yNjgzNDR9KSwgJ21vb25saWdodCc6ICgxLjIxNjU1MywgeydzbWFsbGVy"
    "X3NpZGUnOiAwLjk1OTE2NiwgJ3dpdGhvdXRfY29uc3RhbnQnOiA2LjA4Mjc2M30pfSwgKDI5LCAyOSk6IHsnc3BlY3RyYWwnOiAo"
    "MS4wLCB7fSksICdrZWxsZXInOiAoMS4wLCB7fSksICdtb29ubGlnaHQnOiAoMS4wNzcwMzMsIHsnd2l0aG91dF9jb25zdGFudCc6"
    "IDUuMzg1MTY1fSl9fQ=="
)
_MUON_HINTS = {
    "swapped": "the factor of a tall weight came out where a wide one's belongs: a torch weight is stored "
               "(fan_out, fan_in), and muon_shape_scale receives them in that order",
    "no_root": "the factor grows as fast as the ratio of the two sizes: the RMS->RMS norm takes a square root "
               "of that ratio",
    "no_floor": "on a wide weight (fan_out < fan_in) Keller's factor differs from the spectral one: the lecture's "
                "version never shrinks a wide matrix's step",
    "smaller_side": "the moonlight factor of a non-square weight is too small: which side sets the entrywise "
                    "RMS of a full-rank U V^T?",
    "without_constant": "the moonlight factor is about 5x too large: the target entrywise RMS is 0.2, not 1",
}


def check_muon_shape_scale(fn) -> bool:
    """``fn(fan_out, fan_in, scale)`` for the three scales on a tall, a wide and a square
    weight (numbers per shape); a failure says by what ratio and on which shape it is off."""
    report = _Report("check_muon_shape_scale")
    for shape, scales in _MUON_FACTORS.items():
        for scale, (expected, mistakes) in scales.items():
            value, ok = _call(report, f"muon_shape_scale({shape[0]}, {shape[1]}, {scale!r})", fn, *shape, scale)
            if not ok:
                return report.done("")
            got = _as_float(value)
            if got is None:
                report.fail(f"{scale} on a {shape} weight returned {type(value).__name__}", "a number",
                            "return one float per call")
                continue
            if _close(got, expected):
                continue
            kind = "tall" if shape[0] > shape[1] else "wide" if shape[0] < shape[1] else "square"
            ratio = got / expected
            fallback = (f"the {scale} factor of a {kind} weight is {ratio:.3g} times the expected one "
                        f"({'too large' if ratio > 1 else 'too small'})")
            report.fail(f"{scale} on a {kind} {shape} weight: {ratio:.3g} x the expected factor", "1 x",
                        _diagnose(got, mistakes, _MUON_HINTS, fallback)[1])
    return report.done("the three factors on a tall, a wide and a square weight")


# ---------------------------------------------------------------- notebook 01 (part a)
ALTERNATING_WIDTHS = (16, 256, 16, 256, 16, 256, 16, 256)
# One SimpleAdam step at lr 0.01 on ALTERNATING_WIDTHS (offline subset, seed 0): the mean RMS delta of the
# width-16 activations (fan-in 256) and of the width-256 ones (fan-in 16). Seeds and data sources move
# them by a few percent.
_ALTERNATING_DELTAS = dict(narrow=0.2900, wide=0.0453)


def check_alternating_widths(result) -> bool:
    """``result = train_one_step(...)`` for hidden widths (16, 256, 16, 256, 16, 256, 16, 256)
    with SimpleAdam at lr 0.01: the widths, and deltas of the size that experiment gives."""
    import numpy as np

    report = _Report("check_alternating_widths")
    if not all(hasattr(result, name) for name in ("widths", "fan_ins", "rms_deltas")):
        report.fail(f"a {type(result).__name__}", "the result of train_one_step(...)",
                    "pass what train_one_step returns (it has widths, fan_ins and rms_deltas)")
        return report.done("")
    widths, fan_ins = tuple(int(w) for w in result.widths), tuple(int(f) for f in result.fan_ins)
    if widths != ALTERNATING_WIDTHS[1:] or fan_ins != ALTERNATING_WIDTHS[:-1]:
        report.fail(f"measured activations of widths {widths} with fan-ins {fan_ins}",
                    f"hiddens={ALTERNATING_WIDTHS}: widths {ALTERNATING_WIDTHS[1:]}, fan-ins {ALTERNATING_WIDTHS[:-1]}",
                    "wrong widths: pass hiddens=(16, 256, 16, 256, 16, 256, 16, 256) to train_one_step")
        return report.done("")
    deltas = np.asarray(result.rms_deltas, dtype=float)
    narrow, wide = deltas[np.array(widths) == 16].mean(), deltas[np.array(widths) == 256].mean()
    scale = narrow / _ALTERNATING_DELTAS["narrow"]
    reference = f"about {_ALTERNATING_DELTAS['narrow']:.2f} and {_ALTERNATING_DELTAS['wide']:.3f}"
    measured = f"mean RMS delta {narrow:.3g} for the width-16 activations, {wide:.3g} for the width-256 ones"
    if not 0.75 < scale < 1.33:
        report.fail(measured, reference, f"the deltas are {scale:.2g} times those of one SimpleAdam step at lr 0.01: "
                                         "check the optimizer and the learning rate (lr=0.01)")
    elif not narrow > 3 * wide:
        report.fail(measured, reference, "the deltas hardly depend on the fan-in: that is not one plain Adam step "
                                         "(use optimizer=SimpleAdam)")
    return report.done("the alternating widths, one SimpleAdam step at lr 0.01")
