"""rram_signed: study 002's level-1 pipeline -- a signed weight stored directly (no cell pair, no on/off ratio)."""

from __future__ import annotations

from typing import Optional

import torch

from ..config import HardwareConfig
from ..periphery import quantize_symmetric
from .base import Device, register_device
from .rng import ChipStreams, randn_chips


@register_device("rram_signed")
class SignedDevice(Device):
    """The weight is fake-quantized to 2^program_bits - 1 symmetric levels over [-max|W|, max|W|] and then
    programmed with variation relative to the signed range: std = variation * 2 max|W| (the study's level-1
    definition, which is not equivalent to the per-cell variation of levels 2-3, see models-and-devices.md)."""

    signed_weights = True

    def __init__(self, hw: HardwareConfig):
        super().__init__(hw)
        self.bits = hw.device.program_bits
        self.variation = hw.device.variation

    def program(self, w_norm: torch.Tensor, streams: ChipStreams) -> torch.Tensor:
        """Normalized signed weights of every chip of the chunk, [Kc, out, in] (stream "program")."""
        w = quantize_symmetric(w_norm, self.bits)
        if self.variation == 0:
            return w.expand(len(streams), *w.shape).clone()
        noise = randn_chips(w.shape, streams("program"), w.device)
        return noise.mul_(2.0 * self.variation).add_(w)

    def read(self, programmed: torch.Tensor, t_inference_s: float, streams: Optional[ChipStreams]) -> torch.Tensor:
        """As programmed."""
        return programmed
