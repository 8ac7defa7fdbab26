"""research 09: Adam's first-step factor (a function of notebook 09)."""

from __future__ import annotations

from grading.collect import attempt, module_of, number
from grading.judge import Criterion, Finding, Tally, close
from grading.parts import Part

PART = Part("r09_first_step", 1, "research 09: Adam's first-step factor (`first_step_factor`)",
            "notebooks/09_adam_bias_correction.ipynb", ("first_step_factor",),
            (("the factor for every combination of zero init and bias correction", 1),), order=100)

# ---------------------------------------------------------------- hidden inputs
FIRST_STEP_BETAS = ((0.9, 0.999), (0.5, 0.7), (0.99, 0.9), (0.0, 0.5), (0.8, 0.8))


FIRST_STEP_SWITCHES = ((True, True), (True, False), (False, True), (False, False))  # (zero_init, bias_correction)


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    fn = getattr(module_of(part), part.functions[0])
    return dict(values=[[attempt(lambda b=betas, s=switches: number(fn(b[0], b[1], s[0], s[1])))
                         for switches in FIRST_STEP_SWITCHES] for betas in FIRST_STEP_BETAS])


# ---------------------------------------------------------------- in the grader: verdicts
def judge(part, measured: dict, ref) -> list[Criterion]:
    fn = ref.notebook[part.functions[0]]
    tally = Tally("hidden cases")
    for betas, row in zip(FIRST_STEP_BETAS, measured["values"]):
        for switches, entry in zip(FIRST_STEP_SWITCHES, row):
            value = tally.take(entry)
            if value is not None and not close(value, fn(*betas, *switches)):
                tally.fail(value, dict(zero_init=switches[0], bias_correction=switches[1]))
    hint = "write m_1 and v_1 for that start, then divide by the bias corrections if they are on"

    def combination(zero_init, bias_correction):
        words = f"{'zero' if zero_init else 'gradient'} initialisation {'with' if bias_correction else 'without'} " \
                "bias correction"
        return (lambda v, c: c["zero_init"] == zero_init and c["bias_correction"] == bias_correction,
                Finding(f"the factor is wrong for {words}", hint))

    return [tally.criterion(*part.criteria[0], [combination(z, b) for z, b in FIRST_STEP_SWITCHES])]


# ---------------------------------------------------------------- the classic wrong answers
MISTAKES = {}
