"""Part d (notebook 04): muP by per-layer multipliers instead of per-layer learning rates.

:class:`helpers.models.ScaledMLP` computes ``c_l * (W_l x)`` in layer ``l`` and calls the
three functions below (at construction and in every forward pass), looked up here each time,
so an edit is what the next cell runs. Plain functions only (see ``helpers.editable``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mup_multipliers(input_size: int, hidden_sizes: Sequence[int], input_mult: float = 10.0,
                    output_mult: float = 1.0) -> tuple[float, ...]:
    """One output multiplier ``c_l`` per layer, input layer first, readout last.

    Chosen so that plain SimpleAdam at a global learning rate ``lr`` on ``ScaledMLP``
    moves the effective weights ``c_l * W_l`` as SimpleAdamMuP at ``lr`` moves the plain
    MLP's weights (its ``input_mult`` included). The readout's multiplier is ``output_mult``:
    notebook 04 asks which value makes whole training runs match."""
    ### BEGIN SOLUTION
    # Under Adam, multiplying a layer's output by c moves its effective weight c * W by c * lr * u:
    # c acts as a learning-rate factor, so c_l is muP's factor, input_mult / fan_in for the input
    # layer and 1 / fan_in for the hidden layers.
    hidden_fan_ins = tuple(hidden_sizes)[:-1]  # the readout's fan-in, hidden_sizes[-1], belongs to output_mult
    return (input_mult / input_size, *(1.0 / f for f in hidden_fan_ins), float(output_mult))
    ### END SOLUTION


def initial_weight(weight: torch.Tensor, multiplier: float) -> torch.Tensor:
    """The weight ``ScaledMLP`` stores for a layer with output multiplier ``multiplier``, given
    ``weight``, the initial weight of the same layer of the plain (bias-free) MLP built under the
    same seed: at init the scaled network must compute the same function as the plain one."""
    ### BEGIN SOLUTION
    # the effective weight c * W must start at the plain MLP's weight
    return weight / multiplier
    ### END SOLUTION


def layer_output(multiplier: float, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """What a layer of ``ScaledMLP`` with output multiplier ``multiplier`` computes from ``x``."""
    ### BEGIN SOLUTION
    return multiplier * layer(x)
    ### END SOLUTION
