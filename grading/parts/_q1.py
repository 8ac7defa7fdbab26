"""Q1 (notebook 00): what parts q1a and q1b share (the hidden sizes, the collector, the judge)."""

from __future__ import annotations

import numpy as np

from grading.collect import attempt, module_of, number
from grading.judge import Criterion, Finding, Tally, close, trend

# ---------------------------------------------------------------- hidden inputs
Q1_D1 = (3, 10, 37, 500, 2048)


Q1_D2 = (1, 5, 300)


# ---------------------------------------------------------------- in the child: measurements
def collect(part) -> dict:
    fn = getattr(module_of(part), part.functions[0])
    return dict(values=[[attempt(lambda d1=d1, d2=d2: number(fn(d1, d2))) for d2 in Q1_D2] for d1 in Q1_D1])


# ---------------------------------------------------------------- in the grader: verdicts
def judge(part, measured: dict, ref, hint: str) -> list[Criterion]:
    fn = ref.notebook[part.functions[0]]
    tally = Tally("hidden size pairs")
    got = {}
    for i, d1 in enumerate(Q1_D1):
        for j, d2 in enumerate(Q1_D2):
            value = tally.take(measured["values"][i][j])
            got[d1, d2] = value
            if value is not None and not close(value, fn(d1, d2)):
                tally.fail(value, dict(d1=d1, d2=d2))
    findings = []
    rows = [[got[d1, d2] for d2 in Q1_D2] for d1 in Q1_D1]
    if any(None not in row and np.ptp(row) > 1e-9 * max(abs(v) for v in row) for row in rows):
        findings.append(Finding("your prediction changes with d2, the number of outputs",
                                "no output coordinate depends on how many other outputs there are"))
    column = [(d1, got[d1, Q1_D2[0]] / fn(d1, Q1_D2[0])) for d1 in Q1_D1
              if got[d1, Q1_D2[0]] not in (None, 0)]
    direction = trend(*zip(*column)) if len(column) > 2 else "mixed"
    growth = {
        "up": Finding("your prediction grows faster with d1 than the Monte Carlo estimate", hint),
        "down": Finding("your prediction grows more slowly with d1 than the Monte Carlo estimate", hint),
        "constant": Finding("your prediction grows with d1 as the Monte Carlo estimate does, but with the wrong "
                            "constant factor", hint),
    }
    criterion = tally.criterion(part.criteria[0][0], part.criteria[0][1],
                                fallback=growth.get(direction, Finding("your prediction does not follow the Monte "
                                                                       "Carlo estimate", hint)))
    if criterion.state == "failed" and findings:
        criterion.findings = findings + criterion.findings
    return [criterion]
