"""Self-checks for the student's work: each runs a small experiment on the CPU
in seconds, prints a pass or a specific hint (what was measured, what was
expected, which classic mistake it looks like), and returns True/False.

An unfinished stub (NotImplementedError) is not caught: the notebook stops there.
"""

from __future__ import annotations

import math

import torch

from helpers.data import load_mnist
from helpers.models import MLP

_LR = 0.01


class _Report:
    def __init__(self, name: str):
        self.name, self.problems = name, []

    def fail(self, measured: str, expected: str, hint: str) -> None:
        self.problems.append(f"  measured: {measured}\n  expected: {expected}\n  hint: {hint}")

    def done(self) -> bool:
        if not self.problems:
            print(f"PASS {self.name}")
            return True
        print(f"FAIL {self.name}\n" + "\n".join(self.problems))
        return False


def _call(report: _Report, what: str, fn, *args, **kwargs):
    """Run student code; turn any error but NotImplementedError into a hint."""
    try:
        return fn(*args, **kwargs), True
    except NotImplementedError:
        raise
    except KeyError as error:
        report.fail(f"{what} raised KeyError {error}", "no error",
                    "the code reads state it never created: create every state entry on the first step")
    except Exception as error:  # noqa: BLE001 - any student error becomes a hint
        report.fail(f"{what} raised {type(error).__name__}: {error}", "no error", "see the traceback above")
    return None, False


def _close(a: float, b: float, rel: float = 1e-3) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def _test_matrix(fan_out: int, fan_in: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(fan_out, fan_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float()


# ---------------------------------------------------------------- part b
def check_update_norms(fn) -> bool:
    """``fn(A)`` returns ``{"frobenius": ..., "spectral": ..., "rms_to_rms": ...}``
    for a matrix ``A`` stored as (fan_out, fan_in)."""
    report = _Report("check_update_norms")
    for fan_out, fan_in in [(12, 48), (48, 12)]:
        A = _test_matrix(fan_out, fan_in)
        got, ok = _call(report, f"fn on a {fan_out}x{fan_in} matrix", fn, A)
        if not ok:
            break
        if not isinstance(got, dict) or not {"frobenius", "spectral", "rms_to_rms"} <= set(got):
            report.fail(repr(got), "a dict with keys frobenius, spectral, rms_to_rms", "return all three norms")
            break
        s = torch.linalg.svdvals(A.double())
        top = s[0].item()
        frobenius, induced = s.square().sum().sqrt().item(), math.sqrt(fan_in / fan_out) * top
        entrywise = frobenius / math.sqrt(fan_in * fan_out)
        shape = f"({fan_out}, {fan_in})"
        if not _close(float(got["frobenius"]), frobenius):
            report.fail(f"Frobenius {got['frobenius']:.5g} for {shape}", f"{frobenius:.5g}", "sqrt of the sum of squares")
        if not _close(float(got["spectral"]), top):
            report.fail(f"spectral {got['spectral']:.5g} for {shape}", f"{top:.5g}", "the largest singular value")
        r = float(got["rms_to_rms"])
        if not _close(r, induced):
            if _close(r, top):
                hint = "that is the spectral norm; the induced RMS->RMS norm is sqrt(fan_in/fan_out) * ||A||_2"
            elif _close(r, entrywise):
                hint = "that is the entrywise RMS (the handout's formula), not an induced norm"
            elif _close(r, math.sqrt(fan_out / fan_in) * top):
                hint = "fan_in and fan_out are swapped: a torch Linear weight is stored (fan_out, fan_in)"
            else:
                hint = "RMS(Ax)/RMS(x) is maximised along the top right singular vector"
            report.fail(f"RMS->RMS {r:.5g} for {shape}", f"{induced:.5g}", hint)
    return report.done()


# ---------------------------------------------------------------- part c
def _first_step_sizes(optimizer_class, model: MLP, lr: float) -> dict:
    """Mean |step| of every parameter after one step with gradient entries of +-1,
    i.e. the learning rate each parameter actually got (Adam's first step is lr * sign(g))."""
    opt = optimizer_class(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    before = {}
    for p in model.parameters():
        p.grad = torch.sign(torch.randn(p.shape, generator=gen)) + 0.0
        before[p] = p.detach().clone()
    opt.step()
    return {p: (p.detach() - before[p]).abs().mean().item() for p in model.parameters()}


def check_mup_optimizer(optimizer_class) -> bool:
    """Per-layer learning rates of one step, on a network whose sizes are not
    784/10, then flat RMS activation deltas on the course widths at lr 2."""
    report = _Report("check_mup_optimizer")
    model = MLP(input_size=30, hidden_sizes=(12, 48, 20), num_classes=7)
    sizes, ok = _call(report, "one step", _first_step_sizes, optimizer_class, model, 2.0)
    if ok:
        layers = list(model.layers)
        expect = {layers[0].weight: 2.0 * 10 / 30, layers[1].weight: 2.0 / 12, layers[2].weight: 2.0 / 48,
                  layers[3].weight: 0.003}
        expect.update({layer.bias: 2.0 * 0.01 for layer in layers})
        names = {layers[0].weight: "input (12, 30)", layers[1].weight: "hidden (48, 12)",
                 layers[2].weight: "hidden (20, 48)", layers[3].weight: "readout (7, 20)"}
        for p, want in expect.items():
            got = sizes[p]
            if _close(got, want, rel=1e-3):
                continue
            name = names.get(p, f"bias of length {p.shape[0]}")
            fan_out, fan_in = (p.shape[0], p.shape[1]) if p.ndim == 2 else (p.shape[0], 1)
            if p.ndim == 2 and _close(got, 2.0 / math.sqrt(fan_out * fan_in), 1e-3):
                hint = "1/sqrt(d_in*d_out) is not muP: hidden weights take lr / fan_in"
            elif p.ndim == 2 and (_close(got, 2.0 * math.sqrt(fan_in)) or _close(got, 2.0 * math.sqrt(fan_out))):
                hint = "multiplying by sqrt(fan_in) makes wide layers move more, not less: divide by fan_in"
            elif p.ndim == 2 and _close(got, 2.0 / fan_out, 1e-3):
                hint = "fan_in and fan_out are swapped: a torch Linear weight is stored (fan_out, fan_in)"
            elif p is layers[3].weight:
                hint = "find the readout by position (the last weight matrix), not by size 10, and give it output_lr"
            elif p is layers[0].weight:
                hint = "find the input layer by position (the first weight matrix), not by size 784"
            else:
                hint = "biases are (d_out, 1) matrices: lr * bias_mult"
            report.fail(f"{name}: step size {got:.4g} at lr 2", f"{want:.4g}", hint)
    if not report.problems:
        from helpers.experiments import train_one_step

        deltas, ok = _call(report, "train_one_step", train_one_step, optimizer=optimizer_class, lr=2.0,
                           data=load_mnist("subset"), device="cpu", plot=False)
        if ok and deltas.rms_deltas.max() / deltas.rms_deltas.min() > 1.4:
            report.fail(f"max/min of the RMS deltas {deltas.rms_deltas.max() / deltas.rms_deltas.min():.2f}",
                        "<= 1.4", "the per-layer rates do not cancel the fan-in growth")
    return report.done()


# ---------------------------------------------------------------- part d
def check_scaled_mlp(model_class) -> bool:
    """At init the forward pass equals the bias-free MLP's; one plain-Adam step
    moves every activation as SimpleAdamMuP does (to 1e-4)."""
    from helpers.experiments import train_one_step
    from helpers.optimizers import SimpleAdam, SimpleAdamMuP

    report = _Report("check_scaled_mlp")
    hiddens = (8, 16, 64, 64, 64, 256, 256, 1024)
    torch.manual_seed(0)
    plain = MLP(hidden_sizes=hiddens, bias=False)
    torch.manual_seed(0)
    scaled, ok = _call(report, "model_class(hidden_sizes=...)", model_class, hidden_sizes=hiddens)
    if ok:
        x = load_mnist("subset")[0][0][:16]
        out, ok = _call(report, "the forward pass", scaled, x)
        if ok:
            gap = (plain(x)[0] - out[0]).abs().max().item()
            if gap > 1e-4:
                report.fail(f"logits differ from the plain MLP's by {gap:.3g} at init", "the same forward pass",
                            "divide each layer's initial weights by its multiplier (init compensation)")
    if not report.problems:
        data = load_mnist("subset")
        mine = train_one_step(mlp=model_class, hiddens=hiddens, optimizer=SimpleAdam, lr=2.0, data=data,
                              device="cpu", plot=False).rms_deltas
        reference = train_one_step(mlp=lambda hidden_sizes: MLP(hidden_sizes=hidden_sizes, bias=False),
                                   hiddens=hiddens, optimizer=SimpleAdamMuP, lr=2.0, data=data, device="cpu",
                                   plot=False).rms_deltas
        gap = float((mine / reference - 1).__abs__().max())
        if gap > 1e-4:
            report.fail(f"RMS deltas {[round(float(d), 3) for d in mine]}",
                        f"SimpleAdamMuP's {[round(float(d), 3) for d in reference]}",
                        "the multiplier must equal muP's learning-rate factor: input_mult/fan_in for the input "
                        "layer, 1/fan_in for hidden layers (not 1/sqrt(out_features)), 1 for the readout")
    return report.done()


# ---------------------------------------------------------------- part e and bonus
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
    return updates, [p.grad for p in params]


SHAMPOO_SHAPES = [(8, 64), (64, 16), (48, 48)]


def check_shampoo(optimizer_class) -> bool:
    """Three steps without error; every matrix update has all singular values
    equal to lr and points against the gradient."""
    report = _Report("check_shampoo")
    result, ok = _call(report, "three optimizer steps", _shampoo_steps, optimizer_class, SHAMPOO_SHAPES, _LR)
    if ok:
        updates, _ = result
        for update, shape in zip(updates[0], SHAMPOO_SHAPES):
            s = torch.linalg.svdvals(update.double())
            if not torch.allclose(s, torch.full_like(s, _LR), rtol=1e-3):
                report.fail(f"singular values of the {shape} update in [{s.min():.3g}, {s.max():.3g}]",
                            f"all equal to lr = {_LR}", "the update is U V^T from the SVD of the momentum")
        grad = _test_matrix(*SHAMPOO_SHAPES[0], seed=0)
        if (updates[0][0] * grad).sum() > 0:
            report.fail("the first update points along the gradient", "against it",
                        "subtract lr * U V^T (gradient descent), do not add it")
    return report.done()


def check_scaled_shampoo(optimizer_class) -> bool:
    """Every matrix update has RMS->RMS norm lr, whatever its shape."""
    report = _Report("check_scaled_shampoo")
    shapes = [(8, 784), (64, 16), (1024, 256), (10, 64)]
    result, ok = _call(report, "three optimizer steps", _shampoo_steps, optimizer_class, shapes, _LR, 1)
    if ok:
        for update, (fan_out, fan_in) in zip(result[0][0], shapes):
            s = torch.linalg.svdvals(update.double())
            induced = math.sqrt(fan_in / fan_out) * s[0].item()
            if _close(induced, _LR, 1e-3):
                continue
            entry_rms = update.double().square().mean().sqrt().item()
            frobenius = update.double().square().sum().sqrt().item()
            if _close(entry_rms, _LR, 1e-3):
                hint = "scaling by 1/RMS(U V^T) equalises the entrywise RMS, not the RMS->RMS norm"
            elif _close(frobenius, _LR, 1e-3):
                hint = "scaling by 1/||U V^T||_F equalises the Frobenius norm, not the RMS->RMS norm"
            else:
                hint = "||U V^T||_2 = 1 and ||A||_RMS->RMS = sqrt(fan_in/fan_out) ||A||_2: choose the factor to cancel"
            report.fail(f"RMS->RMS norm {induced:.4g} for shape ({fan_out}, {fan_in})", f"lr = {_LR}", hint)
    return report.done()


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
    return report.done()
