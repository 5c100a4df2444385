"""Datasets for aimcbench: MNIST, Fashion-MNIST, CIFAR and deterministic synthetic stand-ins.

Public API::

    x, y = load_split(name, split, data_dir=None, limit=None, seed=0)   # see loaders.load_split
    DATASETS[name] -> {"input_shape": (C, H, W), "num_classes": int, "sizes": (train, test)}
"""
from .errors import DataError
from .idx import read_idx, write_idx
from .loaders import DATASETS, data_root, load_split

__all__ = ["DATASETS", "DataError", "data_root", "load_split", "read_idx", "write_idx"]
