"""Part c (notebook 03): muP by one learning rate per layer.

``layer_lr`` is the rule :class:`helpers.optimizers.SimpleAdamMuP` applies to every
parameter it updates; the optimizer looks it up here at each step, so an edit of this file
is what the next cell runs. Plain functions only (see ``helpers.editable``).
"""

from __future__ import annotations

ROLES = ("input", "hidden", "output", "bias")


def layer_lr(role: str, shape: tuple[int, ...], lr: float, *, input_mult: float, bias_mult: float,
             output_lr: float) -> float:
    """The learning rate of one parameter under muP.

    * ``role``: "input" (the first weight matrix), "hidden", "output" (the readout) or "bias";
    * ``shape``: the parameter's shape as PyTorch stores it (``tuple(p.shape)``): a weight
      matrix of ``nn.Linear`` is ``(out_features, in_features)``, a bias ``(out_features,)``;
    * ``lr``: the one global learning rate; ``input_mult``, ``bias_mult`` and ``output_lr``:
      the handout's settings for the input layer, the biases and the readout.

    Hidden weights get the rate that makes one step move every layer's output by the same
    amount at any width (what grows with width? notebooks 01 and 02 measured it); the input
    layer gets the hidden rule times ``input_mult``; the readout the fixed ``output_lr``;
    a bias ``lr * bias_mult``.
    """
    ### BEGIN SOLUTION
    if role == "output":
        return output_lr
    if role == "bias":
        return lr * bias_mult
    fan_in = shape[1]  # nn.Linear stores (fan_out, fan_in)
    if role == "input":
        return lr * input_mult / fan_in
    return lr / fan_in
    ### END SOLUTION
