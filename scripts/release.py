"""Command-line entry point: ``python scripts/release.py --help`` (the code is :mod:`coursetools.release`)."""

import sys

from coursetools.release import main

if __name__ == "__main__":
    sys.exit(main())
