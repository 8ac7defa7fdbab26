"""The noise-aware decisions that notebooks print about their own runs."""

import math

import numpy as np
import pytest

from helpers.verdicts import (
    choose_rates,
    clear_winner,
    paired_comparison,
    paired_transfer,
    select_then_compare,
    several_tests,
    shared_learning_rates,
    switch_ablation,
    t_cdf,
    t_quantile,
)

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


# ------------------------------------------------------------------------------- paired comparisons
# Student's t quantiles from a printed table: t_{0.975, df} and t_{0.8, df}
T_TABLE = {1: (12.706, 1.376), 2: (4.303, 1.061), 3: (3.182, 0.978), 4: (2.776, 0.941), 5: (2.571, 0.920),
           6: (2.447, 0.906), 9: (2.262, 0.883), 10: (2.228, 0.879), 30: (2.042, 0.854)}


@pytest.mark.parametrize("df", sorted(T_TABLE))
def test_t_quantiles_match_the_printed_table(df):
    two_sided, power = T_TABLE[df]
    assert t_quantile(0.975, df) == pytest.approx(two_sided, abs=1e-3)
    assert t_quantile(0.8, df) == pytest.approx(power, abs=1e-3)
    assert t_quantile(0.025, df) == pytest.approx(-t_quantile(0.975, df))
    assert t_cdf(t_quantile(0.9, df), df) == pytest.approx(0.9, abs=1e-10)


def test_t_distribution_limits():
    assert t_cdf(0.0, 7) == 0.5
    for t in (-3.0, 0.5, 10.0):  # one degree of freedom: the Cauchy distribution
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi)
    assert t_quantile(0.975, 5000) == pytest.approx(1.95996, abs=1e-3)  # the normal quantile
    with pytest.raises(ValueError):
        t_cdf(1.0, 2.5)
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_a_detected_effect_reports_its_size_error_and_direction():
    per_seed = [0.11, 0.15, 0.07, 0.09]
    c = paired_comparison(per_seed)
    se = np.std(per_seed, ddof=1) / 2
    assert c.n == 4 and c.mean == pytest.approx(0.105) and c.se == pytest.approx(se)
    assert c.threshold == pytest.approx(3.1824 * se, rel=1e-4)
    assert c.detectable == pytest.approx((3.1824 + 0.9785) * se, rel=1e-4)
    assert c.detected and c.direction == 1
    described = c.describe("raises the loss", "lowers the loss")
    assert described == f"+0.105 +- {se:.3f}: detected (4 seeds), raises the loss"
    assert paired_comparison([-v for v in per_seed]).direction == -1
    assert paired_comparison([-v for v in per_seed]).describe(decrease="lower").endswith("lower")


def test_no_detection_reports_the_smallest_detectable_effect_never_absence():
    per_seed = [-0.046, -0.004, 0.025, -0.043]
    c = paired_comparison(per_seed)
    assert not c.detected and c.direction == 0
    text = c.describe("raises the loss", "lowers the loss")
    assert text == (f"{c.mean:+.3f} +- {c.se:.3f}: not detected with 4 seeds; smallest detectable effect "
                    f"{c.detectable:.3f} (80% power, two-sided 5% test)")
    for reading_as_absence in ("barely", "no effect", "within the noise", "tie", "does not matter", "lowers"):
        assert reading_as_absence not in text
    # the same spread over more seeds: a smaller standard error, a smaller detectable effect
    assert paired_comparison(per_seed * 3).detectable < c.detectable / 2
    record = c.as_dict()
    assert record["detected"] is False and record["detectable"] == c.detectable and record["per_seed"] == per_seed


def test_the_smallest_detectable_effect_is_detected_about_80_percent_of_the_time():
    """Normal noise of known sigma, true effect (t_{0.975} + t_{0.8}) sigma / sqrt(n): the paired t-test
    detects it with probability close to 80% (the approximation is 77% at 3 seeds)."""
    rng = np.random.default_rng(0)
    for n in (3, 4, 6):
        effect = (t_quantile(0.975, n - 1) + t_quantile(0.8, n - 1)) / math.sqrt(n)
        x = rng.standard_normal((40000, n)) + effect
        t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / math.sqrt(n))
        assert 0.74 < np.mean(np.abs(t) > t_quantile(0.975, n - 1)) < 0.83, n
        # and with no effect the test detects one 5% of the time
        t0 = (x - effect).mean(axis=1) / ((x - effect).std(axis=1, ddof=1) / math.sqrt(n))
        assert np.mean(np.abs(t0) > t_quantile(0.975, n - 1)) == pytest.approx(0.05, abs=0.006)


def test_a_paired_comparison_needs_two_finite_seeds():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        paired_comparison([0.1])
    with pytest.raises(ValueError, match="finite"):
        paired_comparison([0.1, np.nan, 0.2])


# ------------------------------------------------------------------------------- a 2x2 ablation
def _cells(seeds=6, seed=0):
    """An ablation where switch b matters only when a is off (a pure interaction for b), a matters
    in both settings, on top of a seed-level offset that pairing removes."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0, 1.0, seeds)  # a seed's own level: large, shared by its four cells
    noise = lambda: rng.normal(0, 0.01, seeds)  # noqa: E731
    return {(True, True): offset + 0.2 + noise(), (True, False): offset + 0.2 + noise(),
            (False, True): offset + 0.5 + noise(), (False, False): offset + 0.9 + noise()}


def test_switch_ablation_reports_both_simple_effects_and_the_interaction():
    cells = _cells()
    ablation = switch_ablation(cells, ("a", "b"))
    drop_a_with_b, drop_a_without_b = ablation.simple[("a", True)], ablation.simple[("a", False)]
    drop_b_with_a, drop_b_without_a = ablation.simple[("b", True)], ablation.simple[("b", False)]
    assert drop_a_with_b.mean == pytest.approx(0.3, abs=0.03) and drop_a_with_b.detected
    assert drop_a_without_b.mean == pytest.approx(0.7, abs=0.03) and drop_a_without_b.detected
    assert drop_b_with_a.mean == pytest.approx(0.0, abs=0.03) and not drop_b_with_a.detected
    assert drop_b_without_a.mean == pytest.approx(0.4, abs=0.03) and drop_b_without_a.direction == 1
    # the interaction, either way round: dropping a costs 0.4 more without b; dropping b, 0.4 more without a
    assert ablation.interaction.mean == pytest.approx(drop_a_without_b.mean - drop_a_with_b.mean)
    assert ablation.interaction.mean == pytest.approx(drop_b_without_a.mean - drop_b_with_a.mean)
    assert ablation.interaction.detected and ablation.interaction.direction == 1
    # pairing: the seeds' own levels (std 1) cancel; unpaired, these effects would be lost in them
    assert drop_a_with_b.se < 0.01
    labels = ablation.as_dict()
    assert set(labels) == {"dropping a with b", "dropping a without b", "dropping b with a", "dropping b without a",
                           "interaction of a and b"}
    assert labels["dropping b with a"]["detected"] is False


def test_an_averaged_main_effect_hides_what_the_simple_effects_show():
    """Dropping b lowers the value with a on and raises it as much with a off: averaged over a (a
    main effect) that is 0, while both simple effects and the interaction are detected."""
    cells = _cells()
    cells[(True, False)] = cells[(True, True)] - 0.4
    ablation = switch_ablation(cells, ("a", "b"))
    main_effect = (ablation.simple[("b", True)].mean + ablation.simple[("b", False)].mean) / 2
    assert abs(main_effect) < 0.03
    assert ablation.simple[("b", True)].direction == -1 and ablation.simple[("b", False)].direction == 1
    assert ablation.interaction.detected


def test_switch_ablation_needs_four_cells_of_the_same_seeds():
    cells = _cells()
    with pytest.raises(ValueError, match="keys"):
        switch_ablation({k: v for k, v in cells.items() if k != (False, False)})
    cells[(False, False)] = cells[(False, False)][:3]
    with pytest.raises(ValueError, match="same seeds"):
        switch_ablation(cells)


# ------------------------------------------------------------------------------- select, then compare
def test_choose_rates_takes_the_lowest_mean_and_never_a_diverged_rate():
    grid = np.array([[[0.5, 0.2, np.nan], [0.5, 0.3, 0.1]],  # method 0: rate 2 diverged on a seed
                     [[0.9, 0.4, 0.3], [0.9, 0.5, 0.2]]])
    assert choose_rates(grid).tolist() == [1, 2]
    with pytest.raises(ValueError, match="every rate"):
        choose_rates(np.full((1, 2, 3), np.inf))


def test_select_then_compare_chooses_on_some_seeds_and_compares_on_others():
    """A fake training run whose loss is a rate's bowl plus a seed's luck: on seed 1 the rate 0.1
    of method "b" is lucky. The choice is made on seeds 0 and 1 (and so falls on that lucky rate),
    the comparison runs each method at its chosen rate only, on seeds 2-5."""
    calls = []

    def run(name, rates, seeds):
        calls.append((name, tuple(rates), tuple(seeds)))
        bowl = {"a": lambda r: (math.log10(r) + 2) ** 2, "b": lambda r: (math.log10(r) + 1.5) ** 2}[name]
        luck = lambda r, s: -1.0 if (name, r, s) == ("b", 0.1, 1) else 0.01 * s  # noqa: E731
        return np.array([[bowl(r) + luck(r, s) for r in rates] for s in seeds])

    rates = (0.001, 0.01, 0.1)
    result = select_then_compare(["a", "b"], rates, run, choose_on=(0, 1), compare_on=(2, 3, 4, 5))
    assert result.chosen_rates == {"a": 0.01, "b": 0.1}
    assert calls == [("a", rates, (0, 1)), ("b", rates, (0, 1)), ("a", (0.01,), (2, 3, 4, 5)),
                     ("b", (0.1,), (2, 3, 4, 5))]
    assert result.grid.shape == (2, 2, 3) and result.compared.shape == (4, 2)
    # on the comparison seeds the lucky rate is no longer lucky: b's loss there is its bowl's, 0.25 (+ seed term)
    assert result.values("b") == pytest.approx(0.25 + 0.01 * np.arange(2, 6))
    assert result.values("a") == pytest.approx(0.01 * np.arange(2, 6))
    assert result.at_grid_edge() == ["b"]
    with pytest.raises(ValueError, match="disjoint"):
        select_then_compare(["a"], rates, run, choose_on=(0, 1), compare_on=(1, 2, 3))
    with pytest.raises(ValueError, match="at least 2"):
        select_then_compare(["a"], rates, run, choose_on=(0, 1), compare_on=(2,))


def test_a_claim_that_something_barely_matters_is_contradicted_or_not_shown_never_confirmed():
    from helpers.research import claim_parts

    ablation = switch_ablation(_cells(), ("a", "b"))  # b matters without a only; a matters in both settings
    parts = claim_parts(ablation, matters="a", barely="b")
    assert parts["a matters"][0] == "supported"
    assert parts["b barely matters"][0] == "contradicted"
    no_b = ablation.simple[("b", True)]
    assert parts["b barely matters"][1] == (
        f"contradicted: dropping it, with a: not detected with 6 seeds (smallest detectable effect "
        f"{no_b.detectable:.3f}); without a: detected, raises the loss by {ablation.simple[('b', False)].mean:.3f}")
    # nothing detected anywhere (pure noise): neither part is shown, and nothing says "barely"
    rng = np.random.default_rng(1)
    noise = {key: rng.normal(0, 0.1, 4) for key in _cells()}
    parts = claim_parts(switch_ablation(noise, ("a", "b")), matters="a", barely="b")
    assert {status for status, _ in parts.values()} == {"not shown"}
    assert parts["b barely matters"][1].startswith("not shown (a difference test can only fail to detect): ")
    assert parts["b barely matters"][1].count("not detected with 4 seeds (smallest detectable effect") == 2


def test_paired_transfer_fails_a_rate_worse_on_every_seed_and_keeps_one_inside_the_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, size=(5, 2, 1))  # shared by a seed's rates: the pairing removes it
    base = np.array([[1.0, 0.5, 0.52, 0.9], [1.0, 0.6, 0.5, 0.9]])  # [width, lr]
    jitter = rng.normal(0, 0.02, size=(5, 2, 4))
    losses = base + noise + jitter
    verdict = paired_transfer(losses, LRS)
    assert list(verdict.best) == [1, 2]
    assert verdict.worse[:, 0].all() and verdict.worse[:, 3].all()  # 0.4 and 0.4 above the best: detected
    assert verdict.worse[1, 1] and not verdict.worse[0, 2]  # 0.1 worse at width 1; 0.02 at width 0 is not detected
    assert verdict.shared == [0.1] and verdict.transfers
    assert verdict.comparisons[0][1] is None and verdict.comparisons[1][2] is None  # the best rates
    low, high = verdict.detectable_range(0)
    assert 0 < low <= high and verdict.comparisons[0][2].detectable == pytest.approx(low)
    assert verdict.tolerance[0] == pytest.approx(np.ptp(losses[:, 0, 1]))
    assert verdict.describe() == "not detected worse than the best at any width: 0.1"


def test_paired_transfer_counts_a_diverged_rate_as_worse():
    losses = np.array([[[0.5, 0.5, 0.6, 0.7]], [[0.6, 0.55, 0.7, np.nan]], [[0.7, 0.65, 0.8, 0.9]]])
    verdict = paired_transfer(losses, LRS)
    assert verdict.worse[0, 3] and verdict.comparisons[0][3] is None
    assert 0.3 not in verdict.shared and 0.01 in verdict.shared  # 0.01 is 0.033 worse, not detected
    all_worse = paired_transfer(np.array([[[0.5, 1.5], [1.5, 0.5]], [[0.6, 1.7], [1.6, 0.7]]]), (0.1, 0.3))
    assert all_worse.shared == [] and not all_worse.transfers
    assert all_worse.describe() == "every learning rate is detected worse than the best at some width"


def test_several_tests_flag_a_detection_that_their_number_can_explain():
    """Notebook 09's table: five paired tests at 5% with 6 seeds; an interaction at |t| = 2.6 is
    detected per test (2.57) but not at the Bonferroni level 1% (t_0.995,5 = 4.03), one at 5.4 is."""
    marginal = paired_comparison([-0.085, -0.098, -0.075, -0.078, -0.187, +0.046])
    strong = paired_comparison([-0.242, -0.123, -0.409, -0.558, -0.586, -0.488])
    null = paired_comparison([-0.046, -0.004, 0.025, -0.043, 0.01, 0.02])
    tests = several_tests({"a": marginal, "b": strong, "c": null, "d": null, "e": null})
    assert tests.m == 5 and marginal.detected and strong.detected
    assert tests.t_corrected[0] == pytest.approx(t_quantile(0.995, 5)) == pytest.approx(4.032, abs=1e-3)
    assert tests.marginal == ["a"] and tests.corrected == ["b"]
    assert tests.chance_of_a_false_detection == pytest.approx(1 - 0.95 ** 5)
    text = tests.describe()
    assert text.startswith("5 tests in this table, each at 5% with no correction for their number")
    assert "23%" in text and f"still detected: b (|t| = {tests.t[1]:.2f})" in text and 5.3 < tests.t[1] < 5.4
    assert text.endswith(f"marginal (detected only without the correction): a (|t| = {tests.t[0]:.2f})")
    assert several_tests({"a": marginal}).marginal == []  # one test: no correction, nothing marginal
    with pytest.raises(ValueError):
        several_tests({"a": paired_comparison([0.1, 0.2, 0.3], alpha=0.1)})


def test_the_bonferroni_level_keeps_false_detections_below_alpha():
    """Five null effects on 6 seeds: at least one detected per test in about 23% of the tables,
    at the corrected level in at most 5%."""
    rng = np.random.default_rng(0)
    any_raw = any_corrected = 0
    tables = 1000
    for _ in range(tables):
        tests = several_tests({str(k): paired_comparison(rng.normal(size=6)) for k in range(5)})
        any_raw += any(tests.detected)
        any_corrected += bool(tests.corrected)
    assert 0.18 < any_raw / tables < 0.28 and any_corrected / tables < 0.065
