"""Hidden test inputs: more shapes, widths, seeds and settings than the students' self-checks,
so that code tuned to a self-check fails here.

Instructor tree only (the student release never contains ``grading/``). Both sides use this
module: the child process that runs a submission's code builds its inputs from it, and the
judge builds the same inputs to compute what the reference gives. Nothing here computes an
expected value. Feedback never quotes these inputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- inputs


def gaussian(shape, seed: int, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).to(dtype)


def conditioned(shape, seed: int, largest: float, smallest: float) -> torch.Tensor:
    """A float32 matrix with singular values spread geometrically from ``largest`` to ``smallest``."""
    fan_out, fan_in = shape
    k = min(shape)
    left = torch.linalg.qr(gaussian((fan_out, k), seed, dtype=torch.float64)).Q
    right = torch.linalg.qr(gaussian((fan_in, k), seed + 1, dtype=torch.float64)).Q
    values = torch.logspace(math.log10(largest), math.log10(smallest), k, dtype=torch.float64)
    return ((left * values) @ right.T).float()


# ---------------------------------------------------------------- Q1
Q1_D1 = (3, 10, 37, 500, 2048)
Q1_D2 = (1, 5, 300)

# ---------------------------------------------------------------- part b
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
        return gaussian((shape[0], 1), seed) @ gaussian((1, shape[1]), seed + 1000)
    if kind == "float64":
        return gaussian(shape, seed, scale, torch.float64)
    matrix = gaussian(shape, seed, scale)
    return torch.nn.Parameter(matrix) if kind == "parameter" else matrix


# ---------------------------------------------------------------- part c
# Networks whose sizes are not the course's; one has hidden layers of the image's and the classes' size,
# one changes every hyperparameter, one names the layers with param groups (in another order, with a
# learning rate of its own for the hidden group).
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


# ---------------------------------------------------------------- part d
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


# ---------------------------------------------------------------- part e and the bonus
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
        return conditioned(shape, seed, 100.0, 0.01)
    return gaussian(shape, seed, scale, torch.float64 if kind == "float64" else torch.float32)


SHAMPOO_SHAPES = ((20, 50), (50, 20))
SHAMPOO_LR, SHAMPOO_STEPS, SHAMPOO_BIAS = 0.05, 2, 16
SCALE_SHAPES = ((8, 784), (784, 8), (64, 16), (16, 64), (33, 33), (1000, 10), (10, 1000), (50, 3))
SCALE_STEP_SHAPES = ((24, 96), (96, 24), (40, 40))
SCALE_LR = 0.02


def shampoo_updates(optimizer_class, shapes, lr: float, steps: int, seed: int = 300) -> list[list[torch.Tensor]]:
    """The update of every weight matrix at every step of ``optimizer_class`` (gradients seeded)."""
    params = [torch.nn.Parameter(gaussian(shape, seed + i)) for i, shape in enumerate(shapes)]
    bias = torch.nn.Parameter(torch.zeros(SHAMPOO_BIAS))
    optimizer = optimizer_class(params + [bias], lr=lr)
    updates = []
    for step in range(steps):
        before = [p.detach().clone() for p in params]
        for i, p in enumerate(params):
            p.grad = gaussian(p.shape, seed + 100 * (step + 1) + i)
        bias.grad = gaussian((SHAMPOO_BIAS,), seed + 99)
        optimizer.step()
        updates.append([p.detach() - b for p, b in zip(params, before)])
    return updates


def shampoo_gradients(shapes, steps: int, seed: int = 300) -> list[list[torch.Tensor]]:
    return [[gaussian(shape, seed + 100 * (step + 1) + i) for i, shape in enumerate(shapes)] for step in range(steps)]


def scale_parameters() -> list[torch.Tensor]:
    return [torch.nn.Parameter(gaussian(shape, 400 + i)) for i, shape in enumerate(SCALE_SHAPES)]


# ---------------------------------------------------------------- lecture
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
        return conditioned(case["shape"], case["seed"], 2.0, 0.5)
    return gaussian(case["shape"], case["seed"], case.get("scale", 1.0))


MUON_PAIRS = ((1, 1), (8, 784), (784, 8), (64, 64), (10, 256), (256, 10), (3, 5), (1024, 96))
MUON_SCALES = ("spectral", "keller", "moonlight")

# ---------------------------------------------------------------- research
FIRST_STEP_BETAS = ((0.9, 0.999), (0.5, 0.7), (0.99, 0.9), (0.0, 0.5), (0.8, 0.8))
FIRST_STEP_SWITCHES = ((True, True), (True, False), (False, True), (False, False))  # (zero_init, bias_correction)

EPSILON_CASES = (
    dict(factor=1.0, seed=601, eps=1e-8),
    dict(factor=0.5, seed=602, eps=1e-8),
    dict(factor=0.1, seed=603, eps=1e-3),
    dict(factor=0.013, seed=604, eps=1e-8),
    dict(factor=0.7, seed=605, eps=0.05),
)


def epsilon_v_hat(case: dict) -> torch.Tensor:
    v = gaussian((6, 7), case["seed"]).square() * 1e-4
    v[0, :3] = 0.0  # coordinates that have seen no gradient
    return v


GRADIENT_CASES = (dict(n=50, d=6, outputs=3, seed=701), dict(n=7, d=30, outputs=2, seed=702),
                  dict(n=200, d=4, outputs=9, seed=703))


def gradient_inputs(case: dict):
    n, d, outputs, seed = case["n"], case["d"], case["outputs"], case["seed"]
    return (gaussian((d, outputs), seed, dtype=torch.float64), gaussian((n, d), seed + 1, dtype=torch.float64),
            gaussian((n, outputs), seed + 2, dtype=torch.float64))
