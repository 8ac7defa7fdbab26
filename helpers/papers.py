"""Question 3 (notebook 13): the muP papers' claims measured on the course's own code.

* :func:`parameterization_rules`: a parameterization's rules (initial variance, multiplier,
  Adam learning rate) for every kind of parameter of the course MLP, read off the model's
  constructor and the optimizer at several widths, and each rule's power of the width ``n``
  (:func:`width_exponent`: the least-squares slope of ``log value`` against ``log n``). Nothing
  is typed in: a rule is whatever the helpers do.
* :func:`one_step_spectral`: one optimizer step on the course protocol (the first batch of
  :func:`helpers.coord_check.coord_check`, measured on its 64 fixed images), and for every layer
  ``l``: ``RMS(h_l)`` at init and ``RMS(Delta h_l)`` after the step (the coordinate check's step-1
  numbers), and a matrix norm (``norm``, by default the student's
  ``helpers.norms.rms_to_rms_norm``, looked up at call time) of the initial weights ``W_l`` and of
  the update ``Delta W_l``.
* :func:`best_rate_shift`: how far the best learning rate of an LR sweep moves per doubling of
  the width, with the smallest and the largest move that the seeds' spread allows
  (:func:`helpers.verdicts.shared_learning_rates` says which rates are as good as the best).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from helpers import norms
from helpers.coord_check import (
    BATCH_SIZE,
    Recorder,
    layer_labels,
    measurement_images,
    per_example_rms,
    seeded_model,
    training_step,
)
from helpers.device import get_device, to_numpy
from helpers.experiments import resolve_data, sample_indices
from helpers.verdicts import shared_learning_rates

KINDS = ("input weights", "input biases", "hidden weights", "hidden biases", "readout weights", "readout biases")
QUANTITIES = ("init variance", "multiplier", "Adam lr")


def width_exponent(widths, values) -> float:
    """The least-squares slope of ``log |value|`` against ``log width``: ``value ~ width^slope``."""
    widths, values = np.asarray(widths, dtype=float), np.abs(np.asarray(values, dtype=float))
    if len(widths) < 2 or (values <= 0).any() or not np.isfinite(values).all():
        raise ValueError(f"width_exponent needs >= 2 widths and positive finite values, got {values}.")
    return float(np.polyfit(np.log(widths), np.log(values), 1)[0])


def _parameters_by_kind(model: nn.Module) -> dict[str, list[tuple[int, torch.Tensor]]]:
    """``kind -> [(layer index, parameter)]`` for the course MLP (``model.layers``)."""
    layers = list(model.layers)
    out = {kind: [] for kind in KINDS}
    for index, layer in enumerate(layers):
        role = "input" if index == 0 else "readout" if index == len(layers) - 1 else "hidden"
        out[f"{role} weights"].append((index, layer.weight))
        if layer.bias is not None:
            out[f"{role} biases"].append((index, layer.bias))
    return {kind: params for kind, params in out.items() if params}


def _multiplier(model: nn.Module, index: int) -> float:
    """What the model multiplies layer ``index``'s ``W x (+ b)`` by: ``layer_output / layer``, on a fixed input."""
    layer = model.layers[index]
    x = torch.linspace(-1, 1, layer.in_features).unsqueeze(0)
    with torch.no_grad():
        return float(model.layer_output(index, x).norm() / layer(x).norm())


def _adam_lr(optimizer, p: torch.Tensor) -> float:
    group = next(g for g in optimizer.param_groups if any(q is p for q in g["params"]))
    return float(optimizer.layer_lr(group, p))


@dataclass
class RulesTable:
    """``values[name][quantity][kind]``: the rule at each width (initial variance pooled over the seeds);
    ``exponents`` the same keys: its power of the width."""

    names: list
    widths: np.ndarray
    kinds: list
    values: dict
    exponents: dict

    def table(self) -> str:
        """One row per kind of parameter, one column per (parameterization, quantity): powers of the width."""
        head = f"{'power of the width n':<20}" + "".join(f"{name[:22]:>24}" for name in self.names)
        sub = f"{'':<20}" + "".join(f"{'var':>8}{'mult':>8}{'Adam lr':>8}" for _ in self.names)
        rows = [head, sub]
        for kind in self.kinds:
            cells = "".join(f"{self.exponents[name][q][kind]:>8.2f}" for name in self.names for q in QUANTITIES)
            rows.append(f"{kind:<20}{cells}")
        return "\n".join(rows)


def parameterization_rules(setups: dict, widths: Sequence[int], seeds: Sequence[int] = (0, 1, 2, 3)) -> RulesTable:
    """``setups``: ``name -> (make_model, make_optimizer)`` (``make_model(width)`` the course MLP or a
    subclass; ``make_optimizer(params)`` a SimpleAdam-family optimizer). For every kind of parameter
    (:data:`KINDS`) and width: the initial variance (the mean square of its entries, pooled over the
    parameters of that kind and over ``seeds``: a readout bias has only 10 entries), the layer's
    multiplier (``model.layer_output`` over the layer's own output, 1 for the plain MLP) and the Adam
    learning rate the optimizer gives it (``optimizer.layer_lr``); then each one's power of the width."""
    widths = tuple(int(w) for w in widths)
    values, exponents = {}, {}
    kinds = None
    for name, (make_model, make_optimizer) in setups.items():
        per = {q: {} for q in QUANTITIES}
        for width in widths:
            squares, counts = {}, {}
            for s, seed in enumerate(seeds):
                model = seeded_model(make_model, width, seed)
                by_kind = _parameters_by_kind(model)
                kinds = kinds or list(by_kind)
                for kind, params in by_kind.items():
                    squares[kind] = squares.get(kind, 0.0) + sum(float(p.detach().double().square().sum())
                                                                 for _, p in params)
                    counts[kind] = counts.get(kind, 0) + sum(p.numel() for _, p in params)
                if s == 0:
                    optimizer = make_optimizer(model.parameters())
                    for kind, params in by_kind.items():
                        index, p = params[0]
                        per["multiplier"].setdefault(kind, []).append(_multiplier(model, index))
                        per["Adam lr"].setdefault(kind, []).append(_adam_lr(optimizer, p))
            for kind in squares:
                per["init variance"].setdefault(kind, []).append(squares[kind] / counts[kind])
        values[name] = {q: {k: np.array(v) for k, v in per[q].items()} for q in QUANTITIES}
        exponents[name] = {q: {k: width_exponent(widths, v) for k, v in per[q].items()} for q in QUANTITIES}
    return RulesTable(list(setups), np.array(widths), kinds, values, exponents)


@dataclass
class OneStepSpectral:
    """Arrays ``[seed, width, layer]``: ``rms`` (``RMS(h_l)`` at init), ``delta`` (``RMS(Delta h_l)`` after
    one step), ``weight_norm`` (the norm of ``W_l`` at init) and ``update_norm`` (of ``Delta W_l``);
    ``weight_alignment`` and ``update_alignment``: ``RMS(A x) / (norm(A) RMS(x))`` for ``A = W_l`` and
    ``A = Delta W_l`` and ``x`` the layer's input at init (RMS over features, mean over the 64 images),
    which is at most 1 for an operator norm; ``lr``: the weight's learning rate (``layer_lr``), and
    ``fan_in`` (``[width, layer]``)."""

    label: str
    widths: np.ndarray
    seeds: tuple
    layers: list
    rms: np.ndarray
    delta: np.ndarray
    weight_norm: np.ndarray
    update_norm: np.ndarray

    weight_alignment: np.ndarray
    update_alignment: np.ndarray
    lr: np.ndarray
    fan_in: np.ndarray

    QUANTITIES = ("rms", "delta", "weight_norm", "update_norm", "weight_alignment", "update_alignment")

    def slopes(self, quantity: str) -> np.ndarray:
        """``[seed, layer]``: the power of the width of ``quantity``, one least-squares fit per seed and layer."""
        values = getattr(self, quantity)
        return np.array([[width_exponent(self.widths, values[s, :, layer]) for layer in range(len(self.layers))]
                         for s in range(len(self.seeds))])

    def table(self) -> str:
        """Per layer and quantity: the seed-mean value at the narrowest and the widest width, and the
        slope (mean over the seeds, and the smallest and largest seed's)."""
        names = {"rms": "RMS(h)", "delta": "RMS(dh)", "weight_norm": "||W||", "update_norm": "||dW||",
                 "weight_alignment": "align W", "update_alignment": "align dW"}
        lo, hi = self.widths[0], self.widths[-1]
        rows = [f"{self.label}", f"{'layer':<18}{'quantity':>10}{f'width {lo}':>12}{f'width {hi}':>12}"
                f"{'slope':>8}{'seeds':>16}"]
        for quantity in self.QUANTITIES:
            values, slopes = getattr(self, quantity).mean(0), self.slopes(quantity)
            for layer, name in enumerate(self.layers):
                s = slopes[:, layer]
                rows.append(f"{name:<18}{names[quantity]:>10}{values[0, layer]:>12.4g}{values[-1, layer]:>12.4g}"
                            f"{s.mean():>8.2f}{f'{s.min():.2f} to {s.max():.2f}':>16}")
        return "\n".join(rows)


def one_step_spectral(make_model: Callable, make_optimizer: Callable, widths: Sequence[int], *,
                      seeds: Sequence[int] = (0, 1), norm: Callable | None = None, data=None, device=None,
                      label: str = "") -> OneStepSpectral:
    """One step of ``make_optimizer(model.parameters())`` on ``make_model(width)`` at every width and seed,
    on the coordinate check's protocol (the model built under ``torch.manual_seed(seed)``, the first batch
    of 64 training images drawn by a generator seeded with ``seed``, every layer's output measured on
    the same 64 fixed training images), so that ``rms`` and ``delta`` are ``coord_check(..., steps=1)``'s
    numbers at steps 0 and 1. ``norm`` (default ``helpers.norms.rms_to_rms_norm``, looked up when called)
    measures each weight matrix ``W_l`` (``model.layers[l].weight``) at init and its change ``Delta W_l``."""
    widths, seeds = tuple(int(w) for w in widths), tuple(seeds)
    data = resolve_data(data)
    device = get_device(device)
    (images, labels), _ = data
    measure_images, _ = measurement_images(data, device)
    shape = (len(seeds), len(widths))
    arrays = None
    layers = None
    for s, seed in enumerate(seeds):
        for w, width in enumerate(widths):
            matrix_norm = norm or norms.rms_to_rms_norm
            model = seeded_model(make_model, width, seed).to(device)
            weights = [layer.weight for layer in model.layers]
            before = [W.detach().clone() for W in weights]
            optimizer = make_optimizer(model.parameters())
            recorder = Recorder(model)
            try:
                names, initial = recorder.outputs(model, measure_images)
                index = sample_indices(len(images), BATCH_SIZE, torch.Generator().manual_seed(seed))
                training_step(model, optimizer, images, labels, index, device)
                _, now = recorder.outputs(model, measure_images)
            finally:
                recorder.remove()
            if arrays is None:
                layers = layer_labels(names)
                arrays = {q: np.empty(shape + (len(layers),)) for q in OneStepSpectral.QUANTITIES + ("lr",)}
                arrays["fan_in"] = np.empty((len(widths), len(layers)))
            arrays["rms"][s, w] = to_numpy(torch.stack([per_example_rms(a) for a in initial]))
            arrays["delta"][s, w] = to_numpy(torch.stack([per_example_rms(a - a0) for a, a0 in zip(now, initial)]))
            arrays["weight_norm"][s, w] = [float(matrix_norm(W0)) for W0 in before]
            changes = [W.detach() - W0 for W, W0 in zip(weights, before)]
            arrays["update_norm"][s, w] = [float(matrix_norm(dW)) for dW in changes]
            inputs = [measure_images.reshape(len(measure_images), -1)] + initial[:-1]  # what each layer receives
            for key, matrices in (("weight_alignment", before), ("update_alignment", changes)):
                arrays[key][s, w] = [float(per_example_rms(x @ A.T) / per_example_rms(x)) / size
                                     for A, x, size in zip(matrices, inputs, arrays[key.split("_")[0] + "_norm"][s, w])]
            arrays["lr"][s, w] = [_adam_lr(optimizer, W) for W in weights]
            arrays["fan_in"][w] = [W.shape[1] for W in weights]
    return OneStepSpectral(label, np.array(widths), seeds, layers, **arrays)


@dataclass
class RateShift:
    """Where the best learning rate of a sweep sits at the narrowest and the widest width (log2), and its
    move per doubling of the width: ``shift`` (best to best; negative: the rate falls as the width grows),
    ``smallest`` and ``largest`` (the least and the most that any rate as good as the best at the
    narrowest width, and any at the widest, allow; 0 when one rate is as good as the best at both)."""

    label: str
    doublings: float
    best_log2: np.ndarray  # per width
    good_log2: list  # per width: the log2 rates within the seeds' spread of that width's best
    shift: float
    smallest: float
    largest: float

    def summary(self) -> str:
        """The measured best rates and move per doubling, in one line."""
        return (f"{self.label}: best log2(lr) per width {', '.join(f'{b:g}' for b in self.best_log2)}; moved "
                f"{self.shift:+.2f} per doubling of the width (between {self.smallest:.2f} and {self.largest:.2f} "
                "in size, given the seeds' spread)")


def best_rate_shift(sweep) -> RateShift:
    """:class:`RateShift` of an :class:`helpers.experiments.SweepResult` (at least 2 seeds)."""
    verdict = shared_learning_rates(sweep.losses, sweep.lrs)
    log2 = np.log2(np.asarray(sweep.lrs, dtype=float))
    doublings = float(np.log2(sweep.widths[-1] / sweep.widths[0]))
    good = [log2[row] for row in verdict.good]
    narrow, wide = good[0], good[-1]
    distances = np.abs(wide[:, None] - narrow[None, :])
    best = np.log2(verdict.best_lr)
    return RateShift(sweep.label, doublings, best, [g.tolist() for g in good], float((best[-1] - best[0]) / doublings),
                     float(distances.min() / doublings), float(distances.max() / doublings))
