"""What notebooks 06-08 print and record at full size: each conclusion their prose relies on is
checked here against the run that the student sees (one execution per test run, see conftest),
and their student-visible text is checked for the bonus answer and for source citations."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("06_shampoo_orthogonalization", "07_muon_newton_schulz", "08_muon_training")


# ---------------------------------------------------------------- 06
def test_06_shampoo_is_u_v_t_on_the_gradients_rank(executed_notebooks):
    """L^{-1/4} G R^{-1/4} from one gradient is U_r V_r^T; the reduced SVD adds rounding directions."""
    answers = executed_notebooks["06_shampoo_orthogonalization"].answers
    rank, min_dim = answers["lecture_rank"], answers["lecture_min_dim"]
    assert 1 <= rank < min_dim / 10  # the 256x256 gradient has few directions above rounding
    assert answers["lecture_units"] == rank and answers["lecture_others"] < 1e-6
    assert answers["lecture_shampoo_gap"] < 1e-3
    assert answers["lecture_extra_directions"] == pytest.approx(min_dim - rank, abs=0.1)
    # Below the 1e-6 cut-off: "tiny or rounding". float64 finds a few more real directions (above 1e-12), never
    # more than the 64 images allow, and the rest are zero up to rounding.
    counts = answers["lecture_float64_counts"]
    assert counts["1e-06"] == rank and counts["1e-12"] <= 64 and counts["1e-12"] < min_dim
    assert answers["lecture_tiny_real_directions"] == counts["1e-12"] - rank
    run = executed_notebooks["06_shampoo_orthogonalization"]
    assert (f"in float64, {counts['1e-12'] - rank} are tiny but real (above 1e-12) and "
            f"{min_dim - counts['1e-12']} are zero up to rounding") in run.stdout
    text = "".join(c.source for c in run.notebook.cells)
    assert "at the level of float32 rounding" not in text
    assert "arbitrary orthonormal vectors chosen by float" not in text


def test_06_norms_say_what_the_update_really_is(executed_notebooks):
    run = executed_notebooks["06_shampoo_orthogonalization"]
    answers, stdout = run.answers, run.stdout
    shapes = [tuple(s) for s in answers["shapes"]]
    ranks = answers["gradient_ranks"]
    assert ranks["float32"] == ranks["float64"] and answers["ranks_agree"] is True
    assert "float32 and float64 find the same rank in every layer: True" in stdout
    for spectral, ratio, shape in zip(answers["shampoo_spectral"], answers["shampoo_frobenius_over_spectral"], shapes):
        assert spectral == pytest.approx(0.01, rel=1e-4)
        assert ratio == pytest.approx(math.sqrt(min(shape)), rel=1e-3)
    for spectral, ratio, rank in zip(answers["rank_shampoo_spectral"], answers["rank_shampoo_frobenius_over_spectral"],
                                     ranks["float32"]):
        assert spectral == pytest.approx(0.01, rel=1e-4)
        assert ratio == pytest.approx(math.sqrt(rank), rel=1e-3)
    assert answers["full_is_min_dim"] is True and answers["rank_is_rank"] is True
    # "nearly all of it in the layers with 64 or more rows and columns"
    share = np.array(answers["rounding_share"])
    large = np.array([min(shape) >= 64 for shape in shapes])
    assert large.any() and (share[large] > 0.8).all()
    assert share == pytest.approx(1 - np.array(ranks["float32"]) / np.array([min(s) for s in shapes]))
    # Adam: hidden-layer ratios close to 1, the input layer the exception
    adam = np.array(answers["adam_frobenius_over_spectral"])
    assert (adam[1:-1] < 1.1).all() and adam[0] > 1.3


def test_06_bonus_and_its_tempting_rules(executed_notebooks):
    run = executed_notebooks["06_shampoo_orthogonalization"]
    answers = run.answers
    assert answers["scaled_spread"] == pytest.approx(1.0, abs=1e-4)
    assert answers["scaled_rank_spread"] == pytest.approx(1.0, abs=1e-4)
    norms = answers["scaled_rms_to_rms"] + answers["scaled_rank_rms_to_rms"]
    assert all(r == pytest.approx(0.01, rel=1e-4) for r in norms)
    assert answers["plain_spread"] > 10
    # 1/RMS and 1/||.||_F are two rules, both far from equal RMS->RMS norms
    spreads = answers["tempting_rule_spread"]
    assert set(spreads) == {"1/RMS(U V^T)", "1/||U V^T||_F"} and min(spreads.values()) > 10
    # the activations: even, and the same by both routes
    assert answers["route_delta_difference"] < 1e-3
    assert answers["scaled_shampoo_delta_spread"] < 1.5 and answers["rank_delta_spread"] < 1.5
    # ... on held-out images as well ("on the batch that made the gradient and on held-out images alike"),
    # and the two stepped networks' activations, compared directly, differ by a small fraction of the delta,
    # as small on held-out images as on the batch
    held_out = answers["held_out_routes"]
    assert held_out["difference"] < 1e-3 and held_out["svd_spread"] < 1.5 and held_out["rank_spread"] < 1.5
    gap = answers["route_activation_gap"]
    assert gap["batch"] < 0.01 and gap["held_out"] < 0.01 and gap["held_out"] < 1.5 * gap["batch"]
    assert f"{gap['held_out']:.1e} on held-out images" in run.stdout
    # Why held-out images cannot discriminate here: at init the activations barely depend on the image (about 1%
    # of their RMS at the first activation, less deeper), so held-out and batch deltas differ by almost nothing.
    spread = answers["spread_across_images"]
    for name in ("batch", "held_out"):
        assert 0.005 < spread[name][0] < 0.02 and all(np.diff(spread[name]) < 0)
    assert np.max(np.abs(answers["held_minus_batch"])) < 1e-5  # the deltas are about 1.4e-3
    # the deltas are a fraction of the step's RMS->RMS norm (0.01 in every layer)
    assert all(0.05 < r < 0.25 for r in answers["delta_over_norm"])
    text = "".join(c.source for c in run.notebook.cells)
    assert "how\nclose this batch comes to that bound" not in text and "images the gradient never saw:" not in text


# ---------------------------------------------------------------- 07
def test_07_u_v_t_solves_spectral_steepest_descent(executed_notebooks):
    run = executed_notebooks["07_muon_newton_schulz"]
    steepest = run.answers["steepest"]
    assert steepest["inner"] == pytest.approx(steepest["nuclear"], rel=1e-12)
    assert steepest["best_trial"] < steepest["inner"] and run.answers["steepest_beaten"] is False
    families = steepest["families"]
    assert {"Gaussian", "sign(G)", "G"} <= set(families) and len(families) >= 5
    assert max(families.values()) == steepest["best_trial"]
    assert "no trial of spectral norm 1 beats U V^T" in run.stdout


def test_07_cubic_step_count_is_printed(executed_notebooks):
    """"where the cubic needs the number of steps printed above": recomputed from the scalar map."""
    from helpers.orthogonal_updates import CUBIC
    from helpers.orthogonalization import lift_threshold, polynomial_map, steps_to_lift

    run = executed_notebooks["07_muon_newton_schulz"]
    answers = run.answers
    low, threshold = answers["quintic_band"][0], answers["five_step_threshold"]
    steps = answers["cubic_steps_from_quintic_threshold"]
    assert steps == steps_to_lift(CUBIC, threshold, low) and steps > 5
    value = threshold
    for _ in range(steps - 1):
        value = polynomial_map(CUBIC, value)
    assert value < low <= polynomial_map(CUBIC, value)
    assert answers["cubic_five_step_threshold"] == pytest.approx(lift_threshold(CUBIC, low, 5))
    assert answers["cubic_five_step_threshold"] > 10 * threshold
    assert f"from {threshold:.4f} it needs {steps} steps" in run.stdout
    text = "".join(c.source for c in run.notebook.cells)
    assert "many more" not in text and "||G||_*" not in text and "||G||_nuc" in text


def test_07_quintic_band_has_both_ends(executed_notebooks):
    run = executed_notebooks["07_muon_newton_schulz"]
    answers, stdout = run.answers, run.stdout
    assert answers["commute_error"] < 1e-12
    assert answers["cubic_divergent_starts"] == [2.5]  # only the start above sqrt(3) that escapes
    assert answers["quintic_p_of_one"] == pytest.approx(0.701, abs=1e-9)
    low, high = answers["quintic_band"]
    assert 0.6 <= low < 0.7 and 1.1 < high < 1.15
    assert answers["quintic_peak"][1] == pytest.approx(1.2024, abs=1e-3)
    after_low, after_high = answers["five_step_range"]
    assert after_low >= low - 1e-9
    assert after_high > high  # values above the settled band occur after 5 steps
    assert answers["five_step_threshold"] < 0.01
    assert f"p(1) = {answers['quintic_p_of_one']:.4f}" in stdout
    assert f"lies in [{after_low:.3f}, {after_high:.3f}]: above the settled band's top" in stdout


def test_07_real_gradient_has_a_spread_spectrum_and_follows_the_map(executed_notebooks):
    run = executed_notebooks["07_muon_newton_schulz"]
    answers, stdout = run.answers, run.stdout
    initial = np.array(answers["gradient_initial"])
    rank = answers["gradient_rank"]
    assert 32 <= rank <= 64 < len(initial)  # at most the batch size: empty directions remain
    assert (initial > 0.1).sum() >= 3 and (initial > 1e-2).sum() >= 8  # not numerically rank one
    assert answers["follows_map"] is True
    counts, predicted = answers["in_range_counts"], answers["in_range_predicted"]
    assert counts["float32"] == predicted
    assert counts["float32"][5] < rank  # 5 steps do not lift the whole spectrum
    assert max(answers["float32_rounding"][:6]) < 1e-4 and answers["bfloat16_rounding"][0] > 1e-3
    exceeds = answers["bfloat16_exceeds_rank"]
    assert exceeds and min(exceeds) > 5 and max(counts["float32"]) <= rank
    assert answers["bfloat16_outside"][5] > 100 * answers["float32_outside"][5]
    assert "float32 has the scalar map's count after every number of steps: True" in stdout


def test_07_low_precision_survey_spans_seeds_and_layers_and_its_summary_is_recomputed(executed_notebooks):
    """"Low precision needs few steps" was drawn from one gradient: it is now a survey of every layer's
    gradient over several seeds, and its printed summary is recomputed here from the per-gradient rows."""
    run = executed_notebooks["07_muon_newton_schulz"]
    answers, stdout = run.answers, run.stdout
    rows = answers["survey"]
    assert len(answers["survey_seeds"]) >= 3 and len({row["seed"] for row in rows}) == len(answers["survey_seeds"])
    assert len({tuple(row["shape"]) for row in rows}) >= 3  # several shapes: input, hidden, readout
    for row in rows:
        counts, rank = row["counts"], row["rank"]
        assert rank <= min(row["shape"]) and max(counts["float32"]) <= rank  # float32 never exceeds the rank
        exceeding = [k for k, count in enumerate(counts["bfloat16"]) if count > rank]
        assert row["first_exceeding"] == (exceeding[0] if exceeding else None)
        if tuple(row["shape"])[0] == 10:  # the readout: the softmax gradient sums to 0 over the classes
            assert rank <= 9
    firsts = [row["first_exceeding"] for row in rows]
    reached = [first for first in firsts if first is not None]
    assert answers["survey_within_five"] == sum(first is not None and first <= 5 for first in firsts)
    assert answers["survey_reached"] == len(reached)
    assert answers["survey_first_range"] == ([min(reached), max(reached)] if reached else None)
    bf16 = [row["outside"]["bfloat16"] for row in rows]
    f32 = [row["outside"]["float32"] for row in rows]
    assert answers["survey_outside_bfloat16"] == pytest.approx([min(bf16), max(bf16)])
    assert answers["survey_outside_float32"] == pytest.approx([min(f32), max(f32)])
    assert f"within 5 steps in {answers['survey_within_five']}; within" in stdout
    # the prose states no rule from the one gradient; it points at the survey and calls the rest a hypothesis
    prose = " ".join(run.markdown.split())
    assert "Low precision needs few steps on a rank-deficient matrix." not in prose
    assert "survey" in prose and "hypothesis" in prose


def test_07_timing_verdicts_follow_the_measurement(executed_notebooks):
    from helpers.orthogonalization import speed_verdicts

    run = executed_notebooks["07_muon_newton_schulz"]
    timing = run.answers["timing"]
    assert len(timing["sizes"]) == len(timing["svd"]) == len(timing["newton_schulz"]) >= 3
    assert all(t > 0 for t in timing["svd"] + timing["newton_schulz"])
    assert run.answers["speed_verdicts"] == speed_verdicts(timing)
    for verdict in run.answers["speed_verdicts"]:
        assert f": {verdict}" in run.stdout


# ---------------------------------------------------------------- 08
def test_08_every_pair_is_one_paired_comparison_on_seeds_that_did_not_choose_the_rates(executed_notebooks):
    from helpers.verdicts import ALPHA, choose_rates, paired_comparison

    run = executed_notebooks["08_muon_training"]
    answers, stdout = run.answers, run.stdout
    names, losses = answers["comparison_names"], np.array(answers["comparison_losses"])
    choose_on, compare_on = answers["choose_on"], answers["compare_on"]
    assert not set(choose_on) & set(compare_on) and len(choose_on) >= 2
    assert losses.shape == (len(compare_on), len(names)) and len(compare_on) >= 3
    assert {"Shampoo", "Shampoo (rank)", "Muon + Adam"} <= set(names)
    for name in names:  # each rate is the lowest mean on the choosing seeds
        choice = np.array(answers["comparison_choice_losses"][name])
        assert choice.shape == (len(choose_on), len(answers["comparison_lrs"][name]))
        k = int(choose_rates(choice[None])[0])
        assert answers["comparison_best_lr"][name] == pytest.approx(answers["comparison_lrs"][name][k])
    assert not any(answers["comparison_at_edge"].values())  # every chosen rate inside its grid
    # one rule for every pair: a paired comparison, recomputed here, printed with its verdict
    pairs = answers["comparison_pairs"]
    assert len(pairs) == len(names) * (len(names) - 1) // 2
    for pair in pairs:
        i, j = names.index(pair["first"]), names.index(pair["second"])
        effect = paired_comparison(losses[:, j] - losses[:, i])
        assert pair["mean"] == pytest.approx(effect.mean) and pair["detected"] == effect.detected
        assert (f"=> {names[j]} minus {names[i]}: " + effect.describe(f"{names[i]} lower", f"{names[j]} lower")
                in stdout)
    assert answers["comparison_family_error"] == pytest.approx(1 - (1 - ALPHA) ** len(pairs))
    assert f"probability {answers['comparison_family_error']:.2f})" in stdout
    assert "lower on every seed" not in stdout and "lowest on every seed" not in stdout
    # the prose ranks nothing itself, states what a non-detection means and calls its explanation a hypothesis
    prose = " ".join(run.markdown.split())
    assert "Which pairs differ beyond the seed noise is printed above" in prose and "hypothesis" in prose
    assert "smallest detectable effect" in prose
    assert "lower on every seed" not in prose and "hold beyond the seed noise" not in prose
    # the one mechanism tested (rounding directions) is a paired comparison, recomputed here
    column = {name: losses[:, j] for j, name in enumerate(names)}
    rounding = paired_comparison(column["Shampoo"] - column["Shampoo (rank)"])
    assert answers["rounding_directions"]["mean"] == pytest.approx(rounding.mean)
    assert answers["rounding_directions"]["detected"] == rounding.detected
    assert ("dropping the rounding directions (Shampoo minus Shampoo (rank), each at its chosen rate, per seed): "
            + rounding.describe("the rank-restricted step lower", "the rank-restricted step higher")) in stdout


def test_08_states_nesterov_momentum_and_measures_it_against_plain(executed_notebooks):
    """The course's Muon uses Nesterov momentum where Muon is often written with plain momentum: the
    student-visible text says so, and a solutions-only cell compares the two, noise-aware, each rate
    chosen on the choosing seeds."""
    from helpers.verdicts import choose_rates, paired_comparison

    run = executed_notebooks["08_muon_training"]
    answers, stdout = run.answers, run.stdout
    visible = " ".join(_student_visible("08_muon_training").split())
    assert "Nesterov momentum by default" in visible and "B_t = mu B_{t-1} + G_t" in visible
    assert "reference implementation" in visible and "a choice of the course's code" not in visible
    names, losses = answers["comparison_names"], np.array(answers["comparison_losses"])
    nesterov = losses[:, names.index("Muon + Adam")]
    choice = np.array(answers["plain_momentum_choice_losses"])
    best = int(choose_rates(choice[None])[0])
    assert answers["plain_momentum_best_lr"] == pytest.approx(answers["comparison_lrs"]["Muon + Adam"][best])
    effect = paired_comparison(np.array(answers["plain_momentum_losses"]) - nesterov)
    assert answers["momentum_effect"]["mean"] == pytest.approx(effect.mean)
    assert effect.describe("Nesterov lower", "plain lower") in stdout
    if not effect.detected:
        assert f"not detected with {len(answers['compare_on'])} seeds; smallest detectable effect" in stdout


def test_08_transfer_verdict_can_fail_and_compares_factors_where_they_differ(executed_notebooks):
    from helpers.verdicts import paired_transfer

    run = executed_notebooks["08_muon_training"]
    answers, stdout = run.answers, run.stdout
    widths = answers["widths"]
    # the hidden matrices are not square: spectral and keller differ on the wide one at every width but the first
    factors = answers["shape_factors"]
    assert all(s[1] < k[1] for s, k in zip(factors["spectral"][1:], factors["keller"][1:]))
    assert factors["moonlight"][-1][0] > 2 * factors["moonlight"][0][0]  # grows with the width
    verdicts = {}
    for scale, losses in answers["sweep_losses"].items():
        lrs = answers["muon_lrs"][scale]
        assert np.allclose(np.diff(np.log2(lrs)), 1)  # factors of 2: grid steps comparable across factors
        losses = np.array(losses)
        assert losses.shape == (len(answers["seeds"]), len(widths), len(lrs))
        verdict = verdicts[scale] = paired_transfer(losses, lrs)
        assert answers["shared_lrs"][scale] == verdict.shared
        assert answers["best_lr"][scale] == pytest.approx(list(verdict.lrs[verdict.best]))
        assert answers["grid_steps"][scale] == int(verdict.best.max() - verdict.best.min())
        assert answers["transfer_tolerance"][scale] == pytest.approx(list(verdict.tolerance))
        assert np.array_equal(np.array(answers["detected_worse"][scale]), verdict.worse)
        # the test can fail: every grid has a rate detected worse than the best at some width
        assert verdict.worse.any() and len(verdict.shared) < len(lrs)
        for w, width in enumerate(widths):  # the tolerance and the test's reach printed per width
            assert f"width {width}: seed spread at the best {verdict.tolerance[w]:.3f}; detected worse: " in stdout
        assert f"=> {scale:>9}: {verdict.describe()}" in stdout
    # the spectral grid reaches far enough on both sides that the test fails a rate at each end
    spectral = answers["muon_lrs"]["spectral"]
    assert not {spectral[0], spectral[-1]} & set(answers["shared_lrs"]["spectral"])
    assert answers["transferring_scales"] == [scale for scale, v in verdicts.items() if v.transfers]
    assert answers["best_at_edge"] == []
    # what the answer says: spectral transfers, its best moving <= 1 grid step; moonlight does not and drifts
    # by several steps; keller drifts down by more than spectral and less than moonlight
    assert "spectral" in answers["transferring_scales"] and answers["grid_steps"]["spectral"] <= 1
    assert "moonlight" not in answers["transferring_scales"] and answers["grid_steps"]["moonlight"] >= 2
    for scale in ("keller", "moonlight"):
        best = answers["best_lr"][scale]
        assert all(a >= b for a, b in zip(best, best[1:])) and best[0] > best[-1]
    assert answers["grid_steps"]["spectral"] < answers["grid_steps"]["keller"] < answers["grid_steps"]["moonlight"]
    assert ("factors with a learning rate not detected worse than the best at any width: "
            f"{answers['transferring_scales']}") in stdout
    assert "may still be worse by up to the smallest detectable effect" in stdout
    # two factors that both transfer are not ranked: the run says it cannot separate them
    transferring = answers["transferring_scales"]
    pairs = [[a, b] for i, a in enumerate(transferring) for b in transferring[i + 1:]]
    assert answers["inseparable_scales"] == pairs
    for a, b in pairs:
        assert f"this run cannot separate {a} from {b}" in stdout
    prose = " ".join(run.markdown.split())
    assert "the run cannot separate them" in prose and "within the seed spread" not in prose


# ---------------------------------------------------------------- the student-visible text of 06-08
def _student_visible(name):
    """Text of every cell the student release keeps, without solution regions and written answers."""
    notebook = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    texts = []
    for cell in notebook["cells"]:
        if {"solutions-only", "answer"} & set(cell.get("metadata", {}).get("tags", [])):  # left out, or the stub
            continue
        source = "".join(cell["source"])
        texts.append(re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", source, flags=re.S))
    return "\n".join(texts)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_text_gives_no_bonus_answer_and_cites_no_source(name):
    text = _student_visible(name)
    squashed = re.sub(r"[\s`*·]", "", text).lower()
    for answer in ("sqrt(fan_out/fan_in)", "sqrt(d_out/d_in)", "sqrt(fan_in/fan_out)", "√(fan_out/fan_in)",
                   "sqrt(fan_out)/sqrt(fan_in)"):
        assert answer not in squashed, f"{name} shows {answer} outside solution regions"
    for citation in ("worked answer", "student's attempt", "000_", "001_", "002_", "003_", "004_"):
        assert citation not in text.lower(), f"{name} cites {citation!r}"
    assert "gap is much larger" not in text  # 07: an unmeasured claim about GPUs
    assert "about as fast as" not in text  # 08: a ranking that the seeds did not support
