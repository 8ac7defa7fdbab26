"""The course MLP and its per-layer-multiplier twin (homework part d)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


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


def mup_multipliers(input_size: int, hidden_sizes: Sequence[int], input_mult: float = 10.0,
                    output_mult: float = 1.0) -> tuple[float, ...]:
    """One output multiplier ``c_l`` per layer, input layer first, readout last (part d).

    Chosen so that plain SimpleAdam at a global learning rate ``lr`` on :class:`ScaledMLP`
    moves the effective weights ``c_l * W_l`` as SimpleAdamMuP at ``lr`` moves the plain
    MLP's weights (its ``input_mult`` included). The readout's multiplier is ``output_mult``:
    notebook 04 asks which value makes whole training runs match."""
    ### BEGIN SOLUTION
    # Under Adam, multiplying a layer's output by c moves its effective weight c * W by c * lr * u:
    # c acts as a learning-rate factor, so c_l is muP's factor, input_mult / fan_in for the input
    # layer and 1 / fan_in for the hidden layers.
    hidden_fan_ins = hidden_sizes[:-1]  # the readout's fan-in, hidden_sizes[-1], belongs to output_mult
    return (input_mult / input_size, *(1.0 / f for f in hidden_fan_ins), float(output_mult))
    ### END SOLUTION


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
        self.multipliers = mup_multipliers(input_size, self.hidden_sizes, input_mult, output_mult)
        with torch.no_grad():
            ### BEGIN SOLUTION
            # The effective weight c_l * W_l must start at the plain MLP's weight: store W_init / c_l.
            for layer, multiplier in zip(self.layers, self.multipliers):
                layer.weight.div_(multiplier)
            ### END SOLUTION

    def layer_output(self, index: int, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.multipliers[index] * self.layers[index](x)
        ### END SOLUTION

    def effective_weights(self) -> list[torch.Tensor]:
        """``c_l * W_l`` for every layer: the weights of the equivalent plain MLP."""
        return [m * layer.weight.detach() for m, layer in zip(self.multipliers, self.layers)]
