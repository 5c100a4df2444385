"""ImageNet (ILSVRC-2012) validation and training sets from local ImageFolder directories; nothing is downloaded.

Layout: ``<data_dir>/val/<wnid>/*.JPEG`` and ``<data_dir>/train/<wnid>/*.JPEG`` (one folder per class, e.g.
``n01440764``; the layout torchvision's ImageFolder, the official train tarballs and most ``valprep.sh`` scripts
produce). Classes are the sorted folder names, as torchvision
assigns them, so label k matches output k of torchvision's ImageNet weights. Preprocessing is the standard
evaluation transform of those weights: resize the short side to 256, center-crop 224, ImageNet mean/std
normalization (unlike the other loaders, the values are normalized, not [0, 1]: that is what the weights expect).

``limit`` draws a seeded random subset of file paths BEFORE decoding, so ``eval.n=1000`` decodes 1000 files,
not 50,000. The training split (1.28 M images) is for noise-aware batch-norm calibration (study 004 calibrates
"over the training data"), read with the same evaluation transform: :func:`iter_imagenet` decodes it one batch
at a time (all of it would take ~770 GB as float32). Training a model on it is not supported here: use pretrained
weights (model.weights / model.weights_path).
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .errors import DataError

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
RESIZE = 256  # short side before the center crop (torchvision's ImageNet evaluation transform)
CROP = 224
SUBDIRS = ("val", os.path.join("imagenet", "val"))  # searched under the data root, in order
SPLIT_DIRS = {"test": "val", "val": "val", "train": "train"}  # split -> folder name


def find_val_dir(root: str, folder: str = "val") -> str | None:
    """The first ``<root>/<folder>`` or ``<root>/imagenet/<folder>`` directory that exists, else None."""
    for sub in (folder, os.path.join("imagenet", folder)):
        path = os.path.join(root, sub)
        if os.path.isdir(path):
            return path
    return None


def list_samples(val_dir: str) -> tuple[list[tuple[str, int]], list[str]]:
    """(path, label) pairs in torchvision ImageFolder order, and the sorted class names."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        classes, class_to_idx = find_classes(val_dir)
        samples = make_dataset(val_dir, class_to_idx, extensions=IMG_EXTENSIONS)
    except (FileNotFoundError, OSError) as err:
        raise DataError(f"dataset.data_dir: no ImageNet images in {val_dir} ({' '.join(str(err).split())[:120]}); "
                        "expected <data_dir>/val/<wnid>/*.JPEG") from None
    return samples, classes


def imagenet_samples(split: str, data_dir=None, limit: int | None = None, seed: int = 0
                     ) -> list[tuple[str, int]]:
    """The (path, label) pairs of a split ("test"/"val": the validation set, "train": the training set), a seeded
    random subset of ``limit`` of them (in folder order) when ``limit`` is set."""
    from .loaders import data_root

    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DataError(f"limit must be a positive integer or None, got {limit!r}")
    if split not in SPLIT_DIRS:
        raise DataError(f"unknown split '{split}' for dataset imagenet; allowed: test (the validation set), train")
    folder = SPLIT_DIRS[split]
    root = data_root(data_dir)
    split_dir = find_val_dir(root, folder)
    if split_dir is None:
        what = "validation" if folder == "val" else "training (needed by mitigation.nabn)"
        raise DataError(f"dataset.data_dir: ImageNet {what} folder not found in {root} (looked for {folder}, "
                        f"imagenet/{folder}); expected <data_dir>/{folder}/<wnid>/*.JPEG, one folder per class "
                        "(ImageFolder layout); set dataset.data_dir or $AIMC_DATA_DIR")
    samples, _ = list_samples(split_dir)
    if not samples:
        raise DataError(f"dataset.data_dir: no images in {split_dir}; expected {split_dir}/<wnid>/*.JPEG")
    if limit is not None and limit < len(samples):
        keep = np.sort(np.random.default_rng(seed).choice(len(samples), size=int(limit), replace=False))
        samples = [samples[i] for i in keep]
    return samples


def _sizes(resize: int | None, crop: int | None) -> tuple[int, int]:
    resize = RESIZE if resize is None else resize
    crop = CROP if crop is None else crop
    if not (isinstance(resize, int) and isinstance(crop, int) and 1 <= crop <= resize):
        raise DataError(f"dataset.resize/crop: need integers with 1 <= crop <= resize (got {resize!r}, {crop!r})")
    return resize, crop


def load_imagenet(split: str, data_dir=None, limit: int | None = None, seed: int = 0,
                  resize: int | None = None, crop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet images as (x float32 [N,3,crop,crop] normalized, y int64 [N]), decoded at once.

    split: "test" (or "val"): the validation set; "train": the training set (same transform; give ``limit``, or
    read it batch by batch with :func:`iter_imagenet`). data_dir: the folder holding ``val/`` / ``train/``
    (default $AIMC_DATA_DIR, then ~/.cache/aimcbench/data). limit: seeded random subset of that many images,
    chosen before decoding. resize/crop: short side and center-crop size in pixels (None: the module's
    RESIZE/CROP, 256/224, the transform torchvision's ImageNet weights were evaluated with).
    """
    resize, crop = _sizes(resize, crop)
    return _decode(imagenet_samples(split, data_dir, limit, seed), resize, crop)


class ImageNetBatches:
    """A re-iterable sequence of decoded batches (x [B,3,crop,crop], y [B]) of one split, decoded on the fly:
    iterating twice decodes twice, and memory holds one batch."""

    def __init__(self, samples: list[tuple[str, int]], batch_size: int, resize: int, crop: int):
        self.samples, self.batch_size, self.resize, self.crop = samples, int(batch_size), resize, crop

    def __len__(self) -> int:
        return (len(self.samples) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        for i in range(0, len(self.samples), self.batch_size):
            yield _decode(self.samples[i:i + self.batch_size], self.resize, self.crop)


def iter_imagenet(split: str, batch_size: int, data_dir=None, limit: int | None = None, seed: int = 0,
                  resize: int | None = None, crop: int | None = None) -> ImageNetBatches:
    """Batches of ``batch_size`` images of a split (see :func:`load_imagenet`), decoded one batch at a time."""
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size!r}")
    resize, crop = _sizes(resize, crop)
    return ImageNetBatches(imagenet_samples(split, data_dir, limit, seed), batch_size, resize, crop)


def _decode(samples: list[tuple[str, int]], resize: int, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode, resize, center-crop and normalize the chosen files into one batch."""
    from PIL import Image
    from torchvision import transforms

    tf = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor(),
                             transforms.Normalize(MEAN, STD)])
    x = torch.empty((len(samples), 3, crop, crop), dtype=torch.float32)
    for i, (path, _) in enumerate(samples):
        try:
            with Image.open(path) as img:
                x[i] = tf(img.convert("RGB"))
        except OSError as err:
            raise DataError(f"dataset imagenet: cannot decode {path} ({type(err).__name__})") from None
    return x, torch.tensor([label for _, label in samples], dtype=torch.int64)


__all__ = ["CROP", "MEAN", "RESIZE", "STD", "ImageNetBatches", "find_val_dir", "imagenet_samples", "iter_imagenet",
           "list_samples", "load_imagenet"]
