"""What notebooks 00-05 print and record at full size: each answer the prose relies on is
checked here against the run that the student sees (one execution per test run, see conftest).
The last tests read the committed notebooks and helpers as the student release shows them
(solution regions and ``solutions-only`` cells left out): none of them may state an answer of
parts b-d before the student writes it."""

import ast
import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HOMEWORK = ["00_rms_scaling_theory", "01_activation_deltas", "02_update_norms", "03_mup_optimizer",
            "04_per_weight_multipliers", "05_hyperparameter_transfer"]
SOLUTIONS_ONLY = "solutions-only"


def _tags(cell):
    return cell.metadata.get("tags", [])


def _as_released(cell) -> str:
    """A cell's text as the student release shows it: solution regions stubbed, a written answer
    replaced by its stub."""
    from coursetools.regions import ANSWER_STUB, find_regions, is_answer_cell
    from coursetools.release import stub_lines

    if is_answer_cell(cell):
        return ANSWER_STUB
    lines = cell.source.splitlines()
    return "\n".join(stub_lines(lines, find_regions(lines, "text"), "part")[0])


def student_cells(name):
    """The cells of a committed notebook as the student release shows them: (index, cell type, text)."""
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    return [(i, c.cell_type, _as_released(c)) for i, c in enumerate(notebook.cells) if SOLUTIONS_ONLY not in _tags(c)]


def _normal(text: str) -> str:
    return re.sub(r"\s+", "", text).lower().replace("`", "").replace("×", "*").replace("·", "*")


def printed_by_solutions_only_cell(run, text):
    """The index of the executed cell whose output contains ``text``, and whether it is tagged solutions-only."""
    for index, cell in enumerate(run.notebook.cells):
        if cell.cell_type == "code" and any(text in o.get("text", "") for o in cell.outputs):
            return index, SOLUTIONS_ONLY in _tags(cell)
    raise AssertionError(f"{text!r} is printed by no cell")


def first_answer_cell(run):
    return next(i for i, c in enumerate(run.notebook.cells) if c.cell_type == "markdown" and "**Answer.**" in c.source)


# ---------------------------------------------------------------- the full-size runs
def test_00_scaling_laws(executed_notebooks):
    run = executed_notebooks["00_rms_scaling_theory"]
    answers, stdout = run.answers, run.stdout
    assert answers["init_max_relative_error"] < 0.15
    # "the gaps are sampling noise" is decided in standard errors of the Monte Carlo estimates
    assert answers["init_within_noise"] is True and answers["init_max_gap_in_standard_errors"] < 3
    assert "every prediction is within 3 standard errors" in stdout
    assert abs(answers["signgd_slope"] - 1) < 0.05
    assert abs(answers["signgd_ratio_to_d1"] - math.sqrt(2 / math.pi)) < 0.03
    assert answers["signgd_d2_spread"] < 1e-9
    assert f"d1^{answers['signgd_slope']:.3f}" in stdout
    # Q1(b)'s constant makes E[RMS(c y')] exactly 1: sqrt(pi/2) / d1, checked within 3 standard errors at
    # every d1 and d2; the width scaling alone, 1/d1, leaves it at sqrt(2/pi) ~ 0.80, many standard errors off.
    assert answers["update_constant_d1"] == pytest.approx([math.sqrt(math.pi / 2)] * 10)
    assert answers["update_constant_within_noise"] is True and answers["update_constant_max_gap_in_standard_errors"] < 3
    assert "every value is within 3 standard errors of 1" in stdout
    assert answers["inverse_d1_min_gap_in_standard_errors"] > 10
    assert all(abs(r - math.sqrt(2 / math.pi)) < 0.03 for r in answers["inverse_d1_expected_rms"])
    # the range of (1/d1) E[RMS(y')] is printed beside its limit sqrt(2/pi), not beside the constant sqrt(pi/2)
    assert f"sqrt(2/pi) = {math.sqrt(2 / math.pi):.4f}" in stdout and "sqrt(pi/2) =" not in stdout
    solution = next(c.source for c in run.notebook.cells if "`c = sqrt(π/2)/d1" in c.source)
    assert "**Answer.**" in solution and "Its width scaling is `1/d1`" in solution


def test_01_deltas_follow_fan_in(executed_notebooks):
    run = executed_notebooks["01_activation_deltas"]
    answers, stdout = run.answers, run.stdout
    course = answers["course"]
    assert answers["follows"] == "fan-in" and "follow the fan-in" in stdout
    assert course["corr_fan_in"] > course["corr_width"]
    by_fan_in = dict(zip(course["fan_ins"], course["rms_deltas"]))
    assert min(d for f, d in zip(course["fan_ins"], course["rms_deltas"]) if f == 256) >= 3 * by_fan_in[16]
    assert answers["same_width_ratio"] > 3 and f"(ratio {answers['same_width_ratio']:.1f}x)" in stdout
    # The summary once said one step moves each activation "by about lr x fan-in": the deltas are a
    # fraction of it, and grow less than proportionally.
    assert max(answers["delta_over_lr_fan_in"]) < 0.5
    assert course["slope_fan_in"] < 1
    alternating = answers["alternating"]
    assert alternating["narrow_over_wide"] > 3 and alternating["corr_width"] < 0 < alternating["corr_fan_in"]
    assert answers["check_passed"] is True
    # The fan-in-8 bar, out of line with the law: the answer says its own step follows the fan-in and most
    # of its change is inherited from the input layer's step "on every seed tried", and that it moves more
    # than the fan-in-16 activation on seed 0 and some other seeds.
    anatomy = answers["anatomy"]
    n = anatomy["seeds"]
    assert list(anatomy["fan_ins"][:2]) == [8, 16] and n >= 5
    assert anatomy["own_smaller"] == n and anatomy["mostly_inherited"] == n
    assert "its own step follows the fan-in on every seed; most of its change is inherited" in stdout
    own, inherited, total = (np.array(anatomy[k]) for k in ("own", "inherited", "total"))
    assert np.all(own[:, 0] < own[:, 1]) and np.all(inherited[:, 0] > own[:, 0])
    assert total[0, 0] > total[0, 1] and 1 < anatomy["total_larger"] < n
    assert np.allclose(total[0], course["rms_deltas"])  # the same step as the figure's
    assert np.mean(np.array(anatomy["alignment"])[:, 0]) < np.min(np.array(anatomy["alignment"])[:, 1:])
    index, dropped = printed_by_solutions_only_cell(run, "most of its change is inherited")
    assert dropped and index > first_answer_cell(run)
    # "less than proportionally", fitted without the fan-in-8 bar: on the own parts over the five seeds (a paired
    # test of slope - 1, recomputed here), and on the totals without that bar; the slope through every bar is lower.
    from helpers.verdicts import paired_comparison

    own_slopes = np.array(answers["own_slopes"])
    logs = np.log(anatomy["fan_ins"])
    assert own_slopes == pytest.approx([np.polyfit(logs, np.log(o), 1)[0] for o in own])
    assert answers["total_slopes_without_first"] == pytest.approx([np.polyfit(logs[1:], np.log(t[1:]), 1)[0]
                                                                    for t in total])
    test = paired_comparison(own_slopes - 1)
    assert answers["own_slope_test"]["mean"] == pytest.approx(test.mean) and test.direction == -1
    assert "=> the own part grows less than proportionally to fan-in: detected on 5 seeds" in stdout
    assert max(answers["total_slopes_without_first"]) < 1 and course["slope_fan_in"] < min(own_slopes)
    summary = run.notebook.cells[-1].source
    assert "bounds the size of the update as an operator" in summary and "rank-one sign matrix" in summary


def test_01_alternating_widths_are_checked_right_after_the_student_cell():
    cells = student_cells("01_activation_deltas")
    code = [(i, text) for i, kind, text in cells if kind == "code"]
    defining = next(k for k, (_, text) in enumerate(code) if "print(changed.table())" in text)
    assert "raise NotImplementedError" in code[defining][1]  # the student writes `changed`
    notebook = nbformat.read(ROOT / "notebooks" / "01_activation_deltas.ipynb", as_version=4)
    source = notebook.cells[code[defining][0]].source
    comment = source.split("### BEGIN SOLUTION")[0]
    assert "`changed`" in comment  # the stub says which name the cells below expect
    assert code[defining + 1][1].startswith("passed = check_alternating_widths(changed)")


def test_02_rms_to_rms_norm_wins(executed_notebooks):
    run = executed_notebooks["02_update_norms"]
    answers, stdout = run.answers, run.stdout
    assert answers["best"] == "rms_to_rms" and "=> best: rms_to_rms" in stdout
    assert answers["correlations"]["rms_to_rms"] > 0.95
    assert all(abs(r - 1) < 0.1 for r in answers["rms_to_rms_over_lr_fan_in"])
    # lr * fan_in is an upper bound (||A||_2 <= ||A||_F), reached only by a rank-one sign matrix
    assert max(answers["rms_to_rms_over_lr_fan_in"]) <= 1 + 1e-5 and min(answers["rms_to_rms_over_lr_fan_in"]) < 0.99
    answer = next(c.source for c in run.notebook.cells if "**Answer.** The **RMS→RMS induced norm**" in c.source)
    assert "≤ lr·fan_in" in answer and "≈ lr·fan_in" not in answer
    assert all(abs(e - 0.01) < 1e-4 for e in answers["entrywise_rms_hidden"])
    assert max(answers["delta_over_rms_to_rms"]) < 0.5  # the deltas are a fraction of the norm
    # The verdict is printed after the student's written answer, by a cell the student release drops.
    index, dropped = printed_by_solutions_only_cell(run, "=> best:")
    assert dropped and index > first_answer_cell(run)


def test_03_mup_deltas_are_flat(executed_notebooks):
    run = executed_notebooks["03_mup_optimizer"]
    answers, stdout = run.answers, run.stdout
    assert answers["mup_course"]["max_over_min"] <= 1.4
    assert answers["mup_alternating"]["max_over_min"] <= 1.4
    rules = answers["rule_comparison"]
    for width_set in ("course", "doubling", "alternating"):
        assert rules["SimpleAdamMuP"][width_set]["step_size_spread"] == pytest.approx(1.0)
        assert rules["SqrtFanInRule"][width_set]["step_size_spread"] > 10
    assert rules["SimpleAdamMuP"]["loss_after_training"] < rules["SqrtFanInRule"]["loss_after_training"]
    # The doubling ladder cannot tell 1/sqrt(fan_in*fan_out) from 1/fan_in; the alternating set can.
    assert rules["SwappedShapeRule"]["doubling"]["step_size_spread"] == pytest.approx(1.0)
    assert rules["SwappedShapeRule"]["alternating"]["step_size_spread"] >= 8
    assert rules["SwappedShapeRule"]["alternating"]["delta_spread"] > 3
    assert answers["width_set_tells_rules_apart"] == {"course": True, "doubling": False, "alternating": True}
    assert "=> doubling: cannot tell" in stdout and "=> alternating: tells" in stdout
    index, dropped = printed_by_solutions_only_cell(run, "SwappedShapeRule")
    assert dropped and index > first_answer_cell(run)
    # The first delta: lower on average, not on every seed; a 100x input multiplier moves it by a few percent.
    assert answers["first_vs_rest"] < 1 and answers["first_lower_on_seeds"] < answers["seed_count"]
    assert "not lower than the others' mean on every seed" in stdout
    # ... and the paired test of (first / others - 1) does not detect it (recomputed here)
    from helpers.verdicts import paired_comparison

    first = paired_comparison(np.array(answers["first_vs_rest_per_seed"]) - 1)
    assert answers["first_test"]["mean"] == pytest.approx(first.mean) and first.detected is False
    assert answers["first_test"]["detected"] is False
    assert "=> the first delta is lower than the others' mean: not detected with 8 seeds" in stdout
    assert "within the seed-to-seed variation" not in "".join(c.source for c in run.notebook.cells)
    assert 0 < answers["input_mult_first_gain"] < 0.1 and abs(answers["input_mult_later_gain"]) < 0.02
    # Where the shortfall comes from, as the answer says: the first activation's own step moves it less on every
    # seed, and is less aligned with its input (both detected); a smaller inherited part, the tempting
    # explanation, is not detected, and the own step is the larger part of the first activation's change.
    parts, tests = answers["parts_first_vs_rest"], answers["part_tests"]
    assert parts["own"]["below_one"] == answers["seed_count"]
    assert tests["own"]["direction"] == -1 and tests["alignment"]["direction"] == -1
    assert tests["inherited"]["detected"] is False
    assert "=> it inherits less from the layers before it than the others do: not detected with 8 seeds" in stdout
    assert max(answers["first_inherited_over_own"]) < 1
    index, dropped = printed_by_solutions_only_cell(run, "=> its own layer's step moves it less")
    assert dropped and index > first_answer_cell(run)
    # "Its one-step deltas can still look flat, because its steps saturate the sigmoids": none saturated before
    # the step, nearly all after it, and every activation then moves by about 1/2; muP's step saturates none.
    sqrt_rule, mup_rule = answers["saturation"]["SqrtFanInRule"], answers["saturation"]["SimpleAdamMuP"]
    assert max(sqrt_rule["before"]) == 0 and min(sqrt_rule["after"]) > 0.9
    assert max(mup_rule["after"]) == 0
    assert all(abs(d - 0.5) < 0.05 for d in sqrt_rule["deltas"])
    assert f"after it {min(sqrt_rule['after']):.1%} to" in stdout
    # The summary: lr*sqrt(fan_in)'s deltas are flatter than muP's on every width set (so flat deltas alone do
    # not reject it), and the swapped rule is flat on the doubling ladder only.
    assert answers["sqrt_rule_flatter_than_mup"] == {"course": True, "doubling": True, "alternating": True}
    assert all(rules["SqrtFanInRule"][s]["delta_spread"] < rules["SimpleAdamMuP"][s]["delta_spread"]
               for s in ("course", "doubling", "alternating"))
    assert rules["SwappedShapeRule"]["doubling"]["delta_spread"] < 1.3
    assert min(rules["SwappedShapeRule"][s]["delta_spread"] for s in ("course", "alternating")) > 1.5
    summary = run.notebook.cells[-1].source
    assert "even flatter than muP's" in summary and "saturates" in summary
    assert "`lr·sqrt(fan_in)` and\n`lr / sqrt(d_in·d_out)` do not" not in summary


def test_04_multipliers_reproduce_mup(executed_notebooks):
    run = executed_notebooks["04_per_weight_multipliers"]
    answers, stdout = run.answers, run.stdout
    assert answers["relative_gap"] < 1e-5
    assert answers["init_gap"] < 1e-5 and answers["adam_scale_invariance_gap"] < 1e-5
    # ... only up to eps: a gradient rescaled down to eps's size changes the direction
    assert answers["adam_eps_scale_gap"] > 0.5
    answer = next(c.source for c in run.notebook.cells if "**Answer.** Adam's update direction" in c.source)
    assert "up to `eps`" in answer
    assert answers["max_over_min"] <= 1.4
    # Over a training run the readout decides: multiplier 1 trains it at lr, output_lr / lr as muP does.
    assert answers["training_steps"] >= 20
    assert answers["training_gap_readout_output_lr"] < 1e-4
    assert answers["training_gap_readout_1"] > 1
    assert "=> equal to float tolerance" in stdout and "=> not equal" in stdout
    assert answers["sqrt_out_features_max_over_min"] > 1.4 and answers["sqrt_out_features_init_gap"] > 0.1


def test_05_learning_rate_transfer(executed_notebooks):
    run = executed_notebooks["05_hyperparameter_transfer"]
    answers, stdout = run.answers, run.stdout
    widths = answers["widths"]
    assert answers["adam_shift"] >= 10 and f"({answers['adam_shift']:.0f}x smaller)" in stdout
    assert all(a >= b for a, b in zip(answers["adam_best_lr"], answers["adam_best_lr"][1:]))  # "falls as width grows"
    # Transfer verdicts within the seed spread (helpers.verdicts.shared_learning_rates)
    assert answers["adam_transfer"]["shared"] == [] and answers["adam_transfer"]["grid_steps"] >= 1
    assert "=> Adam: no learning rate is within the seed spread" in stdout
    assert answers["mup_transfer"]["shared"] and "=> the course's muP: one learning rate is within the seed spread" \
        in stdout
    # TP5's muP (the readout scaled too) is the course's muP at width 64, where its readout is anchored:
    # the same runs; its transfer verdict and the comparison of the two muPs are printed.
    at_64 = widths.index(64)
    assert answers["tp5_best_loss"][at_64] == answers["mup_best_loss"][at_64]
    assert answers["tp5_best_lr"][at_64] == answers["mup_best_lr"][at_64]
    assert answers["mup_vs_tp5"]["64"] is None and "the same runs" in stdout
    assert "=> TP5's muP: " in stdout and "TP5's muP at widths" in stdout
    index, dropped = printed_by_solutions_only_cell(run, "=> TP5's muP: ")
    assert dropped and index > first_answer_cell(run)
    assert answers["adam_widest_at_narrow_best"] > 2.2  # near chance level (ln 10)
    # Each optimizer at its own best rate, width by width: a paired comparison over the seeds, recomputed here
    # from the sweeps' losses, with the smallest detectable effect where nothing is detected, and the caveat
    # that the rates were chosen on the same seeds
    from helpers.verdicts import paired_comparison

    losses = {name: np.array(v) for name, v in answers["sweep_losses"].items()}
    lrs = {name: np.array(v) for name, v in answers["sweep_lrs"].items()}
    best = {name: np.nanargmin(np.where(np.isfinite(v).all(axis=0), np.where(np.isfinite(v), v, 0).mean(axis=0),
                                        np.nan), axis=1) for name, v in losses.items()}  # per width; diverged: never
    at_best = {name: losses[name][:, np.arange(len(widths)), best[name]] for name in losses}  # [seed, width]
    assert list(lrs["the course's muP"][best["the course's muP"]]) == pytest.approx(answers["mup_best_lr"])
    assert list(lrs["Adam"][best["Adam"]]) == pytest.approx(answers["adam_best_lr"])
    for (a, b), key, first_lower, second_lower, still_open in [
            (("Adam", "the course's muP"), "adam_vs_mup", "adam_lower_at", "mup_lower_at", "adam_vs_mup_open"),
            (("the course's muP", "TP5's muP"), "mup_vs_tp5", "mup_lower_than_tp5_at", "tp5_lower_than_mup_at",
             "mup_vs_tp5_open")]:
        expected = {a: [], b: [], None: []}
        for w, width in enumerate(widths):
            x, y = at_best[a][:, w], at_best[b][:, w]
            if np.array_equal(x, y):
                assert answers[key][str(width)] is None
                continue
            effect = paired_comparison(y - x)
            assert answers[key][str(width)]["mean"] == pytest.approx(effect.mean)
            assert effect.describe(f"{a} lower", f"{b} lower") in stdout
            expected[(a if effect.mean > 0 else b) if effect.detected else None].append(width)
        assert answers[first_lower] == expected[a] and answers[second_lower] == expected[b]
        assert answers[still_open] == expected[None]
        assert (f"=> detected lower: {a} at widths {expected[a]}, {b} at widths {expected[b]}; "
                f"not detected at widths {expected[None]}") in stdout
    assert stdout.count("chosen per width on these same 3 seeds: the best of several noisy means is biased low") == 2
    assert "lower on every seed" not in stdout
    assert answers["mup_widest_loss"] <= 1.0  # well below chance (ln 10 = 2.3) on held-out images
    answer_text = "\n".join(c.source for c in run.notebook.cells if c.cell_type == "markdown")
    assert "nothing was lost" not in answer_text.lower()


@pytest.mark.parametrize("name", ["02_update_norms", "03_mup_optimizer", "04_per_weight_multipliers",
                                  "06_shampoo_orthogonalization", "07_muon_newton_schulz"])
def test_self_checks_pass_on_the_solutions(executed_notebooks, name):
    run = executed_notebooks[name]
    answers, stdout = run.answers, run.stdout
    assert answers["check_passed"] is True
    assert "PASS check_" in stdout and "FAIL" not in stdout


# ---------------------------------------------------------------- what the student release shows
ANSWERS_OF_PARTS_B_TO_D = [
    "sqrt(fan_in / fan_out)", "sqrt(fan_in/fan_out)", "best: rms_to_rms",  # part b
    "lr / fan_in", "lr/fan_in", "1 / fan_in", "1/fan_in", "input_mult / fan_in", "input_mult/fan_in",  # c, d
    "W_init / c_l",  # part d
    "SqrtFanInRule", "SwappedShapeRule",  # the classic mistakes of part c, written out
]
SOURCE_CITATIONS = ["worked answer", "student's attempt", "000_", "001_", "002_", "004_"]
RELEASE_WORDING = ["BEGIN`/`END", "END SOLUTION markers", "between the markers"]


@pytest.mark.parametrize("name", HOMEWORK)
def test_student_release_of_the_notebook_gives_no_answer_away(name):
    found = []
    for index, _kind, text in student_cells(name):
        normal = _normal(text)
        for phrase in ANSWERS_OF_PARTS_B_TO_D + SOURCE_CITATIONS + RELEASE_WORDING:
            if _normal(phrase) in normal:
                found.append(f"cell {index}: {phrase!r}")
    assert not found, found


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
def test_solutions_only_cells_define_nothing_the_student_release_needs(name):
    """A name that a cell the student runs loads must not come only from a ``solutions-only`` cell
    (every notebook: verdicts are moved into such cells)."""
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)

    def names(cell):
        source = "\n".join(line for line in _as_released(cell).splitlines() if not line.startswith("%"))
        tree = ast.parse(source)
        stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        stored |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        return stored, loaded

    only_there, visible_stored, missing = set(), set(), []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        stored, loaded = names(cell)
        if SOLUTIONS_ONLY in _tags(cell):
            only_there |= stored - visible_stored
        else:
            missing += sorted((loaded & only_there) - visible_stored - stored)
            visible_stored |= stored
    assert not missing, missing


def _helper_text_outside_regions(path):
    from coursetools.regions import find_regions
    from coursetools.release import stub_lines

    lines = (ROOT / "helpers" / path).read_text().splitlines()
    return "\n".join(stub_lines(lines, find_regions(lines, path), "part")[0])


@pytest.mark.parametrize("path, phrases", [
    ("models.py", ["1 / fan_in", "1/fan_in", "input_mult / fan_in", "W_init / c_l", "/ c_l"]),
    ("mup_multipliers.py", ["1 / fan_in", "1/fan_in", "input_mult / fan_in", "W_init / c_l", "/ c_l", "/ multiplier"]),
    ("mup_lr.py", ["/ fan_in", "input_mult / fan_in", "sqrt(fan_in)", "shape[1]"]),
    ("orthogonal_updates.py", ["sqrt(fan_out / fan_in)", "max(1", "sqrt(max(", "full_matrices=False",
                               "min(fan_out, fan_in)"]),
    ("optimizers.py", ["sqrt(fan_out / fan_in)", "min(fan_out, fan_in)", "spectral norm exactly"]),
    ("norms.py", ["sqrt(fan_in / fan_out)", "sqrt(fan_in/fan_out)", "not an induced", "cannot explain"]),
])
def test_helper_docstrings_give_no_answer_away(path, phrases):
    text = _normal(_helper_text_outside_regions(path))
    assert not [p for p in phrases if _normal(p) in text]


def test_simple_adam_mup_docstring_gives_no_rule_away():
    text = _helper_text_outside_regions("optimizers.py")
    start = text.index("class SimpleAdamMuP")
    body = _normal(text[start:text.index("\ndef ", start)])
    assert not [p for p in ("/ fan_in", "input_mult / fan_in", "sqrt(fan_in)") if _normal(p) in body]


# ---------------------------------------------------------------- the helpers behind these answers
def _sweep(label, losses, lrs=(0.1, 1.0)):
    from helpers.experiments import SweepResult

    losses = np.asarray(losses, dtype=float)
    return SweepResult(label, np.array([8, 64]), np.array(lrs), (4, 5, 6), losses)


def test_compare_best_losses_pairs_the_seeds_at_each_sweeps_best_rate():
    from helpers.experiments import compare_best_losses

    # losses[seed, width, lr]: "a" is best at lr 1 everywhere; "b" at lr 0.1
    a = _sweep("a", [[[2.0, 1.00], [2.0, 0.50]], [[2.0, 1.10], [2.0, 0.70]], [[2.0, 1.20], [2.0, 0.60]]])
    b = _sweep("b", [[[0.90, 2.0], [0.40, 2.0]], [[1.00, 2.0], [0.80, 2.0]], [[1.10, 2.0], [0.55, 2.0]]])
    result = compare_best_losses(a, b)
    assert result.losses.shape == (2, 3, 2)
    assert result.losses[0, :, 0].tolist() == [1.0, 1.1, 1.2] and result.losses[0, :, 1].tolist() == [0.9, 1.0, 1.1]
    assert result.winners == ["b", None]  # width 64: b is lower on two seeds of three only
    assert result.widths_won_by("b") == [8] and result.widths_won_by(None) == [64]
    assert "no clear winner" in result.table()
    narrower = type(a)("c", np.array([8]), a.lrs, a.seeds, a.losses[:, :1])
    with pytest.raises(ValueError, match="share widths and seeds"):
        compare_best_losses(a, narrower)


def test_scaled_mlp_readout_multiplier():
    import torch

    from helpers.models import MLP, ScaledMLP

    torch.manual_seed(0)
    plain = MLP(hidden_sizes=(16, 32), bias=False)
    torch.manual_seed(0)
    scaled = ScaledMLP(hidden_sizes=(16, 32), output_mult=0.0015)
    assert scaled.multipliers[-1] == 0.0015 and ScaledMLP(hidden_sizes=(16, 32)).multipliers[-1] == 1.0
    x = torch.rand(4, 784)
    assert torch.allclose(plain(x)[0], scaled(x)[0], atol=1e-5)  # the same function at init
    for bad in (0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="output_mult"):
            ScaledMLP(hidden_sizes=(16, 32), output_mult=bad)


def test_monte_carlo_standard_errors():
    from helpers.theory import init_rms_squared, signgd_rms, signgd_rms_squared

    mean, error = init_rms_squared(16, 8, trials=400, seed=0, stderr=True)
    assert mean == init_rms_squared(16, 8, trials=400, seed=0) and 0 < error < 0.1 * mean
    mean, error = signgd_rms_squared(16, 8, trials=400, seed=0, stderr=True)
    assert mean == signgd_rms_squared(16, 8, trials=400, seed=0) and 0 < error < 0.1 * mean
    # E[RMS(y')] from the same draws: its square is at most E[RMS(y')^2] (Jensen), close to it here
    rms, rms_error = signgd_rms(16, 8, trials=400, seed=0, stderr=True)
    assert rms == signgd_rms(16, 8, trials=400, seed=0) and 0 < rms_error < 0.1 * rms
    assert rms ** 2 <= mean < 1.1 * rms ** 2
