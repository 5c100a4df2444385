"""Small helpers shared by the model builders."""
from __future__ import annotations

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name ("relu" or "relu6")."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation '{name}' is not supported; allowed: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=False)


def scaled(channels: int, width_mult: float) -> int:
    """Channel count scaled by ``width_mult`` (at least 1), for building tiny test versions."""
    if width_mult <= 0:
        raise ValueError(f"width_mult must be > 0, got {width_mult}")
    return max(1, int(round(channels * width_mult)))
