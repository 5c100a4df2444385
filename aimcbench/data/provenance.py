"""Where a run's data came from: the source actually used (full files, the embedded MNIST sample, synthetic, a
user's own) and a fingerprint of the test inputs, for meta.json (the config alone cannot say: with MNIST missing
and no network, ``dataset=mnist eval.n=10000`` silently evaluates the 2,000-image embedded sample)."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from .loaders import DATASETS, SAMPLE_PATH, data_root, find_idx_pair

SOURCES = ("full", "sample", "synthetic", "user")


def data_source(dataset_cfg: dict, split: str = "test") -> dict[str, Any]:
    """{"source": one of SOURCES, "path": where the files are (or None), "target": the user's _target_ (or None)}.

    Call it after loading ``split``: the loaders try local files, then a download, then (MNIST only) the embedded
    sample, so the files present afterwards tell which one was used."""
    if dataset_cfg.get("_target_"):
        return {"source": "user", "path": None, "target": str(dataset_cfg["_target_"])}
    name = str(dataset_cfg.get("name"))
    data_dir = dataset_cfg.get("data_dir")
    if name.startswith("synthetic"):
        return {"source": "synthetic", "path": None, "target": None}
    if name == "images":  # a detection model's own image files, COCO, or the embedded default picture
        from .images import default_image_path

        paths = dataset_cfg.get("coco_images") or dataset_cfg.get("paths")
        return {"source": "user" if paths else "sample", "path": (paths if isinstance(paths, str) else list(paths)) if paths
                else default_image_path(),
                "target": None}
    if name in ("mnist", "mnist32", "fashion_mnist", "fashion_mnist32"):
        family = "fashion_mnist" if name.startswith("fashion") else "mnist"
        pair = find_idx_pair(family, split, data_root(data_dir))
        if pair is not None:
            return {"source": "full", "path": pair[0], "target": None}
        return {"source": "sample", "path": SAMPLE_PATH, "target": None}
    if name in DATASETS or name == "imagenet":
        return {"source": "full", "path": data_root(data_dir), "target": None}
    return {"source": "user", "path": data_dir, "target": None}  # a registered loader of another package


def inputs_fingerprint(data: Any) -> str | None:
    """sha256 of test data as a task prepared it (tensors and arrays: dtype, shape, bytes; nested in tuples,
    lists and dicts; numbers and strings by value). None when it holds something else (no stable bytes)."""
    h = hashlib.sha256()

    def add(obj: Any) -> bool:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().to("cpu").contiguous().reshape(-1)
            h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
            return True
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                return all(add(v) for v in obj.reshape(-1))
            h.update(f"A{obj.dtype}{obj.shape}".encode())
            h.update(np.ascontiguousarray(obj).tobytes())
            return True
        if isinstance(obj, (tuple, list)):
            h.update(f"L{len(obj)}".encode())
            return all(add(v) for v in obj)
        if isinstance(obj, dict):
            h.update(f"D{len(obj)}".encode())
            return all(add(str(k)) and add(obj[k]) for k in sorted(obj, key=str))
        if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
            h.update(f"S{obj!r}".encode())
            return True
        return False

    return h.hexdigest() if add(data) else None


def count_inputs(data: Any) -> int:
    """Number of test inputs: the first element's length for (inputs, labels, ...) tuples, else len()."""
    first = data[0] if isinstance(data, tuple) else data
    return len(first)
