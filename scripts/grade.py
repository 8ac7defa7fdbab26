"""Grade a folder of submissions of the student release (``make grade SUBMISSIONS=<folder>``).

    python scripts/grade.py SUBMISSIONS [--out build/grades] [--time-limit 10] [--memory-mb 2048] [--jobs 1]

Each subfolder or ``.zip`` of SUBMISSIONS is one student's submission. Writes
``grades.csv``, ``grades.json``, ``feedback/<student>.md`` and ``written_answers.md`` under
``--out``; see ``grading/grader.py`` and the README's grading section.
"""

import sys

from grading.grader import main

if __name__ == "__main__":
    sys.exit(main())
