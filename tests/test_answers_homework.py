"""What notebooks 00-05 print and record at full size: each answer the prose relies on is
checked here against the run that the student sees (one execution per test run, see conftest)."""

import json
import math

import numpy as np
import pytest

def test_00_scaling_laws(executed_notebooks):
    run = executed_notebooks["00_rms_scaling_theory"]
    answers, stdout = run.answers, run.stdout
    assert answers["init_max_relative_error"] < 0.15
    assert abs(answers["signgd_slope"] - 1) < 0.05
    assert abs(answers["signgd_ratio_to_d1"] - math.sqrt(2 / math.pi)) < 0.03
    assert answers["signgd_d2_spread"] < 1e-9
    assert f"d1^{answers['signgd_slope']:.3f}" in stdout

def test_01_deltas_follow_fan_in(executed_notebooks):
    run = executed_notebooks["01_activation_deltas"]
    answers, stdout = run.answers, run.stdout
    course = answers["course"]
    assert answers["follows"] == "fan-in" and "follow the fan-in" in stdout
    assert course["corr_fan_in"] > course["corr_width"]
    by_fan_in = dict(zip(course["fan_ins"], course["rms_deltas"]))
    assert min(d for f, d in zip(course["fan_ins"], course["rms_deltas"]) if f == 256) >= 3 * by_fan_in[16]
    alternating = answers["alternating"]
    assert alternating["narrow_over_wide"] > 3 and alternating["corr_width"] < 0 < alternating["corr_fan_in"]

def test_02_rms_to_rms_norm_wins(executed_notebooks):
    run = executed_notebooks["02_update_norms"]
    answers, stdout = run.answers, run.stdout
    assert answers["best"] == "rms_to_rms" and "=> best: rms_to_rms" in stdout
    assert answers["correlations"]["rms_to_rms"] > 0.95
    assert all(abs(r - 1) < 0.1 for r in answers["rms_to_rms_over_lr_fan_in"])
    assert all(abs(e - 0.01) < 1e-4 for e in answers["entrywise_rms_hidden"])

def test_03_mup_deltas_are_flat(executed_notebooks):
    run = executed_notebooks["03_mup_optimizer"]
    answers, _ = run.answers, run.stdout
    assert answers["mup_course"]["max_over_min"] <= 1.4
    assert answers["mup_doubling"]["max_over_min"] <= 1.4
    rules = answers["rule_comparison"]
    assert rules["SimpleAdamMuP"]["step_size_spread"] == pytest.approx(1.0)
    assert rules["SqrtFanInRule"]["step_size_spread"] > 100
    assert rules["SimpleAdamMuP"]["loss_after_training"] < rules["SqrtFanInRule"]["loss_after_training"]
    assert 0 < answers["input_mult_first_gain"] and abs(answers["input_mult_later_gain"]) < 0.02

def test_04_multipliers_reproduce_mup(executed_notebooks):
    run = executed_notebooks["04_per_weight_multipliers"]
    answers, _ = run.answers, run.stdout
    assert answers["relative_gap"] < 1e-5
    assert answers["init_gap"] < 1e-5 and answers["adam_scale_invariance_gap"] < 1e-5
    assert answers["max_over_min"] <= 1.4
    assert answers["worked_answer_max_over_min"] > 1.4

def test_05_learning_rate_transfer(executed_notebooks):
    run = executed_notebooks["05_hyperparameter_transfer"]
    answers, stdout = run.answers, run.stdout
    assert answers["adam_shift"] >= 10 and f"({answers['adam_shift']:.0f}x smaller)" in stdout
    assert answers["mup_shared_count"] >= len(answers["widths"]) - 1
    assert answers["mup_widest_loss"] <= 0.6


@pytest.mark.parametrize("name", ["02_update_norms", "03_mup_optimizer", "04_per_weight_multipliers",
                                  "06_shampoo_orthogonalization", "07_muon_newton_schulz"])
def test_self_checks_pass_on_the_solutions(executed_notebooks, name):
    run = executed_notebooks[name]
    answers, stdout = run.answers, run.stdout
    assert answers["check_passed"] is True
    assert "PASS check_" in stdout and "FAIL" not in stdout
