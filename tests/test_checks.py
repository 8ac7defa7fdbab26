"""Every self-check passes the reference solution and fails each classic wrong
answer from shared/seeds/ with its specific hint."""

import math

import pytest
import torch

from helpers import checks, norms
from helpers.models import MLP, ScaledMLP
from helpers.optimizers import (
    ScaledSimpleShampoo,
    SimpleAdamMuP,
    SimpleShampoo,
    newton_schulz,
    orthogonalize_svd,
)


# part b
def reference_norms(A):
    return dict(frobenius=norms.frobenius_norm(A), spectral=norms.spectral_norm(A), rms_to_rms=norms.rms_to_rms_norm(A))


# part c
class SwappedSqrtProductMuP(SimpleAdamMuP):
    """The worked answer's hidden rule: 1/sqrt(d_in * d_out) with d_in, d_out = p.shape."""

    def layer_lr(self, group, p):
        if self.roles[id(p)] != "hidden":
            return super().layer_lr(group, p)
        d_in, d_out = p.shape
        return group["lr"] / math.sqrt(d_in * d_out)


class SqrtFanInMuP(SimpleAdamMuP):
    """The worked answer's other rule: lr * sqrt(d_in) with d_in, d_out = p.shape."""

    def layer_lr(self, group, p):
        if self.roles[id(p)] != "hidden":
            return super().layer_lr(group, p)
        d_in, d_out = p.shape
        return group["lr"] * math.sqrt(d_in)


class MagicSizeMuP(SimpleAdamMuP):
    """Finds the readout by its size 10 instead of by position."""

    def layer_lr(self, group, p):
        if p.ndim == 2 and p.shape[0] == 10:
            return self.output_lr
        if p.ndim == 2 and self.roles[id(p)] == "output":
            return group["lr"] / p.shape[1]
        return super().layer_lr(group, p)


# part d
class OutFeaturesScaledMLP(MLP):
    """The worked answer: multiply by 1/sqrt(out_features), no init compensation."""

    def __init__(self, input_size=784, hidden_sizes=(8, 16), num_classes=10):
        super().__init__(input_size, hidden_sizes, num_classes, bias=False)

    def layer_output(self, index, x):
        return self.layers[index](x) / math.sqrt(self.layers[index].weight.shape[0])


class CompensatedWrongMultiplier(OutFeaturesScaledMLP):
    """Init compensated, but the multiplier is still 1/sqrt(out_features)."""

    def __init__(self, input_size=784, hidden_sizes=(8, 16), num_classes=10):
        super().__init__(input_size, hidden_sizes, num_classes)
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.mul_(math.sqrt(layer.weight.shape[0]))


# part e: Shampoo
class PrecondShampoo(SimpleShampoo):
    """Reads state['precond'] that it never created (the seed's KeyError)."""

    def matrix_update(self, m, p):
        return self.state[p]["precond"][0] @ m


class AscentShampoo(SimpleShampoo):
    def matrix_update(self, m, p):
        return -orthogonalize_svd(m)


# bonus
class InverseRmsShampoo(SimpleShampoo):
    """The worked answer's bonus: U V^T / RMS(U V^T)."""

    def matrix_update(self, m, p):
        u = orthogonalize_svd(m)
        return u / u.square().mean().sqrt()


# lecture
def unnormalised_newton_schulz(G, steps=5):
    X = G.clone()
    for _ in range(steps):
        A = X @ X.T
        X = 3.4445 * X + (-4.7750 * A + 2.0315 * A @ A) @ X
    return X


REFERENCES = [
    (checks.check_update_norms, reference_norms),
    (checks.check_mup_optimizer, SimpleAdamMuP),
    (checks.check_scaled_mlp, ScaledMLP),
    (checks.check_shampoo, SimpleShampoo),
    (checks.check_scaled_shampoo, ScaledSimpleShampoo),
    (checks.check_newton_schulz, newton_schulz),
]

WRONG_ANSWERS = [
    (checks.check_update_norms, lambda A: dict(reference_norms(A), rms_to_rms=norms.spectral_norm(A)),
     "that is the spectral norm"),
    (checks.check_update_norms, lambda A: dict(reference_norms(A), rms_to_rms=norms.entrywise_rms(A)),
     "entrywise RMS"),
    (checks.check_update_norms,
     lambda A: dict(reference_norms(A), rms_to_rms=math.sqrt(A.shape[0] / A.shape[1]) * norms.spectral_norm(A)),
     "swapped"),
    (checks.check_mup_optimizer, SwappedSqrtProductMuP, "1/sqrt(d_in*d_out) is not muP"),
    (checks.check_mup_optimizer, SqrtFanInMuP, "multiplying by sqrt(fan_in)"),
    (checks.check_mup_optimizer, MagicSizeMuP, "by position"),
    (checks.check_scaled_mlp, OutFeaturesScaledMLP, "init compensation"),
    (checks.check_scaled_mlp, CompensatedWrongMultiplier, "not 1/sqrt(out_features)"),
    (checks.check_shampoo, PrecondShampoo, "reads state it never created"),
    (checks.check_shampoo, AscentShampoo, "do not add it"),
    (checks.check_scaled_shampoo, InverseRmsShampoo, "1/RMS(U V^T)"),
    (checks.check_scaled_shampoo, SimpleShampoo, "choose the factor"),
    (checks.check_newton_schulz, unnormalised_newton_schulz, "divide by the Frobenius norm"),
    (checks.check_newton_schulz, lambda G: newton_schulz(G, steps=1), "5 steps"),
    (checks.check_newton_schulz, lambda G: newton_schulz(G).T.contiguous(), "transpose"),
]


@pytest.mark.parametrize("check, reference", REFERENCES, ids=lambda x: getattr(x, "__name__", ""))
def test_reference_solution_passes(check, reference, capsys):
    passed = check(reference)
    out = capsys.readouterr().out
    assert passed and out.startswith("PASS"), out


@pytest.mark.parametrize("check, wrong, hint", WRONG_ANSWERS, ids=lambda x: getattr(x, "__name__", None))
def test_classic_wrong_answer_fails_with_its_hint(check, wrong, hint, capsys):
    passed = check(wrong)
    out = capsys.readouterr().out
    assert not passed and out.startswith("FAIL") and hint in out, out


def test_unfinished_stub_is_not_swallowed():
    def stub(A):
        raise NotImplementedError("part b")

    with pytest.raises(NotImplementedError, match="part b"):
        checks.check_update_norms(stub)
