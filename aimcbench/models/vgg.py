"""The CIFAR-10 "VGG block" network of study 002 (Table 1).

Six 3x3 convolutions (32, 32, pool, 64, 64, pool, 128, 128, pool) then FC 2048->128 and FC 128->10.
The study uses ReLU6 activations (its analog inputs are quantized over the ReLU6 range [0, 6]),
'same' padding (Table 1 input sizes 32, 32, 16, 16, 8, 8) and no batch norm or dropout.
"""
from __future__ import annotations

from torch import nn

from .common import make_activation, scaled


class VGGBlock(nn.Sequential):
    """Study 002 VGG block; ``width_mult`` scales every channel count (1.0 = the study's model)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0,
                 hidden: int = 128, activation: str = "relu6", image_size: int = 32):
        if image_size % 8:
            raise ValueError(f"vgg_block: image_size must be a multiple of 8, got {image_size}")
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in (32, 64, 128):
            c_out = scaled(c, width_mult)
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), make_activation(activation)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2))
        side = image_size // 8
        fc_hidden = scaled(hidden, width_mult)
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, fc_hidden), make_activation(activation),
                   nn.Linear(fc_hidden, num_classes)]
        super().__init__(*layers)
