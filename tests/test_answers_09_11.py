"""What notebooks 09-11 print and record at full size: each answer the prose relies on is
checked here against the run that the student sees (one execution per test run, see conftest).
Verdicts are recomputed from the recorded raw numbers (09 and 10: with the t-test redone from a printed
t table); 09's and 10's outcomes are not pinned, since they depend on the validation images."""

import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from helpers.research import ZI_BC_VARIANTS, AblationTable, claim_parts, versus_reference
from helpers.verdicts import clear_winner

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
RESEARCH = ("09_adam_bias_correction", "10_epsilon_schedules", "11_muon_linear_regression")


@pytest.mark.parametrize("name", RESEARCH)
def test_research_notebooks_cite_no_source_document(name):
    """Students never see the source documents: no file names, no "the notes", no "worked answer"."""
    text = "\n".join(cell.source for cell in nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells)
    assert not re.search(r"00[0-4]_", text), name
    for phrase in ("the notes", "research notes", "worked answer", "Table 6.1", "student's attempt"):
        assert phrase.lower() not in text.lower(), (name, phrase)


# ----------------------------------------------------------------------------------------------- 09
def _section(stdout: str, start: str, end: str | None = None) -> str:
    """The printed text from ``start`` up to the next ``end`` (or the end)."""
    tail = stdout[stdout.index(start) + len(start):]
    return tail[: tail.index(end)] if end and end in tail else tail


def test_09_first_step_factors(executed_notebooks):
    answers = executed_notebooks["09_adam_bias_correction"].answers
    assert answers["first_step_max_relative_gap"] < 1e-6 and answers["first_step_within_rounding"]
    factors = answers["first_step_factors"]
    assert factors["(0.9, 0.999)|ZI, no BC"] == pytest.approx(0.1 / math.sqrt(0.001))
    assert factors["(0.9, 0.999)|BC, no ZI"] == pytest.approx(math.sqrt(0.001) / 0.1)
    assert factors["(0.95, 0.95)|BC, no ZI"] == pytest.approx(math.sqrt(0.05) / 0.05)


def test_09_how_long_a_factor_lasts(executed_notebooks):
    """The large early step of "BC, no ZI" holds for (0.95, 0.95), not (0.9, 0.999), where it is a
    small step for the whole run; with b2 = 0.999 no mixed variant comes within 10% of Adam's step
    during the 300-step run (1 / (1 - b2) = 1000 steps is longer than the run)."""
    answers = executed_notebooks["09_adam_bias_correction"].answers
    persistence, steps = answers["persistence"], answers["steps"]
    assert persistence["(0.95, 0.95)|BC, no ZI"]["at"]["1"] == pytest.approx(math.sqrt(0.05) / 0.05)
    assert persistence["(0.9, 0.999)|BC, no ZI"]["run_max"] < 1
    assert persistence["(0.9, 0.999)|ZI, no BC"]["run_min"] > 1
    for variant in ("ZI, no BC", "BC, no ZI"):
        assert persistence[f"(0.9, 0.999)|{variant}"]["settled"] > steps
        assert persistence[f"(0.95, 0.95)|{variant}"]["settled"] <= steps
    for variant in ("ZI+BC (Adam)", "no BC, no ZI"):
        assert persistence[f"(0.9, 0.999)|{variant}"]["settled"] == 1


# Student's t quantiles from a printed table (t_{0.975, df}, t_{0.8, df}): the tests recompute the detection
# threshold and the smallest detectable effect without the helpers' own quantile function.
T_TABLE = {2: (4.303, 1.061), 3: (3.182, 0.978), 4: (2.776, 0.941), 5: (2.571, 0.920), 6: (2.447, 0.906),
           7: (2.365, 0.896), 8: (2.306, 0.889), 9: (2.262, 0.883)}
# Bonferroni: t_{1 - 0.05 / (2 m), df} for m tests per table (09: 5 tests, 6 seeds; 10: 4 tests, 3 seeds;
# df 2 in closed form: t^2 = 2 a^2 / (1 - a^2), a = 2p - 1).
T_BONFERRONI = {(5, 5): 4.032, (4, 2): 8.860}
SOLUTIONS_ONLY = "solutions-only"


def _check_several_tests(comparisons, recorded, section):
    """The table's tests, each at 5% uncorrected: which detections survive the Bonferroni level,
    recomputed from |mean| / se against the t table, and the printed line that says so."""
    m, n = len(comparisons), next(iter(comparisons.values())).n
    corrected_t = T_BONFERRONI[(m, n - 1)]
    t = {name: abs(c.mean) / c.se for name, c in comparisons.items()}
    marginal = [name for name, c in comparisons.items() if c.detected and t[name] <= corrected_t]
    kept = [name for name, c in comparisons.items() if c.detected and t[name] > corrected_t]
    assert recorded["marginal"] == marginal and recorded["corrected"] == kept
    assert recorded["t_corrected"] == pytest.approx([corrected_t] * m, abs=1e-3)
    assert f"{m} tests in this table, each at 5% with no correction for their number" in section
    assert (f"still detected: {', '.join(f'{k} (|t| = {t[k]:.2f})' for k in kept) or 'none'}; marginal (detected only "
            f"without the correction): {', '.join(f'{k} (|t| = {t[k]:.2f})' for k in marginal) or 'none'}") in section


def _check_comparison(comparison, per_seed, line):
    """One printed verdict against the raw per-seed differences: the paired t-test at 5% and the
    smallest detectable effect (t_0.975 + t_0.8) * se, recomputed here; the wording of the line."""
    per_seed = np.asarray(per_seed, dtype=float)
    n = len(per_seed)
    se = per_seed.std(ddof=1) / math.sqrt(n)
    two_sided, power = T_TABLE[n - 1]
    assert comparison.per_seed == pytest.approx(per_seed.tolist(), abs=1e-12)
    assert comparison.detectable == pytest.approx((two_sided + power) * se, rel=2e-3)
    assert comparison.detected == (abs(per_seed.mean()) > two_sided * se)
    assert f"{per_seed.mean():+.3f} +- {se:.3f}: " in line
    if comparison.detected:
        assert f": detected ({n} seeds), " in line and "not detected" not in line
    else:
        assert (f": not detected with {n} seeds; smallest detectable effect {comparison.detectable:.3f} "
                "(80% power, two-sided 5% test)") in line


def _verdicts_only_in_solutions_only_cells(run, words=("detected", "barely matters")):
    """Every cell that prints a verdict is tagged solutions-only: the student's cells print measurements."""
    for index, cell in enumerate(run.notebook.cells):
        if cell.cell_type != "code":
            continue
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        if any(word in text for word in words):
            assert SOLUTIONS_ONLY in cell.metadata.get("tags", []), (run.name, index, text[:200])


def test_09_ablation_verdicts_follow_the_recorded_losses(executed_notebooks):
    """Each variant's rate is chosen on seeds other than those compared; the simple effects and the
    interaction, their "detected" / "not detected with n seeds; smallest detectable effect" lines and
    the claim's parts are recomputed from the recorded losses."""
    run = executed_notebooks["09_adam_bias_correction"]
    answers, stdout = run.answers, run.stdout
    choose_on, compare_on = answers["choose_on"], answers["compare_on"]
    assert not set(choose_on) & set(compare_on) and len(compare_on) >= 4
    for key, recorded in answers["ablation"].items():
        betas = tuple(float(b) for b in key.strip("()").split(","))
        table = AblationTable.from_record(betas, answers["width"], answers["steps"], recorded)
        grid, compared = np.array(recorded["grid"]), np.array(recorded["compared"])
        variants = recorded["variants"]
        assert recorded["choose_on"] == choose_on and recorded["compare_on"] == compare_on
        assert grid.shape == (4, len(choose_on), len(recorded["lrs"])) and compared.shape == (len(compare_on), 4)
        # the rates: the lowest mean over the seeds that choose (recomputed), not over the compared seeds
        assert table.chosen_lrs == recorded["chosen_lr"]
        assert recorded["chosen_lr"] == [recorded["lrs"][int(np.argmin(grid[v].mean(axis=0)))] for v in range(4)]
        section = _section(stdout, f"betas {betas}: rates chosen on seeds", "betas (0.95")
        assert f"rates chosen on seeds {', '.join(map(str, choose_on))}, compared on seeds " in stdout
        cell = {ZI_BC_VARIANTS[name]: compared[:, v] for v, name in enumerate(variants)}  # (zi, bc) -> [seed]
        switches = table.switches()
        differences = {("zero init", True): cell[(False, True)] - cell[(True, True)],
                       ("zero init", False): cell[(False, False)] - cell[(True, False)],
                       ("bias correction", True): cell[(True, False)] - cell[(True, True)],
                       ("bias correction", False): cell[(False, False)] - cell[(False, True)]}
        lines = {}
        for (switch, other_on), comparison in switches.simple.items():
            label = f"dropping {switch} {'with' if other_on else 'without'} " + (
                "bias correction" if switch == "zero init" else "zero init")
            line = f"  {label:<46} {comparison.describe('raises the loss', 'lowers the loss')}"
            assert line in section
            _check_comparison(comparison, differences[(switch, other_on)], line)
            lines[label] = comparison
        interaction = differences[("zero init", False)] - differences[("zero init", True)]
        bias_correction = differences[("bias correction", False)] - differences[("bias correction", True)]
        assert interaction == pytest.approx(bias_correction)
        line = f"  {'interaction of zero init and bias correction':<46} " + switches.interaction.describe(
            "each drop costs more when the other switch is off", "each drop costs less when the other switch is off")
        assert line in section
        _check_comparison(switches.interaction, interaction, line)
        conclusion = answers["conclusions"][key]
        for label, comparison in list(lines.items()) + [("interaction of zero init and bias correction",
                                                         switches.interaction)]:
            recorded_comparison = conclusion["switches"][label]
            assert recorded_comparison["detected"] == comparison.detected
            assert recorded_comparison["detectable"] == pytest.approx(comparison.detectable)
        assert conclusion["winner"] == table.winner()
        assert f"  best variant on every seed: {table.winner() or 'no clear winner'}" in section
        claim = claim_parts(switches, matters="zero init", barely="bias correction")
        for part, (status, sentence) in claim.items():
            assert f"  '{part}': {sentence}" in section
            assert conclusion["claim"][part] == [status, sentence]
        # the claim's second part is never confirmed: contradicted where detected, otherwise not shown
        barely = [lines[f"dropping bias correction {w} zero init"].detected for w in ("with", "without")]
        assert claim["bias correction barely matters"][0] == ("contradicted" if any(barely) else "not shown")
        assert conclusion["chosen_lr_at_grid_edge"] == table.lr_at_grid_edge()
        _check_several_tests({**lines, "interaction of zero init and bias correction": switches.interaction},
                             conclusion["several_tests"], section)
    # no printed line reads a comparison that detects nothing as an absence
    for line in stdout.splitlines():
        assert "within the noise" not in line and "holds on this run" not in line
        if "barely" in line:
            assert re.match(r"\s*'bias correction barely matters': (contradicted|not shown \(a difference test)", line)
    _verdicts_only_in_solutions_only_cells(run)
    # the prose's thresholds are those of the number of seeds compared
    n = len(compare_on)
    two_sided, power = T_TABLE[n - 1]
    markdown = " ".join(run.markdown.split())
    assert f"with {n} seeds an effect is *detected* when its mean is more than `t_0.975,{n - 1} = {two_sided:.2f}`" \
        in markdown
    assert f"`(t_0.975,{n - 1} + t_0.8,{n - 1}) = {two_sided + power:.2f}` standard errors" in markdown


def test_09_adam_rate_is_notebook_10s_base_rate_chosen_on_other_seeds(executed_notebooks):
    """Notebook 10 runs at the rate notebook 09 chose for Adam, on the same network (three hidden
    layers of 09's width) with the same budget, and on seeds that did not choose it."""
    answers = executed_notebooks["09_adam_bias_correction"].answers
    schedules = executed_notebooks["10_epsilon_schedules"]
    default = answers["ablation"]["(0.9, 0.999)"]
    assert list(schedules.answers["hiddens"]) == [answers["width"]] * 3 and answers["steps"] == 300
    assert f"same budget (width {answers['width']}, 300 steps)" in " ".join(schedules.markdown.split())
    assert default["chosen_lr"][default["variants"].index("ZI+BC (Adam)")] == schedules.answers["base_lr"]
    assert not set(schedules.answers["seeds"]) & set(answers["choose_on"])


# ----------------------------------------------------------------------------------------------- 10
def test_10_epsilon_schedule_replays_the_lr_schedule(executed_notebooks):
    run = executed_notebooks["10_epsilon_schedules"]
    answers, stdout = run.answers, run.stdout
    assert answers["relative_difference"] < 1e-6 and answers["replays_to_rounding"] and answers["moved"] > 0.1
    low, *_, high = answers["eps_quantiles"]
    assert high / low > 1e6  # per coordinate: one number per step could not match them all
    # the smallest epsilons are coordinates with v_hat = 0, all of them first-layer weights
    assert answers["zero_v_hat"] > 0.01 and answers["zero_v_hat_first_layer"] == 1.0
    assert "float32 rounding (below 10 float32 epsilons)" in stdout


def test_10_schedule_verdicts_follow_the_recorded_losses(executed_notebooks):
    """Each schedule against the constant rate: "detected" or "not detected with 3 seeds" with the
    smallest detectable effect, recomputed from the recorded final losses."""
    run = executed_notebooks["10_epsilon_schedules"]
    answers, stdout = run.answers, run.stdout
    values, names = np.array(answers["per_seed_final"]), answers["schedules"]
    n = len(answers["seeds"])
    assert values.shape == (n, len(names)) and names[0] == "constant lr"
    assert answers["winner"] == clear_winner(values, names)
    assert f"lowest on every seed: {answers['winner'] or 'no clear winner'}" in stdout
    versus = versus_reference(values, names, "constant lr")
    for j, name in enumerate(names[1:], start=1):
        comparison = versus[name]
        line = f"{name:>26} - constant lr: " + comparison.describe("higher than the constant rate",
                                                                   "lower than the constant rate")
        assert line in stdout
        _check_comparison(comparison, values[:, j] - values[:, 0], line)
        assert answers["versus_constant"][name]["detected"] == comparison.detected
        assert answers["versus_constant"][name]["detectable"] == pytest.approx(comparison.detectable)
    lower = [name for name, c in versus.items() if c.direction < 0]
    higher = [name for name, c in versus.items() if c.direction > 0]
    assert answers["lower_than_constant"] == lower and answers["higher_than_constant"] == higher
    assert (f"detected lower than the constant rate: {', '.join(lower) or 'none'}; "
            f"detected higher: {', '.join(higher) or 'none'}") in stdout
    assert "within the noise" not in stdout and "beyond the noise" not in stdout
    _verdicts_only_in_solutions_only_cells(run)
    two_sided, power = T_TABLE[n - 1]
    markdown = " ".join(run.markdown.split())
    assert f"`t_0.975,{n - 1} = {two_sided:.2f}` standard errors" in markdown
    assert f"`(t_0.975,{n - 1} + t_0.8,{n - 1}) = {two_sided + power:.2f}` standard errors" in markdown
    assert set(answers["eps_above"]) == set(names[2:]) == set(answers["eps_far_above"])
    _check_several_tests(versus, answers["several_tests"], _section(stdout, "detected lower than the constant rate"))
    for name in names[2:]:  # eps > 10 sqrt(v_hat) implies eps > sqrt(v_hat); the line gives both shares
        above, far = answers["eps_above"][name], answers["eps_far_above"][name]
        assert 0 <= far <= above <= 1
        assert (f"{name:>26}: final loss" in stdout and f"eps_max > sqrt(v_hat) (step above half of momentum SGD's at "
                f"lr / eps_max) on {above:.0%} of coordinates, eps_max > 10 sqrt(v_hat) (within 10% of it) on "
                f"{far:.0%}") in stdout
    assert "turns Adam into momentum SGD" not in markdown


# ----------------------------------------------------------------------------------------------- 11
def test_11_gradient(executed_notebooks):
    answers = executed_notebooks["11_muon_linear_regression"].answers
    assert answers["gradient_gap"] < 1e-12 and answers["gradient_at_solution"] < 1e-8
    assert answers["gradient_spread"] > 10 and answers["ns_spread"] < answers["gradient_spread"] / 10


def test_11_words_about_ns_singular_values_follow_the_printed_numbers(executed_notebooks):
    """The text once said "a narrow range around 1" beside a printed range [0.32, 1.20]: the words are
    now printed from the run, and the band is notebook 07's 5-step band, recomputed here."""
    from helpers.orthogonal_updates import QUINTIC
    from helpers.orthogonalization import quintic_band

    run = executed_notebooks["11_muon_linear_regression"]
    answers, stdout = run.answers, run.stdout
    band = quintic_band(QUINTIC, steps=5)["after"]
    assert answers["ns_band_07"] == pytest.approx(list(band))
    low, high = answers["ns_range"]
    share = answers["ns_in_band_share"]
    assert 0 <= share <= 1
    assert ("the smallest lie below it" in stdout) == (low < band[0])
    assert ("the largest lie above it" in stdout) == (high > band[1])
    if low < band[0] or high > band[1]:  # some value outside the band: the share cannot be all
        assert share < 1 and "not all in the band: " in stdout
    else:
        assert share == 1 and "all in the band around 1" in stdout
    assert f"NS(G_t): singular values in [{low:.2f}, {high:.2f}]" in stdout
    assert f"{share:.0%}" in stdout
    markdown = " ".join(run.markdown.split())
    assert "narrow range around 1" not in markdown


def test_11_muon_first_step_has_the_rms_norm_of_the_map_as_used(executed_notebooks):
    """W is used as x -> x @ W (fan-in d+1, fan-out D): Muon's first step has RMS->RMS norm
    lr * s_max(NS(G)) for that map. Handing Muon W itself (the old code) is off by (d+1)/D."""
    first = executed_notebooks["11_muon_linear_regression"].answers["muon_first_step"]
    assert set(first) == {"50:20", "20:50"}
    for shape, ratios in first.items():
        assert ratios["W^T"] == pytest.approx(1.0, abs=1e-4), shape
        assert ratios["W"] == pytest.approx(ratios["expected_shortcut"], rel=1e-4), shape
        assert abs(ratios["expected_shortcut"] - 1) > 0.5


def test_11_winners_are_clear_on_every_seed(executed_notebooks):
    run = executed_notebooks["11_muon_linear_regression"]
    answers, stdout = run.answers, run.stdout
    rows = answers["comparison"]
    assert len(rows) == 8 and "AdamW" not in stdout
    for row in rows:
        assert row["optimizers"] == ["SGD", "Adam", "Muon"] and len(row["seeds"]) >= 3
        finals, floors = np.array(row["finals"]), np.array(row["floors"])
        assert row["winner"] == clear_winner(np.maximum(finals, floors[:, None]), row["optimizers"])
        exact = [n for n, ok in zip(row["optimizers"], (finals <= floors[:, None]).all(axis=0)) if ok]
        assert row["at_float32_precision"] == exact
        assert row["lr_at_grid_edge"] == []  # no chosen rate is cut off by the grid
        assert f"{row['setting']:>38}: {row['winner'] or 'no clear winner'}" in stdout
    by_case = {(r["condition"], r["batch_size"]): [] for r in rows}
    for row in rows:
        by_case[(row["condition"], row["batch_size"])].append(row)
    # well conditioned, full batch: SGD and Adam both end within float32 rounding of W_ls: a tie, no winner
    for row in by_case[(1, None)]:
        assert row["winner"] is None and {"SGD", "Adam"} <= set(row["at_float32_precision"])
    for row in by_case[(100, None)]:  # ill-conditioned, full batch: Muon on every seed
        assert row["winner"] == "Muon"
    conclusion = answers["conclusion"]
    assert conclusion["ill-conditioned, full batch"]["muon_wins"] == 2
    assert conclusion["well-conditioned, full batch"]["winners"] == [None, None]
    for summary in conclusion.values():
        assert summary["muon_wins"] == sum(w == "Muon" for w in summary["winners"])


def test_11_mechanisms_are_called_hypotheses():
    """The run shows the spread of NS(G_t)'s singular values and where Muon wins, not why it wins:
    the whitening and the sampling-noise explanations are hypotheses, each named as one."""
    cells = nbformat.read(NOTEBOOKS / "11_muon_linear_regression.ipynb", as_version=4).cells
    answer = " ".join(" ".join(c.source for c in cells if "answer" in c.metadata.get("tags", [])
                               and "whitening" in c.source).split())
    assert "our hypothesis is that Muon's advantage comes from whitening" in answer
    assert "a second hypothesis (not tested here either): the weak directions of `G_t` are partly sampling noise" \
        in answer
    assert "advantage is its whitening" not in answer
