"""The answers of homework parts b, c, d and the bonus, of notebook 11's gradient, and the
conclusions the notebooks print, as regular expressions that tolerate spacing, unicode and
naming variants. Nothing the student release ships may match them (tests/test_release.py),
and no check's failure message either (tests/test_checks.py). Wrong answers
(1/sqrt(d_in*d_out), 1/RMS(U V^T), ...) are not listed: naming a mistake is allowed.

A printed conclusion belongs in a cell tagged ``solutions-only`` (or a solution region): a
cell the student runs before writing the answer prints measurements, not what they mean."""

import re

_FAN_IN = r"(?:fan[_ -]?in|d_?in\b|n_?in\b|in_features|input_size)"
_FAN_OUT = r"(?:fan[_ -]?out|d_?out\b|n_?out\b|out_features)"
_SQRT = r"(?:sqrt|√)"

ANSWERS = {
    "part b": [
        # sqrt(fan_in / fan_out) * ||A||_2, the induced RMS->RMS norm, in any spacing or notation
        rf"{_SQRT}\s*\(?\s*{_FAN_IN}\s*/\s*{_FAN_OUT}",
        rf"{_FAN_IN}\s*/\s*{_FAN_OUT}\s*\)\s*(?:\*|·|×)?\s*\|\|",
        # the verdict, as the notebook prints it or in words
        r"best:\s*rms_to_rms",
        r"=>\s*best\b",  # a printed verdict "=> best: ..." (its output is the answer)
        r"(?:RMS\s*(?:->|→|-)\s*RMS|rms_to_rms)[^\n.]{0,80}?\b(?:predicts|tracks|correlates (?:most|best))",
    ],
    "part c": [
        # any division by the fan-in: lr / fan_in, group["lr"] / fan_in, 1/fan_in, input_mult / fan_in, ...
        rf"/\s*{_FAN_IN}",
        r"input_mult\s*/\s*784",
        rf"divid\w*\s+(?:[\w'\"]+\s+){{0,5}}?by\s+(?:the\s+|its\s+|their\s+|each\s+)?(?:layer's\s+)?{_FAN_IN}",
        # comparisons of wrong rules with the right one (named by the wrong rule they show)
        r"\bSqrtFanInRule\b",
        r"\bSwappedShapeRule\b",
        # a stub that takes the fan-in alone from the shape states which size the rule needs (and which
        # index holds it, the index whose swap is the classic mistake)
        rf"\b{_FAN_IN}\s*=\s*(?:fan_out_fan_in\s*\([^)]*\)|\w+\.shape)\s*\[\s*-?1\s*\]",
        rf"\b{_FAN_IN}\s*=\s*\w+\.size\(\s*-?1\s*\)",
        rf"\b_\s*,\s*{_FAN_IN}\s*=",
    ],
    "part d": [
        # 1/fan_in multipliers are covered by part c's division by the fan-in
        r"c_l\s*=\s*1\s*/",
        r"W_init\s*/\s*c",
        r"\.div_\(\s*multiplier",
        r"init(?:ialisation|ialization)?\s+compensat",
        r"divid\w*\s+(?:[\w'\"]+\s+){0,6}?by\s+(?:the\s+|its\s+|each\s+|their\s+)?(?:layer's\s+)?(?:multiplier|c_l)\b",
        r"(?:\binit\b|initial weights?|stored weights?)[^.\n]{0,40}\bdivided\b",
        r"\bWorkedAnswerMLP\b",
    ],
    "bonus": [
        # sqrt(fan_out / fan_in) (also inside Keller's sqrt(max(1, fan_out / fan_in)))
        rf"{_FAN_OUT}\s*/\s*{_FAN_IN}",
    ],
    "notebook 11": [
        # the gradient of ||Y - X W||_F^2, or its X^T (X W - Y) core
        r"X\^T\s*\(\s*X\s*W\w*\s*-\s*Y\s*\)",
        r"-\s*2\s*X\^T\s*Y\s*\+\s*2\s*X\^T\s*X\s*W",
        r"dL\s*/\s*dW\s*=",
    ],
    "written question 3": [
        # (c): Desideratum 1 and Condition 1 in RMS terms (13's answer)
        r"RMS\(\s*(?:Δ|Delta\s*)?h_?l?\s*\)\s*=\s*(?:Θ|Theta)\s*\(\s*1\s*\)",
        r"\|\|_\{?RMS\s*(?:->|→)\s*RMS\}?\s*=\s*(?:Θ|Theta)\s*\(\s*1\s*\)",
    ],
    "stated conclusion": [
        r"=>",  # the notebooks mark a printed verdict with "=>"
        # 03: the first delta over the seeds; 04: the training runs against SimpleAdamMuP
        r"the first delta is (?:not )?lower",
        r"equal to float tolerance",
        # 06: the Frobenius / spectral ratio, the ranks, the rounding directions
        rf"F\s*/\s*S\s*=\s*{_SQRT}",
        rf"{_SQRT}\s*\(\s*min\s+dim",
        r"same rank in every layer:",
        r"extra unit directions",
        r"adds unit directions",
        r"rounding of a zero",
        r"in rounding directions, per layer",
        # 07: Newton-Schulz against its scalar map, bfloat16 against the rank
        r"scalar map's count after every",
        r"more singular values in the range than the gradient's rank",
        r"Newton-Schulz follows the scalar map",
        # 08: the comparison over seeds and the transfer of a shape factor
        r"lowest on every seed:",
        r"lower on every seed:",
        r"not decided by every seed",
        r"good at every width:",
        r"detected worse: (none|\d)",
        r"worse than the best at any width: (\d|\[)",
        r"=> detected lower:",
        r"comparisons, each a two-sided",
        r"chosen rate, per seed\)",
        r"\.describe\(\)",  # TransferVerdict.describe(): the verdict in words
        # 12: which optimizers pass which check
        r"\(the homework's check\)",
        r"\(the coordinate check\):",
        r"readout growing at step 1",
        # 00: a plot titled with the answer, the constant of the SignGD answer
        r"grows like d1",
        r"sqrt\(\s*2\s*/\s*pi\s*\)|√\(2/π\)",
    ],
}

COMPILED = [(part, re.compile(pattern, re.IGNORECASE)) for part, patterns in ANSWERS.items() for pattern in patterns]


def find_answers(text: str) -> list[tuple[str, str, str]]:
    """Every (part, pattern, matched line) found in ``text``."""
    found = []
    for part, pattern in COMPILED:
        for match in pattern.finditer(text):
            start = text.rfind("\n", 0, match.start()) + 1
            end = text.find("\n", match.end())
            line = text[start:end if end >= 0 else len(text)].strip()
            found.append((part, pattern.pattern, line[:200]))
    return found
