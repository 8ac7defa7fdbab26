"""What notebooks 06-08 print and record at full size: each answer the prose relies on is
checked here against the run that the student sees (one execution per test run, see conftest)."""

import json
import math

import numpy as np
import pytest

def test_06_shampoo_norms(executed_notebooks):
    run = executed_notebooks["06_shampoo_orthogonalization"]
    answers, _ = run.answers, run.stdout
    for spectral, frobenius, shape in zip(answers["shampoo_spectral"], answers["shampoo_frobenius"],
                                          answers["shapes"]):
        assert spectral == pytest.approx(0.01, rel=1e-4)
        assert frobenius == pytest.approx(0.01 * math.sqrt(min(shape)), rel=1e-4)
    assert answers["scaled_spread"] == pytest.approx(1.0, abs=1e-4)
    assert all(r == pytest.approx(0.01, rel=1e-4) for r in answers["scaled_rms_to_rms"])
    assert answers["worked_rule_spread"] > 10 and answers["plain_spread"] > 10

def test_07_newton_schulz_lecture(executed_notebooks):
    run = executed_notebooks["07_muon_newton_schulz"]
    answers, stdout = run.answers, run.stdout
    assert answers["commute_error"] < 1e-12
    assert answers["cubic_divergent_starts"] == [2.5]  # only the start above sqrt(3) that escapes
    assert answers["quintic_p_of_one"] == pytest.approx(0.701, abs=1e-9)
    low, high = answers["quintic_band"]
    assert 0.6 <= low < 0.7 and 1.1 < high <= 1.25
    assert answers["five_step_threshold"] < 0.01
    float32, bfloat16 = answers["float32_errors"], answers["bfloat16_errors"]
    assert bfloat16[-1] > 2 * float32[-1]  # bf16 noise in the empty directions is amplified
    timing = answers["timing"]
    assert len(timing["sizes"]) == len(timing["svd"]) == len(timing["newton_schulz"]) >= 3
    assert all(t > 0 for t in timing["svd"] + timing["newton_schulz"])
    assert f"p(1) = {answers['quintic_p_of_one']:.4f}" in stdout

def test_08_muon_training_and_transfer(executed_notebooks):
    run = executed_notebooks["08_muon_training"]
    answers, _ = run.answers, run.stdout
    final = answers["final_losses"]
    muon = final["Muon + Adam (lr 0.3)"]
    assert muon <= answers["initial_loss"] - 1.0
    assert muon < final["Adam (lr 0.01)"]
    assert set(answers["transferring_scales"]) == {"spectral", "keller"}
    # one grid step or more (the grid is spaced ~3x: 0.3/0.1 is 2.9999... in floating point)
    assert answers["best_lr_spread"]["moonlight"] > 2
