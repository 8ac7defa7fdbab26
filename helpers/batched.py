"""All learning rates (and seeds) of one width trained as one batched model.

In the course protocol every learning rate of a width starts from the same
initial weights (per seed) and sees the same batches, so the runs differ only in
their step sizes. Stacking the N = seeds x lrs copies of every parameter along a
leading axis, one batched forward/backward gives each copy exactly its own
gradient (the summed loss separates: d(sum_r L_r)/dW_r = dL_r/dW_r), and Adam's
update is elementwise, so one batched update with a per-copy learning rate
reproduces the N separate runs up to float rounding. Used by
``experiments.lr_sweep``. Muon's update is per run as well (its own momentum, one
Newton-Schulz per run's matrix, through ``torch.func.vmap``): ``sweep_muon``, used by
``experiments.muon_lr_sweep``.

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
matrix products as the loop, minus the validation passes (make bench).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.optim.adam import adam

from helpers.device import to_numpy
from helpers.models import MLP
from helpers.optimizers import ADAM_EPS, QUINTIC, SimpleAdam, muon_shape_scale, newton_schulz

# With the step count this large, beta**t underflows to 0, so Adam's bias correction
# 1 - beta**t is exactly 1: bias_correction=False without a second code path.
_NO_BIAS_CORRECTION_STEP = 1e9


def supports(optimizer) -> bool:
    """True when ``optimizer`` builds a SimpleAdam-family optimizer whose step is
    the plain ``adam_direction`` with ``layer_lr`` (SimpleAdam with any switches,
    SimpleAdamMuP, partials of them); anything else runs one model at a time."""
    probe = optimizer(MLP(input_size=3, hidden_sizes=(2, 2), num_classes=2).parameters(), lr=0.1)
    return isinstance(probe, SimpleAdam) and type(probe).update_parameter is SimpleAdam.update_parameter


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


def _forward(params: list[torch.Tensor], inputs: list[torch.Tensor]) -> torch.Tensor:
    """Course MLP forward for N stacked models: ``len(inputs)`` seeds of
    ``N / len(inputs)`` runs each, ``inputs[s]`` seed s's batch [B, d_in].
    Returns per-run cross-entropy inputs: logits [N, classes, B].

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
        weight, bias = params[2 * index], params[2 * index + 1]
        x = torch.baddbmm(bias.unsqueeze(2), weight, x)
        if index < layers - 1:
            x = torch.sigmoid(x)
    return x


def _mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-run mean cross-entropy: logits [N, classes, B], targets [N, B] -> [N]."""
    return nn.functional.cross_entropy(logits, targets, reduction="none").mean(1)


def _used_pixels(data, valid, device):
    """The images of ``data`` and ``valid`` flattened, on ``device``, without the pixels that
    are 0 in every image, and the mask of the pixels kept."""
    (images, labels), (valid_images, valid_labels) = data, valid
    images, valid_images = images.reshape(len(images), -1), valid_images.reshape(len(valid_images), -1)
    # A pixel that is 0 in every training image adds 0 to every product and gets a zero gradient,
    # so Adam never moves its weights (u = 0 / (0 + eps) = 0): the stacked model leaves it out
    # (16% of the pixels in the offline subset).
    used = images.ne(0).any(0) | valid_images.ne(0).any(0)
    return (images[:, used].to(device), labels.to(device)), (valid_images[:, used].to(device), valid_labels), used


def _initial_weights(hiddens, seeds) -> list[list[torch.Tensor]]:
    """The parameters of the course MLP for each seed: the same init as experiments._build (CPU, fixed seed)."""
    inits = []
    for seed in seeds:
        torch.manual_seed(seed)
        inits.append(list(MLP(hidden_sizes=tuple(hiddens)).parameters()))
    return inits


def _train_stacked(params, update, runs, seeds, per_seed, *, data, valid, steps, batch_size, device,
                   curves=False) -> np.ndarray:
    """Train the stacked runs (``runs`` = [(seed index, lr index)], seed-major) ``steps`` steps
    on each seed's batches, ``update(grads)`` after every backward pass. Returns each run's
    validation loss, the mean of the last 5 steps [N] or, with ``curves``, every step [N, steps]."""
    (images, labels), (valid_images, valid_labels) = data, valid
    inputs_per_seed = [valid_images] * len(seeds)
    valid_targets = valid_labels.to(device).expand(len(runs), -1)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    losses = []
    for step_index in range(steps):
        indices = [torch.randint(0, len(images), (batch_size,), generator=g).to(device) for g in generators]
        inputs = [images[index] for index in indices]
        targets = torch.cat([labels[index].expand(per_seed, -1) for index in indices])
        loss = _mean_cross_entropy(_forward(params, inputs), targets)
        update(torch.autograd.grad(loss.sum(), params))
        if curves or step_index >= steps - 5:  # the protocol reports the mean of the last 5 validation losses
            with torch.no_grad():
                losses.append(_mean_cross_entropy(_forward(params, inputs_per_seed), valid_targets))
    if curves:
        return to_numpy(torch.stack(losses, 1))
    return to_numpy(torch.stack(losses).mean(0))


def _stack(inits, runs, used, device) -> list[torch.Tensor]:
    """One leaf tensor per parameter, the runs' copies stacked along dim 0 (the first layer on the used pixels)."""
    for init in inits:
        init[0] = init[0][:, used]
    return [torch.stack([inits[s][j].detach() for s, _ in runs]).to(device).requires_grad_()
            for j in range(len(inits[0]))]


def sweep_width(hiddens, lrs, seeds, optimizer, *, steps, batch_size, data, valid, device) -> np.ndarray:
    """Validation losses (mean of the last 5) of every (seed, lr) run of one
    architecture, shape [len(seeds), len(lrs)], trained as one batched model."""
    data, valid, used = _used_pixels(data, valid, device)
    runs = [(s, k) for s in range(len(seeds)) for k in range(len(lrs))]
    inits = _initial_weights(hiddens, seeds)
    # The per-parameter learning rate of every run, read off the optimizer itself.
    rates, groups = [], []
    for s, k in runs:
        opt = optimizer(inits[s], lr=lrs[k])
        if len(opt.param_groups) != 1:
            raise ValueError("the batched sweep needs an optimizer with one param group")
        rates.append([opt.layer_lr(g, p) for g in opt.param_groups for p in g["params"]])
        groups.append({key: value for key, value in opt.param_groups[0].items() if key not in ("params", "lr")})
    if any(group != groups[0] for group in groups):
        raise ValueError("the batched sweep needs the same betas and switches for every run")
    params = _stack(inits, runs, used, device)
    adam = StackedAdam(params, rates, groups[0])
    losses = _train_stacked(params, adam.step, runs, seeds, len(lrs), data=data, valid=valid, steps=steps,
                            batch_size=batch_size, device=device)
    return losses.reshape(len(seeds), len(lrs))


# ---------------------------------------------------------------- Muon (notebook 08)
def batched_newton_schulz(G: torch.Tensor, steps: int, coefficients) -> torch.Tensor:
    """``optimizers.newton_schulz`` (the student's, notebook 07) applied to every matrix of a
    stack [N, rows, cols] at once, through ``torch.func.vmap``: batched matrix products."""
    return torch.func.vmap(lambda X: newton_schulz(X, steps=steps, coefficients=coefficients))(G)


class StackedMuon:
    """``MuonAdam``'s hidden-matrix update for N runs stacked along dim 0, run n
    with Muon learning rate ``lrs[n]``: momentum ``m <- lerp(m, g, 1 - mu)``, Nesterov
    direction ``lerp(g, m, mu)``, Newton-Schulz per run, the shape factor, then
    ``W <- W - lr * factor * NS(direction)``."""

    def __init__(self, params: list[torch.Tensor], lrs, group: dict):
        self.params = [p.detach() for p in params]
        self.momenta = [torch.zeros_like(p) for p in self.params]
        self.group = group
        lrs = torch.as_tensor(lrs, dtype=self.params[0].dtype, device=self.params[0].device).view(-1, 1, 1)
        self.rates = [lrs * muon_shape_scale(p.shape[1], p.shape[2], group["scale"]) for p in self.params]

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]) -> None:
        mu = self.group["momentum"]
        for p, m, g, rate in zip(self.params, self.momenta, grads, self.rates):
            m.lerp_(g, 1 - mu)
            direction = g.lerp(m, mu) if self.group["nesterov"] else m
            p.sub_(rate * batched_newton_schulz(direction, self.group["ns_steps"], QUINTIC))


def sweep_muon(hiddens, lrs, seeds, *, steps, batch_size, data, valid, device, scale="spectral", adam_lr=0.003,
               momentum=0.95, nesterov=True, ns_steps=5, b1=0.9, b2=0.999, curves=False) -> np.ndarray:
    """``MuonAdam`` (Muon with ``lrs`` on the hidden matrices, SimpleAdam with ``adam_lr``
    on the input layer, the readout and the biases) for every (seed, lr) run of one
    architecture, trained as one stacked model.

    Returns the validation losses, mean of the last 5, shape [len(seeds), len(lrs)];
    with ``curves=True`` the loss after every step, [len(seeds), len(lrs), steps]."""
    data, valid, used = _used_pixels(data, valid, device)  # as in sweep_width: Adam never moves the rest
    runs = [(s, k) for s in range(len(seeds)) for k in range(len(lrs))]
    params = _stack(_initial_weights(hiddens, seeds), runs, used, device)
    hidden = [2 * i for i in range(1, len(params) // 2 - 1)]  # the weights of layers 1 .. L-2
    others = [j for j in range(len(params)) if j not in hidden]
    adam = StackedAdam([params[j] for j in others], [[adam_lr] * len(others)] * len(runs),
                       dict(b1=b1, b2=b2, bias_correction=True, zero_init=True))
    muon = StackedMuon([params[j] for j in hidden], [lrs[k] for _, k in runs],
                       dict(momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, scale=scale))

    def update(grads):
        adam.step([grads[j] for j in others])
        muon.step([grads[j] for j in hidden])

    losses = _train_stacked(params, update, runs, seeds, len(lrs), data=data, valid=valid, steps=steps,
                            batch_size=batch_size, device=device, curves=curves)
    return losses.reshape(len(seeds), len(lrs), *losses.shape[1:])
