"""The course protocols. Each returns a plain result object holding numpy
arrays (made by ``to_numpy``); drawing is optional and done by ``helpers.plotting``.

* ``train_one_step``: one optimizer step on a fixed batch, then the RMS change of
  every measured hidden activation on that same batch (and, with ``held_out=True``,
  on fixed held-out images).
* ``step_anatomy``: the same step taken apart per activation: its own layer's step
  alone, what it inherits from the layers before it, the step's alignment with its
  input, the saturated sigmoids. ``step_gap``: how far apart two optimizers' steps
  leave the activations, on the batch and on held-out images.
* ``train_one_step_matrices``: one step, then four norms of ``new W - old W`` for
  every weight matrix.
* ``train_with_lr`` / ``lr_sweep``: train ``steps`` steps and report the mean of
  the last 5 validation losses; sweep that over widths, learning rates, seeds.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from helpers import norms
from helpers.data import default_source, load_mnist
from helpers.device import get_device, to_numpy
from helpers.models import MLP
from helpers.optimizers import SimpleAdam, check_positive

VALIDATION_SEED = 2025  # which held-out images make the validation sample
VALIDATION_SIZE = 64  # held-out images the validation loss is measured on, after every step of every run


@functools.lru_cache(maxsize=None)
def _cached_mnist(source: str):
    return load_mnist(source)


def resolve_data(data=None):
    """``data`` if given, else ``load_mnist(COURSE_DATA_SOURCE or "auto")``, loaded once per process."""
    return data if data is not None else _cached_mnist(default_source())


def sample_indices(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, n, (size,), generator=generator)


def build_model(mlp, hiddens, seed: int, device: torch.device) -> nn.Module:
    # Build on the CPU under a fixed seed, then move: the same init on every device.
    torch.manual_seed(seed)
    return mlp(hidden_sizes=tuple(hiddens)).to(device)


def fixed_batch(data, batch_size: int, seed: int, device):
    (images, labels), _ = resolve_data(data)
    index = sample_indices(len(images), batch_size, torch.Generator().manual_seed(seed))
    return images[index].to(device), labels[index].to(device)


@dataclass
class OneStepResult:
    """RMS change of each measured activation after one step (part a / c / d)."""

    label: str
    widths: np.ndarray  # width of each measured activation (hiddens[1:])
    fan_ins: np.ndarray  # fan-in of the layer producing it (hiddens[:-1])
    rms_deltas: np.ndarray
    figure: object = None
    held_out_deltas: np.ndarray | None = None  # the same, measured on held-out images (``held_out=True``)

    def table(self) -> str:
        rows = [f"{'width':>6} {'fan-in':>7} {'RMS delta':>10}"]
        rows += [f"{w:>6} {f:>7} {d:>10.4f}" for w, f, d in zip(self.widths, self.fan_ins, self.rms_deltas)]
        return "\n".join(rows)


def train_one_step(
    mlp=MLP,
    hiddens: Sequence[int] = (8, 16, 64, 64, 64, 256, 256, 1024),
    optimizer=SimpleAdam,
    label: str = "Adam",
    lr: float = 0.01,
    *,
    data=None,
    batch_size: int = 64,
    seed: int = 0,
    device=None,
    plot: bool = True,
    ax=None,
    held_out: bool = False,
) -> OneStepResult:
    """Take one step on a fixed batch of ``batch_size`` training images and
    measure, for every hidden activation after the first, the batch mean of
    ``RMS_features(a_after - a_before)`` on that same batch. With ``held_out=True``
    the same is measured on :func:`validation_set`'s fixed held-out images too
    (``held_out_deltas``): images the step's gradient never saw."""
    device = get_device(device)
    model = build_model(mlp, hiddens, seed, device)
    opt = optimizer(model.parameters(), lr=lr)
    images, labels = fixed_batch(data, batch_size, seed, device)
    other = validation_set(data, device)[0] if held_out else None

    def deltas_on(after, before):
        return to_numpy(torch.stack([norms.rms(a - b, dim=-1).mean() for a, b in zip(after, before)]))

    if held_out:
        with torch.no_grad():
            _, other_before = model(other)
    opt.zero_grad()
    logits, before = model(images)
    nn.functional.cross_entropy(logits, labels).backward()
    opt.step()
    with torch.no_grad():
        _, after = model(images)
        held_out_deltas = deltas_on(model(other)[1], other_before) if held_out else None

    hiddens = tuple(hiddens)
    result = OneStepResult(label, np.array(hiddens[1:]), np.array(hiddens[:-1]), deltas_on(after, before),
                           held_out_deltas=held_out_deltas)
    if plot:
        from helpers.plotting import plot_activation_deltas

        result.figure = plot_activation_deltas(result, ax=ax)
    return result


def image_spread(
    hiddens: Sequence[int] = (8, 16, 64, 64, 64, 256, 256, 1024),
    images: torch.Tensor | None = None,
    *,
    mlp=MLP,
    seed: int = 0,
    device=None,
) -> np.ndarray:
    """How much each measured activation of the freshly initialised network (``train_one_step``'s
    init) depends on the image: ``RMS(a - mean_images(a)) / RMS(a)`` over the images and features,
    per measured activation. Near 0, every image gives about the same activation, so a step moves
    every image's activation by about the same vector, seen or unseen."""
    device = get_device(device)
    model = build_model(mlp, hiddens, seed, device)
    with torch.no_grad():
        activations = model(images.to(device))[1]
    return np.array([((a - a.mean(dim=0)).square().mean().sqrt() / a.square().mean().sqrt()).item()
                     for a in activations])


def step_gap(
    optimizer_a,
    optimizer_b,
    hiddens: Sequence[int] = (8, 16, 64, 64, 64, 256, 256, 1024),
    lr: float = 0.01,
    *,
    mlp=MLP,
    data=None,
    batch_size: int = 64,
    seed: int = 0,
    device=None,
) -> dict[str, np.ndarray]:
    """How far apart two optimizers' steps leave the activations. Each takes the step of
    :func:`train_one_step` (the same initial weights and batch); then, for every measured
    activation, the mean over images of ``RMS_features(a_A - a_B) / RMS_features(a_B - a_before)``:
    the gap between the two stepped networks relative to how far the ``B`` step moved it. Measured on
    the batch that made the gradient (``"batch"``) and on :func:`validation_set`'s fixed held-out
    images (``"held_out"``)."""
    device = get_device(device)
    images, labels = fixed_batch(data, batch_size, seed, device)
    sets = {"batch": images, "held_out": validation_set(data, device)[0]}
    stepped = []
    for optimizer in (optimizer_a, optimizer_b):
        model = build_model(mlp, hiddens, seed, device)
        if not stepped:
            with torch.no_grad():
                before = {name: model(x)[1] for name, x in sets.items()}
        opt = optimizer(model.parameters(), lr=lr)
        opt.zero_grad()
        nn.functional.cross_entropy(model(images)[0], labels).backward()
        opt.step()
        stepped.append(model)
    gaps = {}
    with torch.no_grad():
        for name, x in sets.items():
            a, b = stepped[0](x)[1], stepped[1](x)[1]
            gaps[name] = np.array([(norms.rms(p - q, dim=-1) / norms.rms(q - r, dim=-1)).mean().item()
                                   for p, q, r in zip(a, b, before[name])])
    return gaps


@dataclass
class StepAnatomy:
    """Where each measured activation's change after one step comes from (notebooks 01 and 03).

    For the measured activation ``a_k = sigmoid(W_k h + b_k)`` produced by layer ``k`` from its
    input ``h`` (the previous hidden activation), all on the batch that made the gradient:

    * ``total``: the batch mean of ``RMS(a_k(after) - a_k(before))``, every layer stepped
      (what :func:`train_one_step` reports);
    * ``own``: only layer ``k``'s weight and bias stepped, its input ``h`` as before the step;
    * ``inherited``: only the layers before ``k`` stepped, layer ``k`` as before: the change that
      reaches ``a_k`` because its input moved. ``own`` and ``inherited`` need not add up to
      ``total`` (the sigmoid is not linear, and the two can point different ways);
    * ``alignment``: the batch mean of ``RMS(dW_k h) / (eta_k ||h||_1)``, with ``dW_k`` the
      weight step and ``eta_k = max |dW_k|`` its largest entry. It lies in [0, 1] whenever no entry
      of the step exceeds ``eta_k`` (triangle inequality), and it is 1 exactly when every row of
      ``dW_k`` is ``±eta_k`` throughout on a positive input: the first Adam step ``-eta sign(G)``
      with a sign pattern that agrees along each row, notebook 00's SignGD calculation;
    * ``saturated_before`` / ``saturated_after``: the fraction of the batch's sigmoid outputs
      ``a_k`` within ``SATURATION`` of 0 or 1, before and after the step (every layer stepped).
    """

    fan_ins: np.ndarray
    widths: np.ndarray
    total: np.ndarray
    own: np.ndarray
    inherited: np.ndarray
    alignment: np.ndarray
    saturated_before: np.ndarray
    saturated_after: np.ndarray

    SATURATION = 0.01

    def table(self) -> str:
        rows = [f"{'width':>6} {'fan-in':>7} {'total':>8} {'own':>8} {'inherited':>10} {'alignment':>10}"]
        rows += [f"{w:>6} {f:>7} {t:8.4f} {o:8.4f} {i:10.4f} {a:10.3f}" for w, f, t, o, i, a in
                 zip(self.widths, self.fan_ins, self.total, self.own, self.inherited, self.alignment)]
        return "\n".join(rows)


def _hidden_activations(before: nn.Module, after: nn.Module, images: torch.Tensor, stepped) -> list:
    """Every hidden sigmoid output of the course MLP, layer ``i`` taken from ``after`` when ``i`` is
    in ``stepped`` and from ``before`` otherwise."""
    x, activations = images.reshape(images.shape[0], -1), []
    for index in range(len(before.layers) - 1):
        x = torch.sigmoid((after if index in stepped else before).layer_output(index, x))
        activations.append(x)
    return activations


def step_anatomy(
    mlp=MLP,
    hiddens: Sequence[int] = (8, 16, 64, 64, 64, 256, 256, 1024),
    optimizer=SimpleAdam,
    lr: float = 0.01,
    *,
    data=None,
    batch_size: int = 64,
    seed: int = 0,
    device=None,
) -> StepAnatomy:
    """The step of :func:`train_one_step` (same model, batch and seed), taken apart per measured
    activation as :class:`StepAnatomy` describes."""
    device = get_device(device)
    model = build_model(mlp, hiddens, seed, device)
    before = copy.deepcopy(model)
    opt = optimizer(model.parameters(), lr=lr)
    images, labels = fixed_batch(data, batch_size, seed, device)
    opt.zero_grad()
    logits, _ = model(images)
    nn.functional.cross_entropy(logits, labels).backward()
    opt.step()

    layers = range(len(model.layers))
    measured = range(1, len(model.layers) - 1)  # the activations after the first hidden layer
    sat = StepAnatomy.SATURATION

    def rms_change(a, b):
        return norms.rms(a - b, dim=-1).mean().item()

    def saturated(a):
        return ((a < sat) | (a > 1 - sat)).float().mean().item()

    with torch.no_grad():
        old = _hidden_activations(before, model, images, set())
        new = _hidden_activations(before, model, images, set(layers))
        rows = []
        for k in measured:
            own = _hidden_activations(before, model, images, {k})[k]
            inherited = _hidden_activations(before, model, images, set(range(k)))[k]
            step = model.layers[k].weight - before.layers[k].weight
            h = old[k - 1]
            alignment = (norms.rms(h @ step.T, dim=-1) / (step.abs().max() * h.abs().sum(-1))).mean().item()
            rows.append((rms_change(new[k], old[k]), rms_change(own, old[k]), rms_change(inherited, old[k]), alignment,
                         saturated(old[k]), saturated(new[k])))
    columns = np.array(rows).T
    hiddens = tuple(hiddens)
    return StepAnatomy(np.array(hiddens[:-1]), np.array(hiddens[1:]), *columns)


def deltas_over_seeds(hiddens: Sequence[int], optimizer, lr: float, seeds: Sequence[int], *, data=None,
                      device=None, mlp=MLP) -> np.ndarray:
    """``rms_deltas[seed, activation]``: :func:`train_one_step` (no plot) for every seed."""
    return np.stack([train_one_step(mlp, hiddens, optimizer, lr=lr, data=data, seed=s, device=device,
                                    plot=False).rms_deltas for s in _check_list("seeds", seeds)])


def hidden_step_sizes(optimizer, hiddens: Sequence[int], lr: float, *, mlp=MLP) -> np.ndarray:
    """``optimizer.layer_lr(p) * fan_in`` for every hidden weight matrix (not the input layer, not
    the readout) of a fresh ``mlp`` with these widths, for an optimizer with per-layer rates
    (SimpleAdamMuP or a subclass)."""
    opt = optimizer(mlp(hidden_sizes=tuple(hiddens)).parameters(), lr=lr)
    group = opt.param_groups[0]
    return np.array([opt.layer_lr(group, p) * p.shape[1] for p in group["params"]
                     if opt.roles[id(p)] == "hidden"])


@dataclass
class MatrixNormsResult:
    """Norms of ``new W - old W`` for every weight matrix after one step (part b)."""

    label: str
    shapes: list  # (fan_out, fan_in) per weight matrix, input first, readout last
    frobenius: np.ndarray
    spectral: np.ndarray
    rms_to_rms: np.ndarray
    entrywise_rms: np.ndarray
    figure: object = None

    NORMS = ("frobenius", "spectral", "rms_to_rms", "entrywise_rms")

    @property
    def fan_ins(self) -> np.ndarray:
        return np.array([s[1] for s in self.shapes])

    def table(self) -> str:
        rows = [f"{'shape (out, in)':>16} {'Frobenius':>10} {'spectral':>10} {'RMS->RMS':>10} {'entry RMS':>10}"]
        for i, shape in enumerate(self.shapes):
            values = [getattr(self, n)[i] for n in self.NORMS]
            rows.append(f"{str(tuple(shape)):>16} " + " ".join(f"{v:>10.4g}" for v in values))
        return "\n".join(rows)


def train_one_step_matrices(
    mlp=MLP,
    hiddens: Sequence[int] = (8, 16, 64, 64, 64, 256, 256, 1024),
    optimizer=SimpleAdam,
    label: str = "Adam",
    lr: float = 0.01,
    *,
    data=None,
    batch_size: int = 64,
    seed: int = 0,
    device=None,
    plot: bool = True,
    ax=None,
    norm_functions=None,
) -> MatrixNormsResult:
    """One step on the same fixed batch as ``train_one_step`` (same seed), then
    the Frobenius, spectral, RMS->RMS and entrywise-RMS norms of each weight
    matrix's update ``delta = new - old`` (input and readout included).

    ``norm_functions`` maps those four names to replacement functions
    (a student's own, for instance); missing names use ``helpers.norms``.
    """
    functions = dict(frobenius=norms.frobenius_norm, spectral=norms.spectral_norm, rms_to_rms=norms.rms_to_rms_norm,
                     entrywise_rms=norms.entrywise_rms)
    functions.update(norm_functions or {})
    device = get_device(device)
    model = build_model(mlp, hiddens, seed, device)
    opt = optimizer(model.parameters(), lr=lr)
    images, labels = fixed_batch(data, batch_size, seed, device)
    weights = [p for p in model.parameters() if p.ndim == 2]
    old = [w.detach().clone() for w in weights]

    opt.zero_grad()
    logits, _ = model(images)
    nn.functional.cross_entropy(logits, labels).backward()
    opt.step()

    deltas = [w.detach() - o for w, o in zip(weights, old)]
    measured = {name: np.array([float(fn(d)) for d in deltas]) for name, fn in functions.items()}
    result = MatrixNormsResult(label, [tuple(d.shape) for d in deltas], **measured)
    if plot:
        from helpers.plotting import plot_update_norms

        result.figure = plot_update_norms(result, axes=ax)
    return result


def norm_correlations(matrices: MatrixNormsResult, deltas: OneStepResult) -> dict[str, float]:
    """Pearson correlation, across layers, between each norm of a hidden
    layer's update and the RMS delta of the activation that layer produces.

    The measured activations come from weight matrices 1 .. L-2 (all but the
    input layer and the readout), in order. A norm that is constant across
    layers has no defined correlation and gets NaN.
    """
    produced = slice(1, 1 + len(deltas.rms_deltas))
    out = {}
    for name in MatrixNormsResult.NORMS:
        values = getattr(matrices, name)[produced]
        if np.ptp(values) <= 1e-3 * np.abs(values).max():
            out[name] = float("nan")
        else:
            out[name] = float(np.corrcoef(values, deltas.rms_deltas)[0, 1])
    return out


def validation_set(data, device):
    """The validation sample: ``VALIDATION_SIZE`` fixed images (and labels) of the held-out
    split, never seen in training, the same for every run. (The handout's starter code takes
    its "validation" batch from the training images; see the erratum in notebook 05.)"""
    _, (images, labels) = resolve_data(data)
    if len(images) < VALIDATION_SIZE:
        raise ValueError(f"the held-out split has {len(images)} images; the validation sample needs {VALIDATION_SIZE}.")
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(VALIDATION_SEED))[:VALIDATION_SIZE]
    return images[index].to(device), labels[index].to(device)


def train_model(
    hiddens: Sequence[int] = (64, 64, 64),
    optimizer=SimpleAdam,
    lr: float = 0.01,
    *,
    steps: int = 100,
    batch_size: int = 64,
    seed: int = 4,
    data=None,
    device=None,
    mlp=MLP,
    lr_factor=None,
    evaluate_from: int = 1,
) -> tuple[nn.Module, np.ndarray]:
    """Train ``steps`` steps on random batches (drawn from a generator seeded
    with ``seed``); return the model and the validation loss after every step
    from step ``evaluate_from`` on (default: every step).

    The validation loss is on :func:`validation_set`, fixed held-out images (the same for
    every run). Evaluating draws no random numbers and changes no weight, so skipping the
    early evaluations (``evaluate_from``) leaves the later losses exactly as they were.
    ``lr_factor(t)``, if given, scales every group's learning rate at
    step t = 1, 2, ... (a schedule). A run that diverges gives NaN or inf; it never raises."""
    check_positive("lr", lr)
    if steps < 1:
        raise ValueError(f"steps={steps}: need at least one step.")
    if not 1 <= evaluate_from <= steps:
        raise ValueError(f"evaluate_from={evaluate_from}: must be a step between 1 and steps={steps}.")
    device = get_device(device)
    model = build_model(mlp, hiddens, seed, device)
    opt = optimizer(model.parameters(), lr=lr)
    base_lrs = [group["lr"] for group in opt.param_groups]
    (images, labels), _ = resolve_data(data)
    valid_images, valid_labels = validation_set(data, device)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(1, steps + 1):
        if lr_factor is not None:
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * lr_factor(step)
        index = sample_indices(len(images), batch_size, generator)
        opt.zero_grad()
        logits, _ = model(images[index].to(device))
        nn.functional.cross_entropy(logits, labels[index].to(device)).backward()
        opt.step()
        if step < evaluate_from:
            continue
        with torch.no_grad():
            logits, _ = model(valid_images)
            losses.append(nn.functional.cross_entropy(logits, valid_labels))
    return model, to_numpy(torch.stack(losses))


def training_curve(*args, **kwargs) -> np.ndarray:
    """The validation loss after every step of :func:`train_model` (same arguments)."""
    return train_model(*args, **kwargs)[1]


def train_with_lr(
    hiddens: Sequence[int] = (64, 64, 64),
    optimizer=SimpleAdam,
    lr: float = 0.01,
    *,
    steps: int = 100,
    batch_size: int = 64,
    seed: int = 4,
    data=None,
    device=None,
    mlp=MLP,
) -> float:
    """The course protocol: :func:`training_curve`, then the mean of the last 5
    validation losses (NaN or inf for a run that diverged). Only those 5 are evaluated."""
    if steps < 5:
        raise ValueError(f"steps={steps}: need at least 5 steps (the result averages the last 5 losses).")
    curve = training_curve(hiddens, optimizer, lr, steps=steps, batch_size=batch_size, seed=seed, data=data,
                           device=device, mlp=mlp, evaluate_from=steps - 4)
    return float(np.mean(curve[-5:]))


@dataclass
class SweepResult:
    """Validation losses of an LR sweep: ``losses[seed, width, lr]``."""

    label: str
    widths: np.ndarray
    lrs: np.ndarray
    seeds: tuple
    losses: np.ndarray
    mode: str = "one run at a time"  # or "batched over lrs and seeds" (see lr_sweep)
    figure: object = field(default=None, repr=False)

    @property
    def mean_losses(self) -> np.ndarray:
        """Mean over seeds; a learning rate that diverged for any seed is NaN."""
        finite = np.where(np.isfinite(self.losses), self.losses, np.nan)
        return finite.mean(axis=0)

    @property
    def best_lr(self) -> np.ndarray:
        """Per width, the learning rate with the lowest seed-mean loss (NaN if all diverged)."""
        mean = self.mean_losses
        best = np.full(len(self.widths), np.nan)
        for i, row in enumerate(mean):
            if np.isfinite(row).any():
                best[i] = self.lrs[np.nanargmin(row)]
        return best

    @property
    def best_loss(self) -> np.ndarray:
        mean = self.mean_losses
        return np.array([np.nanmin(row) if np.isfinite(row).any() else np.nan for row in mean])

    def table(self) -> str:
        rows = [f"{'width':>6} {'best lr':>8} {'loss':>7}"]
        rows += [f"{w:>6} {lr:>8.4g} {loss:>7.3f}" for w, lr, loss in zip(self.widths, self.best_lr, self.best_loss)]
        return "\n".join(rows)

    def plot(self, ax=None):
        from helpers.plotting import plot_sweep

        self.figure = plot_sweep(self, ax=ax)
        return self.figure


def _check_list(name: str, values) -> tuple:
    values = tuple(values)
    if not values:
        raise ValueError(f"{name} is empty: give at least one value.")
    return values


def lr_sweep(
    widths: Sequence[int],
    lrs: Sequence[float],
    optimizer=SimpleAdam,
    *,
    depth: int = 3,
    steps: int = 100,
    seeds: Sequence[int] = (4,),
    data=None,
    device=None,
    progress: bool = True,
    label: str | None = None,
    batched: bool = True,
    hiddens=None,
    mlp=MLP,
) -> SweepResult:
    """``train_with_lr`` for every seed, width (``depth`` hidden layers of that
    width, or the hidden sizes ``hiddens(width)`` when given) and learning rate, on
    ``mlp(hidden_sizes=...)`` (default the course MLP; ``TP5MLP`` for TP5's muP).
    Diverged runs are kept as NaN/inf.

    By default all seeds and learning rates of one width are trained as one
    stacked model (``helpers.batched``): the same losses as one run at a time up
    to float rounding, and 3-4x faster on 2 CPU cores (measured). Only
    the SimpleAdam family (any switches, SimpleAdamMuP) and MuonAdam have that form; any other
    optimizer (or a model whose forward pass is not the course MLP's), or ``batched=False``,
    runs one model at a time, and the progress bar and ``SweepResult.mode`` say which way it ran."""
    from tqdm.auto import tqdm

    from helpers import batched as batched_sweep

    widths = _check_list("widths", widths)
    lrs = tuple(check_positive("every learning rate", lr) for lr in _check_list("lrs", lrs))
    seeds = _check_list("seeds", seeds)
    if depth < 2:
        raise ValueError(f"depth={depth}: need at least 2 hidden layers.")
    architecture = (lambda width: tuple(hiddens(width))) if hiddens else (lambda width: (width,) * depth)
    if steps < 5:
        raise ValueError(f"steps={steps}: need at least 5 steps (each result averages the last 5 losses).")
    data = resolve_data(data)
    device = get_device(device)
    label = label or getattr(optimizer, "__name__", str(optimizer))
    losses = np.empty((len(seeds), len(widths), len(lrs)))
    if batched and not batched_sweep.supports(optimizer):
        mode = "one run at a time: no batched form of this optimizer"
    elif batched and not batched_sweep.supports_model(mlp):
        mode = "one run at a time: no batched form of this model"
    elif batched:
        mode = "batched over lrs and seeds"
    else:
        mode = "one run at a time"
    bar = tqdm(total=losses.size, desc=f"LR sweep ({label}, {mode})", disable=not progress, leave=False)
    if mode.startswith("batched"):
        valid = validation_set(data, "cpu")
        for w, width in enumerate(widths):
            losses[:, w, :] = batched_sweep.sweep_width(
                architecture(width), lrs, seeds, optimizer, steps=steps, batch_size=64, data=data[0], valid=valid,
                device=device, mlp=mlp)
            bar.update(len(seeds) * len(lrs))
    else:
        for s, seed in enumerate(seeds):
            for w, width in enumerate(widths):
                for k, lr in enumerate(lrs):
                    losses[s, w, k] = train_with_lr(
                        architecture(width), optimizer, lr, steps=steps, seed=seed, data=data, device=device, mlp=mlp
                    )
                    bar.update()
    bar.close()
    return SweepResult(label, np.array(widths), np.array(lrs), seeds, losses, mode=mode)


@dataclass
class BestLossComparison:
    """Per width, each sweep's validation loss on every seed at that sweep's own best learning
    rate (``losses[width, seed, sweep]``), and the clear winner per width (or None)."""

    names: list
    widths: np.ndarray
    losses: np.ndarray
    winners: list

    def widths_won_by(self, name) -> list:
        """The widths where ``name`` wins (``None``: where there is no clear winner)."""
        return [int(w) for w, winner in zip(self.widths, self.winners) if winner == name]

    def table(self) -> str:
        header = " ".join(f"{n + ' best (seed range)':>30}" for n in self.names)
        rows = [f"{'width':>6} {header}   lower on every seed"]
        for w, width in enumerate(self.widths):
            seeds = [self.losses[w, :, k] for k in range(len(self.names))]
            cells = [f"{s.mean():.3f} ({s.min():.3f}-{s.max():.3f})" for s in seeds]
            rows.append(f"{width:>6} " + " ".join(f"{c:>30}" for c in cells)
                        + f"   {self.winners[w] or 'no clear winner'}")
        return "\n".join(rows)


def compare_best_losses(*sweeps: SweepResult) -> BestLossComparison:
    """Is one optimizer's best loss lower than another's, width by width, beyond seed noise?

    Each sweep contributes, per width, its losses on every seed at its own best learning rate
    (lowest seed-mean). A seed gives every sweep the same initial weights and batches, so the
    seeds pair up: :func:`helpers.verdicts.clear_winner` names the sweep that is lower on every
    seed, else None. The sweeps must share widths and seeds."""
    from helpers.verdicts import clear_winner

    if len(sweeps) < 2:
        raise ValueError("compare_best_losses needs at least two sweeps.")
    for other in sweeps[1:]:
        if tuple(other.widths) != tuple(sweeps[0].widths) or tuple(other.seeds) != tuple(sweeps[0].seeds):
            raise ValueError("the sweeps must share widths and seeds to be compared seed by seed.")
    columns = []
    for sweep in sweeps:
        index = [int(np.flatnonzero(sweep.lrs == lr)[0]) for lr in sweep.best_lr]
        columns.append(np.stack([sweep.losses[:, w, k] for w, k in enumerate(index)]))  # [width, seed]
    losses = np.stack(columns, axis=-1)
    names = [sweep.label for sweep in sweeps]
    winners = [clear_winner(losses[w], names) for w in range(len(sweeps[0].widths))]
    return BestLossComparison(names, np.array(sweeps[0].widths), losses, winners)


def fan_in_versus_width(result: OneStepResult) -> dict[str, float]:
    """Which size do the activation deltas follow? Pearson correlations of
    ``log(RMS delta)`` with ``log(fan-in)`` and with ``log(width)`` across the
    measured activations, and the least-squares slope of log delta on log fan-in
    (1 means delta proportional to fan-in)."""
    log_delta = np.log(result.rms_deltas)
    log_fan_in, log_width = np.log(result.fan_ins), np.log(result.widths)
    return {
        "corr_fan_in": float(np.corrcoef(log_delta, log_fan_in)[0, 1]),
        "corr_width": float(np.corrcoef(log_delta, log_width)[0, 1]),
        "slope_fan_in": float(np.polyfit(log_fan_in, log_delta, 1)[0]),
    }


def layer_gradient(hiddens: Sequence[int] = (8, 16, 64, 64, 64, 256, 256, 1024), layer: int = 6, *, data=None,
                   batch_size: int = 64, seed: int = 0, device=None, mlp=MLP, dtype=torch.float32) -> torch.Tensor:
    """The gradient of the cross-entropy with respect to ``model.layers[layer].weight``
    on the fixed batch of ``train_one_step`` (shape (fan_out, fan_in), on ``device``), with the
    model and images in ``dtype`` (the same init and batch in float32 or float64)."""
    device = get_device(device)
    model = build_model(mlp, hiddens, seed, device).to(dtype)
    images, labels = fixed_batch(data, batch_size, seed, device)
    nn.functional.cross_entropy(model(images.to(dtype))[0], labels).backward()
    return model.layers[layer].weight.grad.detach()


def muon_lr_sweep(widths: Sequence[int], lrs: Sequence[float], *, scale: str = "spectral", hiddens=None,
                  steps: int = 100, seeds: Sequence[int] = (4,), data=None, device=None, progress: bool = True,
                  label: str | None = None, **muon_adam) -> SweepResult:
    """:func:`lr_sweep` over Muon's learning rate with ``MuonAdam(scale=scale, **muon_adam)``
    (``adam_lr`` stays fixed on the input layer, readout and biases); ``hiddens(width)``
    gives the hidden sizes (default ``(width,) * 3``), so the hidden matrices need not be
    square. Batched over learning rates and seeds (``batched.StackedMuon``)."""
    from helpers.optimizers import MuonAdam, validate_scale

    validate_scale(scale)
    return lr_sweep(widths, lrs, functools.partial(MuonAdam, scale=scale, **muon_adam), steps=steps, seeds=seeds,
                    data=data, device=device, progress=progress, label=label or f"Muon ({scale})", hiddens=hiddens)
