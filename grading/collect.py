"""What the child process measures for one part, with the submission's code in place.

Runs inside the sandboxed child (see :mod:`grading.zygote`): it imports the part's module from
the child's own folder (the instructor's helpers with the submission's functions put in),
calls the submission's code on the part's hidden inputs (its ``collect``, in
``grading/parts/<part>.py``), and returns the raw results as plain JSON
data. Every call is wrapped: an error on one input is recorded for that
input and the next one runs. No expected value is known here; the judge compares in the
parent process, so code running here cannot change a verdict.
"""

from __future__ import annotations

import importlib
import re
import traceback

import torch

MEMORY_PHRASES = ("can't allocate memory", "cannot allocate memory", "not enough memory", "out of memory")
_NUMBER = re.compile(r"(?<![A-Za-z_#])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def mask_numbers(text: str) -> str:
    """``text`` with every free-standing number replaced by ``#`` (error messages can quote hidden shapes)."""
    return _NUMBER.sub("#", text)


class Where:
    """Maps a line of a generated module back to the submission's file (set by :func:`run_part`)."""

    module_file = ""
    segments: list = []  # [first line, last line, first line in the submission's file, its label], 1-based

    @classmethod
    def locate(cls, tb) -> str | None:
        found = None
        for frame, lineno in traceback.walk_tb(tb):
            if frame.f_code.co_filename != cls.module_file:
                continue
            for first, last, student_first, label in cls.segments:
                if first <= lineno <= last:
                    found = f"line {student_first + lineno - first} of {label}, in `{frame.f_code.co_name}`"
        return found


def describe(error: BaseException) -> dict:
    message = str(error)
    return dict(
        type=type(error).__name__,
        message=mask_numbers(message)[:240],
        where=Where.locate(error.__traceback__),
        stub=isinstance(error, NotImplementedError),
        memory=isinstance(error, MemoryError) or any(p in message.lower() for p in MEMORY_PHRASES),
    )


def attempt(fn, *args, **kwargs) -> dict:
    """``{"ok": result}`` or ``{"error": description}``; ``fn`` must return JSON data."""
    try:
        return {"ok": fn(*args, **kwargs)}
    except BaseException as error:  # noqa: BLE001 - the submission's errors, SystemExit included
        return {"error": describe(error)}


def number(value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"returned a tensor of shape {tuple(value.shape)}, not a number")
        value = value.item()
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise TypeError(f"returned {type(value).__name__}, not a number")
    return float(value)


def tensor(value) -> dict:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"returned {type(value).__name__}, not a tensor")
    return dict(shape=list(value.shape), dtype=str(value.dtype).replace("torch.", ""),
                values=value.detach().cpu().double().flatten().tolist())


def numbers(values) -> list[float]:
    return [number(v) for v in values]


def module_of(part):
    """The part's module as the child imports it from its folder (the submission's code put in)."""
    return importlib.import_module(part.module)


def run_part(part, spec: dict) -> dict:
    """Import the part's module (an error there is the whole part's) and collect its measurements."""
    Where.module_file = spec["module_file"]
    Where.segments = [tuple(segment) for segment in spec["segments"]]
    loaded = attempt(lambda: module_of(part) and None)
    if "error" in loaded:
        return dict(import_error=loaded["error"])
    return dict(measured=part.collect(part))
