"""Command-line entry point: ``python scripts/sync_colab_cell.py [--check] [NOTEBOOK ...]``
(the code is :mod:`coursetools.colab_cell`)."""

import sys

from coursetools.colab_cell import main

if __name__ == "__main__":
    sys.exit(main())
