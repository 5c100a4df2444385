"""Wide ResNet (Zagoruyko & Komodakis 2016) for 32x32 inputs; WRN-16-8 is study 002's second model.

Pre-activation basic blocks (BN -> act -> conv3x3 -> BN -> act -> conv3x3) with a 1x1 convolution
on the residual path wherever the channel count or resolution changes. Channels 16 / 16k / 32k / 64k
(k = widen_factor; 16/128/256/512 for k = 8), depth = 6n + 4 with n blocks per group, global average
pooling and one FC layer. Conv/linear shapes match study 002 Table 1.

Choices not fixed by the study, documented here:
- Activation is ReLU6 by default (study 002 trains all its models with ReLU6 so that analog inputs
  are the ReLU6 range quantized to 8 bits); ``activation="relu"`` gives the original WRN.
- The stride-2 convolution of groups 3 and 4 is the first conv of the block (original WRN). Table 1's
  "input size" column is inconsistent on this (G3 lists conv2 at 32x32, G4 lists it at 8x8); filter
  shapes and array counts do not depend on it.
- Convolutions have no bias (each is followed by batch norm); the FC layer has one. No dropout.
"""
from __future__ import annotations

import torch
from torch import nn

from .common import make_activation


class WideBasicBlock(nn.Module):
    """Pre-activation basic block; ``shortcut`` is a 1x1 conv when the shape changes, else identity."""

    def __init__(self, c_in: int, c_out: int, stride: int, activation: str):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.act1 = make_activation(activation)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        out = self.conv2(self.act2(self.bn2(self.conv1(pre))))
        # As in the original WRN, a projection shortcut reads the pre-activated input.
        return out + (self.shortcut(pre) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for [B, in_channels, 32, 32] inputs (any size works: global pooling)."""

    def __init__(self, depth: int = 16, widen_factor: int = 8, num_classes: int = 10,
                 in_channels: int = 3, activation: str = "relu6"):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"wrn: depth must be 6n+4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
        if widen_factor < 1:
            raise ValueError(f"wrn: widen_factor must be >= 1, got {widen_factor}")
        n = (depth - 4) // 6
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        c_in = 16
        for group, c_out in enumerate(widths):
            for i in range(n):
                stride = 2 if group > 0 and i == 0 else 1
                blocks.append(WideBasicBlock(c_in, c_out, stride, activation))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c_in)
        self.act = make_activation(activation)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(self.pool(out), 1))
