"""Datasets for aimcbench: MNIST, Fashion-MNIST, CIFAR, ImageNet, synthetic stand-ins, and any torch Dataset.

Public API::

    x, y = load_split(name, split, data_dir=None, limit=None, seed=0)   # a registered name (DATASETS)
    x, y = load_from_config(dataset_cfg, split, limit=None, seed=0)     # a ``dataset`` section: name or
                                                                        # _target_, then normalize/transform
    check_dataset_config(dataset_cfg)                                   # DatasetConfigError, one line
    data_source(dataset_cfg) ; inputs_fingerprint(data)                 # provenance for meta.json
    register_dataset(name, loader, input_shape, num_classes, sizes)     # loader(split, data_dir, limit, seed)
    DATASETS[name] -> {"input_shape": (C, H, W), "num_classes": int, "sizes": (train, test)}
"""
from __future__ import annotations

from typing import Callable

from .errors import DataError, DatasetConfigError
from .idx import read_idx, write_idx
from .imagenet import load_imagenet
from .images import default_image_path, load_coco, load_images
from .loaders import DATASETS, data_root
from .loaders import load_split as _load_split_files
from .preprocess import build_transform, check_normalize, preprocess
from .provenance import count_inputs, data_source, inputs_fingerprint
from .target import check_target, load_target_split

# dataset=images (image files for detection models) is served by aimcbench.data.images, not load_split, so it
# is not in DATASETS (a registry of fixed-shape classification sets); the config schema lists it separately.
Loader = Callable[..., tuple]
LOADERS: dict[str, Loader] = {name: (lambda split, data_dir=None, limit=None, seed=0, _n=name:
                                     _load_split_files(_n, split, data_dir=data_dir, limit=limit, seed=seed))
                              for name in DATASETS}
"""Registered dataset name -> loader(split, data_dir=None, limit=None, seed=0) -> (x, y)."""


def register_dataset(name: str, loader: Loader, input_shape: tuple[int, ...] | None = None,
                     num_classes: int | None = None, sizes: tuple[int, int] | None = None) -> None:
    """Make ``dataset.name=<name>`` load with ``loader`` (for packages that extend aimcbench)."""
    LOADERS[name] = loader
    DATASETS[name] = {"input_shape": input_shape, "num_classes": num_classes, "sizes": sizes}


# ImageNet validation set from a local ImageFolder (aimcbench.data.imagenet); no train split.
register_dataset("imagenet", load_imagenet, (3, 224, 224), 1000, (0, 50_000))


def load_split(name: str, split: str, data_dir=None, limit: int | None = None, seed: int = 0):
    """Load one split of registered dataset ``name`` as (x, y) (see loaders.load_split for the arguments)."""
    if name not in LOADERS:
        raise DataError(f"unknown dataset '{name}'; allowed: {', '.join(DATASETS)}")
    return LOADERS[name](split, data_dir=data_dir, limit=limit, seed=seed)


def check_dataset_config(dataset_cfg: dict) -> None:
    """Validate the parts of a ``dataset`` section this package reads: ``_target_`` (imports, takes the keys),
    ``normalize`` and ``transform``. DatasetConfigError (one line naming the key) otherwise."""
    if dataset_cfg.get("_target_") is not None:
        check_target(dataset_cfg)
    if dataset_cfg.get("normalize") is not None:
        check_normalize(dataset_cfg["normalize"])
    if dataset_cfg.get("transform") is not None:
        build_transform(dataset_cfg["transform"])


def load_from_config(dataset_cfg: dict, split: str, limit: int | None = None, seed: int = 0,
                     preprocessed: bool = True):
    """One split of the dataset a ``dataset`` section describes, as (x, y); ``preprocessed``: with its
    normalize/transform applied (False: the images as stored, e.g. for the training cache's fingerprint)."""
    if dataset_cfg.get("_target_") is not None:
        x, y = load_target_split(dataset_cfg, split, limit=limit, seed=seed)
    else:
        x, y = load_split(dataset_cfg["name"], split, data_dir=dataset_cfg.get("data_dir"), limit=limit, seed=seed)
    return (preprocess(x, dataset_cfg), y) if preprocessed else (x, y)


def dataset_label(dataset_cfg: dict) -> str:
    """A short name for logs and meta.json: ``name``, else the last part of ``_target_``."""
    if dataset_cfg.get("_target_"):
        return str(dataset_cfg["_target_"]).rsplit(".", 1)[-1]
    return str(dataset_cfg["name"])


__all__ = ["DATASETS", "LOADERS", "DataError", "DatasetConfigError", "check_dataset_config", "count_inputs",
           "data_root", "data_source", "dataset_label", "default_image_path", "inputs_fingerprint", "load_coco",
           "load_from_config", "load_imagenet", "load_images", "load_split", "preprocess", "read_idx",
           "register_dataset", "write_idx"]
