"""Fully connected classifier (e.g. 784-256-10 or 784-500-500-10 for MNIST)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .common import make_activation

BIAS_MODES = ("all", "input_row", "none")


class AppendOne(nn.Module):
    """[B, n] -> [B, n + 1] with a constant 1 as the last input: the next Linear's last weight column is its bias.

    Folded so, the bias is one more row of the crossbar, programmed (noise, quantization, max|W| scaling) like
    every weight of the layer (study 001 eq. 1a: I_785 is the bias input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1)


class MLP(nn.Sequential):
    """Flatten -> [Linear -> activation] * len(hidden) -> Linear(num_classes).

    Accepts [B, 1, 28, 28] or already flat [B, 784] input (Flatten is a no-op on the latter).

    ``bias``: all (every Linear has its own digital bias, the default), input_row (study 001 eq. 1: the first
    layer's bias is an extra input row of its weight matrix, ``AppendOne`` then ``Linear(in_features + 1, N1,
    bias=False)``, and no later layer has a bias) or none (no layer has one).
    """

    def __init__(self, in_features: int = 784, hidden: Sequence[int] = (256,), num_classes: int = 10,
                 activation: str = "relu", bias: str = "all"):
        hidden = [int(h) for h in hidden]
        if any(h < 1 for h in hidden) or in_features < 1 or num_classes < 2:
            raise ValueError(f"mlp: bad sizes in_features={in_features} hidden={hidden} "
                             f"num_classes={num_classes}; all must be >= 1 (num_classes >= 2)")
        if bias not in BIAS_MODES:
            raise ValueError(f"mlp: bias must be one of {', '.join(BIAS_MODES)} (got {bias!r})")
        layers: list[nn.Module] = [nn.Flatten()]
        widths = [in_features, *hidden, num_classes]
        if bias == "input_row":
            layers.append(AppendOne())
            widths[0] += 1
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(fan_in, fan_out, bias=bias == "all"))
            if i < len(widths) - 2:
                layers.append(make_activation(activation))
        super().__init__(*layers)
