"""Shared code for the muP / Shampoo / Muon course notebooks.

Layers (each imports only from those above it):
  device, data          -> where to run, MNIST, to_numpy, seeding
  the student's files   -> norms, mup_lr, mup_multipliers, orthogonal_updates, coord_verdict,
                           schedules, least_squares (see ``editable``: no classes; reached
                           through the module, so an edit is what the next cell runs)
  models, optimizers    -> the objects the course is about (pure torch)
  experiments           -> the course protocols, returning numpy result objects
  plotting              -> figures from those results, save_figure
  coord_check           -> the coordinate check (``helpers.coord_check(...)``, the function;
                           import its other names with ``from helpers.coord_check import ...``)

Imported inside IPython (a notebook), the package re-executes an edited student file before
the next cell runs (``helpers.editable``; nothing to restart) and shows a stub, a failed
self-check or a broken file by its message, without a traceback (``helpers.errors``).
"""

import sys

from helpers import editable


def _shell():
    """The running IPython shell, or None (IPython is never imported here for nothing)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None


if _shell() is not None:  # before the imports below, which reach the student's files
    editable.install_loader()

from helpers.coord_check import coord_check  # noqa: E402
from helpers.data import load_mnist  # noqa: E402
from helpers.device import get_device, seed_everything, to_numpy  # noqa: E402


def _in_a_notebook() -> None:
    """Inside IPython: re-execute edited student files before each cell, and show a stub, a failed
    check or a broken file by its message (``helpers.errors``)."""
    shell = _shell()
    if shell is not None:
        from helpers.errors import show_short_errors

        editable.watch(shell)
        show_short_errors(shell)


_in_a_notebook()

__all__ = ["get_device", "seed_everything", "to_numpy", "load_mnist", "coord_check"]
