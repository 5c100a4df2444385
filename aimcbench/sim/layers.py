"""Which modules of a model are analog: the profile's layer selection (``hardware.layers``).

Used by the converter, the tile plan, hardware-aware training and the error model, so that all of them agree on
the analog layers; it imports nothing of the simulator but the settings.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections import OrderedDict
from typing import Any, Callable

import torch
from torch import nn

from .config import HardwareConfig


def select_layers(model: nn.Module, hw: HardwareConfig) -> "OrderedDict[str, nn.Module]":
    """The modules that the profile makes analog, in model order (name -> module)."""
    sel = hw.layers
    types = tuple(getattr(nn, t) for t in sel.types)
    found = OrderedDict()
    for name, mod in model.named_modules():
        if type(mod) not in types:
            continue
        if sel.include is not None and not any(fnmatch.fnmatchcase(name, p) for p in sel.include):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in sel.exclude):
            continue
        if isinstance(mod, nn.Conv2d) and mod.groups != 1:
            warnings.warn(f"{name}: grouped convolution stays digital (not mapped to crossbars)")
            continue
        found[name] = mod
    if sel.indices is not None:
        names = list(found)
        picked = []
        for i in sel.indices:
            if not -len(names) <= i < len(names):
                raise ValueError(f"hardware.layers.indices: {i} is out of range for {len(names)} analog layers")
            picked.append(names[i])
        found = OrderedDict((n, found[n]) for n in names if n in picked)
    return found


def probe_layers(model: nn.Module, layers: "OrderedDict[str, nn.Module]", example: torch.Tensor,
                 record: Callable[[str, nn.Module, tuple, Any], None]) -> None:
    """One forward of ``example`` in eval mode without gradients, calling ``record(name, module, args, output)``
    for each of ``layers`` it reaches; the hooks are removed and the model's training mode restored after."""
    hooks = [mod.register_forward_hook(lambda m, a, o, n=name: record(n, m, a, o)) for name, mod in layers.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
