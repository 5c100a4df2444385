"""Datasets for aimcbench: MNIST, Fashion-MNIST, CIFAR and deterministic synthetic stand-ins.

Public API::

    x, y = load_split(name, split, data_dir=None, limit=None, seed=0)   # see loaders.load_split
    DATASETS[name] -> {"input_shape": (C, H, W), "num_classes": int, "sizes": (train, test)}
"""
from .errors import DataError
from .idx import read_idx, write_idx
from .images import default_image_path, load_coco, load_images
from .imagenet import load_imagenet
from .loaders import DATASETS, data_root
from .loaders import load_split as _load_split_files
# dataset=images (image files for detection models) is served by aimcbench.data.images, not load_split, so it
# is not in DATASETS (a registry of fixed-shape classification sets); the config schema lists it separately.
# ImageNet validation set from a local ImageFolder (aimcbench.data.imagenet); no train split.
DATASETS["imagenet"] = {"input_shape": (3, 224, 224), "num_classes": 1000, "sizes": (0, 50_000)}


def load_split(name: str, split: str, data_dir=None, limit: int | None = None, seed: int = 0):
    """Load one split as (x, y); imagenet goes to aimcbench.data.imagenet, the rest to loaders.load_split."""
    if name == "imagenet":
        return load_imagenet(split, data_dir=data_dir, limit=limit, seed=seed)
    return _load_split_files(name, split, data_dir=data_dir, limit=limit, seed=seed)


__all__ = ["DATASETS", "DataError", "data_root", "default_image_path", "load_coco", "load_imagenet", "load_images", "load_split",
           "read_idx", "write_idx"]
