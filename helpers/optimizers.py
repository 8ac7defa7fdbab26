"""The course optimizers, written out so each line is one idea.

* ``SimpleAdam``: bias-corrected Adam, ``u = m_hat / (sqrt(v_hat) + 1e-16)``,
  ``W <- W - lr * u``. On the first step ``m_hat = g`` and ``v_hat = g**2``, so
  the update is exactly ``-lr * sign(g)``.
* ``SimpleAdamMuP``: the same direction with a learning rate per layer (muP).
* ``SimpleShampoo`` / ``ScaledSimpleShampoo``: Shampoo without accumulation,
  i.e. the momentum orthogonalised to ``U V^T``.

A ``torch.nn.Linear`` stores its weight as ``(fan_out, fan_in)``: ``p.shape`` is
``(d_out, d_in)``, *not* ``(d_in, d_out)``.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch.optim import Optimizer

ADAM_EPS = 1e-16
ROLES = ("input", "hidden", "output", "bias")


def check_positive(name: str, value) -> float:
    """Return ``value`` as a float, or raise ValueError unless it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def _check_beta(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}.")
    return float(value)


def _check_matrix_or_vector(optimizer: str, params) -> None:
    for index, p in enumerate(params):
        if p.ndim not in (1, 2):
            raise ValueError(
                f"{optimizer} handles weight matrices (2-D) and bias vectors (1-D), but parameter {index} has "
                f"shape {tuple(p.shape)}. Flatten it to a matrix (fan_out, fan_in) or give it to SimpleAdam."
            )


def fan_out_fan_in(p: torch.Tensor) -> tuple[int, int]:
    """``(fan_out, fan_in)`` of a parameter; a bias of length d is a (d, 1) matrix."""
    return (p.shape[0], p.shape[1]) if p.ndim == 2 else (p.shape[0], 1)


def adam_direction(state: dict, grad: torch.Tensor, b1: float, b2: float) -> torch.Tensor:
    """Advance Adam's moments in ``state`` by ``grad`` and return ``m_hat / (sqrt(v_hat) + eps)``."""
    if not state:
        state["step"] = 0
        state["momentum"] = torch.zeros_like(grad)
        state["variance"] = torch.zeros_like(grad)
    state["step"] += 1
    state["momentum"].lerp_(grad, 1 - b1)
    state["variance"].lerp_(grad.square(), 1 - b2)
    m_hat = state["momentum"] / (1 - b1 ** state["step"])
    v_hat = state["variance"] / (1 - b2 ** state["step"])
    return m_hat / (v_hat.sqrt() + ADAM_EPS)


class SimpleAdam(Optimizer):
    """Adam as taught: ``m = lerp(m, g, 1-b1)``, ``v = lerp(v, g^2, 1-b2)``,
    bias correction, ``W <- W - lr * m_hat / (sqrt(v_hat) + 1e-16)``."""

    def __init__(self, params, lr: float = 0.1, b1: float = 0.9, b2: float = 0.999):
        defaults = dict(lr=check_positive("lr", lr), b1=_check_beta("b1", b1), b2=_check_beta("b2", b2))
        super().__init__(params, defaults)

    def layer_lr(self, group: dict, p: torch.Tensor) -> float:
        """The learning rate for ``p``; SimpleAdamMuP overrides this."""
        return group["lr"]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = adam_direction(self.state[p], p.grad, group["b1"], group["b2"])
                p.add_(update, alpha=-self.layer_lr(group, p))
        return loss


class SimpleAdamMuP(SimpleAdam):
    """Adam with muP per-layer learning rates.

    With ``(fan_out, fan_in) = p.shape``:

    * hidden weights: ``lr / fan_in`` (Adam's update has entries of size ~lr, so
      ``dW x`` sums ``fan_in`` aligned terms; dividing by fan_in keeps the change
      of the layer's output O(lr) at any width);
    * input weights: ``lr * input_mult / fan_in`` (the raw image is not a
      sigmoid feature: the course's fudge factor of 10);
    * readout weights: the fixed ``output_lr``, independent of ``lr``;
    * biases, treated as (d_out, 1) matrices (fan_in 1): ``lr * bias_mult``.

    The input and readout layers are the first and last 2-D parameters, in the
    order given; or name them with param groups that carry
    ``role`` in {"input", "hidden", "output", "bias"}.
    """

    def __init__(
        self,
        params,
        lr: float = 0.1,
        b1: float = 0.9,
        b2: float = 0.999,
        input_mult: float = 10.0,
        bias_mult: float = 0.01,
        output_lr: float = 0.003,
    ):
        super().__init__(params, lr=lr, b1=b1, b2=b2)
        self.input_mult = check_positive("input_mult", input_mult)
        self.bias_mult = check_positive("bias_mult", bias_mult)
        self.output_lr = check_positive("output_lr", output_lr)
        all_params = [p for group in self.param_groups for p in group["params"]]
        _check_matrix_or_vector("SimpleAdamMuP", all_params)
        self.roles = self._assign_roles(all_params)

    def _assign_roles(self, all_params) -> dict[int, str]:
        roles = {}
        for group in self.param_groups:
            role = group.get("role")
            if role is not None and role not in ROLES:
                raise ValueError(f"Unknown param-group role {role!r}; use one of {ROLES}.")
            for p in group["params"]:
                if role is not None:
                    roles[id(p)] = role
        matrices = [p for p in all_params if p.ndim == 2 and id(p) not in roles]
        for p in all_params:
            if id(p) in roles:
                continue
            if p.ndim == 1:
                roles[id(p)] = "bias"
            elif p is matrices[0]:
                roles[id(p)] = "input"
            elif p is matrices[-1]:
                roles[id(p)] = "output"
            else:
                roles[id(p)] = "hidden"
        return roles

    def layer_lr(self, group: dict, p: torch.Tensor) -> float:
        role = self.roles[id(p)]
        fan_in = fan_out_fan_in(p)[1]
        if role == "output":
            return self.output_lr
        if role == "bias":
            return group["lr"] * self.bias_mult
        if role == "input":
            return group["lr"] * self.input_mult / fan_in
        return group["lr"] / fan_in


def orthogonalize_svd(m: torch.Tensor) -> torch.Tensor:
    """``U V^T`` from the reduced SVD ``m = U diag(s) V^T``: every singular value
    set to 1. Directions with singular value 0 (a batch of 64 gives a 256x256
    gradient rank <= 64) get arbitrary orthonormal vectors, which Newton-Schulz
    would instead leave at 0."""
    source = m.cpu() if m.device.type == "mps" else m  # linalg.svd is not implemented on MPS
    u, _, vh = torch.linalg.svd(source.float(), full_matrices=False)
    return (u @ vh).to(device=m.device, dtype=m.dtype)


class SimpleShampoo(Optimizer):
    """Shampoo without accumulation: momentum ``m = lerp(m, g, 1-b1)``, then for
    a weight matrix ``W <- W - lr * U V^T`` where ``m = U S V^T``; a bias takes
    ``W <- W - lr * m``. ``U V^T`` has spectral norm 1, so every layer's update
    has spectral norm exactly lr and Frobenius norm ``lr * sqrt(min(fan_out, fan_in))``."""

    def __init__(self, params, lr: float = 0.1, b1: float = 0.9):
        super().__init__(params, dict(lr=check_positive("lr", lr), b1=_check_beta("b1", b1)))
        _check_matrix_or_vector(type(self).__name__, [p for g in self.param_groups for p in g["params"]])

    def shape_scale(self, p: torch.Tensor) -> float:
        """Factor applied to ``U V^T``; 1 here, ``sqrt(fan_out/fan_in)`` in ScaledSimpleShampoo."""
        return 1.0

    def matrix_update(self, m: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The update direction for a weight matrix with momentum ``m``."""
        return orthogonalize_svd(m) * self.shape_scale(p)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # create every piece of state this step reads
                    state["step"] = 0
                    state["momentum"] = torch.zeros_like(p)
                state["step"] += 1
                m = state["momentum"].lerp_(p.grad, 1 - group["b1"])
                update = m if p.ndim == 1 else self.matrix_update(m, p)
                p.add_(update, alpha=-group["lr"])
        return loss


class ScaledSimpleShampoo(SimpleShampoo):
    """Shampoo whose matrix update is ``sqrt(fan_out / fan_in) * U V^T`` (the bonus).

    ``||A||_{RMS->RMS} = sqrt(fan_in / fan_out) * ||A||_2`` and ``||U V^T||_2 = 1``,
    so every layer's update has RMS->RMS norm exactly lr, whatever its shape.
    Scaling by ``1/RMS(U V^T)`` or ``1/||U V^T||_F`` instead equalises an entrywise
    size, not the operator norm that sets the change in the layer's output."""

    def shape_scale(self, p: torch.Tensor) -> float:
        fan_out, fan_in = fan_out_fan_in(p)
        return math.sqrt(fan_out / fan_in)
