"""Gradescope: build the autograder zip, or grade one submission as Gradescope runs it.

    python scripts/gradescope.py build [--out build/gradescope/autograder.zip] [--visibility after_published]
    python scripts/gradescope.py run [--root /autograder]      (what the zip's run_autograder calls)

See ``grading/gradescope.py`` and the README's "Grading on Gradescope".
"""

import sys

from grading.gradescope import main

if __name__ == "__main__":
    sys.exit(main())
