"""The coordinate check: the muP diagnostic over several steps and widths
(microsoft/mup's ``get_coord_data`` / ``plot_coord_data``, Tensor Programs V, Figure 5).

Train networks of growing width for a few steps on the course protocol and record,
for every layer's output and every step, the typical size of one coordinate:

* ``rms[seed, width, step, layer]``: the RMS over features of the activation a
  layer hands on, averaged over 64 fixed images;
* ``delta[seed, width, step, layer]``: the RMS over features of its change since
  init on the same images, ``a_t(x) - a_0(x)``, averaged the same way.

If the deltas of a layer do not depend on the width, the parameterization keeps
every layer learning at the same pace at every width. ``slopes()`` measures the
dependence: the least-squares slope of ``log delta`` against ``log width``. Slope 0
is flat; slope 1 means the change doubles when the width doubles.

What counts as a layer's output: ``coord_check`` hooks every module that holds
parameters itself (``nn.Linear`` in the course MLP) and records what it receives,
i.e. the output of the layer before it after its nonlinearity and any multiplier
(a sigmoid feature in the course MLP, ``c * W x`` passed through the sigmoid in
``ScaledMLP``); the last layer's output is the model's output (the logits; the
first element when ``forward`` returns a tuple).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from helpers import coord_verdict
from helpers.device import get_device, to_numpy
from helpers.experiments import resolve_data, sample_indices
from helpers.models import MLP

BATCH_SIZE = 64
VERDICTS = ("flat", "growing", "shrinking")  # what slope_verdict returns


def course_mlp(width: int, depth: int = 3, mlp=MLP) -> nn.Module:
    """The course MLP (or ``ScaledMLP``, via ``mlp``) with ``depth`` hidden layers of ``width``."""
    return mlp(hidden_sizes=(width,) * depth)


class VerdictCheckFailed(AssertionError):
    """A self-check of ``slope_verdict`` failed: the message says what was measured and why."""


_SIGN = "a negative slope is a delta that shrinks with width, a positive one grows: keep the sign (no abs())."
_VERDICT_CASES = [
    # (slopes per seed, expected, {wrong answer: the mistake it points to}, hint for any other wrong answer)
    ([0.95, 1.02, 0.98], "growing", {"shrinking": _SIGN},
     "three seeds agree on a slope near 1: the delta doubles when the width doubles."),
    ([-0.48, -0.52, -0.50], "shrinking", {"growing": _SIGN},
     "three seeds agree on a slope near -1/2: the delta falls when the width grows."),
    ([0.03, -0.02, 0.01], "flat", {}, "slopes this close to 0 are flat."),
    ([0.05, 0.06, 0.055], "flat", {},
     "the seeds agree closely (spread 0.01), but a slope of 0.055 changes the delta by less than 1.2x over a 16x "
     "range of widths: below the floor a slope is flat, however small the spread."),
    ([-0.4, 0.4, 0.45], "flat",
     {"shrinking": "the first seed alone says shrinking: decide on the mean over all the seeds, not on one seed."},
     "the mean (0.15) is smaller than the seeds' spread (0.85): these seeds cannot tell it from flat. Compare the "
     "mean with the spread."),
    ([0.6, -0.1, 0.2], "flat", {},
     "the mean is 0.23, but the seeds range from -0.1 to 0.6: the spread (0.7) is larger than the mean, so these "
     "seeds cannot tell it from flat. Compare the mean with the spread."),
    ([0.35, 0.30, 0.25], "growing", {},
     "the mean (0.30) is above the floor (0.1) and above the spread (0.1): the tolerance is the larger of the two, "
     "and a mean beyond it is growth."),
    ([0.5], "growing", {}, "with one seed the spread is 0, so the floor alone is the tolerance."),
]


def check_slope_verdict(verdict: Callable = None) -> bool:
    """Run ``verdict`` (default: ``slope_verdict``) on slopes whose answer is known;
    raise ``VerdictCheckFailed`` (an AssertionError) naming the first wrong case and
    the mistake it points to; return True when every case passes."""
    verdict = verdict or coord_verdict.slope_verdict
    for slopes, expected, hints, hint in _VERDICT_CASES:
        got = verdict(np.array(slopes))
        if got not in VERDICTS:
            raise VerdictCheckFailed(
                f"slope_verdict({slopes}) returned {got!r}; it must return one of {VERDICTS}.")
        if got != expected:
            raise VerdictCheckFailed(f"slope_verdict({slopes}) returned {got!r}, expected {expected!r}.\n"
                                     f"  hint: {hints.get(got, hint)}")
    print("PASS check_slope_verdict")
    return True


def seed_trend(slopes, floor: float | None = None) -> str | None:
    """The direction every seed shows: ``"growing"`` when every seed's slope lies above ``floor``
    (default ``coord_verdict.FLAT_TOLERANCE``), ``"shrinking"`` when every one lies below
    ``-floor``, else None. Seeds far apart that agree on the direction disagree on how fast the
    delta changes with width, not on whether it changes."""
    values = np.ravel(np.asarray(slopes, dtype=float))
    floor = coord_verdict.FLAT_TOLERANCE if floor is None else floor
    above = values.size > 0 and bool((values > floor).all())
    below = values.size > 0 and bool((values < -floor).all())
    return "growing" if above else "shrinking" if below else None


def decide(slopes, verdict: Callable = None) -> str:
    """One layer at one step: ``slope_verdict`` (or ``verdict``) of the seeds' slopes, except that
    a direction every seed shows beyond the floor (:func:`seed_trend`) is reported even where the
    seeds' spread makes ``slope_verdict`` call it flat."""
    decided = (verdict or coord_verdict.slope_verdict)(slopes)
    if decided == "flat":
        return seed_trend(slopes) or "flat"
    return decided


def describe_steps(per_step: Sequence[str]) -> str:
    """``["flat", "flat", "growing"]`` (steps 1, 2, 3) -> "flat at steps 1-2, growing at step 3"."""
    if len(set(per_step)) == 1:
        return f"{per_step[0]} at every step" if len(per_step) > 1 else f"{per_step[0]} at step 1"
    parts, start = [], 0
    for t in range(1, len(per_step) + 1):
        if t == len(per_step) or per_step[t] != per_step[start]:
            span = f"step {start + 1}" if t - 1 == start else f"steps {start + 1}-{t}"
            parts.append(f"{per_step[start]} at {span}")
            start = t
    return ", ".join(parts)


# ---------------------------------------------------------------- recording the layers' outputs
class Recorder:
    """Forward pre-hooks on every module that holds parameters itself: while
    ``active``, each records the input it receives (the previous layer's output)."""

    def __init__(self, model: nn.Module):
        # The model itself is left out: what it receives is the images, not a layer's output.
        self.modules = [(name, m) for name, m in model.named_modules()
                        if m is not model and any(True for _ in m.parameters(recurse=False))]
        self.order: list[str] = []
        self.inputs: dict[str, torch.Tensor] = {}
        self.active = False
        self.handles = [m.register_forward_pre_hook(functools.partial(self._hook, name)) for name, m in self.modules]

    def _hook(self, name, module, args):
        if not self.active:
            return
        if name in self.inputs:
            raise ValueError(f"coord_check: module {name!r} ran twice in one forward pass; it records each layer "
                             "once, so give it a model whose layers each run once.")
        if not args or not isinstance(args[0], torch.Tensor):
            raise ValueError(f"coord_check: module {name!r} was called without a tensor as its first input, so its "
                             "input cannot be recorded.")
        self.order.append(name)
        self.inputs[name] = args[0].detach().clone()  # a later in-place op must not change the record

    @torch.no_grad()
    def outputs(self, model: nn.Module, images: torch.Tensor) -> tuple[list[str], list[torch.Tensor]]:
        """Names and outputs ([batch, ...]) of every layer on ``images``, in the order they ran."""
        self.order, self.inputs, self.active = [], {}, True
        try:
            out = model(images)
        finally:
            self.active = False
        logits = out[0] if isinstance(out, (tuple, list)) and out else out
        if not isinstance(logits, torch.Tensor):
            raise TypeError(f"coord_check: the model returned {type(out).__name__}; it must return the logits (a "
                            "tensor), or a tuple whose first element is the logits.")
        if not self.order:
            raise ValueError(
                "coord_check cannot hook this model's layers: no module holding parameters ran in its forward pass "
                f"({len(self.modules)} such modules found). Build it from nn.Module layers (e.g. nn.Linear) that "
                "forward() calls, not from bare parameters used in functional calls.")
        names = self.order  # module k receives the output of module k-1; the model returns the last one's
        return names, [self.inputs[name] for name in names[1:]] + [logits.detach()]

    def remove(self):
        for handle in self.handles:
            handle.remove()


def per_example_rms(x: torch.Tensor) -> torch.Tensor:
    """RMS over features of each example, then the mean over the batch."""
    return x.reshape(x.shape[0], -1).float().square().mean(1).sqrt().mean()


def layer_labels(names: list[str]) -> list[str]:
    roles = ["input" if i == 0 else "readout" if i == len(names) - 1 else "hidden" for i in range(len(names))]
    return [f"{name} ({role})" for name, role in zip(names, roles)]


# ---------------------------------------------------------------- the result
@dataclass
class CoordCheckResult:
    """``rms`` and ``delta`` have shape ``[seed, width, step, layer]``, steps 0 (init) to ``steps``."""

    label: str
    widths: np.ndarray
    seeds: tuple
    layers: list  # one label per layer output, input layer first, readout last
    rms: np.ndarray
    delta: np.ndarray
    mode: str = "one run at a time"
    figure: object = field(default=None, repr=False)

    @property
    def steps(self) -> np.ndarray:
        return np.arange(self.rms.shape[2])

    def to_rows(self) -> list[dict]:
        """One dict per (seed, width, step, layer): the tidy table."""
        rows = []
        for s, seed in enumerate(self.seeds):
            for w, width in enumerate(self.widths):
                for t in self.steps:
                    for k, layer in enumerate(self.layers):
                        rows.append(dict(seed=seed, width=int(width), step=int(t), layer=layer,
                                         rms=float(self.rms[s, w, t, k]), delta=float(self.delta[s, w, t, k])))
        return rows

    def slopes(self, quantity: str = "delta") -> np.ndarray:
        """``[seed, step, layer]``: the least-squares slope of ``log quantity``
        against ``log width``; index 1 is step 1. The delta is 0 at step 0, so its
        slope there (and wherever a layer did not move) is NaN."""
        values = {"delta": self.delta, "rms": self.rms}[quantity]
        x = np.log(self.widths.astype(float))
        x = x - x.mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(values)  # [seed, width, step, layer]
            centred = logs - logs.mean(axis=1, keepdims=True)
            slopes = np.einsum("w,swtl->stl", x, centred) / (x @ x)
        return np.where(np.isfinite(slopes), slopes, np.nan)

    def verdicts(self, verdict: Callable = None) -> dict[str, list[str]]:
        """``{layer: [verdict at step 1, ..., at the last step]}``: :func:`decide` on the
        seeds' delta slopes (``slope_verdict``, or ``verdict``, and a direction every seed
        shows beyond the floor); "unmoved" where a layer did not move at some width, so
        that no slope exists."""
        slopes = self.slopes()
        return {layer: [decide(slopes[:, t, k], verdict) if np.isfinite(slopes[:, t, k]).all() else "unmoved"
                        for t in self.steps[1:]]
                for k, layer in enumerate(self.layers)}

    def seed_signs(self) -> dict[str, list[str]]:
        """``{layer: [at step 1, ..., at the last step]}``: "all positive" or "all negative" where
        every seed's delta slope has that sign, else "mixed" (or "unmoved"). A sign that every
        seed shows is a trend the seeds agree on in direction, whatever the verdict says of its size."""
        slopes = self.slopes()

        def sign(values):
            if not np.isfinite(values).all():
                return "unmoved"
            return "all positive" if (values > 0).all() else "all negative" if (values < 0).all() else "mixed"

        return {layer: [sign(slopes[:, t, k]) for t in self.steps[1:]] for k, layer in enumerate(self.layers)}

    def passes(self) -> bool:
        """True when every layer is flat at every step."""
        return all(v == "flat" for per_step in self.verdicts().values() for v in per_step)

    def answers(self) -> dict:
        """What a notebook records: widths, layers, the seed mean, min and max of the
        delta slope per step (steps 1 to the last) and layer, the verdicts, and ``passes``."""
        slopes = self.slopes()[:, 1:]
        return dict(label=self.label, widths=self.widths, seeds=self.seeds, layers=self.layers, mode=self.mode,
                    slope_mean=slopes.mean(axis=0), slope_min=slopes.min(axis=0), slope_max=slopes.max(axis=0),
                    verdicts=self.verdicts(), passes=self.passes())

    def summary(self, steps: Sequence[int] = (1, -1)) -> str:
        """A table: per layer, the seed-mean delta slope and the seeds' range at each
        of ``steps``, then the verdict at every step (runs of equal verdicts joined)."""
        steps = [int(self.steps[t]) for t in steps]
        slopes, verdicts = self.slopes(), self.verdicts()
        seeds = f"{len(self.seeds)} seed{'s' if len(self.seeds) > 1 else ''}"
        rows = [f"{self.label}: widths {self.widths.min()}-{self.widths.max()}, {seeds}; slope of log delta "
                "against log width, seed mean [min, max]"]
        rows.append(f"  {'layer':<19}" + "".join(f"{'step ' + str(t):<23}" for t in steps) + "verdict")
        for k, layer in enumerate(self.layers):
            cells = "".join(f"{slopes[:, t, k].mean():+.2f} [{slopes[:, t, k].min():+.2f}, "
                            f"{slopes[:, t, k].max():+.2f}]  " for t in steps)
            rows.append(f"  {layer:<19}{cells}{describe_steps(verdicts[layer])}")
        return "\n".join(rows)

    def plot(self, steps: Sequence[int] | None = None, quantity: str = "delta", axes=None):
        """mup-style row: one panel per step shown (default steps 1, 3 and 10 of 10),
        one line per layer (the seed mean, a band from the smallest to the largest
        seed), widths on a log axis, log y (``helpers.plotting.plot_coord_checks``
        draws several results as one grid)."""
        from helpers.plotting import plot_coord_check

        self.figure = plot_coord_check(self, steps=steps, quantity=quantity, axes=axes)
        return self.figure


# ---------------------------------------------------------------- the check
def _check_widths(widths) -> tuple[int, ...]:
    try:
        widths = tuple(widths)
    except TypeError:
        raise TypeError(f"widths must be a sequence of integers, e.g. (64, 128, 256), not {widths!r}.") from None
    if len(widths) < 2:
        raise ValueError(f"widths={widths!r}: a slope against width needs at least two widths.")
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
            raise ValueError(f"widths={widths!r}: every width must be a positive integer, got {w!r}.")
    if any(b <= a for a, b in zip(widths, widths[1:])):
        raise ValueError(f"widths={widths!r}: list the widths in increasing order, each once.")
    return tuple(int(w) for w in widths)


def _label(make_optimizer) -> str:
    if isinstance(make_optimizer, functools.partial):
        keywords = ", ".join(f"{k}={v!r}" for k, v in make_optimizer.keywords.items())
        return f"{_label(make_optimizer.func)}({keywords})"
    return getattr(make_optimizer, "__name__", type(make_optimizer).__name__)


def _run(make_model, make_optimizer, width, seed, steps, train, measure, device):
    (images, labels), (measure_images, _) = train, measure
    model = seeded_model(make_model, width, seed).to(device)
    optimizer = make_optimizer(model.parameters())
    recorder = Recorder(model)
    try:
        names, initial = recorder.outputs(model, measure_images)
        rms = [[per_example_rms(a) for a in initial]]
        delta = [[torch.zeros((), device=device) for _ in initial]]
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            training_step(model, optimizer, images, labels, sample_indices(len(images), BATCH_SIZE, generator), device)
            _, now = recorder.outputs(model, measure_images)
            rms.append([per_example_rms(a) for a in now])
            delta.append([per_example_rms(a - a0) for a, a0 in zip(now, initial)])
    finally:
        recorder.remove()
    return names, to_numpy(torch.stack([torch.stack(r) for r in rms])), \
        to_numpy(torch.stack([torch.stack(d) for d in delta]))


def _batched_width(make_model, make_optimizer, width, seeds, steps, train, measure, device):
    """Every seed of one width as one stacked model (``helpers.batched``): the same
    numbers as :func:`_run` up to float rounding, for the course MLP under the
    SimpleAdam family."""
    from helpers import batched

    (images, labels), (measure_images, _) = train, measure
    images = images.reshape(len(images), -1)
    measure_images = measure_images.reshape(len(measure_images), -1).cpu()
    used = images.ne(0).any(0) | measure_images.ne(0).any(0)  # pixels 0 everywhere add nothing (batched.py)
    images, measure_images, labels = images[:, used].to(device), measure_images[:, used].to(device), labels.to(device)
    models = [seeded_model(make_model, width, seed) for seed in seeds]
    names = hooked_layers(models[0], measure[0].cpu())
    params, adam = batched.stack_runs([list(m.parameters()) for m in models], [make_optimizer] * len(seeds), used,
                                      device)
    layers = len(params) // 2

    @torch.no_grad()
    def outputs():
        record = []
        logits = batched.batched_forward(params, [measure_images] * len(seeds), record)
        return record + [logits]  # each [seed, features, batch]

    def sizes(activations):  # RMS over features, mean over the batch: [layer, seed]
        return torch.stack([a.square().mean(1).sqrt().mean(-1) for a in activations])

    initial = outputs()
    rms, delta = [sizes(initial)], [torch.zeros(layers, len(seeds), device=device)]
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    for _ in range(steps):
        indices = [sample_indices(len(images), BATCH_SIZE, g).to(device) for g in generators]
        targets = torch.stack([labels[index] for index in indices])
        logits = batched.batched_forward(params, [images[index] for index in indices])
        loss = batched.mean_cross_entropy(logits, targets)
        adam.step(torch.autograd.grad(loss.sum(), params))
        now = outputs()
        rms.append(sizes(now))
        delta.append(sizes([a - a0 for a, a0 in zip(now, initial)]))
    # [step, layer, seed] -> [seed, step, layer]
    return names, to_numpy(torch.stack(rms)).transpose(2, 0, 1), to_numpy(torch.stack(delta)).transpose(2, 0, 1)


MEASUREMENT_SEED = 2025  # which 64 training images every run is measured on


def training_step(model: nn.Module, optimizer, images, labels, index, device) -> None:
    """One optimizer step on the cross-entropy of the batch ``images[index]`` (a model may return
    ``(logits, activations)`` or the logits alone)."""
    optimizer.zero_grad()
    out = model(images[index].to(device))
    logits = out[0] if isinstance(out, (tuple, list)) else out
    nn.functional.cross_entropy(logits, labels[index].to(device)).backward()
    optimizer.step()


def measurement_images(data, device):
    """64 fixed training images (and labels), the same for every width, seed and step."""
    (images, labels), _ = resolve_data(data)
    index = sample_indices(len(images), BATCH_SIZE, torch.Generator().manual_seed(MEASUREMENT_SEED))
    return images[index].to(device), labels[index].to(device)


def seeded_model(make_model, width: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)  # build on the CPU under a fixed seed (then move): the same init on every device
    model = make_model(width)
    if not isinstance(model, nn.Module):
        raise TypeError(f"make_model({width}) returned {type(model).__name__}; it must return a torch.nn.Module.")
    return model


def hooked_layers(model: nn.Module, images: torch.Tensor) -> list[str]:
    """The labels of the layer outputs ``coord_check`` records for ``model`` on ``images``
    (raises the same errors as ``coord_check`` for a model it cannot hook)."""
    recorder = Recorder(model)
    try:
        names, _ = recorder.outputs(model, images)
    finally:
        recorder.remove()
    return layer_labels(names)


def _supports_batched(probe: nn.Module, make_optimizer) -> bool:
    """The stacked form covers the course MLP with biases (or a subclass that changes only its
    initial weights, such as ``TP5MLP``) under the SimpleAdam family."""
    from helpers import batched

    return batched.plain_mlp(probe) and batched.supports(make_optimizer)


def coord_check(
    make_model: Callable[[int], nn.Module] | None,
    make_optimizer: Callable,
    widths: Sequence[int],
    *,
    steps: int = 10,
    seeds: Sequence[int] = (0,),
    data=None,
    device=None,
    label: str | None = None,
    progress: bool = True,
    batched: bool = True,
) -> CoordCheckResult:
    """Train ``make_model(width)`` (None: :func:`course_mlp`, 3 hidden layers of that
    width) with ``make_optimizer(model.parameters())`` (e.g.
    ``functools.partial(SimpleAdam, lr=1e-3)``) for ``steps`` steps at every width
    and seed, on the course protocol (the model built on the CPU under
    ``torch.manual_seed(seed)``, batches of 64 training images drawn by a generator
    seeded with ``seed``), and record every layer's output on 64 fixed training images
    (as microsoft/mup's ``get_coord_data`` records on its data batch: the check is about the
    size of the activations, not about generalisation) at init and after every step. Returns a
    :class:`CoordCheckResult`.

    The course MLP under the SimpleAdam family (SimpleAdam, SimpleAdamMuP and
    their subclasses that only change ``layer_lr``) trains all seeds of a width as
    one stacked model (``helpers.batched``; ``batched=False`` turns it off); any
    other model or optimizer runs one model at a time, and ``result.mode`` and the
    progress bar say which.
    """
    from tqdm.auto import tqdm

    widths = _check_widths(widths)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps={steps!r}: the check trains at least one step.")
    steps = int(steps)
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed.")
    if not callable(make_optimizer):
        raise TypeError("make_optimizer must be called as make_optimizer(model.parameters()), e.g. "
                        "functools.partial(SimpleAdam, lr=1e-3).")
    make_model = make_model or course_mlp
    data = resolve_data(data)
    device = get_device(device)
    label = label or _label(make_optimizer)
    measure = measurement_images(data, device)
    probe = seeded_model(make_model, widths[0], seeds[0])
    layers = hooked_layers(probe.to(device), measure[0])  # fails early on a model it cannot hook
    if batched and _supports_batched(probe, make_optimizer):
        mode = "batched over seeds"
    elif batched:
        mode = "one run at a time: no batched form of this model or optimizer"
    else:
        mode = "one run at a time"
    rms = np.empty((len(seeds), len(widths), steps + 1, len(layers)))
    delta = np.empty_like(rms)
    bar = tqdm(total=len(seeds) * len(widths), desc=f"coordinate check ({label}, {mode})", disable=not progress,
               leave=False)
    def same_layers(width, labels):
        if labels != layers:
            raise ValueError(f"coord_check: the model of width {width} has layers {labels}, that of width "
                             f"{widths[0]} {layers}: make_model must give the same layers at every width.")

    for w, width in enumerate(widths):
        if mode.startswith("batched"):
            labels, run_rms, run_delta = _batched_width(make_model, make_optimizer, width, seeds, steps, data[0],
                                                        measure, device)
            same_layers(width, labels)
            rms[:, w], delta[:, w] = run_rms, run_delta
            bar.update(len(seeds))
            continue
        for s, seed in enumerate(seeds):
            names, run_rms, run_delta = _run(make_model, make_optimizer, width, seed, steps, data[0], measure, device)
            same_layers(width, layer_labels(names))
            rms[s, w], delta[s, w] = run_rms, run_delta
            bar.update()
    bar.close()
    return CoordCheckResult(label, np.array(widths), seeds, layers, rms, delta, mode=mode)
