"""The preprocessing a model was trained with, as a dataset setting (applied to train and test images alike).

``dataset.normalize: {mean: [...], std: [...]}`` (one value per channel, or one for all): (x - mean) / std.
``dataset.transform: {_target_: ..., **kwargs}``: any callable built with those keyword arguments, applied to
each [C,H,W] image (e.g. ``torchvision.transforms.Normalize``, or a ``Compose`` of tensor transforms).
Both null (the default): the raw [0, 1] images, as every built-in model was trained. normalize comes first.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from aimcbench.imports import import_object

from .errors import DatasetConfigError


def _numbers(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(
        isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e) for e in v)


def check_normalize(spec: Any) -> None:
    ok = (isinstance(spec, dict) and set(spec) == {"mean", "std"} and _numbers(spec["mean"]) and _numbers(spec["std"])
          and len(spec["mean"]) == len(spec["std"]) and all(s > 0 for s in spec["std"]))
    if not ok:
        raise DatasetConfigError(f"dataset.normalize: must be null or {{mean: [numbers], std: [numbers > 0]}} of "
                                 f"equal length, one per channel (got {spec!r})")


def build_transform(spec: Any) -> Any:
    """The callable ``dataset.transform`` describes (DatasetConfigError naming the key otherwise)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("_target_"), str):
        raise DatasetConfigError(f"dataset.transform: must be null or {{_target_: dotted.path, ...keyword "
                                 f"arguments}} (got {spec!r})")
    try:
        from hydra.utils import instantiate

        import_object(spec["_target_"], "dataset.transform", DatasetConfigError)
        fn = instantiate(spec, _convert_="all")
    except DatasetConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - Hydra wraps the constructor's error; keep its first line
        raise DatasetConfigError(f"dataset.transform: building {spec['_target_']} failed: "
                                 f"{' '.join(str(err).split())[:200]}") from None
    if not callable(fn):
        raise DatasetConfigError(f"dataset.transform: {spec['_target_']} gave a {type(fn).__name__}, not a callable")
    return fn


def preprocess(x: torch.Tensor, dataset_cfg: dict) -> torch.Tensor:
    """``x`` normalized / transformed as ``dataset_cfg`` says; the same tensor when neither is set."""
    norm, spec = dataset_cfg.get("normalize"), dataset_cfg.get("transform")
    if norm is not None:
        check_normalize(norm)
        mean = torch.tensor(norm["mean"], dtype=x.dtype).reshape(1, -1, 1, 1)
        std = torch.tensor(norm["std"], dtype=x.dtype).reshape(1, -1, 1, 1)
        if mean.shape[1] not in (1, x.shape[1]):
            raise DatasetConfigError(f"dataset.normalize: {mean.shape[1]} values for {x.shape[1]}-channel images")
        x = (x - mean) / std
    if spec is not None:
        fn = build_transform(spec)
        x = torch.stack([torch.as_tensor(fn(img)) for img in x])
    return x
