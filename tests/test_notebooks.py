"""The numbered notebooks: committed shape (parameters cell, clean outputs,
solution regions) and a quick papermill run whose stored answers must show the
facts pinned in test_helpers.py."""

import json
import math
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
NOTEBOOK_DIR = ROOT / "notebooks"
EXPECTED = [
    "00_rms_scaling_theory", "01_activation_deltas", "02_update_norms", "03_mup_optimizer",
    "04_per_weight_multipliers", "05_hyperparameter_transfer", "06_shampoo_orthogonalization",
    "07_muon_newton_schulz", "08_muon_training",
    "09_adam_bias_correction", "10_epsilon_schedules", "11_muon_linear_regression",
]
RESEARCH = EXPECTED[-3:]
RESEARCH_QUICK_LIMIT_S = 45  # issue 8: each research notebook's quick run (measured about 9 s here)
PARAMETERS = ("device", "data_source", "quick", "seed", "save_figures")
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
# The budget is 30 s per notebook on the project's 2-core CPU machine (measured: at most 20 s, see
# README). This guard allows twice that, because a loaded CI machine is slower (a run beside other
# jobs took 80-186 s) and a timing test must not fail a submission for load it cannot control.
# On a GPU these tiny models are launch-bound and slower still (05 took 30.1 s on an H100).
QUICK_LIMIT_S = 60 if os.environ.get("COURSE_DEVICE", "cpu") == "cpu" else 120


def notebook_paths():
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def read(path):
    return nbformat.read(path, as_version=4)


def test_every_homework_notebook_is_there():
    names = [p.stem for p in notebook_paths()]
    for name in EXPECTED:
        assert name in names


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_parameters_cell_comes_first_and_reads_the_environment(path):
    notebook = read(path)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    first = code_cells[0]
    assert "parameters" in first.metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    for name in PARAMETERS:
        assert re.search(rf"^{name} = ", first.source, re.M), f"parameters cell lacks {name}"
    for variable in ("COURSE_DEVICE", "COURSE_DATA_SOURCE", "COURSE_QUICK"):
        assert variable in first.source
    assert notebook.metadata["kernelspec"]["name"] == "mup-course"


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_committed_outputs_only_in_checked_cells(path):
    notebook = read(path)
    checked = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(CHECK_MARK):
            checked += 1
            assert cell.outputs, f"cell {index} is checked by nbval but has no committed output"
            assert cell.execution_count is not None
            for output in cell.outputs:
                assert output.output_type == "stream", f"cell {index}: only text output is committed"
        else:
            assert not cell.outputs and cell.execution_count is None, f"cell {index} carries outputs"
    assert checked >= 1 or path.stem.startswith("00_")


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_solution_regions_are_well_formed(path):
    from release import find_regions  # scripts/release.py, the student-release builder

    regions = {"code": 0, "markdown": 0, "raw": 0}
    notebook = read(path)
    for index, cell in enumerate(notebook.cells):
        regions[cell.cell_type] += len(find_regions(cell.source.splitlines(), f"{path.name}, cell {index}"))
    assert regions["markdown"] >= 1, regions  # every notebook asks for written answers
    assert regions["raw"] == 0
    shows_helper_code = any("show_source(" in c.source for c in notebook.cells if c.cell_type == "code")
    if not path.stem.startswith("05_"):  # part e only runs the sweeps; the others ask for code too
        assert regions["code"] >= 1 or shows_helper_code, regions


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """Execute every notebook once with quick=True; return {name: (answers, stdout, seconds)}."""
    import papermill

    out_dir = tmp_path_factory.mktemp("executed")
    answers_dir = tmp_path_factory.mktemp("answers")
    os.environ["COURSE_ANSWERS_DIR"] = str(answers_dir)
    runs = {}
    try:
        for path in notebook_paths():
            start = time.perf_counter()
            papermill.execute_notebook(str(path), str(out_dir / path.name), parameters=dict(quick=True),
                                       kernel_name="mup-course", cwd=str(NOTEBOOK_DIR), progress_bar=False)
            seconds = time.perf_counter() - start
            executed = read(out_dir / path.name)
            stdout = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                             for o in c.outputs if o.output_type == "stream")
            runs[path.stem] = (json.loads((answers_dir / f"{path.stem}.json").read_text()), stdout, seconds)
    finally:
        os.environ.pop("COURSE_ANSWERS_DIR", None)
    return runs


@pytest.mark.parametrize("name", EXPECTED)
def test_quick_run_is_fast(quick_runs, name):
    answers, _, seconds = quick_runs[name]
    assert answers["quick"] is True
    limit = RESEARCH_QUICK_LIMIT_S if name in RESEARCH and QUICK_LIMIT_S == 60 else QUICK_LIMIT_S
    assert seconds <= limit, f"{name} took {seconds:.1f} s with quick=True"


def test_00_scaling_laws(quick_runs):
    answers, stdout, _ = quick_runs["00_rms_scaling_theory"]
    assert answers["init_max_relative_error"] < 0.15
    assert abs(answers["signgd_slope"] - 1) < 0.05
    assert abs(answers["signgd_ratio_to_d1"] - math.sqrt(2 / math.pi)) < 0.03
    assert answers["signgd_d2_spread"] < 1e-9
    assert f"d1^{answers['signgd_slope']:.3f}" in stdout


def test_01_deltas_follow_fan_in(quick_runs):
    answers, stdout, _ = quick_runs["01_activation_deltas"]
    course = answers["course"]
    assert answers["follows"] == "fan-in" and "follow the fan-in" in stdout
    assert course["corr_fan_in"] > course["corr_width"]
    by_fan_in = dict(zip(course["fan_ins"], course["rms_deltas"]))
    assert min(d for f, d in zip(course["fan_ins"], course["rms_deltas"]) if f == 256) >= 3 * by_fan_in[16]
    alternating = answers["alternating"]
    assert alternating["narrow_over_wide"] > 3 and alternating["corr_width"] < 0 < alternating["corr_fan_in"]


def test_02_rms_to_rms_norm_wins(quick_runs):
    answers, stdout, _ = quick_runs["02_update_norms"]
    assert answers["best"] == "rms_to_rms" and "=> best: rms_to_rms" in stdout
    assert answers["correlations"]["rms_to_rms"] > 0.95
    assert all(abs(r - 1) < 0.1 for r in answers["rms_to_rms_over_lr_fan_in"])
    assert all(abs(e - 0.01) < 1e-4 for e in answers["entrywise_rms_hidden"])


def test_03_mup_deltas_are_flat(quick_runs):
    answers, _, _ = quick_runs["03_mup_optimizer"]
    assert answers["mup_course"]["max_over_min"] <= 1.4
    assert answers["mup_doubling"]["max_over_min"] <= 1.4
    rules = answers["rule_comparison"]
    assert rules["SimpleAdamMuP"]["step_size_spread"] == pytest.approx(1.0)
    assert rules["SqrtFanInRule"]["step_size_spread"] > 100
    assert rules["SimpleAdamMuP"]["loss_after_training"] < rules["SqrtFanInRule"]["loss_after_training"]
    assert 0 < answers["input_mult_first_gain"] and abs(answers["input_mult_later_gain"]) < 0.02


def test_04_multipliers_reproduce_mup(quick_runs):
    answers, _, _ = quick_runs["04_per_weight_multipliers"]
    assert answers["relative_gap"] < 1e-5
    assert answers["init_gap"] < 1e-5 and answers["adam_scale_invariance_gap"] < 1e-5
    assert answers["max_over_min"] <= 1.4
    assert answers["worked_answer_max_over_min"] > 1.4


def test_05_learning_rate_transfer(quick_runs):
    answers, stdout, _ = quick_runs["05_hyperparameter_transfer"]
    assert answers["adam_shift"] >= 10 and f"({answers['adam_shift']:.0f}x smaller)" in stdout
    assert answers["mup_shared_count"] >= len(answers["widths"]) - 1
    assert answers["mup_widest_loss"] <= 0.6


def test_06_shampoo_norms(quick_runs):
    answers, _, _ = quick_runs["06_shampoo_orthogonalization"]
    for spectral, frobenius, shape in zip(answers["shampoo_spectral"], answers["shampoo_frobenius"],
                                          answers["shapes"]):
        assert spectral == pytest.approx(0.01, rel=1e-4)
        assert frobenius == pytest.approx(0.01 * math.sqrt(min(shape)), rel=1e-4)
    assert answers["scaled_spread"] == pytest.approx(1.0, abs=1e-4)
    assert all(r == pytest.approx(0.01, rel=1e-4) for r in answers["scaled_rms_to_rms"])
    assert answers["worked_rule_spread"] > 10 and answers["plain_spread"] > 10


def test_07_newton_schulz_lecture(quick_runs):
    answers, stdout, _ = quick_runs["07_muon_newton_schulz"]
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


def test_08_muon_training_and_transfer(quick_runs):
    answers, _, _ = quick_runs["08_muon_training"]
    final = answers["final_losses"]
    muon = final["Muon + Adam (lr 0.3)"]
    assert muon <= answers["initial_loss"] - 1.0
    assert muon < final["Adam (lr 0.01)"]
    assert set(answers["transferring_scales"]) == {"spectral", "keller"}
    # one grid step or more (the grid is spaced ~3x: 0.3/0.1 is 2.9999... in floating point)
    assert answers["best_lr_spread"]["moonlight"] > 2


@pytest.mark.parametrize("name", [n for n in EXPECTED if n[:2] in ("02", "03", "04", "06", "07")])
def test_self_checks_pass_on_the_solutions(quick_runs, name):
    answers, stdout, _ = quick_runs[name]
    assert answers["check_passed"] is True
    assert "PASS check_" in stdout and "FAIL" not in stdout


def test_09_first_steps_and_the_ablation_table_are_reproduced(quick_runs):
    """The notebook's table is the helper's computation: rerun it with the notebook's quick settings."""
    from helpers.data import default_source, load_mnist
    from helpers.research import zi_bc_ablation

    answers, stdout, _ = quick_runs["09_adam_bias_correction"]
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


def test_10_epsilon_schedule_replays_the_lr_schedule(quick_runs):
    answers, stdout, _ = quick_runs["10_epsilon_schedules"]
    assert answers["relative_difference"] < 1e-6 and answers["moved"] > 0.1
    low, *_, high = answers["eps_quantiles"]
    assert high / low > 1e6  # per coordinate: one number per step could not match them all
    assert answers["best_schedule"] in answers["final_losses"]
    assert f"lowest: {answers['best_schedule']}" in stdout


def test_11_linear_regression_conclusions_are_reproduced(quick_runs):
    from helpers.linear_regression import Setting, compare

    answers, stdout, _ = quick_runs["11_muon_linear_regression"]
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
