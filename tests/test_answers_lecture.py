"""What notebooks 09-11 print and record at full size: each answer the prose relies on is
checked here against the run that the student sees (one execution per test run, see conftest).
Notebooks 06-08 are checked in test_answers_06_08.py."""

import json
import math

import numpy as np
import pytest

def test_09_first_steps_and_the_ablation_table_are_reproduced(executed_notebooks):
    """The notebook's table is the helper's computation: rerun it with the notebook's quick settings."""
    from helpers.data import default_source, load_mnist
    from helpers.research import zi_bc_ablation

    run = executed_notebooks["09_adam_bias_correction"]
    answers, stdout = run.answers, run.stdout
    assert answers["first_step_max_relative_gap"] < 1e-6
    factors = answers["first_step_factors"]
    assert factors["(0.9, 0.999)|ZI, no BC"] == pytest.approx(0.1 / math.sqrt(0.001))
    assert factors["(0.9, 0.999)|BC, no ZI"] == pytest.approx(math.sqrt(0.001) / 0.1)
    for key, table in answers["ablation"].items():
        betas = tuple(json.loads(key.replace("(", "[").replace(")", "]")))
        again = zi_bc_ablation(answers["width"], table["lrs"], tuple(answers["seeds"]), steps=answers["steps"],
                               betas=betas, data=load_mnist(default_source()), device=answers["device"])
        np.testing.assert_allclose(np.array(table["losses"]), again.losses, rtol=0, atol=1e-6)
        assert len(answers["seeds"]) >= 2 and np.array(table["std"]).shape == (4, len(table["lrs"]))
        conclusion = answers["conclusions"][key]
        effects = again.effects()
        assert conclusion["drop_zero_init"] == pytest.approx(effects["drop_zero_init"], abs=1e-6)
        assert f"{conclusion['matters_more']} matters more" in stdout

def test_10_epsilon_schedule_replays_the_lr_schedule(executed_notebooks):
    run = executed_notebooks["10_epsilon_schedules"]
    answers, stdout = run.answers, run.stdout
    assert answers["relative_difference"] < 1e-6 and answers["moved"] > 0.1
    low, *_, high = answers["eps_quantiles"]
    assert high / low > 1e6  # per coordinate: one number per step could not match them all
    assert answers["best_schedule"] in answers["final_losses"]
    assert f"lowest: {answers['best_schedule']}" in stdout

def test_11_linear_regression_conclusions_are_reproduced(executed_notebooks):
    from helpers.linear_regression import Setting, compare

    run = executed_notebooks["11_muon_linear_regression"]
    answers, stdout = run.answers, run.stdout
    assert answers["gradient_gap"] < 1e-12 and answers["gradient_at_solution"] < 1e-8
    low, high = answers["ns_range"]
    assert 0.6 < low and high < 1.25  # NS(G_t) in the quintic band
    rows = answers["comparison"]
    settings = [Setting(r["condition"], r["d"], r["D"], r["batch_size"]) for r in rows]
    again = compare(settings, np.logspace(-2, 0.5, 4), steps=100, seed=0)
    assert [r["winner"] for r in again] == [r["winner"] for r in rows]
    for mine, theirs in zip(again, rows):
        for name, value in theirs["excess"].items():
            assert mine["excess"][name] == pytest.approx(value, rel=1e-6, abs=1e-9)
    wins = {case: tuple(v) for case, v in answers["muon_wins"].items()}
    assert wins["ill-conditioned, full batch"][0] == wins["ill-conditioned, full batch"][1]  # Muon wins them
    assert wins["well-conditioned, full batch"][0] == 0
    assert "Muon has the lowest excess loss" in stdout

