"""The course MLP, its per-layer-multiplier twin (homework part d: the multipliers, the
initial weights and the scaled layer output are ``helpers.mup_multipliers``) and the MLP whose
readout starts as Tensor Programs V's muP starts it (``TP5MLP``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from helpers import mup_multipliers as multipliers_rule

# The readout width at which TP5's muP readout (TP5MLP's init, SimpleAdamMuP(readout="tp5")'s rate)
# is the course's: standard init and the rate output_lr. muP fixes how the readout scales with width,
# not its size at one width; this anchor is the narrowest width of notebook 12's coordinate check and
# inside notebook 05's sweep.
TP5_BASE_WIDTH = 64


def _check_sizes(input_size: int, hidden_sizes: Sequence[int], num_classes: int) -> tuple[int, ...]:
    if isinstance(hidden_sizes, (int, str)) or not isinstance(hidden_sizes, Sequence):
        raise TypeError(f"hidden_sizes must be a sequence of layer widths, e.g. (64, 64, 64), not {hidden_sizes!r}.")
    sizes = tuple(hidden_sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"hidden_sizes={sizes!r}: the course MLP needs at least two hidden layers, because the activations "
            "it reports start after the first hidden layer (with one layer there would be none to measure)."
        )
    for name, value in [("input_size", input_size), ("num_classes", num_classes)] + [
        (f"hidden_sizes[{i}]", w) for i, w in enumerate(sizes)
    ]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: every width must be a positive integer.")
    return sizes


class MLP(nn.Module):
    """Sigmoid MLP ``input -> hidden_sizes... -> num_classes`` with default
    PyTorch (Kaiming-uniform) init.

    ``forward`` returns ``(logits, activations)``; ``activations`` are the detached
    sigmoid outputs of every hidden layer *except the first* (the course's
    ``activations[1:]``), so the k-th one has width ``hidden_sizes[k+1]`` and is
    produced by a layer with fan-in ``hidden_sizes[k]``.
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_sizes: Sequence[int] = (8, 16, 32, 64, 128),
        num_classes: int = 10,
        bias: bool = True,
    ):
        super().__init__()
        self.hidden_sizes = _check_sizes(input_size, hidden_sizes, num_classes)
        widths = (input_size, *self.hidden_sizes, num_classes)
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(widths[:-1], widths[1:]))

    def layer_output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation of layer ``index``; ScaledMLP multiplies it by a constant."""
        return self.layers[index](x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = x.reshape(x.shape[0], -1)
        activations = []
        for index in range(len(self.layers) - 1):
            x = torch.sigmoid(self.layer_output(index, x))
            activations.append(x.detach())
        return self.layer_output(len(self.layers) - 1, x), activations[1:]


class ScaledMLP(MLP):
    """muP by changing the network instead of the optimizer (part d).

    Layer ``l`` computes ``c_l * (W_l x)`` with ``c_l`` from :func:`mup_multipliers`. At
    init the network must compute the same function as the bias-free :class:`MLP` built
    under the same seed (notebook 04 asks what that takes). ``output_mult`` is the
    readout's multiplier (1 by default).
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_sizes: Sequence[int] = (8, 16, 32, 64, 128),
        num_classes: int = 10,
        input_mult: float = 10.0,
        output_mult: float = 1.0,
    ):
        super().__init__(input_size, hidden_sizes, num_classes, bias=False)
        for name, value in (("input_mult", input_mult), ("output_mult", output_mult)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
        self.multipliers = multipliers_rule.mup_multipliers(input_size, self.hidden_sizes, input_mult, output_mult)
        with torch.no_grad():
            for layer, multiplier in zip(self.layers, self.multipliers):
                layer.weight.copy_(multipliers_rule.initial_weight(layer.weight.clone(), multiplier))

    def layer_output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return multipliers_rule.layer_output(self.multipliers[index], self.layers[index], x)

    def effective_weights(self) -> list[torch.Tensor]:
        """``c_l * W_l`` for every layer: the weights of the equivalent plain MLP."""
        return [m * layer.weight.detach() for m, layer in zip(self.multipliers, self.layers)]


class TP5MLP(MLP):
    """The course MLP with the readout initialised as in Tensor Programs V's muP (Yang et al. 2022,
    Table 3: the output weights' initial variance scales as ``1 / n^2``, where ``n`` is the readout's
    fan-in, the width of the last hidden layer; the course MLP's standard init has variance
    ``1 / (3 n)``).

    Built as :class:`MLP` under the same seed (the same random numbers), then the readout's weights
    are multiplied by ``sqrt(base_width / n)``: variance ``base_width / (3 n^2)``, which is the
    standard init at ``n = base_width``. Every other parameter, and the forward pass, are
    :class:`MLP`'s. Train it with ``SimpleAdamMuP(readout="tp5")`` (the same ``base_width``), whose
    readout rate scales to match: together they are TP5's muP for Adam."""

    def __init__(
        self,
        input_size: int = 784,
        hidden_sizes: Sequence[int] = (8, 16, 32, 64, 128),
        num_classes: int = 10,
        bias: bool = True,
        base_width: int = TP5_BASE_WIDTH,
    ):
        super().__init__(input_size, hidden_sizes, num_classes, bias=bias)
        if isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1:
            raise ValueError(f"base_width={base_width!r}: must be a positive integer (a width).")
        self.base_width = base_width
        with torch.no_grad():
            self.layers[-1].weight.mul_(math.sqrt(base_width / self.hidden_sizes[-1]))
