"""Datasets for aimcbench: MNIST, Fashion-MNIST, CIFAR and deterministic synthetic stand-ins.

Public API::

    x, y = load_split(name, split, data_dir=None, limit=None, seed=0)   # see loaders.load_split
    DATASETS[name] -> {"input_shape": (C, H, W), "num_classes": int, "sizes": (train, test)}
"""
from .errors import DataError
from .idx import read_idx, write_idx
from .images import default_image_path, load_coco, load_images
from .loaders import DATASETS, data_root, load_split

# Image files for detection models (aimcbench.data.images; load_images, not load_split, serves it).
DATASETS["images"] = {"input_shape": None, "num_classes": 91, "sizes": (0, None)}

__all__ = ["DATASETS", "DataError", "data_root", "default_image_path", "load_coco", "load_images", "load_split",
           "read_idx", "write_idx"]
