"""Grading a class: hidden tests per homework part, run in isolated processes (instructor tree only).

Never part of the student release: ``scripts/release.py`` copies ``notebooks/``, ``helpers/``
and ``data/`` only. Entry point: ``scripts/grade.py`` (``make grade SUBMISSIONS=<folder>``).

Modules: ``parts`` (what is graded, the points), ``cases`` (hidden inputs), ``collect`` (runs
in the child: measures), ``judge`` (in the grader: verdicts and feedback wording), ``sandbox``
and ``zygote`` (the child processes), ``submission`` (reading submissions, putting a part's
code into the instructor's module), ``written`` (written answers), ``grader`` (the whole run,
outputs). The synthetic submissions of the tests and the benchmark are test code
(``tests/grading_fixtures.py``): nothing here imports them.
"""
