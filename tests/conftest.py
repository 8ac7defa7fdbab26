import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.data import load_mnist  # noqa: E402


def available_devices():
    """cpu always; cuda and mps when this machine has them."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@pytest.fixture(params=available_devices())
def device(request):
    return torch.device(request.param)


@pytest.fixture(scope="session")
def mnist_subset():
    return load_mnist("subset")


@pytest.fixture
def no_course_env(monkeypatch):
    for name in ("COURSE_DEVICE", "COURSE_DATA_SOURCE", "COURSE_DATA_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return os.environ
