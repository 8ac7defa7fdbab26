"""All learning rates (and seeds) of one width trained as one batched model.

In the course protocol every learning rate of a width starts from the same
initial weights (per seed) and sees the same batches, so the runs differ only in
their step sizes. Stacking the N = seeds x lrs copies of every parameter along a
leading axis, one batched forward/backward (``torch.baddbmm``) gives each copy
exactly its own gradient (the summed loss separates), and Adam's update is
elementwise, so one batched update with a per-copy learning rate reproduces the
N separate runs up to float rounding. Used by ``experiments.lr_sweep``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers.device import to_numpy
from helpers.models import MLP
from helpers.optimizers import SimpleAdam, adam_direction


def supports(optimizer) -> bool:
    """True when ``optimizer`` builds a SimpleAdam-family optimizer whose step is
    the plain ``adam_direction`` with ``layer_lr`` (SimpleAdam, SimpleAdamMuP,
    partials of them); anything else runs one model at a time."""
    probe = optimizer(MLP(input_size=3, hidden_sizes=(2, 2), num_classes=2).parameters(), lr=0.1)
    return (isinstance(probe, SimpleAdam) and type(probe).update_parameter is SimpleAdam.update_parameter
            and probe.defaults["bias_correction"] and probe.defaults["zero_init"])


def _batched_forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Course MLP forward for N stacked models: ``x`` [N, B, d_in] -> logits [N, B, classes]."""
    layers = len(params) // 2
    for index in range(layers):
        weight, bias = params[2 * index], params[2 * index + 1]
        x = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
        if index < layers - 1:
            x = torch.sigmoid(x)
    return x


def sweep_width(hiddens, lrs, seeds, optimizer, *, steps, batch_size, data, valid, device) -> np.ndarray:
    """Validation losses (mean of the last 5) of every (seed, lr) run of one
    architecture, shape [len(seeds), len(lrs)], trained as one batched model."""
    (images, labels), (valid_images, valid_labels) = data, valid
    runs = [(s, k) for s in range(len(seeds)) for k in range(len(lrs))]
    inits = []
    for seed in seeds:  # the same init as experiments._build: CPU, fixed seed
        torch.manual_seed(seed)
        inits.append(list(MLP(hidden_sizes=tuple(hiddens)).parameters()))
    # The per-parameter learning rate of every run, read off the optimizer itself.
    rates, betas = [], set()
    for s, k in runs:
        opt = optimizer(inits[s], lr=lrs[k])
        group = opt.param_groups[0]
        betas.add((group["b1"], group["b2"]))
        rates.append([opt.layer_lr(g, p) for g in opt.param_groups for p in g["params"]])
    if len(betas) != 1 or len(opt.param_groups) != 1:
        raise ValueError("the batched sweep needs one param group and the same betas for every run")
    b1, b2 = betas.pop()
    rates = torch.tensor(rates, dtype=torch.float32, device=device)  # [N, n_params]
    params = [torch.stack([inits[s][j].detach() for s, _ in runs]).to(device).requires_grad_()
              for j in range(len(inits[0]))]
    states = [{} for _ in params]
    run_seed = torch.tensor([s for s, _ in runs])
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    flat_valid = valid_images.reshape(1, len(valid_images), -1).to(device).expand(len(runs), -1, -1)
    valid_targets = valid_labels.to(device).repeat(len(runs))
    losses = []
    for step_index in range(steps):
        index = torch.stack([torch.randint(0, len(images), (batch_size,), generator=g) for g in generators])
        x = images[index].reshape(len(seeds), batch_size, -1)[run_seed].to(device)
        y = labels[index][run_seed].to(device)
        logits = _batched_forward(params, x)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        grads = torch.autograd.grad(loss.view(len(runs), batch_size).mean(1).sum(), params)
        with torch.no_grad():
            for j, (p, g) in enumerate(zip(params, grads)):
                step = adam_direction(states[j], g, b1, b2)
                p.sub_(rates[:, j].view(-1, *([1] * (p.ndim - 1))) * step)
            if step_index >= steps - 5:  # the protocol reports the mean of the last 5 validation losses
                logits = _batched_forward(params, flat_valid)
                valid_loss = nn.functional.cross_entropy(logits.flatten(0, 1), valid_targets, reduction="none")
                losses.append(valid_loss.view(len(runs), -1).mean(1))
    last5 = torch.stack(losses).mean(0)
    return to_numpy(last5).reshape(len(seeds), len(lrs))
