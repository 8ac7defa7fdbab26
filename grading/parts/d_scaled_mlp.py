"""2d: muP by per-layer multipliers (helpers/mup_multipliers.py, through ScaledMLP)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from grading.collect import attempt, numbers, tensor
from grading.judge import Criterion, Finding, Tally, array, close, trend
from grading.parts import Mistake, Part

PART = Part("d_scaled_mlp", 3, "2d: muP by per-layer multipliers (`mup_multipliers`, `initial_weight`, `layer_output`)",
            "helpers/mup_multipliers.py", ("mup_multipliers", "initial_weight", "layer_output"),
            (("the forward pass at initialisation", 1), ("plain Adam steps move every layer as muP does", 2)), order=50)

# ---------------------------------------------------------------- hidden inputs
SCALED_NETS = (
    dict(input_size=40, hidden=(12, 48, 20), classes=6, seed=11, lr=0.5),
    dict(input_size=784, hidden=(16, 64, 256, 32), classes=10, seed=12, lr=2.0),
    dict(input_size=30, hidden=(100, 9, 70, 70), classes=4, seed=13, lr=0.05, input_mult=3.0),
)


SCALED_STEPS = 2


SCALED_BATCH = 24


def scaled_batch(net: dict):
    generator = torch.Generator().manual_seed(net["seed"] + 500)
    x = torch.rand(SCALED_BATCH, net["input_size"], generator=generator)
    y = torch.randint(net["classes"], (SCALED_BATCH,), generator=generator)
    return x, y


def build_scaled(net: dict, model_class):
    """``model_class`` built like ScaledMLP (input_mult given only when it is not the default)."""
    torch.manual_seed(net["seed"])
    kwargs = dict(input_size=net["input_size"], hidden_sizes=net["hidden"], num_classes=net["classes"])
    if "input_mult" in net:
        kwargs["input_mult"] = net["input_mult"]
    return model_class(**kwargs)


def hidden_activations(model, x: torch.Tensor) -> list[torch.Tensor]:
    """The sigmoid output of every hidden layer, first one included, through ``layer_output``."""
    h = x.reshape(x.shape[0], -1)
    outputs = []
    for index in range(len(model.layers) - 1):
        h = torch.sigmoid(model.layer_output(index, h))
        outputs.append(h.detach())
    return outputs


def measure_steps(model, optimizer, x: torch.Tensor, y: torch.Tensor, steps: int = SCALED_STEPS) -> dict:
    """The logits at init, then after each optimizer step the RMS change of every hidden activation."""
    with torch.no_grad():
        logits_init = model(x)[0].detach().clone()
        before = hidden_activations(model, x)
    deltas = []
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x)[0], y).backward()
        optimizer.step()
        with torch.no_grad():
            after = hidden_activations(model, x)
        deltas.append([float((a - b).square().mean().sqrt()) for a, b in zip(after, before)])
    return dict(logits_init=logits_init, deltas=deltas)


# ---------------------------------------------------------------- in the child: measurements
def _scaled_run(net, model_class, optimizer_class) -> dict:
    model = build_scaled(net, model_class)
    x, y = scaled_batch(net)
    measured = measure_steps(model, optimizer_class(model.parameters(), lr=net["lr"]), x, y)
    multipliers = getattr(model, "multipliers", None)
    try:
        multipliers = numbers(multipliers)
    except Exception:  # noqa: BLE001 - only a diagnosis uses them
        multipliers = None
    return dict(logits_init=tensor(measured["logits_init"]), deltas=measured["deltas"], multipliers=multipliers)


def collect(part) -> dict:
    from helpers.models import ScaledMLP
    from helpers.optimizers import SimpleAdam

    return dict(nets=[attempt(_scaled_run, net, ScaledMLP, SimpleAdam) for net in SCALED_NETS])


# ---------------------------------------------------------------- in the grader: verdicts
def judge(part, measured: dict, ref) -> list[Criterion]:
    init, steps = Tally("hidden networks"), Tally("hidden networks")
    multipliers = []
    for reference, entry in zip(reference_runs(ref), measured["nets"]):
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


def reference_runs(ref) -> list[dict]:
    """The reference ScaledMLP on every hidden network: the plain MLP's logits, the activation changes."""
    def compute():
        out = []
        for net in SCALED_NETS:
            model = build_scaled(net, ref.models.ScaledMLP)
            x, y = scaled_batch(net)
            measured = measure_steps(model, ref.optimizers.SimpleAdam(model.parameters(), lr=net["lr"]), x, y)
            torch.manual_seed(net["seed"])
            plain = ref.models.MLP(input_size=net["input_size"], hidden_sizes=net["hidden"],
                                   num_classes=net["classes"], bias=False)
            with torch.no_grad():
                plain_logits = plain(x)[0].double().numpy()
            widths = (net["input_size"], *net["hidden"], net["classes"])
            out.append(dict(plain_logits=plain_logits, deltas=np.asarray(measured["deltas"]),
                            multipliers=list(model.multipliers), widths=widths,
                            input_mult=net.get("input_mult", 10.0), plain=plain, x=x))
        return out

    return ref.cached(PART.name, compute)


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {
    # multipliers 1/sqrt(out_features), no init compensation
    "d_sqrt_out": Mistake(
        code={
            "mup_multipliers": """
            def mup_multipliers(input_size, hidden_sizes, input_mult=10.0, output_mult=1.0):
                return (*(width ** -0.5 for width in hidden_sizes), 1.0)
            """,
            "initial_weight": """
            def initial_weight(weight, multiplier):
                return weight
            """,
        },
        points=0.0, status="failed",
        feedback=(
            "the forward pass at init differs from the plain MLP's",
            "the multipliers shrink with each layer's number of outputs",
        ),
    ),
    # written another (correct) way: the init divided in layer_output's place, the weight scaled there
    "d_variant": Mistake(
        code={
            "initial_weight": """
            def initial_weight(weight, multiplier):
                return weight * (1.0 / multiplier)
            """,
            "layer_output": """
            def layer_output(multiplier, layer, x):
                return torch.nn.functional.linear(x, layer.weight * multiplier)
            """,
        },
        points=3.0, status="passed",
    ),
}
