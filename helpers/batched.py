"""All learning rates (and seeds) of one width trained as one batched model.

In the course protocol every learning rate of a width starts from the same
initial weights (per seed) and sees the same batches, so the runs differ only in
their step sizes. Stacking the N = seeds x lrs copies of every parameter along a
leading axis, one batched forward/backward gives each copy exactly its own
gradient (the summed loss separates: d(sum_r L_r)/dW_r = dL_r/dW_r), and Adam's
update is elementwise, so one batched update with a per-copy learning rate
reproduces the N separate runs up to float rounding. Used by
``experiments.lr_sweep``.

``MuonAdam`` stacks the same way: its Adam part (input layer, readout, biases) is
``StackedAdam`` at ``adam_lr``, and its hidden matrices are ``StackedMuon``: one
momentum update for all runs, then ``newton_schulz`` of each run's matrix (the
course function itself, so the student's version runs here too, vmapped over the runs)
times the shape factor and the run's learning rate.

What makes it fast on a CPU, beyond one computation instead of N:

* the runs of a seed share their batch, so the first layer of all of them is one
  product ``[W_1; ...; W_L] @ X^T`` and its weight gradient one product ``dZ X``;
* activations are kept as [N, features, batch] (``h' = W h + b``), so every weight
  gradient comes out contiguous for the fused Adam kernel (``StackedAdam``);
* pixels that are 0 in every image are left out of the first layer (exactly:
  they add nothing and their weights never move);
* only the 5 validation passes that are reported are computed (the one-run loop,
  like the course protocol, evaluates after every step).

Widths 128 and 256 are compute-bound: there the stacked model does the same
matrix products as the loop, minus the validation passes (measured in the benchmarks).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn
from torch.optim.adam import adam

from helpers import orthogonal_updates
from helpers.device import to_numpy
from helpers.models import MLP
from helpers.optimizers import ADAM_EPS, MuonAdam, SimpleAdam

# With the step count this large, beta**t underflows to 0, so Adam's bias correction
# 1 - beta**t is exactly 1: bias_correction=False without a second code path.
_NO_BIAS_CORRECTION_STEP = 1e9


def _is_muon_adam(opt) -> bool:
    return isinstance(opt, MuonAdam) and type(opt).update_parameter is MuonAdam.update_parameter


def supports(optimizer) -> bool:
    """True when ``optimizer`` builds a SimpleAdam-family optimizer whose step is
    the plain ``adam_direction`` with ``layer_lr`` (SimpleAdam with any switches,
    SimpleAdamMuP, partials of them) or the stock ``MuonAdam`` (any scale);
    anything else runs one model at a time. ``optimizer`` may be any callable of the
    parameters (``coord_check``'s ``make_optimizer``) or one that also takes ``lr=``."""
    def tiny():
        return MLP(input_size=3, hidden_sizes=(2, 2), num_classes=2).parameters()

    try:
        probe = optimizer(tiny())
    except TypeError:  # a class whose lr has no default, given as in lr_sweep
        try:
            probe = optimizer(tiny(), lr=0.1)
        except TypeError:
            return False  # the one-at-a-time path will call it as documented, and say what is wrong
    return _is_muon_adam(probe) or (
        isinstance(probe, SimpleAdam) and type(probe).update_parameter is SimpleAdam.update_parameter)


def plain_mlp(model: nn.Module) -> bool:
    """True when ``model`` computes what ``batched_forward`` computes: an :class:`MLP` (or a subclass
    that changes only its initial weights, such as ``TP5MLP``) with biases in every layer."""
    return isinstance(model, MLP) and type(model).forward is MLP.forward \
        and type(model).layer_output is MLP.layer_output and all(layer.bias is not None for layer in model.layers)


def supports_model(mlp) -> bool:
    """True when ``mlp(hidden_sizes=...)`` builds a model that ``plain_mlp`` accepts (the probe
    leaves the global random state as it found it)."""
    with torch.random.fork_rng(devices=[]):
        return plain_mlp(mlp(hidden_sizes=(2, 2)))


class StackedAdam:
    """SimpleAdam's update for N runs stacked along dim 0, each parameter of each
    run with its own constant learning rate ``rates[run][parameter]``.

    With a constant rate, Adam's weights are ``W_t = W_0 - rate * sum_{s<=t} u_s``,
    ``u = m_hat / (sqrt(v_hat) + eps)``. The running sum of the directions of
    every run comes from one call per step of PyTorch's Adam
    (``torch.optim.adam.adam``, the same formulas as ``adam_direction``:
    ``m <- lerp(m, g, 1-b1)``, ``v <- b2 v + (1-b2) g^2``, bias correction by
    ``1 - b^t``) applied with ``lr = 1`` to a tensor that starts at zero and so
    holds ``-sum u``; then ``W = W_0 + rate * (-sum u)``.

    On a CPU it is the fused kernel: one pass over memory instead of one per
    elementwise op (the stack of 9 width-256 runs streams ~50 MB per op: 7 ms
    per step op by op, 2 ms fused). On a GPU it is the multi-tensor (foreach)
    form, because the CUDA fused kernel works out ``1 - b2`` in float32
    (1 - 0.999f = 0.000999987): its zero-init first step without bias correction
    is 3.1622987 instead of (1-b1)/sqrt(1-b2) = 3.1622777 (H100, torch 2.11).
    ``zero_init=False`` starts the moments at ``g`` and ``g^2``, as
    ``adam_direction`` does.
    """

    def __init__(self, params: list[torch.Tensor], rates: list[list[float]], group: dict):
        self.params = [p.detach() for p in params]
        self.initial = [p.clone() for p in self.params]
        self.momenta = [torch.zeros_like(p) for p in self.params]
        self.variances = [torch.zeros_like(p) for p in self.params]
        self.minus_sum_of_directions = [torch.zeros_like(p) for p in self.params]
        rates = torch.tensor(rates, dtype=self.params[0].dtype, device=self.params[0].device)  # [N, n_params]
        self.rates = [rates[:, j].reshape(-1, *([1] * (p.ndim - 1))) for j, p in enumerate(self.params)]
        first_step = 0.0 if group["bias_correction"] else _NO_BIAS_CORRECTION_STEP
        self.fused = self.params[0].device.type == "cpu"
        step_device = self.params[0].device if self.fused else "cpu"  # foreach keeps its step counts on the CPU
        self.steps = [torch.tensor(first_step, device=step_device) for _ in self.params]
        self.group, self.started = group, False

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]) -> None:
        # The fused CPU kernel reads a strided gradient as if it were contiguous and silently
        # applies wrong entries (PyTorch 2.13, measured): only contiguous gradients go in.
        grads = [g if g.is_contiguous() else g.contiguous() for g in grads]
        if not self.started and not self.group["zero_init"]:
            for m, v, g in zip(self.momenta, self.variances, grads):
                m.copy_(g)
                v.copy_(g.square())
        self.started = True
        adam(self.minus_sum_of_directions, grads, self.momenta, self.variances, [], self.steps, fused=self.fused,
             foreach=not self.fused, amsgrad=False, beta1=self.group["b1"], beta2=self.group["b2"], lr=1.0,
             weight_decay=0.0, eps=ADAM_EPS, maximize=False)
        for p, p0, rate, direction in zip(self.params, self.initial, self.rates, self.minus_sum_of_directions):
            torch.addcmul(p0, rate, direction, out=p)


def batched_newton_schulz(G: torch.Tensor, steps: int = 5, coefficients=None) -> torch.Tensor:
    """``orthogonal_updates.newton_schulz`` (the course function, the student's in the release)
    applied to every matrix of a stack [N, rows, cols] (``coefficients=None``: its default, the
    quintic): through ``torch.func.vmap`` (batched matrix products), or one matrix at a time when
    that function cannot be vmapped."""
    if coefficients is None:
        coefficients = orthogonal_updates.QUINTIC

    def one(X):
        return orthogonal_updates.newton_schulz(X, steps=steps, coefficients=coefficients)

    try:
        return torch.func.vmap(one)(G)
    except Exception:  # noqa: BLE001 - e.g. a student's version with data-dependent Python control flow
        return torch.stack([one(X) for X in G])


class StackedMuon:
    """``MuonAdam``'s hidden-matrix update for N runs stacked along dim 0: momentum
    ``m <- lerp(m, g, 1 - mu)``, the Nesterov direction ``lerp(g, m, mu)``, then
    ``W <- W - rate * scale(fan_out, fan_in) * NS(direction)`` per run, with the
    course's ``newton_schulz`` on each run's matrix (``batched_newton_schulz``)."""

    def __init__(self, params: list[torch.Tensor], rates: list[list[float]], group: dict):
        self.params = [p.detach() for p in params]
        self.momenta = [torch.zeros_like(p) for p in self.params]
        self.rates = [torch.tensor([run[j] for run in rates], dtype=p.dtype, device=p.device).view(-1, 1, 1)
                      for j, p in enumerate(self.params)]
        self.group = group

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]) -> None:
        mu = self.group["momentum"]
        for p, m, g, rate in zip(self.params, self.momenta, grads, self.rates):
            m.lerp_(g, 1 - mu)
            direction = g.lerp(m, mu) if self.group["nesterov"] else m
            scale = orthogonal_updates.muon_shape_scale(p.shape[1], p.shape[2], self.group["scale"])
            p.addcmul_(batched_newton_schulz(direction, self.group["ns_steps"]) * scale, rate, value=-1)


def batched_forward(params: list[torch.Tensor], inputs: list[torch.Tensor], record: list | None = None) -> torch.Tensor:
    """Course MLP forward for N stacked models: ``len(inputs)`` seeds of
    ``N / len(inputs)`` runs each, ``inputs[s]`` seed s's batch [B, d_in].
    Returns per-run cross-entropy inputs: logits [N, classes, B]; ``record``, if
    given, receives every hidden activation [N, features, B] (the coordinate check).

    Activations are kept as [N, features, B], i.e. ``h_next = W h + b``, so that
    every weight gradient ``dH h^T`` comes out contiguous (the fused Adam kernel
    needs that; see ``StackedAdam``)."""
    first_weight, first_bias = params[0], params[1]
    n, width, d_in = first_weight.shape
    seeds = len(inputs)
    per_seed = n // seeds
    # The runs of a seed share their batch: one [per_seed*width, d_in] @ [d_in, B] product per seed.
    stacked = torch.stack(inputs) if seeds > 1 else inputs[0].unsqueeze(0)
    x = torch.baddbmm(first_bias.view(seeds, per_seed * width, 1), first_weight.view(seeds, per_seed * width, d_in),
                      stacked.transpose(1, 2))
    x = torch.sigmoid(x.view(n, width, -1))
    layers = len(params) // 2
    for index in range(1, layers):
        if record is not None:
            record.append(x)
        weight, bias = params[2 * index], params[2 * index + 1]
        x = torch.baddbmm(bias.unsqueeze(2), weight, x)
        if index < layers - 1:
            x = torch.sigmoid(x)
    return x


def mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-run mean cross-entropy: logits [N, classes, B], targets [N, B] -> [N]."""
    return nn.functional.cross_entropy(logits, targets, reduction="none").mean(1)


class StackedOptimizer:
    """One step for N stacked runs: ``StackedAdam`` on the parameters Adam trains and, for
    MuonAdam, ``StackedMuon`` on its hidden matrices."""

    def __init__(self, adam: StackedAdam, adam_part: list[int], muon: StackedMuon | None, muon_part: list[int]):
        self.adam, self.adam_part, self.muon, self.muon_part = adam, adam_part, muon, muon_part

    def step(self, grads) -> None:
        self.adam.step([grads[j] for j in self.adam_part])
        if self.muon is not None:
            self.muon.step([grads[j] for j in self.muon_part])


def stack_runs(inits: list[list[torch.Tensor]], optimizers: list, used: torch.Tensor, device):
    """The runs' parameters stacked along a new leading axis, on ``device`` and ready
    for gradients (the first layer keeps only the ``used`` pixels), and a
    ``StackedOptimizer`` for them: ``inits[r]`` is run r's parameter list in MLP order,
    and ``optimizers[r](inits[r])`` builds its optimizer, from which each parameter's
    learning rate is read (``layer_lr``; for MuonAdam, Muon's ``lr`` on the hidden
    matrices it finds by its own roles and ``adam_lr`` on everything else)."""
    rates, groups, muon = [], [], set()
    for init, optimizer in zip(inits, optimizers):
        opt = optimizer(init)
        if len(opt.param_groups) != 1:
            raise ValueError("the batched runs need an optimizer with one param group")
        group = opt.param_groups[0]
        if _is_muon_adam(opt):
            muon = {j for j, p in enumerate(group["params"]) if opt.roles[id(p)] == "hidden"}
            rates.append([group["lr"] if j in muon else group["adam_lr"] for j in range(len(group["params"]))])
        else:
            rates.append([opt.layer_lr(group, p) for p in group["params"]])
        groups.append({key: value for key, value in group.items() if key not in ("params", "lr")})
    if any(group != groups[0] for group in groups):
        raise ValueError("the batched runs need the same betas and switches for every run")
    columns = [[p.detach() for p in init] for init in inits]
    for init in columns:
        init[0] = init[0][:, used]
    params = [torch.stack([init[j] for init in columns]).to(device).requires_grad_() for j in range(len(columns[0]))]
    adam_part = [j for j in range(len(params)) if j not in muon]
    muon_part = sorted(muon)
    first = groups[0]
    adam_group = {"b1": first["b1"], "b2": first["b2"], "bias_correction": first.get("bias_correction", True),
                  "zero_init": first.get("zero_init", True)}
    adam = StackedAdam([params[j] for j in adam_part], [[run[j] for j in adam_part] for run in rates], adam_group)
    stacked_muon = StackedMuon([params[j] for j in muon_part], [[run[j] for j in muon_part] for run in rates],
                               groups[0]) if muon_part else None
    return params, StackedOptimizer(adam, adam_part, stacked_muon, muon_part)


def sweep_width(hiddens, lrs, seeds, optimizer, *, steps, batch_size, data, valid, device, mlp=MLP) -> np.ndarray:
    """Validation losses (mean of the last 5) of every (seed, lr) run of one
    architecture, shape [len(seeds), len(lrs)], trained as one batched model; each seed's
    initial weights are ``mlp(hidden_sizes=hiddens)``'s (``supports_model(mlp)`` must hold)."""
    (images, labels), (valid_images, valid_labels) = data, valid
    images, valid_images = images.reshape(len(images), -1), valid_images.reshape(len(valid_images), -1)
    # A pixel that is 0 in every training image adds 0 to every product and gets a zero gradient,
    # so Adam never moves its weights (u = 0 / (0 + eps) = 0): the stacked model leaves it out
    # (16% of the pixels in the offline subset).
    used = images.ne(0).any(0) | valid_images.ne(0).any(0)
    images, valid_images = images[:, used].to(device), valid_images[:, used].to(device)
    labels = labels.to(device)
    runs = [(s, k) for s in range(len(seeds)) for k in range(len(lrs))]
    inits = []
    for seed in seeds:  # the same init as experiments.build_model: CPU, fixed seed
        torch.manual_seed(seed)
        model = mlp(hidden_sizes=tuple(hiddens))
        if not plain_mlp(model):
            raise ValueError(f"sweep_width: {type(model).__name__} does not compute the course MLP's forward pass")
        inits.append(list(model.parameters()))
    params, stepper = stack_runs([inits[s] for s, _ in runs],
                                 [functools.partial(optimizer, lr=lrs[k]) for _, k in runs], used, device)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    flat_valid = [valid_images] * len(seeds)
    valid_targets = valid_labels.to(device).expand(len(runs), -1)
    per_seed = len(lrs)
    losses = []
    for step_index in range(steps):
        indices = [torch.randint(0, len(images), (batch_size,), generator=g).to(device) for g in generators]
        inputs = [images[index] for index in indices]
        targets = torch.cat([labels[index].expand(per_seed, -1) for index in indices])
        loss = mean_cross_entropy(batched_forward(params, inputs), targets)
        stepper.step(torch.autograd.grad(loss.sum(), params))
        if step_index >= steps - 5:  # the protocol reports the mean of the last 5 validation losses
            with torch.no_grad():
                losses.append(mean_cross_entropy(batched_forward(params, flat_valid), valid_targets))
    last5 = torch.stack(losses).mean(0)
    return to_numpy(last5).reshape(len(seeds), len(lrs))
