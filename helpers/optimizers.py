"""The course optimizers, written out so each line is one idea.

* ``SimpleAdam``: bias-corrected Adam, ``u = m_hat / (sqrt(v_hat) + 1e-16)``,
  ``W <- W - lr * u``. On the first step ``m_hat = g`` and ``v_hat = g**2``, so
  the update is exactly ``-lr * sign(g)``.
* ``SimpleAdamMuP``: the same direction with a learning rate per layer: the course's muP
  (hidden layers), or with ``readout="tp5"`` Tensor Programs V's muP (the readout too).
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

from helpers import mup_lr, orthogonal_updates
from helpers.models import TP5_BASE_WIDTH

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


def adam_moments(state: dict, grad: torch.Tensor, b1: float, b2: float, *, bias_correction: bool = True,
                 zero_init: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Advance Adam's moments in ``state`` by ``grad``; return ``(m_hat, v_hat)``.

    ``m <- lerp(m, g, 1-b1)``, ``v <- lerp(v, g^2, 1-b2)``, then ``m_hat = m / (1 - b1^t)``
    and ``v_hat = v / (1 - b2^t)``. ``zero_init=False`` starts the moments at the
    first gradient and its square instead of at zero; ``bias_correction=False``
    uses ``m`` and ``v`` as they are (the research notebook's ablation, 09)."""
    if not state:
        state["step"] = 0
        state["momentum"] = torch.zeros_like(grad) if zero_init else grad.clone()
        state["variance"] = torch.zeros_like(grad) if zero_init else grad.square()
    state["step"] += 1
    state["momentum"].lerp_(grad, 1 - b1)
    state["variance"].lerp_(grad.square(), 1 - b2)
    m_hat, v_hat = state["momentum"], state["variance"]
    if bias_correction:
        m_hat = m_hat / (1 - b1 ** state["step"])
        v_hat = v_hat / (1 - b2 ** state["step"])
    return m_hat, v_hat


def adam_direction(state: dict, grad: torch.Tensor, b1: float, b2: float, *, bias_correction: bool = True,
                   zero_init: bool = True) -> torch.Tensor:
    """Advance Adam's moments (``adam_moments``) and return ``m_hat / (sqrt(v_hat) + eps)``."""
    m_hat, v_hat = adam_moments(state, grad, b1, b2, bias_correction=bias_correction, zero_init=zero_init)
    return m_hat / (v_hat.sqrt() + ADAM_EPS)


class CourseOptimizer(Optimizer):
    """The loop every course optimizer shares: evaluate the closure if given,
    then ``update_parameter(p, group)`` for each parameter that has a gradient."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update_parameter(p, group)
        return loss

    def update_parameter(self, p: torch.Tensor, group: dict) -> None:
        raise NotImplementedError


class SimpleAdam(CourseOptimizer):
    """Adam as taught: ``m = lerp(m, g, 1-b1)``, ``v = lerp(v, g^2, 1-b2)``,
    bias correction, ``W <- W - lr * m_hat / (sqrt(v_hat) + 1e-16)``."""

    def __init__(self, params, lr: float = 0.1, b1: float = 0.9, b2: float = 0.999, bias_correction: bool = True,
                 zero_init: bool = True):
        defaults = dict(lr=check_positive("lr", lr), b1=_check_beta("b1", b1), b2=_check_beta("b2", b2),
                        bias_correction=bool(bias_correction), zero_init=bool(zero_init))
        super().__init__(params, defaults)

    def layer_lr(self, group: dict, p: torch.Tensor) -> float:
        """The learning rate for ``p``; SimpleAdamMuP overrides this."""
        return group["lr"]

    def update_parameter(self, p: torch.Tensor, group: dict) -> None:
        update = adam_direction(self.state[p], p.grad, group["b1"], group["b2"],
                                bias_correction=group["bias_correction"], zero_init=group["zero_init"])
        p.add_(update, alpha=-self.layer_lr(group, p))


class EpsilonScheduledAdam(SimpleAdam):
    """SimpleAdam whose epsilon changes with the step (notebook 10):
    ``W <- W - lr * m_hat / (sqrt(v_hat) + eps_t)``.

    ``eps_schedule(t, v_hat)`` gives ``eps_t`` for steps t = 1, 2, ...: a number, or
    a tensor shaped like the parameter (one epsilon per coordinate, which is what
    reproducing a learning-rate schedule takes: see ``helpers.schedules``)."""

    def __init__(self, params, lr: float = 0.01, b1: float = 0.9, b2: float = 0.999, *, eps_schedule):
        if not callable(eps_schedule):
            raise TypeError("eps_schedule must be a function (step, v_hat) -> epsilon, e.g. from helpers.schedules.")
        super().__init__(params, lr=lr, b1=b1, b2=b2)
        self.eps_schedule = eps_schedule

    def update_parameter(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        m_hat, v_hat = adam_moments(state, p.grad, group["b1"], group["b2"])
        eps = self.eps_schedule(state["step"], v_hat)
        p.add_(m_hat / (v_hat.sqrt() + eps), alpha=-self.layer_lr(group, p))


def assign_roles(param_groups: list[dict]) -> dict[int, str]:
    """Map ``id(p)`` to "input", "hidden", "output" or "bias".

    A group's explicit ``role`` wins. Otherwise a 1-D parameter is a bias, and among
    the remaining 2-D parameters (in the order given) the first is the input layer,
    the last the readout, and the rest hidden. No sizes (784, 10) are assumed."""
    all_params = [p for group in param_groups for p in group["params"]]
    roles = {}
    for group in param_groups:
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


class SimpleAdamMuP(SimpleAdam):
    """Adam with muP per-layer learning rates.

    With ``(fan_out, fan_in) = p.shape``:

    * hidden weights: the rate that makes one step move every layer's output by
      the same amount at any width (part c, notebook 03: what grows with width?);
    * input weights: the hidden layers' rule times ``input_mult`` (the course's
      fudge factor of 10: the raw image is not a sigmoid feature);
    * readout weights: the fixed ``output_lr``, independent of ``lr``
      (``readout="course"``, the default), or TP5's readout (``readout="tp5"``, below);
    * biases, treated as (d_out, 1) matrices (fan_in 1), times ``bias_mult``.

    ``readout="course"`` is the handout's rule, **the course's muP**: muP for the
    hidden layers (and the input layer), with a readout whose rate does not depend on the width.

    ``readout="tp5"`` is **TP5's muP for Adam** (Tensor Programs V, Yang et al. 2022,
    Table 3): the output weights' Adam learning rate scales as ``1 / n`` and their initial
    variance as ``1 / n^2``, where ``n`` is the readout's fan-in (the width of the last hidden
    layer). Here the readout's rate is ``output_lr * base_width / n`` (``output_lr`` at
    ``n = base_width``), and the matching init is :class:`helpers.models.TP5MLP`'s (the
    standard init times ``sqrt(base_width / n)``): build the model with it and the same
    ``base_width``. The other layers keep the rates above, which scale with width as Table 3's
    do for the input and hidden weights and the biases (as does the standard init of the input
    and hidden weights). (Table 3 also allows a zero-initialised readout; and since Adam's step
    does not change when a gradient is rescaled, an output multiplier ``base_width / n`` on a
    readout trained at ``output_lr`` gives its effective weights the same steps as this rate,
    the init then being set on the effective weights.)

    The input and readout layers are the first and last 2-D parameters, in the
    order given; or name them with param groups that carry
    ``role`` in {"input", "hidden", "output", "bias"}.
    """

    READOUTS = ("course", "tp5")

    def __init__(
        self,
        params,
        lr: float = 0.1,
        b1: float = 0.9,
        b2: float = 0.999,
        input_mult: float = 10.0,
        bias_mult: float = 0.01,
        output_lr: float = 0.003,
        readout: str = "course",
        base_width: int = TP5_BASE_WIDTH,
    ):
        super().__init__(params, lr=lr, b1=b1, b2=b2)
        self.input_mult = check_positive("input_mult", input_mult)
        self.bias_mult = check_positive("bias_mult", bias_mult)
        self.output_lr = check_positive("output_lr", output_lr)
        if readout not in self.READOUTS:
            raise ValueError(f"readout={readout!r}: use one of {self.READOUTS}.")
        self.readout = readout
        if isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1:
            raise ValueError(f"base_width={base_width!r}: must be a positive integer (a width).")
        self.base_width = base_width
        _check_matrix_or_vector("SimpleAdamMuP", [p for group in self.param_groups for p in group["params"]])
        self.roles = assign_roles(self.param_groups)

    def layer_lr(self, group: dict, p: torch.Tensor) -> float:
        """``helpers.mup_lr.layer_lr`` (part c) for ``p``, looked up at every step; with
        ``readout="tp5"``, the readout's rate times ``base_width / n`` (n: its fan-in)."""
        role = self.roles[id(p)]
        rate = mup_lr.layer_lr(role, tuple(p.shape), group["lr"], input_mult=self.input_mult,
                               bias_mult=self.bias_mult, output_lr=self.output_lr)
        if self.readout == "tp5" and role == "output":
            n = p.shape[1]  # nn.Linear stores (fan_out, fan_in): n, the last hidden width
            rate = rate * (self.base_width / n)  # exactly the course's rate at n = base_width
        return rate


class SimpleShampoo(CourseOptimizer):
    """Shampoo without accumulation: momentum ``m = lerp(m, g, 1-b1)``; a weight matrix moves by
    ``-lr * orthogonalize_svd(m) * shape_scale(p)`` (part e's direction, from
    ``helpers.orthogonal_updates``), a bias by ``-lr * m``. ``helpers.orthogonalization.RankShampoo``
    computes the direction as Shampoo's ``L^{-1/4} m R^{-1/4}`` does (notebook 06 compares them)."""

    def __init__(self, params, lr: float = 0.1, b1: float = 0.9):
        super().__init__(params, dict(lr=check_positive("lr", lr), b1=_check_beta("b1", b1)))
        _check_matrix_or_vector(type(self).__name__, [p for g in self.param_groups for p in g["params"]])

    def shape_scale(self, p: torch.Tensor) -> float:
        """Factor applied to the direction; 1 here, the bonus's shape factor in ScaledSimpleShampoo."""
        return 1.0

    def matrix_update(self, m: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The update direction for a weight matrix with momentum ``m``."""
        return orthogonal_updates.orthogonalize_svd(m) * self.shape_scale(p)

    def update_parameter(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        if not state:  # create every piece of state this step reads
            state["step"] = 0
            state["momentum"] = torch.zeros_like(p)
        state["step"] += 1
        m = state["momentum"].lerp_(p.grad, 1 - group["b1"])
        update = m if p.ndim == 1 else self.matrix_update(m, p)
        p.add_(update, alpha=-group["lr"])


class ScaledSimpleShampoo(SimpleShampoo):
    """SimpleShampoo whose matrix direction is multiplied by the bonus's shape factor
    (``helpers.orthogonal_updates.shampoo_shape_scale``, notebook 06)."""

    def shape_scale(self, p: torch.Tensor) -> float:
        """``helpers.orthogonal_updates.shampoo_shape_scale`` (the bonus) of ``p``'s shape."""
        return orthogonal_updates.shampoo_shape_scale(*fan_out_fan_in(p))


def validate_scale(scale: str) -> None:
    scales = orthogonal_updates.MUON_SCALES  # read at call time: the student's file may be mid-edit
    if scale not in scales:
        raise ValueError(f"Unknown Muon scale {scale!r}; use one of {scales}.")


def muon_update(state: dict, grad: torch.Tensor, group: dict) -> torch.Tensor:
    """Momentum, Newton-Schulz, shape scale: Muon's direction.

    ``m_t = mu m_{t-1} + (1 - mu) g_t`` (``mu = group["momentum"]``); with ``group["nesterov"]``
    (the course's default) the direction is ``(1 - mu) g_t + mu m_t``, else ``m_t`` (plain momentum).
    ``m_t`` is the plain form ``B_t = mu B_{t-1} + g_t`` times ``1 - mu``, a factor Newton-Schulz's
    normalisation removes (up to its ``eps``)."""
    if not state:
        state["momentum"] = torch.zeros_like(grad)
    buffer = state["momentum"].lerp_(grad, 1 - group["momentum"])
    direction = grad.lerp(buffer, group["momentum"]) if group["nesterov"] else buffer
    fan_out, fan_in = grad.shape
    return (orthogonal_updates.newton_schulz(direction, steps=group["ns_steps"])
            * orthogonal_updates.muon_shape_scale(fan_out, fan_in, group["scale"]))


class Muon(CourseOptimizer):
    """Muon for weight matrices: ``W <- W - lr * scale * NS(direction)``.

    Muon is often written with plain momentum, ``B_t = mu B_{t-1} + g_t``,
    ``W <- W - lr * NS(B_t)``. This class uses **Nesterov momentum by default**
    (``nesterov=True``): the direction is ``(1 - mu) g_t + mu m_t`` with
    ``m_t = mu m_{t-1} + (1 - mu) g_t`` (:func:`muon_update`); ``nesterov=False`` gives the plain
    form (``m_t`` is ``B_t`` times ``1 - mu``, which Newton-Schulz's normalisation removes). A choice
    of the course's code; notebook 08 measures both on its setup.

    Only 2-D parameters: give biases, the input layer and the readout to Adam
    (see ``MuonAdam`` / ``muon_param_groups``)."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True, ns_steps: int = 5,
                 scale: str = "spectral"):
        validate_scale(scale)
        defaults = dict(lr=check_positive("lr", lr), momentum=_check_beta("momentum", momentum),
                        nesterov=bool(nesterov), ns_steps=int(ns_steps), scale=scale)
        super().__init__(params, defaults)
        for index, p in enumerate(p for g in self.param_groups for p in g["params"]):
            if p.ndim != 2:
                raise ValueError(
                    f"Muon orthogonalises weight matrices, but parameter {index} has shape {tuple(p.shape)}. "
                    "Give biases (and the input and readout layers) to Adam: see helpers.optimizers.MuonAdam."
                )

    def update_parameter(self, p: torch.Tensor, group: dict) -> None:
        p.add_(muon_update(self.state[p], p.grad, group), alpha=-group["lr"])


def muon_param_groups(model: torch.nn.Module) -> list[dict]:
    """Param groups with roles, in model order: hidden weight matrices for Muon;
    the input layer (first matrix), the readout (last matrix) and all biases for Adam."""
    params = list(model.parameters())
    matrices = [p for p in params if p.ndim == 2]
    if len(matrices) < 2:
        raise ValueError("muon_param_groups needs a model with an input and a readout weight matrix.")
    hidden = [p for p in matrices[1:-1]]
    return [
        {"params": [matrices[0]], "role": "input"},
        {"params": hidden, "role": "hidden"},
        {"params": [matrices[-1]], "role": "output"},
        {"params": [p for p in params if p.ndim == 1], "role": "bias"},
    ]


class MuonAdam(CourseOptimizer):
    """Muon on the hidden weight matrices, SimpleAdam (``adam_lr``) on the input
    layer, the readout and the biases, as practitioners combine them.

    Takes ``model.parameters()`` (roles found by position, as in SimpleAdamMuP)
    or the groups of ``muon_param_groups``; ``lr`` is Muon's learning rate. Its Muon part uses
    Nesterov momentum by default, as :class:`Muon` does (``nesterov=False``: plain momentum)."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True, ns_steps: int = 5,
                 scale: str = "spectral", adam_lr: float = 0.003, b1: float = 0.9, b2: float = 0.999):
        validate_scale(scale)
        defaults = dict(lr=check_positive("lr", lr), momentum=_check_beta("momentum", momentum),
                        nesterov=bool(nesterov), ns_steps=int(ns_steps), scale=scale,
                        adam_lr=check_positive("adam_lr", adam_lr), b1=_check_beta("b1", b1), b2=_check_beta("b2", b2))
        super().__init__(params, defaults)
        _check_matrix_or_vector("MuonAdam", [p for g in self.param_groups for p in g["params"]])
        self.roles = assign_roles(self.param_groups)

    def update_parameter(self, p: torch.Tensor, group: dict) -> None:
        if self.roles[id(p)] == "hidden":
            p.add_(muon_update(self.state[p], p.grad, group), alpha=-group["lr"])
        else:
            p.add_(adam_direction(self.state[p], p.grad, group["b1"], group["b2"]), alpha=-group["adam_lr"])
