"""``dataset._target_``: any torch Dataset class (a torchvision dataset, ImageFolder, the user's own), materialized
to the ``(x float32 [N,C,H,W], y int64 [N])`` tensors the runner and the training loop use.

The section's other keys are the class's keyword arguments, except the settings aimcbench itself reads
(``name``, ``data_dir``, ``shape``, ``normalize``, ``transform``, ``train_augment``, ``splits``). The split:
``splits: {train: {...}, test: {...}}`` gives per-split keyword arguments (e.g. two ImageFolder roots);
without it a class that takes ``train`` gets ``train=True/False``, one that takes ``split`` gets
``split="train"/"test"``, and any other is used as it is for both splits. ``data_dir`` becomes ``root`` when
the class takes one and ``root`` is not set. Images may be PIL images, numpy arrays (H, W[, C]) or tensors;
uint8 values are scaled to [0, 1]. ``limit`` draws the same seeded subset of indices as the built-in sets and
only those items are read.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from aimcbench.imports import import_object

from .errors import DatasetConfigError

KEY = "dataset._target_"
OWN_KEYS = ("name", "_target_", "data_dir", "shape", "normalize", "transform", "train_augment", "splits")


def _signature(cls: Any) -> tuple[set[str], list[str], bool]:
    """(keyword names, required names, takes **kwargs); unknown signatures accept anything."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return set(), [], True
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    required = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and p.default is p.empty]
    return names, required, any(p.kind is p.VAR_KEYWORD for p in params)


def dataset_kwargs(cfg: dict, split: str, cls: Any) -> dict:
    """Keyword arguments for ``cls`` for one split; DatasetConfigError on keys it does not take or needs."""
    names, required, var_kw = _signature(cls)
    kwargs = {k: v for k, v in cfg.items() if k not in OWN_KEYS}
    splits = cfg.get("splits")
    if splits is not None:
        if not isinstance(splits, dict) or not set(splits) <= {"train", "test"}:
            raise DatasetConfigError(f"dataset.splits: must be {{train: {{...}}, test: {{...}}}} (got {splits!r})")
        kwargs.update(splits.get(split) or {})
    elif "train" in names and "train" not in kwargs:
        kwargs["train"] = split == "train"
    elif "split" in names and "split" not in kwargs:
        kwargs["split"] = split
    if "root" in names and "root" not in kwargs and cfg.get("data_dir"):
        kwargs["root"] = cfg["data_dir"]
    unknown = sorted(set(kwargs) - names) if not var_kw else []
    if unknown:
        raise DatasetConfigError(f"{KEY}: {cfg['_target_']} takes no keyword argument(s) {', '.join(unknown)} "
                                 f"(from dataset.{unknown[0]}); it takes: {', '.join(sorted(names)) or 'none'}")
    missing = [n for n in required if n not in kwargs]
    if missing:
        raise DatasetConfigError(f"{KEY}: {cfg['_target_']} needs {', '.join(missing)}; set dataset.{missing[0]}=...")
    return kwargs


def check_target(cfg: dict) -> Any:
    """The dataset class of ``cfg['_target_']`` after checking it imports, is callable and takes the keys."""
    cls = import_object(cfg["_target_"], KEY, DatasetConfigError)
    if not callable(cls):
        raise DatasetConfigError(f"{KEY}: {cfg['_target_']} is a {type(cls).__name__}, not a Dataset class")
    for split in ("train", "test"):
        dataset_kwargs(cfg, split, cls)
    return cls


def _image(item: Any, where: str) -> torch.Tensor:
    """One image as float32 [C,H,W] (uint8 scaled to [0, 1])."""
    if isinstance(item, torch.Tensor):
        t = item
    elif isinstance(item, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(item))
        if t.dim() == 3 and t.shape[-1] in (1, 3, 4) and t.shape[0] not in (1, 3, 4):
            t = t.permute(2, 0, 1)  # H, W, C -> C, H, W
    else:
        try:
            from torchvision.transforms.functional import pil_to_tensor

            t = pil_to_tensor(item)
        except (TypeError, ImportError, AttributeError):
            raise DatasetConfigError(f"{KEY}: {where} is a {type(item).__name__}; expected an image "
                                     "(PIL image, numpy array or tensor)") from None
    t = t.float().div(255.0) if t.dtype == torch.uint8 else t.float()
    return t.unsqueeze(0) if t.dim() == 2 else t


def materialize(ds: Any, limit: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of the items a seeded subset of ``limit`` indices (or all) selects; iterable datasets: the first."""
    from .loaders import _subset_indices

    if hasattr(ds, "__len__") and hasattr(ds, "__getitem__"):
        idx = _subset_indices(len(ds), limit, seed)
        items = (ds[int(i)] for i in (range(len(ds)) if idx is None else idx))
    else:
        import itertools

        items = itertools.islice(iter(ds), limit)
    xs, ys = [], []
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DatasetConfigError(f"{KEY}: item {i} is a {type(item).__name__}; expected (image, label) pairs")
        xs.append(_image(item[0], f"item {i}'s image"))
        ys.append(int(item[1]))
        if xs[-1].shape != xs[0].shape:
            raise DatasetConfigError(f"{KEY}: item {i}'s image is {tuple(xs[-1].shape)}, item 0's "
                                     f"{tuple(xs[0].shape)}; set dataset.transform to bring them to one size")
    if not xs:
        raise DatasetConfigError(f"{KEY}: {type(ds).__name__} has no items")
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


def load_target_split(cfg: dict, split: str, limit: int | None = None, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Instantiate ``cfg['_target_']`` for ``split`` and materialize it (see module docstring)."""
    cls = check_target(cfg)
    try:
        ds = cls(**dataset_kwargs(cfg, split, cls))
    except DatasetConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - the user's dataset failed to open: one line naming it
        raise DatasetConfigError(f"{KEY}: {cfg['_target_']}(...) for the {split} split raised "
                                 f"{type(err).__name__}: {' '.join(str(err).split())[:200]}") from None
    return materialize(ds, limit, seed)
