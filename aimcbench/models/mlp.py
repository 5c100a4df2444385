"""Fully connected classifier (e.g. 784-256-10 or 784-500-500-10 for MNIST)."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from .common import make_activation


class MLP(nn.Sequential):
    """Flatten -> [Linear -> activation] * len(hidden) -> Linear(num_classes).

    Accepts [B, 1, 28, 28] or already flat [B, 784] input (Flatten is a no-op on the latter).
    """

    def __init__(self, in_features: int = 784, hidden: Sequence[int] = (256,), num_classes: int = 10,
                 activation: str = "relu"):
        hidden = [int(h) for h in hidden]
        if any(h < 1 for h in hidden) or in_features < 1 or num_classes < 2:
            raise ValueError(f"mlp: bad sizes in_features={in_features} hidden={hidden} "
                             f"num_classes={num_classes}; all must be >= 1 (num_classes >= 2)")
        layers: list[nn.Module] = [nn.Flatten()]
        widths = [in_features, *hidden]
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(fan_in, fan_out), make_activation(activation)]
        layers.append(nn.Linear(widths[-1], num_classes))
        super().__init__(*layers)
