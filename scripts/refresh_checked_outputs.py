"""Command-line entry point: ``python scripts/refresh_checked_outputs.py [NOTEBOOK ...]``
(the code is :mod:`coursetools.refresh`)."""

import sys

from coursetools.refresh import main

if __name__ == "__main__":
    sys.exit(main())
