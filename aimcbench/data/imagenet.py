"""ImageNet (ILSVRC-2012) validation set from a local ImageFolder directory; nothing is downloaded.

Layout: ``<data_dir>/val/<wnid>/*.JPEG`` (one folder per class, e.g. ``n01440764``; the layout torchvision's
ImageFolder and most ``valprep.sh`` scripts produce). Classes are the sorted folder names, as torchvision
assigns them, so label k matches output k of torchvision's ImageNet weights. Preprocessing is the standard
evaluation transform of those weights: resize the short side to 256, center-crop 224, ImageNet mean/std
normalization (unlike the other loaders, the values are normalized, not [0, 1]: that is what the weights expect).

``limit`` draws a seeded random subset of file paths BEFORE decoding, so ``eval.n=1000`` decodes 1000 files,
not 50,000. There is no training split: evaluate pretrained weights (model.weights / model.weights_path).
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


def find_val_dir(root: str) -> str | None:
    """The first ``<root>/val`` or ``<root>/imagenet/val`` directory that exists, else None."""
    for sub in SUBDIRS:
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


def load_imagenet(split: str, data_dir=None, limit: int | None = None, seed: int = 0,
                  resize: int | None = None, crop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet validation images as (x float32 [N,3,crop,crop] normalized, y int64 [N]).

    split: "test" (or "val"); "train" raises DataError (no training split is read). data_dir: the folder
    holding ``val/`` (default $AIMC_DATA_DIR, then ~/.cache/aimcbench/data). limit: seeded random subset of
    that many images, chosen before decoding. resize/crop: short side and center-crop size in pixels
    (None: the module's RESIZE/CROP, 256/224, the transform torchvision's ImageNet weights were evaluated with).
    """
    from .loaders import data_root

    resize = RESIZE if resize is None else resize
    crop = CROP if crop is None else crop
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DataError(f"limit must be a positive integer or None, got {limit!r}")
    if split == "train":
        raise DataError("dataset imagenet has no train split here (only the validation set is read); use "
                        "pretrained weights (model.weights=imagenet or model.weights_path=FILE) and nothing that "
                        "needs training images (training, mitigation.nabn)")
    if split not in ("test", "val"):
        raise DataError(f"unknown split '{split}' for dataset imagenet; allowed: test (the validation set)")
    if not (isinstance(resize, int) and isinstance(crop, int) and 1 <= crop <= resize):
        raise DataError(f"dataset.resize/crop: need integers with 1 <= crop <= resize (got {resize!r}, {crop!r})")
    root = data_root(data_dir)
    val_dir = find_val_dir(root)
    if val_dir is None:
        raise DataError(f"dataset.data_dir: ImageNet validation folder not found in {root} (looked for "
                        f"{', '.join(SUBDIRS)}); expected <data_dir>/val/<wnid>/*.JPEG, one folder per class "
                        "(ImageFolder layout); set dataset.data_dir or $AIMC_DATA_DIR")
    samples, _ = list_samples(val_dir)
    if not samples:
        raise DataError(f"dataset.data_dir: no images in {val_dir}; expected {val_dir}/<wnid>/*.JPEG")
    if limit is not None and limit < len(samples):
        keep = np.sort(np.random.default_rng(seed).choice(len(samples), size=int(limit), replace=False))
        samples = [samples[i] for i in keep]
    return _decode(samples, resize, crop)


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


__all__ = ["CROP", "MEAN", "RESIZE", "STD", "find_val_dir", "list_samples", "load_imagenet"]
