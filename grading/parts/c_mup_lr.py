"""2c: muP by per-layer learning rates (helpers/mup_lr.py, through SimpleAdamMuP)."""

from __future__ import annotations

import math

import torch

from grading.collect import attempt, number
from grading.judge import Criterion, Finding, Tally, close
from grading.parts import Mistake, Part

PART = Part("c_mup_lr", 3, "2c: muP by per-layer learning rates (`layer_lr`)", "helpers/mup_lr.py", ("layer_lr",),
            (("hidden layers", 3), ("input layer", 1), ("readout layer", 1), ("biases", 1)), order=40)

# ---------------------------------------------------------------- hidden inputs
MUP_NETS = (
    dict(input_size=50, hidden=(12, 48, 20, 96), classes=5, lr=0.5),
    dict(input_size=784, hidden=(784, 10, 64), classes=10, lr=2.0),
    dict(input_size=17, hidden=(256, 8, 128), classes=3, lr=0.1,
         settings=dict(input_mult=4.0, bias_mult=0.05, output_lr=0.01)),
    dict(input_size=20, hidden=(40, 24, 24), classes=6, lr=1.0, roles=True, hidden_lr=0.3),
)


def mup_setup(net: dict, mlp_class, optimizer_class):
    """The model and the SimpleAdamMuP of one hidden network (shapes matter, values do not)."""
    torch.manual_seed(0)
    model = mlp_class(input_size=net["input_size"], hidden_sizes=net["hidden"], num_classes=net["classes"])
    settings = net.get("settings", {})
    if net.get("roles"):
        layers = list(model.layers)
        groups = [
            dict(params=[layers[-1].weight], role="output"),
            dict(params=[layer.weight for layer in layers[1:-1]], role="hidden", lr=net["hidden_lr"]),
            dict(params=[layers[0].weight], role="input"),
            dict(params=[layer.bias for layer in layers], role="bias"),
        ]
        return model, optimizer_class(groups, lr=net["lr"], **settings)
    return model, optimizer_class(model.parameters(), lr=net["lr"], **settings)


def parameter_names(model) -> dict[int, str]:
    return {id(p): name for name, p in model.named_parameters()}


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    from helpers.models import MLP
    from helpers.optimizers import SimpleAdamMuP

    nets = []
    for net in MUP_NETS:
        model, optimizer = mup_setup(net, MLP, SimpleAdamMuP)
        names = parameter_names(model)
        nets.append([[names[id(p)], attempt(lambda g=group, p=p, o=optimizer: number(o.layer_lr(g, p)))]
                     for group in optimizer.param_groups for p in group["params"]])
    return dict(nets=nets)


# ---------------------------------------------------------------- in the grader: verdicts
def judge(part, measured: dict, ref) -> list[Criterion]:
    nouns = dict(hidden="hidden weight matrices", input="input layers", output="readout layers", bias="bias vectors")
    tallies = {role: Tally(noun) for role, noun in nouns.items()}
    passed_where = {role: set() for role in nouns}
    for rows, got_rows in zip(expected_rates(ref), measured["nets"]):
        for row, (_name, entry) in zip(rows, got_rows):
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

    by_size_net = next(i for i, net in enumerate(MUP_NETS) if net["input_size"] == 784)
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


def expected_rates(ref) -> list[list[dict]]:
    """Every parameter of every hidden network: its role, shape, settings and the reference's rate."""
    def compute():
        out = []
        for index, net in enumerate(MUP_NETS):
            model, optimizer = mup_setup(net, ref.models.MLP, ref.optimizers.SimpleAdamMuP)
            names = parameter_names(model)
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

    return ref.cached(PART.name, compute)


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {
    # 1/sqrt(d_in * d_out) with d_in, d_out = p.shape
    "c_sqrt_product": Mistake(
        code={
            "layer_lr": """
            def layer_lr(role, shape, lr, *, input_mult, bias_mult, output_lr):
                if len(shape) == 1:
                    return lr * 0.01 / math.sqrt(shape[0])
                d_in, d_out = shape
                return lr / math.sqrt(d_in * d_out)
            """,
        },
        points=0.0, status="failed", added='\nimport math\n',
        feedback=("the step shrinks with fan-out too",),
    ),
    # times sqrt(d_in) with d_in, d_out = p.shape, input and readout found by the sizes 784 and 10
    "c_by_size": Mistake(
        code={
            "layer_lr": """
            def layer_lr(role, shape, lr, *, input_mult, bias_mult, output_lr):
                if len(shape) == 1:
                    return lr * bias_mult
                d_in, d_out = shape
                if d_in == 10:
                    return output_lr
                if d_out == 784:
                    return lr * 10.0 * d_in ** 0.5
                return lr * d_in ** 0.5
            """,
        },
        points=0.5, status="failed",
        feedback=(
            "the step grows with the layer's size",
            "by their position",
            "recognised only when there are as many classes as MNIST has digits",
        ),
    ),
}
