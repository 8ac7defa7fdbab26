"""Grade a folder of submissions of the student release (``make grade SUBMISSIONS=<folder>``).

    python scripts/grade.py SUBMISSIONS [--out build/grades] [--time-limit 10] [--memory-mb 2048] [--jobs 1]

Each subfolder or ``.zip`` of SUBMISSIONS is one student's submission. Writes
``grades.csv``, ``grades.json``, ``feedback/<student>.md`` and ``written_answers.md`` under
``--out``; see ``grading/grader.py`` and the README's grading section.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grading.grader import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
