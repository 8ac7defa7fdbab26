"""Verdicts: what a child measured, compared with the instructor's reference, in the parent.

Runs in the grader's own process, never in the one that ran submission code. The reference
values come from the instructor's helpers (imported from the instructor's tree before any
submission runs) on the inputs of :mod:`grading.cases`. A failed test is reported as the
mistake the measurement looks like (each candidate mistake is computed and matched) and a
hint; findings give counts ("3 of 11 hidden matrices") but never an input, an expected value
or the correct formula.
"""

from __future__ import annotations

import functools
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from grading import cases

REL = 1e-3


@dataclass(frozen=True)
class Finding:
    mistake: str
    hint: str


@dataclass
class Criterion:
    name: str
    weight: float
    state: str  # passed, failed, not attempted
    findings: list[Finding] = field(default_factory=list)
    errored: bool = False  # every hidden test of it raised an error


@dataclass
class Verdict:
    status: str
    fraction: float  # of the part's points
    criteria: list[Criterion] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # about the part as a whole


def close(a: float, b: float, rel: float = REL) -> bool:
    return a is not None and b is not None and math.isfinite(a) and math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def array(entry) -> np.ndarray | None:
    """A measured tensor (``{"shape", "dtype", "values"}``) as a float64 array, None if malformed."""
    try:
        return np.asarray(entry["values"], dtype=np.float64).reshape(entry["shape"])
    except (KeyError, TypeError, ValueError):
        return None


def _svdvals(matrix: np.ndarray) -> np.ndarray:
    return np.linalg.svd(matrix, compute_uv=False)


def polar(matrix: np.ndarray) -> np.ndarray:
    u, _, vh = np.linalg.svd(matrix, full_matrices=False)
    return u @ vh


ERROR_HINTS = {
    "KeyError": "a lookup failed for a key that was never stored: code that reads stored state must create every "
                "entry the first time it sees a parameter",
    "NameError": "only the code of the graded functions and what your file adds at its top level is graded, inside "
                 "the course's own helpers: a name defined elsewhere is not there",
}
IMPORT_HINT = ("the graded functions are loaded with what your file adds at its top level (imports, new "
               "functions, other statements); restart the kernel and run the notebook from the top to see the error")
GENERIC_ERROR_HINT = ("the notebook's self-check calls this code too: run it and read the traceback; the hidden tests "
                      "use other shapes and settings, so the code must not depend on the self-check's")


class Tally:
    """The entries of one criterion: failures with their context, errors grouped, stubs counted."""

    def __init__(self, noun: str):
        self.noun, self.total, self.stubs = noun, 0, 0
        self.failures: list[tuple[object, dict]] = []
        self.errors: dict[tuple, int] = {}

    def take(self, entry):
        """The value of an entry, or None (its error recorded)."""
        self.total += 1
        if isinstance(entry, dict) and "ok" in entry:
            return entry["ok"]
        error = entry.get("error") if isinstance(entry, dict) else None
        error = error if isinstance(error, dict) else dict(type="malformed result", message="")
        if error.get("stub"):
            self.stubs += 1
        else:
            key = (str(error.get("type")), str(error.get("message", ""))[:240], error.get("where"))
            self.errors[key] = self.errors.get(key, 0) + 1
        return None

    def fail(self, got, context: dict | None = None) -> None:
        self.failures.append((got, context or {}))

    def count(self, n: int) -> str:
        return f"{n} of {self.total} {self.noun}"

    def error_findings(self) -> list[Finding]:
        out = []
        for (kind, message, where), n in sorted(self.errors.items(), key=lambda item: (-item[1], str(item[0]))):
            out.append(Finding(f"{error_text(kind, message, where)}, on {self.count(n)}",
                               ERROR_HINTS.get(kind, GENERIC_ERROR_HINT)))
        return out[:3]

    def criterion(self, name: str, weight: float, candidates=(), fallback: Finding | None = None) -> Criterion:
        """``candidates``: ``(test(got, context) -> bool, Finding)``; the ones that explain the most
        failures are reported, the unexplained rest with ``fallback``."""
        if self.total and self.stubs == self.total:
            return Criterion(name, weight, "not attempted", [Finding("the stub is still there", "replace it with your code")])
        if not self.failures and not self.errors and not self.stubs:
            return Criterion(name, weight, "passed")
        findings = self.error_findings()
        if self.stubs:
            findings.append(Finding(f"raised NotImplementedError on {self.count(self.stubs)}",
                                    "a stub is left in the code this part calls"))
        unexplained = list(range(len(self.failures)))
        for _ in range(2):  # greedily: the mistake that explains the most failures not yet explained
            best = max(((([i for i in unexplained if _safe(test, *self.failures[i])]), order, finding)
                        for order, (test, finding) in enumerate(candidates)),
                       key=lambda item: (len(item[0]), -item[1]), default=([], 0, None))
            explained, _, finding = best
            if not explained:
                break
            findings.append(Finding(f"{finding.mistake} ({self.count(len(explained))})", finding.hint))
            unexplained = [i for i in unexplained if i not in explained]
        if unexplained and fallback is not None:
            findings.append(Finding(f"{fallback.mistake} ({self.count(len(unexplained))})", fallback.hint))
        errored = sum(self.errors.values()) == self.total
        return Criterion(name, weight, "failed", findings, errored)


# Paths on the grading machine (the course tree, temporary folders) say nothing to a student and may
# hold digits that look like hidden values: feedback names them by what they are.
_COURSE_ROOT = str(Path(__file__).resolve().parents[1])
_TEMP_ROOT = str(Path(tempfile.gettempdir()).resolve())


def without_machine_paths(message: str) -> str:
    message = re.sub(r"/proc/\d+", "/proc/<pid>", message.replace(_COURSE_ROOT, "<course files>"))
    return re.sub(re.escape(_TEMP_ROOT) + r"/[^\s'\"]*", "<its folder>", message)


def error_text(kind: str, message: str, where: str | None) -> str:
    message = without_machine_paths(message)
    return f"raised {kind}" + (f": {message}" if message else "") + (f" ({where})" if where else "")


def _safe(test, got, context) -> bool:
    try:
        return bool(test(got, context))
    except Exception:  # noqa: BLE001 - a candidate that cannot be computed explains nothing
        return False


def trend(xs, ratios) -> str:
    """How measured/expected ratios move with ``xs``: constant, up, down or mixed."""
    logs = np.log(np.abs(np.asarray(ratios, dtype=float)) + 1e-300)
    if np.ptp(logs) < 0.01:
        return "constant"
    x = np.log(np.asarray(xs, dtype=float))
    if np.ptp(x) == 0:
        return "mixed"
    correlation = np.corrcoef(x, logs)[0, 1]
    return "up" if correlation > 0.9 else "down" if correlation < -0.9 else "mixed"


class Reference:
    """The instructor's implementations and the expected values, computed once per grading run."""

    def __init__(self, notebook_functions: dict):
        import helpers.least_squares
        import helpers.models
        import helpers.norms
        import helpers.optimizers
        import helpers.orthogonal_updates
        import helpers.schedules

        self.models, self.optimizers = helpers.models, helpers.optimizers
        self.orthogonal = helpers.orthogonal_updates
        self.schedules, self.regression, self.norms = helpers.schedules, helpers.least_squares, helpers.norms
        self.notebook = notebook_functions  # function name -> the instructor's function

    @functools.cached_property
    def mup(self) -> list[list[dict]]:
        out = []
        for index, net in enumerate(cases.MUP_NETS):
            model, optimizer = cases.mup_setup(net, self.models.MLP, self.optimizers.SimpleAdamMuP)
            names = cases.parameter_names(model)
            rows = []
            for group in optimizer.param_groups:
                for p in group["params"]:
                    role = optimizer.roles[id(p)]
                    fan_out, fan_in = (p.shape[0], p.shape[1]) if p.ndim == 2 else (p.shape[0], 1)
                    rows.append(dict(name=names[id(p)], role=role, fan_out=fan_out, fan_in=fan_in, lr=group["lr"],
                                     input_mult=optimizer.input_mult, bias_mult=optimizer.bias_mult,
                                     output_lr=optimizer.output_lr, input_size=net["input_size"],
                                     classes=net["classes"], net=index, expected=optimizer.layer_lr(group, p)))
            out.append(rows)
        return out

    @functools.cached_property
    def scaled(self) -> list[dict]:
        out = []
        for net in cases.SCALED_NETS:
            model = cases.build_scaled(net, self.models.ScaledMLP)
            x, y = cases.scaled_batch(net)
            measured = cases.measure_steps(model, self.optimizers.SimpleAdam(model.parameters(), lr=net["lr"]), x, y)
            torch.manual_seed(net["seed"])
            plain = self.models.MLP(input_size=net["input_size"], hidden_sizes=net["hidden"],
                                    num_classes=net["classes"], bias=False)
            with torch.no_grad():
                plain_logits = plain(x)[0].double().numpy()
            widths = (net["input_size"], *net["hidden"], net["classes"])
            out.append(dict(plain_logits=plain_logits, deltas=np.asarray(measured["deltas"]),
                            multipliers=list(model.multipliers), widths=widths,
                            input_mult=net.get("input_mult", 10.0), plain=plain, x=x))
        return out

    @functools.cached_property
    def shampoo_steps(self) -> list[list[np.ndarray]]:
        updates = cases.shampoo_updates(self.optimizers.SimpleShampoo, cases.SHAMPOO_SHAPES, cases.SHAMPOO_LR,
                                        cases.SHAMPOO_STEPS)
        return [[u.double().numpy() for u in step] for step in updates]

    def newton_schulz(self, matrix: torch.Tensor, **kwargs) -> np.ndarray:
        return self.orthogonal.newton_schulz(matrix, **kwargs).double().numpy()


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


# ---------------------------------------------------------------- Q1
Q1_TEXT = {
    "q1a_init_rms": "write RMS(y)^2 as the mean of the squared outputs and take the expectation of one of them",
    "q1b_signgd_rms": "write the change of the features on that input as a sum over the inputs and take its "
                      "expected square",
}


def judge_q1(part, measured: dict, ref: Reference) -> list[Criterion]:
    fn = ref.notebook[part.functions[0]]
    hint = Q1_TEXT[part.name]
    tally = Tally("hidden size pairs")
    got = {}
    for i, d1 in enumerate(cases.Q1_D1):
        for j, d2 in enumerate(cases.Q1_D2):
            value = tally.take(measured["values"][i][j])
            got[d1, d2] = value
            if value is not None and not close(value, fn(d1, d2)):
                tally.fail(value, dict(d1=d1, d2=d2))
    findings = []
    rows = [[got[d1, d2] for d2 in cases.Q1_D2] for d1 in cases.Q1_D1]
    if any(None not in row and np.ptp(row) > 1e-9 * max(abs(v) for v in row) for row in rows):
        findings.append(Finding("your prediction changes with d2, the number of outputs",
                                "no output coordinate depends on how many other outputs there are"))
    column = [(d1, got[d1, cases.Q1_D2[0]] / fn(d1, cases.Q1_D2[0])) for d1 in cases.Q1_D1
              if got[d1, cases.Q1_D2[0]] not in (None, 0)]
    direction = trend(*zip(*column)) if len(column) > 2 else "mixed"
    growth = {
        "up": Finding("your prediction grows faster with d1 than the Monte Carlo estimate", hint),
        "down": Finding("your prediction grows more slowly with d1 than the Monte Carlo estimate", hint),
        "constant": Finding("your prediction grows with d1 as the Monte Carlo estimate does, but with the wrong "
                            "constant factor", hint),
    }
    criterion = tally.criterion(part.criteria[0][0], part.criteria[0][1],
                                fallback=growth.get(direction, Finding("your prediction does not follow the Monte "
                                                                       "Carlo estimate", hint)))
    if criterion.state == "failed" and findings:
        criterion.findings = findings + criterion.findings
    return [criterion]


# ---------------------------------------------------------------- part b
def judge_b_norms(part, measured: dict, ref: Reference) -> list[Criterion]:
    names = dict(zip(("frobenius", "spectral", "rms_to_rms"), part.functions))
    tallies = {key: Tally("hidden matrices") for key in names}
    for case, row in zip(cases.NORM_CASES, measured["cases"]):
        A = cases.norm_matrix(case).detach().double()
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


# ---------------------------------------------------------------- part c
def judge_c_mup_lr(part, measured: dict, ref: Reference) -> list[Criterion]:
    nouns = dict(hidden="hidden weight matrices", input="input layers", output="readout layers", bias="bias vectors")
    tallies = {role: Tally(noun) for role, noun in nouns.items()}
    passed_where = {role: set() for role in nouns}
    for rows, got_rows in zip(ref.mup, measured["nets"]):
        for row, (name, entry) in zip(rows, got_rows):
            tally = tallies[row["role"]]
            value = tally.take(entry)
            if value is None:
                continue
            if close(value, row["expected"]):
                passed_where[row["role"]].add(row["net"])
            else:
                tally.fail(value, row)

    def rate(c, kind):
        lr, fan_out, fan_in = c["lr"], c["fan_out"], c["fan_in"]
        return dict(hidden=lr / fan_in, input=lr * c["input_mult"] / fan_in, output=c["output_lr"],
                    sqrt_product=lr / math.sqrt(fan_in * fan_out), sqrt_in=lr * math.sqrt(fan_in),
                    sqrt_out=lr * math.sqrt(fan_out), per_out=lr / fan_out, per_sqrt_in=lr / math.sqrt(fan_in),
                    bias=lr * c["bias_mult"])[kind]

    by_size_net = next(i for i, net in enumerate(cases.MUP_NETS) if net["input_size"] == 784)
    position = "find the input layer and the readout by their position (the optimizer already knows each " \
               "parameter's role), not by their size"
    hidden = tallies["hidden"].criterion(*part.criteria[0], [
        (lambda v, c: close(v, rate(c, "sqrt_product")), Finding(
            "the step shrinks with fan-out too", "how far one step moves a layer's output does not depend on how "
            "many outputs the layer has")),
        (lambda v, c: close(v, rate(c, "sqrt_in")) or close(v, rate(c, "sqrt_out")), Finding(
            "the step grows with the layer's size, so wide layers move their outputs even more than with plain Adam",
            "the rate has to shrink where one step's effect on the output grows")),
        (lambda v, c: close(v, rate(c, "per_out")), Finding(
            "the step follows the layer's fan-out, the first dimension of a torch weight",
            "a torch Linear weight is stored (fan_out, fan_in)")),
        (lambda v, c: close(v, rate(c, "per_sqrt_in")), Finding(
            "the step shrinks with fan-in, but too slowly: the output change still grows with width",
            "compare how much one plain Adam step moves a layer's output as its fan-in grows")),
        (lambda v, c: close(v, c["lr"]) or close(v, rate(c, "bias")), Finding(
            "hidden layers take a rate that does not depend on their shape",
            "one step moves a layer's output more the wider its input; the rate has to make up for that")),
        (lambda v, c: close(v, rate(c, "input")) or close(v, rate(c, "output")), Finding(
            "a hidden layer got the input layer's or the readout's rate", position)),
    ], Finding("the hidden layers' steps do not make every layer's output move by the same amount at any width",
               "measure how one step moves each layer's output and how that depends on the layer's shape"))
    def follows_lr(v, c) -> bool:
        return any(close(v, rate(c, kind)) for kind in ("hidden", "sqrt_product", "sqrt_in", "sqrt_out", "per_out",
                                                         "per_sqrt_in", "input")) or close(v, c["lr"])

    def grows(v, c, factor=1.0) -> bool:
        return any(close(v, factor * c["lr"] * math.sqrt(c[side])) for side in ("fan_in", "fan_out"))

    input_layer = tallies["input"].criterion(*part.criteria[1], [
        (lambda v, c: c["net"] != by_size_net and by_size_net in passed_where["input"], Finding(
            "the input layer is recognised only when the input has MNIST's image size", position)),
        (lambda v, c: close(v, rate(c, "sqrt_product")) or close(v, c["input_mult"] * rate(c, "sqrt_product")),
         Finding("the input layer's step shrinks with its fan-out too",
                 "how far one step moves a layer's output does not depend on how many outputs the layer has")),
        (lambda v, c: grows(v, c) or grows(v, c, c["input_mult"]), Finding(
            "the input layer's step grows with the layer's size", "the rate has to shrink where one step's effect "
            "on the output grows")),
        (lambda v, c: close(v, rate(c, "hidden")), Finding(
            "the input layer got a hidden layer's rate: `input_mult` is not applied",
            "the raw image is not a sigmoid feature; the input layer has a factor of its own")),
        (lambda v, c: close(v, c["lr"] * 10 / c["fan_in"]) and c["input_mult"] != 10, Finding(
            "the input layer uses a fixed factor instead of the optimizer's `input_mult`",
            "read the factor from the optimizer's settings")),
    ], Finding("the input layer's step is wrong", "the input layer is the first weight matrix; the handout says how "
                                                  "its rate differs from a hidden layer's"))
    readout = tallies["output"].criterion(*part.criteria[2], [
        (lambda v, c: c["classes"] != 10 and by_size_net in passed_where["output"], Finding(
            "the readout is recognised only when there are as many classes as MNIST has digits", position)),
        (lambda v, c: not close(c["output_lr"], 0.003) and close(v, 0.003), Finding(
            "the readout uses a fixed number instead of the optimizer's `output_lr`",
            "read the rate from the optimizer's settings")),
        (follows_lr, Finding(
            "the readout's step follows the learning rate like the other layers",
            "the handout says how the readout's rate is set")),
    ], Finding("the readout layer's step is wrong", "the readout is the last weight matrix; the handout says how its "
                                                    "rate is set"))
    biases = tallies["bias"].criterion(*part.criteria[3], [
        (lambda v, c: close(v, c["lr"]), Finding("biases take the global rate: `bias_mult` is not applied",
                                                 "biases have a factor of their own")),
        (lambda v, c: not close(c["bias_mult"], 0.01) and close(v, c["lr"] * 0.01), Finding(
            "biases use a fixed factor instead of the optimizer's `bias_mult`",
            "read the factor from the optimizer's settings")),
        (lambda v, c: any(close(v, rate(c, "bias") / d) for d in (c["fan_out"], math.sqrt(c["fan_out"]))), Finding(
            "the biases' step shrinks with their length", "a bias is a (d_out, 1) matrix: its fan-in is one")),
    ], Finding("the biases' step is wrong", "the handout says how biases are treated"))
    return [hidden, input_layer, readout, biases]


# ---------------------------------------------------------------- part d
def judge_d_scaled_mlp(part, measured: dict, ref: Reference) -> list[Criterion]:
    init, steps = Tally("hidden networks"), Tally("hidden networks")
    multipliers = []
    for reference, entry in zip(ref.scaled, measured["nets"]):
        if not (isinstance(entry, dict) and "ok" in entry):
            init.take(entry)
            steps.take(entry)
            continue
        result = entry["ok"]
        logits = array(init.take({"ok": result.get("logits_init")}) or {})
        expected = reference["plain_logits"]
        if logits is None or logits.shape != expected.shape or not np.allclose(logits, expected, rtol=1e-4, atol=1e-5):
            init.fail(result.get("multipliers"), reference)
        deltas = np.asarray(steps.take({"ok": result.get("deltas")}) or [], dtype=float)
        if deltas.shape != reference["deltas"].shape or not np.allclose(deltas, reference["deltas"], rtol=2e-3,
                                                                          atol=1e-7):
            steps.fail(dict(deltas=deltas, multipliers=result.get("multipliers")), reference)
        multipliers.append(result.get("multipliers"))

    def matches(got, c, rule) -> bool:
        """Whether the multipliers follow ``rule`` on every layer but the readout."""
        widths = c["widths"]
        fans = list(zip(widths[:-1], widths[1:]))[:-1]
        expected = [rule(i, fan_in, fan_out) for i, (fan_in, fan_out) in enumerate(fans)]
        return got is not None and len(got) == len(expected) + 1 and all(close(a, b) for a, b in zip(got, expected))

    def multiplier_rule(rule):
        return lambda got, c: matches(got["multipliers"] if isinstance(got, dict) else got, c, rule)

    def delta_trend(got, c):
        deltas = got["deltas"]
        if deltas.shape != c["deltas"].shape:
            return "mixed"
        fan_ins = c["widths"][: deltas.shape[1]]
        return trend(fan_ins, deltas[0] / np.maximum(c["deltas"][0], 1e-30))

    learning_rate_hint = ("under Adam a layer's output multiplier acts like a factor on that layer's learning rate; "
                          "compare with the per-layer rates that part c asks for")
    init_criterion = init.criterion(*part.criteria[0], [
        (multiplier_rule(lambda i, fan_in, fan_out: 1.0), Finding(
            "the forward pass at init differs from the plain MLP's although every multiplier is one",
            "build the layers as the plain MLP does (the same seed gives the same initial weights)")),
    ], Finding("the forward pass at init differs from the plain MLP's: the multipliers change what the network "
               "computes before any step", "the multipliers should change only how training moves the weights, "
               "not the function the network starts from"))
    step_criterion = steps.criterion(*part.criteria[1], [
        (multiplier_rule(lambda i, fan_in, fan_out: 1 / math.sqrt(fan_out)), Finding(
            "the multipliers shrink with each layer's number of outputs (out_features)", learning_rate_hint)),
        (multiplier_rule(lambda i, fan_in, fan_out: 1 / math.sqrt(fan_in)), Finding(
            "the multipliers shrink with fan-in, but too slowly: the activation changes still grow with width",
            learning_rate_hint)),
        (multiplier_rule(lambda i, fan_in, fan_out: 1.0), Finding(
            "every multiplier is one, so plain Adam moves wide layers' outputs more", learning_rate_hint)),
        (lambda got, c: got["multipliers"] is not None and len(got["multipliers"]) == len(c["multipliers"])
            and all(close(a, b) for a, b in zip(got["multipliers"][1:], c["multipliers"][1:]))
            and close(got["multipliers"][0] * c["input_mult"], c["multipliers"][0]), Finding(
            "the input layer's multiplier ignores `input_mult`", "the raw image is not a sigmoid feature; the input "
            "layer has a factor of its own")),
        (lambda got, c: delta_trend(got, c) == "up", Finding(
            "after one plain Adam step the activations move more the larger the fan-in of the layer that produced "
            "them", learning_rate_hint)),
        (lambda got, c: delta_trend(got, c) == "down", Finding(
            "after one plain Adam step the activations move less the larger the fan-in of the layer that produced "
            "them: the correction is too strong", learning_rate_hint)),
        (lambda got, c: delta_trend(got, c) == "constant", Finding(
            "after one plain Adam step every activation moves by the same wrong factor", learning_rate_hint)),
    ], Finding("plain Adam steps do not move the activations as muP's per-layer learning rates do",
               learning_rate_hint))
    return [init_criterion, step_criterion]


# ---------------------------------------------------------------- part e and bonus
def judge_e_shampoo(part, measured: dict, ref: Reference) -> list[Criterion]:
    ortho, vectors, form = Tally("hidden matrices"), Tally("hidden matrices"), Tally("hidden checks")
    for case, entry in zip(cases.ORTHO_CASES, measured["outputs"]):
        M = cases.ortho_matrix(case)
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
        s = _svdvals(out)
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
                     for step, ref_step in zip(got, ref.shampoo_steps) for g, e in zip(step, ref_step))
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
        (lambda got, c: np.allclose(got / got[0], _svdvals(c["M"]) / _svdvals(c["M"])[0], rtol=1e-3), Finding(
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


def judge_bonus_shape_scale(part, measured: dict, ref: Reference) -> list[Criterion]:
    tally = Tally("hidden shapes")
    params = cases.scale_parameters()
    reference = ref.optimizers.ScaledSimpleShampoo(params, lr=cases.SCALE_LR)
    for p, entry in zip(params, measured["factors"]):
        value = tally.take(entry)
        fan_out, fan_in = p.shape
        if value is not None and not close(value, reference.shape_scale(p)):
            tally.fail(value, dict(fan_out=fan_out, fan_in=fan_in))
    step = measured.get("step")
    if not tally.failures and not tally.errors and isinstance(step, dict) and "ok" in step:
        for shape, update in zip(cases.SCALE_STEP_SHAPES, step["ok"]):
            u = array(update)
            induced = math.sqrt(shape[1] / shape[0]) * _svdvals(u)[0] if u is not None and u.shape == shape else -1
            if not close(induced, cases.SCALE_LR):
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


# ---------------------------------------------------------------- lecture
def judge_newton_schulz(part, measured: dict, ref: Reference) -> list[Criterion]:
    default, arguments = Tally("hidden matrices"), Tally("hidden calls with other arguments")
    for case, entry in zip(cases.NS_DEFAULT_CASES, measured["default"]):
        value = default.take(entry)
        if value is None:
            continue
        G = cases.ns_matrix(case)
        out, expected = array(value), ref.newton_schulz(G)
        if out is None or out.shape != expected.shape or not np.all(np.isfinite(out)) \
                or np.abs(out - expected).max() > 2e-3:
            default.fail(out, dict(G=G, expected=expected))
    for case, entry in zip(cases.NS_ARGUMENT_CASES, measured["arguments"]):
        value = arguments.take(entry)
        if value is None:
            continue
        G = cases.ns_matrix(case)
        out, expected = array(value), ref.newton_schulz(G, **case["kwargs"])
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
            (lambda got, c: not np.all(np.isfinite(got)) or _svdvals(got)[0] > 10, Finding(
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
            (lambda got, c: "steps" in c["kwargs"] and near(got, ref.newton_schulz(c["G"], coefficients=c["kwargs"].get(
                "coefficients", ref.orthogonal.QUINTIC))), Finding(
                "the number of iterations does not follow `steps`", "loop `steps` times")),
            (lambda got, c: "coefficients" in c["kwargs"] and near(got, ref.newton_schulz(c["G"], steps=c["kwargs"][
                "steps"])), Finding("the `coefficients` argument is ignored", "use the a, b, c given")),
        ], Finding("the iteration with other `steps` or `coefficients` differs from the reference", polynomial)),
    ]


LECTURE = "compare with the lecture's definition of this factor"


def judge_muon_scale(part, measured: dict, ref: Reference) -> list[Criterion]:
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
                "the factor is inverted: fan_in and fan_out are swapped", "a torch weight is stored (fan_out, fan_in)")),
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
    for (name, weight), scale in zip(part.criteria, cases.MUON_SCALES):
        tally = Tally("hidden shapes")
        for (fan_out, fan_in), entry in zip(cases.MUON_PAIRS, measured["values"][scale]):
            value = tally.take(entry)
            if value is not None and not close(value, ref.orthogonal.muon_shape_scale(fan_out, fan_in, scale)):
                tally.fail(value, dict(fan_out=fan_out, fan_in=fan_in))
        out.append(tally.criterion(name, weight, candidates[scale],
                                   Finding(f"the `{scale}` factor is wrong", LECTURE)))
    return out


# ---------------------------------------------------------------- research
def judge_first_step(part, measured: dict, ref: Reference) -> list[Criterion]:
    fn = ref.notebook[part.functions[0]]
    tally = Tally("hidden cases")
    for betas, row in zip(cases.FIRST_STEP_BETAS, measured["values"]):
        for switches, entry in zip(cases.FIRST_STEP_SWITCHES, row):
            value = tally.take(entry)
            if value is not None and not close(value, fn(*betas, *switches)):
                tally.fail(value, dict(zero_init=switches[0], bias_correction=switches[1]))
    hint = "write m_1 and v_1 for that start, then divide by the bias corrections if they are on"

    def combination(zero_init, bias_correction):
        words = f"{'zero' if zero_init else 'gradient'} initialisation {'with' if bias_correction else 'without'} " \
                "bias correction"
        return (lambda v, c: c["zero_init"] == zero_init and c["bias_correction"] == bias_correction,
                Finding(f"the factor is wrong for {words}", hint))

    return [tally.criterion(*part.criteria[0], [combination(z, b) for z, b in cases.FIRST_STEP_SWITCHES])]


def judge_matching_eps(part, measured: dict, ref: Reference) -> list[Criterion]:
    tally = Tally("hidden cases")
    for case, entry in zip(cases.EPSILON_CASES, measured["values"]):
        value = tally.take(entry)
        if value is None:
            continue
        v_hat = cases.epsilon_v_hat(case)
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


def judge_gradient(part, measured: dict, ref: Reference) -> list[Criterion]:
    tally = Tally("hidden problems")
    for case, entry in zip(cases.GRADIENT_CASES, measured["values"]):
        value = tally.take(entry)
        if value is None:
            continue
        W, X, Y = cases.gradient_inputs(case)
        expected = ref.regression.gradient(W, X, Y).numpy()
        got = array(value)
        if got is None or got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-6, atol=1e-9):
            tally.fail(got, dict(expected=expected, n=case["n"]))

    def scaled(factor):
        return lambda got, c: got.shape == c["expected"].shape and np.allclose(got, factor(c) * c["expected"],
                                                                                rtol=1e-6, atol=1e-9)

    return [tally.criterion(*part.criteria[0], [
        (scaled(lambda c: 0.5), Finding("the gradient is off by a constant factor", "differentiate the square")),
        (scaled(lambda c: -1.0), Finding("the gradient has the wrong sign", "it must point uphill")),
        (lambda got, c: scaled(lambda c: 1 / c["n"])(got, c) or scaled(lambda c: 0.5 / c["n"])(got, c), Finding(
            "the gradient is divided by the number of samples", "the loss is a sum over samples, not a mean")),
        (lambda got, c: got.shape != c["expected"].shape, Finding("the gradient's shape differs from W's",
                                                                  "it has one entry per entry of W")),
    ], Finding("the gradient is wrong", "compare it with a finite difference of the loss"))]


JUDGES = {
    "q1a_init_rms": judge_q1, "q1b_signgd_rms": judge_q1, "b_norms": judge_b_norms, "c_mup_lr": judge_c_mup_lr,
    "d_scaled_mlp": judge_d_scaled_mlp, "e_shampoo": judge_e_shampoo, "bonus_shape_scale": judge_bonus_shape_scale,
    "lecture_newton_schulz": judge_newton_schulz, "lecture_muon_scale": judge_muon_scale,
    "r09_first_step": judge_first_step, "r10_matching_eps": judge_matching_eps, "r11_gradient": judge_gradient,
}


def recorded_errors(data):
    """Every error description recorded anywhere in a result."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("error", "import_error") and isinstance(value, dict):
                yield value
            else:
                yield from recorded_errors(value)
    elif isinstance(data, list):
        for value in data:
            yield from recorded_errors(value)


def _ran_out_of_memory(data) -> bool:
    """Whether any recorded error of a result is a failed allocation."""
    return any(error.get("memory") for error in recorded_errors(data))


def judge(part, result: dict, ref: Reference, memory_mb: int) -> Verdict:
    """The verdict of one part from the child's result (``measured``, or ``import_error``)."""
    if "import_error" in result:
        error = result["import_error"] if isinstance(result["import_error"], dict) else {}
        if error.get("memory"):
            return Verdict("memory", 0.0, findings=[_memory_finding(memory_mb)])
        kind = str(error.get("type"))
        text = error_text(kind, str(error.get("message", "")), error.get("where"))
        return Verdict("error", 0.0, findings=[Finding(f"importing your code {text}", IMPORT_HINT)])
    measured = result.get("measured")
    if _ran_out_of_memory(measured):
        return Verdict("memory", 0.0, findings=[_memory_finding(memory_mb)])
    try:
        criteria = JUDGES[part.name](part, measured, ref)
    except Exception as error:  # noqa: BLE001 - a malformed result is the part's failure, not the grader's
        return Verdict("error", 0.0, findings=[Finding(f"its results could not be judged ({type(error).__name__})",
                                                       "run the notebook's self-check")])
    total = sum(c.weight for c in criteria)
    fraction = sum(c.weight for c in criteria if c.state == "passed") / total
    states = {c.state for c in criteria}
    if states == {"passed"}:
        status = "passed"
    elif states == {"not attempted"}:
        status = "not attempted"
    elif fraction == 0 and all(c.errored for c in criteria if c.state == "failed"):
        status = "error"
        findings = list(dict.fromkeys(f for c in criteria for f in c.findings))  # the same error, said once
        for c in criteria:
            c.findings = []
        return Verdict(status, fraction, criteria, findings)
    else:
        status = "failed"
    return Verdict(status, fraction, criteria)


def _memory_finding(memory_mb: int) -> Finding:
    return Finding(f"it ran out of the {memory_mb} MB memory limit",
                   "nothing in this part needs more than a few megabytes: look for an allocation that grows with "
                   "a size or a loop")
