"""The graded parts: what each one takes from a submission and what it is worth.

A part is the code of one student region (or of the few regions that make one piece of
work, such as the three norms of part b), named by the function or method that holds it.
The grader puts exactly that code into the student release's version of the module (every
other region a stub) and grades it there, with the student release's other helpers; where
the tests of a part call another part's code, the reference of that code is put in too
(``needs``: the bonus's Shampoo step calls part e's ``orthogonalize_svd``). So a part is
graded on its own, and the process running it holds no reference answer it does not need.

Not graded automatically (their written answers are collected for manual grading):
notebook 01's cell that reruns the experiment with alternating widths (an experiment call,
judged by what the student concludes from it). Every other code region of the source is a
part below; ``tests/test_grading.py`` fails when a region is added that no part covers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str  # the CSV column
    points: float
    title: str  # one line for the feedback
    file: str  # helpers/<module>.py or notebooks/<name>.ipynb
    functions: tuple[str, ...]  # qualified names of the functions that hold the student's code
    criteria: tuple[tuple[str, float], ...]  # (what is tested, weight): the score is points * passed weight / all
    needs: tuple[str, ...] = ()  # reference functions of the same file its tests call (other parts' answers)

    @property
    def notebook(self) -> bool:
        return self.file.endswith(".ipynb")

    @property
    def module(self) -> str:
        """The importable name of the module the child process grades (``helpers.norms``)."""
        return "student_notebook" if self.notebook else self.file[:-3].replace("/", ".")


PARTS = (
    Part("q1a_init_rms", 1, "Q1(a): `predicted_init_rms_squared`, the RMS at initialisation",
         "notebooks/00_rms_scaling_theory.ipynb", ("predicted_init_rms_squared",),
         (("the prediction follows the Monte Carlo law in d1 and d2", 1),)),
    Part("q1b_signgd_rms", 1, "Q1(b): `predicted_signgd_rms_squared`, the feature change after one SignGD step",
         "notebooks/00_rms_scaling_theory.ipynb", ("predicted_signgd_rms_squared",),
         (("the prediction follows the Monte Carlo law in d1 and d2", 1),)),
    Part("b_norms", 3, "2b: the norms of an update (`frobenius_norm`, `spectral_norm`, `rms_to_rms_norm`)",
         "helpers/norms.py", ("frobenius_norm", "spectral_norm", "rms_to_rms_norm"),
         (("Frobenius norm", 1), ("spectral norm", 1), ("induced RMS->RMS norm", 2))),
    Part("c_mup_lr", 3, "2c: muP by per-layer learning rates (`layer_lr`)",
         "helpers/mup_lr.py", ("layer_lr",),
         (("hidden layers", 3), ("input layer", 1), ("readout layer", 1), ("biases", 1))),
    Part("d_scaled_mlp", 3, "2d: muP by per-layer multipliers (`mup_multipliers`, `initial_weight`, `layer_output`)",
         "helpers/mup_multipliers.py", ("mup_multipliers", "initial_weight", "layer_output"),
         (("the forward pass at initialisation", 1), ("plain Adam steps move every layer as muP does", 2))),
    Part("e_shampoo", 2, "2e: Shampoo without accumulation (`orthogonalize_svd`)",
         "helpers/orthogonal_updates.py", ("orthogonalize_svd",),
         (("every singular value of the result is one", 1), ("the result keeps the input's singular vectors", 1),
          ("shape and dtype, and the Shampoo step built on it", 1))),
    Part("bonus_shape_scale", 1, "bonus: the shape factor of `ScaledSimpleShampoo` (`shampoo_shape_scale`)",
         "helpers/orthogonal_updates.py", ("shampoo_shape_scale",),
         (("every layer's update has the same RMS->RMS norm, whatever its shape", 1),), needs=("orthogonalize_svd",)),
    Part("lecture_newton_schulz", 2, "lecture: the Newton-Schulz iteration (`newton_schulz`)",
         "helpers/orthogonal_updates.py", ("newton_schulz",),
         (("the default quintic iteration", 2), ("the `steps` and `coefficients` arguments", 1))),
    Part("lecture_muon_scale", 1, "lecture: Muon's shape factors (`muon_shape_scale`)",
         "helpers/orthogonal_updates.py", ("muon_shape_scale",),
         (("the `spectral` factor", 1), ("the `keller` factor", 1), ("the `moonlight` factor", 1))),
    Part("r09_first_step", 1, "research 09: Adam's first-step factor (`first_step_factor`)",
         "notebooks/09_adam_bias_correction.ipynb", ("first_step_factor",),
         (("the factor for every combination of zero init and bias correction", 1),)),
    Part("r10_matching_eps", 1, "research 10: the epsilon that replays a learning-rate factor (`matching_epsilon`)",
         "helpers/schedules.py", ("matching_epsilon",),
         (("the epsilon reproduces the scaled step", 1),)),
    Part("r11_gradient", 1, "research 11: the gradient of the regression loss (`gradient`)",
         "helpers/least_squares.py", ("gradient",),
         (("the gradient of the squared loss", 1),)),
)

BY_NAME = {part.name: part for part in PARTS}

# Solution regions of the source that no part grades, with the reason (see the module docstring).
NOT_GRADED = {
    ("notebooks/01_activation_deltas.ipynb", "alternating"): "an experiment call; its written answer is collected",
    ("helpers/coord_verdict.py", "slope_verdict"): "notebook 12 (research, added after the homework's 20 points were "
                                                 "set): no hidden tests yet; its self-check runs in the notebook",
}

# What a part's status means, in the feedback.
STATUSES = {
    "passed": "every hidden test passed",
    "failed": "it ran; some hidden tests failed",
    "not attempted": "the stub is still there",
    "error": "it raised an error on every hidden test, or could not be loaded",
    "timeout": "it did not finish within the time limit",
    "memory": "it asked for more memory than the limit",
    "crashed": "the process running it died",
    "missing": "the file or function is not in the submission",
    "unreadable": "the file is not valid JSON or not a notebook",
    "tampered": "it tried to reach files or processes outside its own folder",
}
VERDICT_STATUSES = ("passed", "failed", "not attempted")  # the part ran to a verdict
