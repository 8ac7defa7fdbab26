"""The noise-aware decisions that notebooks print about their own runs."""

import numpy as np
import pytest

from helpers.verdicts import clear_winner, shared_learning_rates

LRS = (0.01, 0.03, 0.1, 0.3)


def test_a_rate_within_the_seed_spread_of_every_width_is_shared():
    # width 0 is best at 0.1, width 1 at 0.03, but 0.1 is within width 1's seed spread (0.04)
    losses = np.array([[[0.9, 0.5, 0.30, 0.8], [0.9, 0.40, 0.43, 0.9]],
                       [[0.9, 0.5, 0.34, 0.8], [0.9, 0.44, 0.45, 0.9]]])
    verdict = shared_learning_rates(losses, LRS)
    assert list(verdict.best_lr) == [0.1, 0.03]
    assert verdict.shared == [0.1] and verdict.transfers
    assert verdict.grid_steps == pytest.approx(1.0)


def test_a_gap_beyond_the_seed_spread_is_not_shared():
    losses = np.array([[[0.9, 0.5, 0.30, 0.8], [0.9, 0.40, 0.60, 0.9]],
                       [[0.9, 0.5, 0.31, 0.8], [0.9, 0.41, 0.62, 0.9]]])
    verdict = shared_learning_rates(losses, LRS)
    assert verdict.shared == [] and not verdict.transfers
    assert "no learning rate" in verdict.describe()


def test_a_diverged_seed_disqualifies_its_rate():
    losses = np.array([[[0.5, 0.3, np.nan, 0.9]], [[0.5, 0.31, 0.2, 0.9]]])
    assert shared_learning_rates(losses, LRS).best_lr.tolist() == [0.03]


def test_one_seed_cannot_measure_noise():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        shared_learning_rates(np.zeros((1, 2, 4)), LRS)
    with pytest.raises(ValueError, match="learning rates"):
        shared_learning_rates(np.zeros((2, 2, 3)), LRS)


def test_a_winner_must_win_on_every_seed():
    values = np.array([[0.1, 0.2, 0.3], [0.12, 0.25, 0.2]])
    assert clear_winner(values, ["a", "b", "c"]) == "a"
    values[1, 0] = 0.3  # a loses on seed 1
    assert clear_winner(values, ["a", "b", "c"]) is None
    assert clear_winner(np.array([[1.0, 2.0], [1.5, 2.5]]), ["a", "b"], lower_is_better=False) == "b"


def test_a_rounding_level_difference_is_no_win():
    values = np.array([[1e-7, 1e-7 * (1 + 1e-9)], [2e-7, 2e-7 * (1 + 1e-9)]])
    assert clear_winner(values, ["muon", "sgd"]) is None
