"""The course MLP and its per-layer-multiplier twin (homework part d: the multipliers, the
initial weights and the scaled layer output are ``helpers.mup_multipliers``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from helpers import mup_multipliers as multipliers_rule


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
