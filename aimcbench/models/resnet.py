"""CIFAR ResNet-20/32/56 (He et al. 2016, section 4.2).

Post-activation basic blocks (conv3x3 -> BN -> act -> conv3x3 -> BN, add, act), three stages of
16/32/64 channels (times ``width_mult``) with n = (depth - 2) / 6 blocks each, global average pooling
and one FC layer. Shortcuts where the shape changes are "option B": 1x1 convolution + batch norm.
"""
from __future__ import annotations

import torch
from torch import nn

from .common import make_activation, scaled


class BasicBlock(nn.Module):
    """He et al. basic block with a projection (option B) shortcut where the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, activation: str):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))
        self.act2 = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-depth for 32x32 inputs; depth in 6n+2 (20, 32, 44, 56, 110)."""

    def __init__(self, depth: int = 20, num_classes: int = 10, width_mult: float = 1.0,
                 in_channels: int = 3, activation: str = "relu"):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"resnet_cifar: depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        widths = [scaled(c, width_mult) for c in (16, 32, 64)]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), make_activation(activation))
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for stage, c_out in enumerate(widths):
            for i in range(n):
                blocks.append(BasicBlock(c_in, c_out, 2 if stage > 0 and i == 0 else 1, activation))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))
