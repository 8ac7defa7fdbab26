"""Device choice, the one tensor-to-numpy path, and seeding.

Every plot and every printed number in the suite reaches numpy through
``to_numpy`` (``.detach().cpu()``), so the same code runs on CPU, CUDA and MPS.
"""

from __future__ import annotations

import os
import random
from numbers import Number

import numpy as np
import torch

VALID_DEVICES = ("auto", "cpu", "cuda", "mps")


def _available(kind: str) -> bool:
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return False


def get_device(preference: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device to run on.

    ``"auto"`` (or None) takes the environment variable ``COURSE_DEVICE`` when it
    is set, and otherwise the first available of cuda, mps, cpu. An explicit
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` is used as given. Asking for
    a device that this machine does not have raises ``RuntimeError`` rather than
    quietly running somewhere else.
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    requested = (preference or "auto").strip().lower()
    source = "argument"
    if requested == "auto" and os.environ.get("COURSE_DEVICE", "").strip():
        requested = os.environ["COURSE_DEVICE"].strip().lower()
        source = "COURSE_DEVICE"
    kind = requested.split(":", 1)[0]
    if kind not in VALID_DEVICES:
        raise ValueError(
            f"Unknown device {requested!r} (from {source}); use one of {', '.join(VALID_DEVICES)}"
            " (optionally with an index, e.g. 'cuda:0')."
        )
    if kind == "auto":
        for candidate in ("cuda", "mps", "cpu"):
            if _available(candidate):
                return torch.device(candidate)
    if not _available(kind):
        raise RuntimeError(
            f"Device {requested!r} (from {source}) is not available on this machine "
            f"(cuda available: {torch.cuda.is_available()}, mps available: {_available('mps')}). "
            "Use device='auto' or 'cpu', or unset COURSE_DEVICE."
        )
    if kind == "cuda" and ":" in requested:
        index = int(requested.split(":", 1)[1])
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"Device {requested!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    return torch.device(requested)


def to_numpy(x):
    """Turn a tensor (on any device, with or without grad), a list/tuple of
    tensors or numbers, or a plain number into a numpy array.

    This is the single place where tensors leave torch: ``.detach().cpu()``.
    """
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)):
        return np.array([to_numpy(item) for item in x])
    if isinstance(x, (Number, np.generic)):
        return np.asarray(x)
    raise TypeError(f"to_numpy takes a tensor, a list of tensors or a number, not {type(x).__name__}.")


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (all devices)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, not {seed!r}.")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))
