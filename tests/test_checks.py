"""Every self-check passes the reference solution, raises CheckFailed on each classic wrong
answer from shared/seeds/ with a hint that names the measured mistake and gives no answer,
checks its part alone, and holds numbers (not formulas) that the reference reproduces."""

import math
import re
from pathlib import Path

import pytest
import torch
from answer_patterns import find_answers

from helpers import checks, mup_lr, mup_multipliers, norms, orthogonal_updates
from helpers.checks import CheckFailed
from helpers.experiments import train_one_step
from helpers.models import MLP, ScaledMLP
from helpers.optimizers import (
    ScaledSimpleShampoo,
    SimpleAdam,
    SimpleAdamMuP,
    SimpleShampoo,
)
from helpers.orthogonal_updates import muon_shape_scale, newton_schulz, orthogonalize_svd

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the stored numbers, recomputed
def recomputed_norm_cases():
    cases = {}
    for fan_out, fan_in in checks._NORM_CASES:
        A = checks._fixed_matrix(fan_out, fan_in).double()
        s = torch.linalg.svdvals(A)
        frobenius, spectral = s.square().sum().sqrt().item(), s[0].item()
        cases[(fan_out, fan_in)] = dict(frobenius=frobenius, spectral=spectral,
                                        rms_to_rms=math.sqrt(fan_in / fan_out) * spectral, spectral_as_rms=spectral,
                                        entrywise=frobenius / math.sqrt(fan_in * fan_out),
                                        swapped=math.sqrt(fan_out / fan_in) * spectral)
    return cases


def recomputed_mup_steps():
    torch.manual_seed(0)
    measured = checks._first_step_sizes(SimpleAdamMuP, MLP(**checks._MUP_NET), checks._MUP_LR)
    lr, cases = checks._MUP_LR, {}
    for name, (label, _, _) in checks._MUP_STEPS.items():
        index, kind = int(name.split(".")[1]), name.split(".")[2]
        widths = (checks._MUP_NET["input_size"], *checks._MUP_NET["hidden_sizes"], checks._MUP_NET["num_classes"])
        fan_in, fan_out = widths[index], widths[index + 1]
        if kind == "bias":
            mistakes = dict(global_lr=lr)
        elif index == 0:
            mistakes = dict(input_as_hidden=lr / fan_in, input_784=lr * 10 / 784, swapped=lr * 10 / fan_out,
                            sqrt_product=lr * 10 / math.sqrt(fan_in * fan_out), global_lr=lr)
        elif index == len(widths) - 2:
            mistakes = dict(readout_as_hidden=lr / fan_in, global_lr=lr)
        else:
            mistakes = dict(sqrt_product=lr / math.sqrt(fan_in * fan_out), sqrt_fan_in=lr * math.sqrt(fan_in),
                            sqrt_fan_out=lr * math.sqrt(fan_out), swapped=lr / fan_out, global_lr=lr)
        cases[name] = (label, measured[name], mistakes)
    return cases


def recomputed_scaled_steps():
    _, _, steps, _ = checks._scaled_mlp_measurements(ScaledMLP)
    widths = (checks._MUP_NET["input_size"], *checks._MUP_NET["hidden_sizes"])
    cases = {}
    for (index, (label, _, _)), step in zip(checks._SCALED_STEPS.items(), steps):
        fan_in, fan_out = widths[index], widths[index + 1]
        gain = 10.0 if index == 0 else 1.0
        mistakes = dict(out_features=1 / math.sqrt(fan_out), swapped=gain / fan_out, no_multiplier=1.0,
                        sqrt_product=gain / math.sqrt(fan_in * fan_out))
        if index == 0:
            mistakes.update(input_784=10 / 784, input_as_hidden=1 / fan_in)
        cases[index] = (label, step, mistakes)
    return cases


def recomputed_bonus_factors():
    updates, directions = checks._bonus_step(ScaledSimpleShampoo, list(checks._BONUS_FACTORS), checks._LR)
    cases = {}
    for (fan_out, fan_in), update, direction in zip(checks._BONUS_FACTORS, updates, directions):
        factor = checks._bonus_factor(update, direction)
        cases[(fan_out, fan_in)] = (factor, dict(one=1.0, inverse_rms=math.sqrt(max(fan_out, fan_in)),
                                                 inverse_frobenius=1 / math.sqrt(min(fan_out, fan_in)),
                                                 swapped=math.sqrt(fan_in / fan_out)))
    return cases


def assert_same_numbers(stored, recomputed, path="", rel=2e-5):
    if isinstance(stored, dict):
        assert stored.keys() == recomputed.keys(), path
        for key in stored:
            assert_same_numbers(stored[key], recomputed[key], f"{path}[{key!r}]", rel)
    elif isinstance(stored, tuple):
        assert len(stored) == len(recomputed), path
        for index, (a, b) in enumerate(zip(stored, recomputed)):
            assert_same_numbers(a, b, f"{path}[{index}]", rel)
    elif isinstance(stored, str):
        assert stored == recomputed, path
    else:
        assert math.isclose(stored, recomputed, rel_tol=rel), f"{path}: stored {stored}, recomputed {recomputed:.6g}"


def test_stored_numbers_are_what_the_reference_and_the_mistakes_give():
    assert_same_numbers(checks._NORM_CASES, recomputed_norm_cases())
    assert_same_numbers(checks._MUP_STEPS, recomputed_mup_steps())
    assert_same_numbers(checks._SCALED_STEPS, recomputed_scaled_steps())
    assert_same_numbers(checks._BONUS_FACTORS, recomputed_bonus_factors())


def test_every_mistake_is_told_apart_from_the_answer():
    tables = [(e["rms_to_rms"], {k: e[k] for k in checks._NORM_HINTS}) for e in checks._NORM_CASES.values()]
    tables += [(expected, mistakes) for _, expected, mistakes in checks._MUP_STEPS.values()]
    tables += [(expected, mistakes) for _, expected, mistakes in checks._SCALED_STEPS.values()]
    tables += list(checks._BONUS_FACTORS.values())
    for expected, mistakes in tables:
        for key, value in mistakes.items():
            assert not math.isclose(value, expected, rel_tol=5e-3), (key, value, expected)


def test_stored_alternating_deltas_are_one_adam_step_on_the_subset(mnist_subset):
    result = train_one_step(hiddens=checks.ALTERNATING_WIDTHS, optimizer=SimpleAdam, lr=0.01, data=mnist_subset,
                            seed=0, device="cpu", plot=False)
    narrow = result.rms_deltas[result.widths == 16].mean()
    wide = result.rms_deltas[result.widths == 256].mean()
    assert math.isclose(narrow, checks._ALTERNATING_DELTAS["narrow"], rel_tol=2e-3)
    assert math.isclose(wide, checks._ALTERNATING_DELTAS["wide"], rel_tol=2e-3)


def test_the_checks_module_ships_no_answer():
    assert find_answers((ROOT / "helpers" / "checks.py").read_text()) == []


# ---------------------------------------------------------------- the classic wrong answers
def reference_norms(A):
    return dict(frobenius=norms.frobenius_norm(A), spectral=norms.spectral_norm(A), rms_to_rms=norms.rms_to_rms_norm(A))


# part c
class HiddenRule(SimpleAdamMuP):
    """The reference for every parameter but the hidden weights, which take ``rule(lr, fan_out, fan_in)``."""

    rule = None

    def layer_lr(self, group, p):
        if self.roles[id(p)] != "hidden":
            return super().layer_lr(group, p)
        return type(self).rule(group["lr"], *p.shape)


def hidden_rule(name, rule):
    return type(name, (HiddenRule,), {"rule": staticmethod(rule)})


# the worked answer: 1/sqrt(d_in * d_out) with d_in, d_out = p.shape
SwappedSqrtProductMuP = hidden_rule("SwappedSqrtProductMuP", lambda lr, d_in, d_out: lr / math.sqrt(d_in * d_out))
# the student's attempt: lr * sqrt(d_in) with d_in, d_out = p.shape (which is sqrt(fan_out))
SqrtDInMuP = hidden_rule("SqrtDInMuP", lambda lr, d_in, d_out: lr * math.sqrt(d_in))
SqrtFanInMuP = hidden_rule("SqrtFanInMuP", lambda lr, fan_out, fan_in: lr * math.sqrt(fan_in))
SwappedFanMuP = hidden_rule("SwappedFanMuP", lambda lr, fan_out, fan_in: lr / fan_out)


class MagicSizeMuP(SimpleAdamMuP):
    """Finds the readout by its size 10 and the input layer by its size 784."""

    def layer_lr(self, group, p):
        if p.ndim == 1:
            return group["lr"] * self.bias_mult
        fan_out, fan_in = p.shape
        if fan_out == 10:
            return self.output_lr
        if fan_in == 784:
            return group["lr"] * self.input_mult / fan_in
        return group["lr"] / fan_in


class InputSwappedMuP(SimpleAdamMuP):
    """A scaling error in the input layer alone (fan_out in place of fan_in): not a size-784 problem."""

    def layer_lr(self, group, p):
        if self.roles[id(p)] == "input":
            return group["lr"] * self.input_mult / p.shape[0]
        return super().layer_lr(group, p)


class NoInputMultMuP(SimpleAdamMuP):
    """The input layer takes the hidden rule, without input_mult."""

    def layer_lr(self, group, p):
        if self.roles[id(p)] == "input":
            return group["lr"] / p.shape[1]
        return super().layer_lr(group, p)


# part d
class OutFeaturesScaledMLP(MLP):
    """The worked answer: multiply by 1/sqrt(out_features), no init compensation."""

    def __init__(self, input_size=784, hidden_sizes=(8, 16), num_classes=10):
        super().__init__(input_size, hidden_sizes, num_classes, bias=False)

    def layer_output(self, index, x):
        return self.layers[index](x) / math.sqrt(self.layers[index].weight.shape[0])


class CompensatedOutFeaturesMLP(OutFeaturesScaledMLP):
    """Init compensated, but the multiplier is still 1/sqrt(out_features)."""

    def __init__(self, input_size=784, hidden_sizes=(8, 16), num_classes=10):
        super().__init__(input_size, hidden_sizes, num_classes)
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.mul_(math.sqrt(layer.weight.shape[0]))


class UncompensatedScaledMLP(ScaledMLP):
    """The right multipliers, but the stored weights keep the plain init."""

    def __init__(self, input_size=784, hidden_sizes=(8, 16), num_classes=10):
        MLP.__init__(self, input_size, hidden_sizes, num_classes, bias=False)
        self.multipliers = ScaledMLP(input_size, hidden_sizes, num_classes).multipliers


class Hardcoded784ScaledMLP(ScaledMLP):
    """Multipliers computed for a 784-pixel input whatever the input size."""

    def __init__(self, input_size=784, hidden_sizes=(8, 16), num_classes=10):
        MLP.__init__(self, input_size, hidden_sizes, num_classes, bias=False)
        reference = ScaledMLP(input_size, hidden_sizes, num_classes)
        self.multipliers = (10 / 784, *reference.multipliers[1:])
        with torch.no_grad():
            for layer, multiplier in zip(self.layers, self.multipliers):
                layer.weight.div_(multiplier)


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


class InverseFrobeniusShampoo(SimpleShampoo):
    def matrix_update(self, m, p):
        u = orthogonalize_svd(m)
        return u / u.norm()


class SwappedScaleShampoo(SimpleShampoo):
    def shape_scale(self, p):
        return math.sqrt(p.shape[1] / p.shape[0])


class ValueScaleShampoo(SimpleShampoo):
    """A factor computed from the gradient's values instead of the layer's shape."""

    def shape_scale(self, p):
        return 1.0 / p.grad.square().mean().sqrt().item()


# lecture
def unnormalised_newton_schulz(G, steps=5):
    X = G.clone()
    for _ in range(steps):
        A = X @ X.T
        X = 3.4445 * X + (-4.7750 * A + 2.0315 * A @ A) @ X
    return X


def alternating_run(data, **changes):
    arguments = dict(hiddens=checks.ALTERNATING_WIDTHS, optimizer=SimpleAdam, lr=0.01, seed=0)
    arguments.update(changes)
    return train_one_step(data=data, device="cpu", plot=False, **arguments)


REFERENCES = [
    (checks.check_update_norms, reference_norms),
    (checks.check_mup_optimizer, SimpleAdamMuP),
    (checks.check_scaled_mlp, ScaledMLP),
    (checks.check_shampoo, SimpleShampoo),
    (checks.check_scaled_shampoo, ScaledSimpleShampoo),
    (checks.check_newton_schulz, newton_schulz),
    (checks.check_muon_shape_scale, muon_shape_scale),
]

# (check, wrong answer, phrase the failure message must contain: the measured mistake)
WRONG_ANSWERS = [
    (checks.check_update_norms, lambda A: dict(reference_norms(A), rms_to_rms=norms.spectral_norm(A)),
     "that is the spectral norm"),
    (checks.check_update_norms, lambda A: dict(reference_norms(A), rms_to_rms=norms.entrywise_rms(A)),
     "entrywise RMS"),
    (checks.check_update_norms,
     lambda A: dict(reference_norms(A), rms_to_rms=math.sqrt(A.shape[0] / A.shape[1]) * norms.spectral_norm(A)),
     "swapped"),
    (checks.check_mup_optimizer, SwappedSqrtProductMuP, "shrinks with fan-out too"),
    (checks.check_mup_optimizer, SqrtDInMuP, "grows with fan-out"),
    (checks.check_mup_optimizer, SqrtFanInMuP, "grows with fan-in"),
    (checks.check_mup_optimizer, SwappedFanMuP, "follows fan-out instead of fan-in"),
    (checks.check_mup_optimizer, MagicSizeMuP, "not by the size 10"),
    (checks.check_mup_optimizer, NoInputMultMuP, "misses input_mult"),
    (checks.check_mup_optimizer, SimpleAdam, "the step is the global learning rate"),
    (checks.check_scaled_mlp, OutFeaturesScaledMLP, "forward pass changed at init"),
    (checks.check_scaled_mlp, OutFeaturesScaledMLP, "shrinks with the layer's fan-out"),
    (checks.check_scaled_mlp, CompensatedOutFeaturesMLP, "shrinks with the layer's fan-out"),
    (checks.check_scaled_mlp, UncompensatedScaledMLP, "forward pass changed at init"),
    (checks.check_scaled_mlp, Hardcoded784ScaledMLP, "was 784 assumed"),
    (checks.check_shampoo, PrecondShampoo, "never stored"),
    (checks.check_shampoo, AscentShampoo, "not its negative"),
    (checks.check_scaled_shampoo, InverseRmsShampoo, "1/RMS(U V^T)"),
    (checks.check_scaled_shampoo, InverseFrobeniusShampoo, "1/||U V^T||_F"),
    (checks.check_scaled_shampoo, SimpleShampoo, "no shape factor"),
    (checks.check_scaled_shampoo, SwappedScaleShampoo, "swapped"),
    (checks.check_scaled_shampoo, ValueScaleShampoo, "depend on the layer's shape"),
    (checks.check_newton_schulz, unnormalised_newton_schulz, "divide by the Frobenius norm"),
    (checks.check_newton_schulz, lambda G: newton_schulz(G, steps=1), "5 steps"),
    (checks.check_newton_schulz, lambda G: newton_schulz(G).T.contiguous(), "transpose"),
    (checks.check_muon_shape_scale, lambda fo, fi, s: muon_shape_scale(fi, fo, s), "(fan_out, fan_in)"),
    (checks.check_muon_shape_scale, lambda fo, fi, s: muon_shape_scale(fo, fi, "spectral" if s == "keller" else s),
     "never shrinks a wide matrix's step"),
    (checks.check_muon_shape_scale,
     lambda fo, fi, s: 5 * muon_shape_scale(fo, fi, s) if s == "moonlight" else muon_shape_scale(fo, fi, s),
     "not 1"),
    (checks.check_muon_shape_scale,
     lambda fo, fi, s: 0.2 * math.sqrt(min(fo, fi)) if s == "moonlight" else muon_shape_scale(fo, fi, s),
     "which side"),
    (checks.check_muon_shape_scale, lambda fo, fi, s: 2 * muon_shape_scale(fo, fi, s), "too large"),
]


def name_of(x):
    return getattr(x, "__name__", None) if not isinstance(x, str) else re.sub(r"\W+", "_", x)[:30]


@pytest.mark.parametrize("check, reference", REFERENCES, ids=name_of)
def test_reference_solution_passes_with_one_line(check, reference, capsys):
    assert check(reference) is True
    out = capsys.readouterr().out
    assert out.startswith(f"PASS {check.__name__}") and out.count("\n") == 1, out


@pytest.mark.parametrize("check, wrong, phrase", WRONG_ANSWERS, ids=name_of)
def test_classic_wrong_answer_fails_naming_the_mistake(check, wrong, phrase, capsys):
    with pytest.raises(CheckFailed) as failure:
        check(wrong)
    message = str(failure.value)
    assert isinstance(failure.value, AssertionError) and failure.value.problems
    assert message.startswith(f"{check.__name__} failed") and phrase in message, message
    assert find_answers(message + capsys.readouterr().out) == [], message
    assert "PASS" not in capsys.readouterr().out


# Wrong answers that no hint names: the message falls back on the ratios alone.
QuarterPowerMuP = hidden_rule("QuarterPowerMuP", lambda lr, fan_out, fan_in: lr / fan_in ** 0.75)


class QuarterPowerShampoo(SimpleShampoo):
    def shape_scale(self, p):
        return (p.shape[0] / p.shape[1]) ** 0.25


def one_step_values(check):
    """The expected numbers of ``check`` from which its rule follows in one arithmetic step: each
    expected value, the factor it applies (per unit learning rate, or on the spectral norm), and
    their reciprocals (a ratio measured / expected is one when the measurement is unscaled)."""
    if check is checks.check_update_norms:
        values = [e["rms_to_rms"] for e in checks._NORM_CASES.values()]
        values += [e["rms_to_rms"] / e["spectral"] for e in checks._NORM_CASES.values()]
    elif check is checks.check_mup_optimizer:  # the readout's and the biases' rates are given (output_lr, bias_mult)
        values = [e for label, e, _ in checks._MUP_STEPS.values() if label.startswith(("input", "hidden"))]
        values += [v / checks._MUP_LR for v in values]
    elif check is checks.check_scaled_mlp:
        values = [e for _, e, _ in checks._SCALED_STEPS.values()]
    elif check is checks.check_scaled_shampoo:
        values = [e for e, _ in checks._BONUS_FACTORS.values()]
    else:
        return []
    return values + [1 / v for v in values]


def numbers_in(message):
    """Every number a failure message states, leaving out the sizes that name a layer or a
    notebook: shapes "(48, 12)", "12x48", "bias of length 12", "layer 1", "notebook 01"."""
    named = re.sub(r"\(\d+, \d+\)|\d+x\d+|length \d+|layer \d+|notebook \d+", " ", message)
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", named)]


@pytest.mark.parametrize("check, wrong", [(c, w) for c, w, _ in WRONG_ANSWERS]
                         + [(checks.check_mup_optimizer, QuarterPowerMuP),
                            (checks.check_scaled_shampoo, QuarterPowerShampoo)], ids=name_of)
def test_no_failure_message_states_a_value_the_rule_follows_from(check, wrong, capsys):
    """A failure says which layers are off, by what ratio and in which direction; it never states an
    expected value (a step of 0.1667 for a (48, 12) layer at lr 2, a factor of 2 for a (64, 16)
    layer) from which the rule is one division away."""
    with pytest.raises(CheckFailed) as failure:
        check(wrong)
    message = str(failure.value)
    capsys.readouterr()
    leaks = [(n, v) for n in numbers_in(message) for v in one_step_values(check) if math.isclose(n, v, rel_tol=5e-3)]
    assert not leaks, message


@pytest.mark.parametrize("check, wrong", [(checks.check_mup_optimizer, QuarterPowerMuP),
                                          (checks.check_scaled_shampoo, QuarterPowerShampoo)], ids=name_of)
def test_a_mistake_no_hint_names_is_told_by_its_ratios(check, wrong):
    with pytest.raises(CheckFailed) as failure:
        check(wrong)
    message = str(failure.value)
    assert "no classic mistake" in message and "times the expected" in message and "too " in message, message


def test_an_unscaled_answer_is_told_its_direction_not_its_ratio():
    """With no per-layer rate, measured / expected would be the rule inverted: only the direction is said."""
    with pytest.raises(CheckFailed) as failure:
        checks.check_mup_optimizer(SimpleAdam)
    message = str(failure.value)
    assert "hidden layer (48, 12): its step at lr 2 is more than expected" in message
    assert "times the expected" not in message


def test_an_input_layer_error_is_not_blamed_on_its_size():
    with pytest.raises(CheckFailed) as failure:
        checks.check_mup_optimizer(InputSwappedMuP)
    assert "input layer (12, 30)" in str(failure.value) and "784" not in str(failure.value)


def test_an_error_in_student_code_is_a_finding_that_shows_where_without_a_traceback(capsys):
    with pytest.raises(CheckFailed) as failure:
        checks.check_shampoo(PrecondShampoo)
    message, out = str(failure.value), capsys.readouterr().out
    assert message.startswith("check_shampoo failed") and "KeyError: 'precond'" in message
    assert "in matrix_update" in message and 'self.state[p]["precond"]' in message  # the student's line
    assert "Traceback" not in out + message and "site-packages" not in message and "torch/" not in message


@pytest.mark.parametrize("check, stubbed", [
    (checks.check_update_norms, lambda A: (_ for _ in ()).throw(NotImplementedError("frobenius_norm in "
                                                                                      "helpers/norms.py, part b"))),
    (checks.check_mup_optimizer, "layer_lr"),
    (checks.check_scaled_mlp, "layer_output"),
    (checks.check_shampoo, "orthogonalize_svd"),
    (checks.check_scaled_shampoo, "shampoo_shape_scale"),
    (checks.check_muon_shape_scale, "muon_shape_scale"),
], ids=["norms", "mup", "scaled_mlp", "shampoo", "scaled_shampoo", "muon_scale"])
def test_an_unfinished_stub_stops_with_its_own_message(check, stubbed, monkeypatch):
    """The stub's NotImplementedError (which names file, function and part) goes through unchanged."""
    message = f"{stubbed} in helpers/..., used in NN (homework part x): replace this stub with your code"
    targets = {"layer_lr": mup_lr, "layer_output": mup_multipliers, "orthogonalize_svd": orthogonal_updates,
               "shampoo_shape_scale": orthogonal_updates, "muon_shape_scale": orthogonal_updates}

    def stub(*args, **kwargs):
        raise NotImplementedError(message)

    if isinstance(stubbed, str):
        monkeypatch.setattr(targets[stubbed], stubbed, stub)
        argument = {"layer_lr": SimpleAdamMuP, "layer_output": ScaledMLP, "orthogonalize_svd": SimpleShampoo,
                    "shampoo_shape_scale": ScaledSimpleShampoo, "muon_shape_scale": stub}[stubbed]
    else:
        argument, message = stubbed, "frobenius_norm in helpers/norms.py, part b"
    with pytest.raises(NotImplementedError) as error:
        check(argument)
    assert str(error.value) == message


# ---------------------------------------------------------------- each part on its own
def unfinished(*args, **kwargs):
    raise NotImplementedError("layer_lr in helpers/mup_lr.py: replace this stub with your code")


@pytest.mark.parametrize("part_c", [unfinished, SqrtDInMuP.layer_lr, SwappedSqrtProductMuP.layer_lr],
                         ids=["part c unfinished", "part c sqrt(d_in)", "part c 1/sqrt(d_in*d_out)"])
def test_a_correct_part_d_passes_whatever_part_c_is(part_c, monkeypatch):
    monkeypatch.setattr(SimpleAdamMuP, "layer_lr", part_c)
    assert checks.check_scaled_mlp(ScaledMLP) is True


@pytest.mark.parametrize("part_e", [
    lambda m: (_ for _ in ()).throw(NotImplementedError("orthogonalize_svd in helpers/orthogonal_updates.py")),
    lambda m: m,  # a wrong orthogonalisation
], ids=["part e unfinished", "part e wrong"])
def test_a_correct_bonus_passes_whatever_part_e_is(part_e, monkeypatch):
    monkeypatch.setattr(orthogonal_updates, "orthogonalize_svd", part_e)
    assert checks.check_scaled_shampoo(ScaledSimpleShampoo) is True
    assert orthogonal_updates.orthogonalize_svd is part_e  # the stand-in is removed afterwards


def test_checks_read_no_other_part():
    """No check calls the code of another homework part: part d's check never touches
    SimpleAdamMuP, the bonus's never the student's orthogonalize_svd."""
    source = (ROOT / "helpers" / "checks.py").read_text()
    scaled_mlp = source[source.index("def _scaled_mlp_measurements"):source.index("def check_scaled_mlp")]
    assert "SimpleAdamMuP" not in source and "mup_multipliers" not in source
    assert "orthogonalize_svd(" not in scaled_mlp


# ---------------------------------------------------------------- notebook 01's experiment
def test_alternating_widths_check(mnist_subset, capsys):
    assert checks.check_alternating_widths(alternating_run(mnist_subset)) is True
    assert capsys.readouterr().out.count("\n") == 1
    assert checks.check_alternating_widths(alternating_run(mnist_subset, seed=3)) is True


@pytest.mark.parametrize("changes, phrase", [
    (dict(hiddens=(8, 16, 64, 64, 64, 256, 256, 1024)), "wrong widths"),
    (dict(hiddens=(256, 16, 256, 16, 256, 16, 256, 16)), "wrong widths"),
    (dict(lr=0.1), "learning rate"),
    (dict(lr=0.001), "learning rate"),
    (dict(optimizer=torch.optim.SGD), "check the optimizer"),
    (dict(optimizer=SimpleAdamMuP, lr=2.0), "not one plain Adam step"),
], ids=["course widths", "swapped widths", "lr 0.1", "lr 0.001", "SGD", "muP"])
def test_alternating_widths_check_names_the_wrong_experiment(mnist_subset, changes, phrase):
    with pytest.raises(CheckFailed, match=phrase):
        checks.check_alternating_widths(alternating_run(mnist_subset, **changes))


def test_alternating_widths_check_wants_a_train_one_step_result():
    with pytest.raises(CheckFailed, match="the result of train_one_step"):
        checks.check_alternating_widths([0.1, 0.2])


def test_one_multiplier_too_many_is_caught_though_the_hidden_steps_are_right(monkeypatch):
    """One multiplier per entry of (input_size, *hidden_sizes) plus output_mult: the hidden layers get
    the right ones, the readout gets the last hidden layer's 1/fan_in instead of output_mult."""
    right = mup_multipliers.mup_multipliers

    def one_too_many(input_size, hidden_sizes, input_mult=10.0, output_mult=1.0):
        return (*right(input_size, hidden_sizes, input_mult, output_mult)[:-1], 1.0 / hidden_sizes[-1], output_mult)

    monkeypatch.setattr(mup_multipliers, "mup_multipliers", one_too_many)
    with pytest.raises(CheckFailed) as failure:
        checks.check_scaled_mlp(ScaledMLP)
    assert "5 multipliers for a network of 4 layers" in str(failure.value) and "readout" in str(failure.value)


def test_no_expected_number_stands_in_the_checks_source():
    """A student who opens helpers/checks.py finds no table of expected values to read a rule back
    from (a factor of 2.0 for a (64, 16) weight): every expected and mistaken value is encoded."""
    source = (ROOT / "helpers" / "checks.py").read_text()
    tables = [checks._NORM_CASES, checks._MUP_STEPS, checks._SCALED_STEPS, checks._BONUS_FACTORS,
              checks._MUON_FACTORS]
    numbers = set()

    def collect(value):
        if isinstance(value, float) and len(repr(value).strip("0.")) >= 3:  # not 0.05, 2.0: common elsewhere
            numbers.add(repr(value))
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, (tuple, list)):
            for item in value:
                collect(item)

    for table in tables:
        collect(table)
    assert len(numbers) > 40
    assert [n for n in sorted(numbers) if re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", source)] == []
