"""Grading a class: hidden tests per homework part, run in isolated processes (instructor tree only).

Never part of the student release: ``coursetools/release.py`` copies ``notebooks/``, ``helpers/``
and ``data/`` only. Entry point: ``scripts/grade.py`` (``make grade SUBMISSIONS=<folder>``).

Modules: ``parts/`` (one file per graded part: its points, hidden inputs, collector, judge and
catalogue of mistakes; discovered), ``cases`` (input builders several parts share), ``collect``
(runs in the child: the tools of the collectors), ``judge`` (in the grader: the tools of the judges,
the reference, verdicts), ``gradescope`` (the Gradescope autograder), ``sandbox``
and ``zygote`` (the child processes), ``submission`` (reading submissions, putting a part's
code into the instructor's module), ``written`` (written answers), ``grader`` (the whole run,
outputs). The synthetic submissions of the tests and the benchmark are test code
(``tests/grading_fixtures.py``): nothing here imports them.
"""
