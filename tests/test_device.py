"""Device choice, the to_numpy path and seeding."""

import numpy as np
import pytest
import torch

from helpers.device import get_device, seed_everything, to_numpy


def test_auto_prefers_an_accelerator(no_course_env):
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device().type == expected
    assert get_device(None).type == expected


def test_env_var_overrides_auto(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device("auto") == torch.device("cpu")


def test_explicit_argument_beats_env(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "definitely-not-a-device")
    assert get_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE"):
        get_device("auto")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_raises(monkeypatch, no_course_env):
    with pytest.raises(RuntimeError, match="'cuda'.*not available"):
        get_device("cuda")
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="COURSE_DEVICE"):
        get_device()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_missing_cuda_index_raises():
    with pytest.raises(RuntimeError, match="does not exist"):
        get_device(f"cuda:{torch.cuda.device_count()}")


def test_unknown_device_name_raises():
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        get_device("tpu")


def test_to_numpy_on_grad_tensor_list_and_numbers(device):
    x = torch.arange(6.0, device=device).reshape(2, 3).requires_grad_()
    y = x * 2  # a non-leaf that requires grad: np.asarray(y) would raise
    out = to_numpy(y)
    assert isinstance(out, np.ndarray) and out.shape == (2, 3) and out[1, 2] == 10.0
    stacked = to_numpy([torch.tensor(1.5, device=device), torch.tensor(2.5, device=device, requires_grad=True)])
    assert stacked.tolist() == [1.5, 2.5]
    assert to_numpy(3).item() == 3 and to_numpy([1.0, 2.0]).tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="to_numpy takes"):
        to_numpy("text")


def test_seed_everything_repeats_random_streams():
    seed_everything(7)
    first = (np.random.rand(3), torch.rand(3))
    seed_everything(7)
    second = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(first[0], second[0]) and torch.equal(first[1], second[1])
    with pytest.raises(TypeError):
        seed_everything(1.5)
