"""MNIST for the course: full (downloaded once through keras, sha-checked) or a
real 5000-digit subset shipped in ``data/`` for offline use.

``load_mnist`` returns ``(train_images, train_labels), (valid_images, valid_labels)``
as torch tensors on the CPU: images float32 in [0, 1] with shape [N, 28, 28],
labels int64, the same layout as the course code's keras load.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SUBSET_PATH = DATA_DIR / "mnist_subset.npz"
SUBSET_SHA256 = "fa19f1ede8d2cac732a647d81f182919c9d9aa0dc79d15b29c1e1d65168f3f84"
# The sha256 keras itself pins for mnist.npz (keras.datasets.mnist.load_data).
FULL_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
SOURCES = ("auto", "full", "subset")
# After a failed download, "auto" uses the subset without trying again for this long (an offline
# student would otherwise wait for the attempt in every notebook).
RETRY_AFTER_S = 3600

MNIST = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class DataFileError(RuntimeError):
    """A data file exists but is not the file it should be (wrong hash, unreadable)."""


class MNISTUnavailableError(RuntimeError):
    """Full MNIST is neither cached nor downloadable."""


def mnist_cache_path() -> Path:
    """Where full MNIST is cached: ``$COURSE_DATA_CACHE/datasets/mnist.npz``,
    by default keras' own ``~/.keras/datasets/mnist.npz`` (so an earlier keras
    download is reused)."""
    root = os.environ.get("COURSE_DATA_CACHE") or os.environ.get("KERAS_HOME") or "~/.keras"
    return Path(root).expanduser() / "datasets" / "mnist.npz"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, expected: str, fix: str) -> Path:
    actual = sha256_of(path)
    if actual != expected:
        raise DataFileError(
            f"{path} is corrupted or not the expected file: sha256 {actual}, expected {expected}. "
            f"It was left in place. Fix: {fix}"
        )
    return path


def _read_npz(path: Path, keys: tuple[str, ...], fix: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in keys}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise DataFileError(f"{path} cannot be read ({error}). It was left in place. Fix: {fix}") from error


def _to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(images.astype(np.float32) / 255.0)
    labels = torch.from_numpy(labels.astype(np.int64))
    return images, labels


def _load_subset() -> MNIST:
    fix = "restore it with `git checkout -- data/mnist_subset.npz` (or rebuild it with data/make_mnist_subset.py)."
    if not SUBSET_PATH.exists():
        raise DataFileError(f"The offline MNIST subset {SUBSET_PATH} is missing. Fix: {fix}")
    _verified(SUBSET_PATH, SUBSET_SHA256, fix)
    arrays = _read_npz(SUBSET_PATH, ("train_images", "train_labels", "valid_images", "valid_labels"), fix)
    return (
        _to_tensors(arrays["train_images"], arrays["train_labels"]),
        _to_tensors(arrays["valid_images"], arrays["valid_labels"]),
    )


FULL_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"  # where keras gets it


def _download_full_mnist(target: Path) -> None:
    """Download mnist.npz with keras' public ``keras.utils.get_file`` (which checks the sha256)
    straight into ``target``'s folder; keras' progress lines are kept out of the notebook."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # keras 3 would otherwise import TensorFlow
    try:
        import keras
    except ImportError as error:
        raise MNISTUnavailableError(f"keras is not installed, so full MNIST cannot be downloaded ({error}).") from error
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            keras.utils.get_file(fname=target.name, origin=FULL_URL, file_hash=FULL_SHA256,
                                 cache_dir=str(target.parent.parent), cache_subdir=target.parent.name)
    except Exception as error:  # keras wraps every network failure in a bare Exception
        raise MNISTUnavailableError(f"Downloading full MNIST failed: {error}") from error


def _load_full(download: bool = True) -> MNIST:
    path = mnist_cache_path()
    fix = f"delete {path} yourself and run again to download a fresh copy, or use source='subset'."
    if not path.exists():
        if not download:
            raise MNISTUnavailableError(f"Full MNIST is not cached at {path}.")
        _download_full_mnist(path)
    _verified(path, FULL_SHA256, fix)
    arrays = _read_npz(path, ("x_train", "y_train", "x_test", "y_test"), fix)
    return _to_tensors(arrays["x_train"], arrays["y_train"]), _to_tensors(arrays["x_test"], arrays["y_test"])


def _failure_marker() -> Path:
    return mnist_cache_path().with_name("mnist.download-failed")


def _recent_failure() -> str | None:
    """The reason of a download failure less than RETRY_AFTER_S ago, else None."""
    marker = _failure_marker()
    try:
        if time.time() - marker.stat().st_mtime < RETRY_AFTER_S:
            return marker.read_text().strip() or "an earlier download attempt failed"
    except OSError:
        pass
    return None


def _remember_failure(reason: str) -> None:
    try:
        _failure_marker().parent.mkdir(parents=True, exist_ok=True)
        _failure_marker().write_text(reason)
    except OSError:  # a read-only cache only costs the next notebook one more attempt
        pass


def _check_source(source) -> str:
    if not isinstance(source, str) or source.strip().lower() not in SOURCES:
        raise ValueError(f"Unknown MNIST source {source!r}; valid sources are {', '.join(map(repr, SOURCES))}.")
    return source.strip().lower()


def resolve_source(source: str = "auto") -> str:
    """``"full"`` or ``"subset"``: what ``load_mnist(source)`` would load, decided once.

    ``"auto"`` is ``"full"`` when the cache holds MNIST or one download attempt
    succeeds (it then stays cached), else ``"subset"``; a failed attempt is
    remembered for RETRY_AFTER_S. The notebook runners call this once and pass the
    answer to every notebook, so no notebook tries the download again.
    """
    source = _check_source(source)
    if source != "auto":
        return source
    if mnist_cache_path().exists():
        return "full"
    if _recent_failure() is None:
        try:
            _download_full_mnist(mnist_cache_path())
            return "full"
        except MNISTUnavailableError as error:
            _remember_failure(str(error).splitlines()[0][:300])
    return "subset"


def load_mnist(source: str = "auto") -> MNIST:
    """Load MNIST as ``(train_images, train_labels), (valid_images, valid_labels)``.

    source:
      * ``"full"``: the 60000/10000 keras split, downloaded at most once into
        :func:`mnist_cache_path` and checked against its sha256. Raises
        ``MNISTUnavailableError`` when it is not cached and cannot be downloaded.
      * ``"subset"``: 5000 real MNIST training digits shipped in ``data/``
        (4000 train / 1000 validation, 400 / 100 per class).
      * ``"auto"``: full when cached or downloadable, else the subset, with one printed line
        that says what that means for the figures. A failed download is remembered for an
        hour (``RETRY_AFTER_S``): until then ``"auto"`` goes straight to the subset.

    A file that exists but has the wrong sha256 or cannot be read raises
    ``DataFileError`` naming the file and the fix; it is never used or deleted.
    The default can be set with the environment variable ``COURSE_DATA_SOURCE``.
    """
    source = _check_source(source)
    if source == "subset":
        return _load_subset()
    if source == "full":
        return _load_full()
    earlier = None if mnist_cache_path().exists() else _recent_failure()
    try:
        if earlier is not None:
            raise MNISTUnavailableError(f"not retried within {RETRY_AFTER_S // 60} minutes of a failed attempt: "
                                        f"{earlier}")
        return _load_full()
    except MNISTUnavailableError as error:
        if earlier is None:
            _remember_failure(str(error).splitlines()[0][:300])
        again = "not tried again for an hour" if earlier is not None else "could not be downloaded"
        print(f"MNIST: full MNIST {again}, so this run uses the 5000-digit subset shipped in data/ "
              "(4000 training images): curves are noisier and losses higher than with full MNIST.")
        return _load_subset()


def default_source() -> str:
    """The data source named by ``COURSE_DATA_SOURCE``, or ``"auto"``."""
    return os.environ.get("COURSE_DATA_SOURCE", "auto").strip().lower() or "auto"
