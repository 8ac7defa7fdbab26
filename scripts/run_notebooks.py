"""Command-line entry point: ``python scripts/run_notebooks.py --help`` (the code is :mod:`coursetools.execute`)."""

import sys

from coursetools.execute import main

if __name__ == "__main__":
    sys.exit(main())
