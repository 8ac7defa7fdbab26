"""The instructor's toolchain, one copy of each mechanism: :mod:`~coursetools.regions` (solution
markers, stubs, region to function), :mod:`~coursetools.execute` (the one way a notebook is
executed: papermill, a time limit per cell, the fixed kernel environment),
:mod:`~coursetools.refresh` (the committed outputs of checked cells) and
:mod:`~coursetools.release` (the student and solutions releases). ``scripts/`` holds the
command-line entry points; ``make setup`` installs this package with ``helpers`` and ``grading``."""
