"""The answers of homework parts b, c, d and the bonus, as regular expressions that
tolerate spacing, unicode and naming variants. Nothing the student release ships may
match them (tests/test_release.py), and no check's failure message either
(tests/test_checks.py). Wrong answers (1/sqrt(d_in*d_out), 1/RMS(U V^T), ...) are not
listed: naming a mistake is allowed."""

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
