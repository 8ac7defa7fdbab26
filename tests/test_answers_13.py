"""What notebook 13 (written question 3) prints and records: each verdict is recomputed here from the
recorded raw numbers of the one execution (see conftest), not read from a printed line."""

import re

import numpy as np
import pytest

from helpers.verdicts import shared_learning_rates

NAME = "13_mup_papers"


@pytest.fixture(scope="module")
def answers(executed_notebooks):
    return executed_notebooks[NAME].answers


def _slopes(answers, key, name):
    return np.asarray(answers[key][name])  # [seed, layer]: input, hidden, readout


def test_13_figure1_best_rate_moves_under_sp_not_under_mup(answers):
    """Recomputed from the recorded losses: SP's smallest move per doubling (rates within the seeds'
    spread of the best count as best) exceeds TP5's muP's largest."""
    doublings = np.log2(answers["sweep_widths"][-1] / answers["sweep_widths"][0])
    moves = {}
    for key, grid in (("sp_losses", "sp_grid"), ("tp5_losses", "mup_grid")):
        verdict = shared_learning_rates(np.asarray(answers[key]), answers[grid])
        log2 = np.log2(answers[grid])
        narrow, wide = log2[verdict.good[0]], log2[verdict.good[-1]]
        distances = np.abs(wide[:, None] - narrow[None, :]) / doublings
        moves[key] = (distances.min(), distances.max())
    assert moves["sp_losses"][0] > moves["tp5_losses"][1]
    assert answers["sp_moves_more_than_mup"]
    assert np.all(np.diff(np.log2(answers["sp_best_lr"])) < 0)  # SP's best rate falls at every step of width


def test_13_table3_rules_read_off_the_code(answers):
    exponents = answers["rule_exponents"]
    assert exponents["SP"]["Adam lr"]["hidden weights"] == pytest.approx(0, abs=1e-9)
    assert exponents["course muP"]["Adam lr"]["hidden weights"] == pytest.approx(-1, abs=1e-6)
    assert exponents["TP5 muP"]["Adam lr"]["hidden weights"] == pytest.approx(-1, abs=1e-6)
    assert exponents["course muP"]["Adam lr"]["readout weights"] == pytest.approx(0, abs=1e-9)
    assert exponents["TP5 muP"]["Adam lr"]["readout weights"] == pytest.approx(-1, abs=1e-6)
    assert exponents["TP5 muP"]["init variance"]["readout weights"] == pytest.approx(-2, abs=0.05)
    assert exponents["SP"]["init variance"]["readout weights"] == pytest.approx(-1, abs=0.05)
    for name in exponents:
        assert exponents[name]["init variance"]["hidden weights"] == pytest.approx(-1, abs=0.05)
        assert exponents[name]["init variance"]["hidden biases"] == pytest.approx(-1, abs=0.15)  # the erratum
        assert all(v == pytest.approx(0, abs=1e-6) for v in exponents[name]["multiplier"].values())
    assert all(answers["reading_agrees"].values())


def test_13_one_step_deltas_follow_the_rules(answers):
    sp, course, tp5 = (_slopes(answers, "delta_slopes", n).mean(0) for n in ("SP", "course muP", "TP5 muP"))
    assert sp[1] > 0.5 and sp[2] > 0.5  # SP: hidden and readout grow
    assert abs(course[1]) < 0.1 and course[2] > 0.5  # the course's muP: hidden flat, readout grows
    assert abs(tp5[1]) < 0.1 and abs(tp5[2]) < 0.1  # TP5's muP: hidden and readout flat
    # TP5's input layer: the first doubling shrinks, then flat within 5% per doubling (the prose says so)
    ratios = np.asarray(answers["tp5_input_delta"][1:]) / np.asarray(answers["tp5_input_delta"][:-1])
    assert np.all(np.abs(ratios[1:] - 1) < 0.05)
    assert answers["delta_as_predicted"] == {"SP": True, "course muP": True, "TP5 muP": False}


def test_13_spectral_condition_norms(answers):
    weight = ("SP", "course muP", "TP5 muP")
    sp_w = np.asarray(answers["spectral_slopes"]["SP"]["weight_norm"]).mean(0)
    tp5_w = np.asarray(answers["spectral_slopes"]["TP5 muP"]["weight_norm"]).mean(0)
    assert 0.3 < sp_w[2] < 0.6 and abs(tp5_w[2]) < 0.2 and abs(sp_w[1]) < 0.1  # SP readout ~ sqrt(n)
    assert answers["weight_norm_prediction_gap"] < 0.1  # every ||W|| slope follows the random-matrix prediction
    upd = {n: np.asarray(answers["spectral_slopes"][n]["update_norm"]).mean(0) for n in weight}
    assert upd["SP"][1] > 0.9 and upd["SP"][2] > 0.9
    assert abs(upd["course muP"][1]) < 0.1 and upd["course muP"][2] > 0.9
    assert abs(upd["TP5 muP"][1]) < 0.1 and abs(upd["TP5 muP"][2]) < 0.1
    # Adam's first step: ||dW|| about lr * fan_in in the hidden layer and the readout
    for name, ratio in answers["lr_fan_in_ratio"].items():
        assert np.all(np.abs(np.asarray(ratio)[:, 1:] - 1) < 0.1), name
    # the key assumption: updates aligned with their inputs at every width, the SP readout's init not
    for name in weight:
        update = np.asarray(answers["alignment"][name]["update"]).mean(0)
        assert np.all(update[:, 1:] > 0.9)
    assert np.asarray(answers["spectral_slopes"]["SP"]["weight_alignment"]).mean(0)[2] < -0.3
    verdicts = answers["condition_verdicts"]
    assert not verdicts["SP"]["holds"] and not verdicts["course muP"]["holds"] and verdicts["TP5 muP"]["holds"]


def test_13_lower_bounds_alignment_for_updates_aspect_ratio_for_random_weights(executed_notebooks):
    """The random-matrix value 1 / (1 + sqrt(fan_in / fan_out)) is recomputed from the widths; the
    readout's align W falls with its aspect ratio n / 10, the square hidden layer's stays; the updates
    are aligned. The prose states the assumption per matrix and defines ||.||_* as the spectral norm."""
    run = executed_notebooks[NAME]
    answers, stdout = run.answers, run.stdout
    widths = np.asarray(answers["step_widths"], dtype=float)
    fan_in = np.stack([np.full_like(widths, 784), widths, widths], axis=1)
    fan_out = np.stack([widths, widths, np.full_like(widths, 10)], axis=1)
    random_align = 1 / (1 + np.sqrt(fan_in / fan_out))
    assert np.asarray(answers["random_align"]) == pytest.approx(random_align)
    measured = np.asarray(answers["measured_align"])
    assert measured[-1, 2] < measured[0, 2] / 2 and abs(measured[-1, 1] - measured[0, 1]) < 0.05
    assert np.abs(measured[-1] - random_align[-1]).max() < 0.05  # at the widest width the value holds
    assert answers["update_align_min"] > 0.9
    assert f"largest gap from the random-matrix value {np.abs(measured - random_align).max():.2f}" in stdout
    markdown = " ".join(run.markdown.split())
    assert "**For `ΔW_l`: alignment (low rank).**" in markdown
    assert "**For a random `W_l`: a bounded aspect ratio, no alignment.**" in markdown
    assert "`||A||_*` is the **spectral norm**" in markdown


def test_13_figure1_verdict_says_how_weak_it_is(executed_notebooks):
    run = executed_notebooks[NAME]
    seeds = len(re.search(r"^seeds \(([^)]*)\)", run.stdout, re.M).group(1).split(","))
    steps = run.answers["sweep_steps"]
    assert f"(a weak test: the spread of {seeds} seeds, i.e. {seeds} runs per point, after {steps} steps)" in run.stdout
