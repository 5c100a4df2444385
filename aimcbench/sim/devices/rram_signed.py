"""rram_signed: study 002's level-1 pipeline -- a signed weight stored directly (no cell pair, no on/off ratio)."""

from __future__ import annotations

from typing import Optional

import torch

from ..config import HardwareConfig
from ..periphery import quantize_symmetric
from .base import Device, register_device
from .rng import ChipStreams, randn_chips

# device.variation_range -> the range, in units of max|W|, that device.variation is a fraction of at level 1.
# max_abs: one cell's span (a level-2 cell spans max|W| in weight units), so level 1 draws std v * max|W| while the
# level-2 pair of two independent cells draws sqrt(2) v * max|W| on the weight: level 2 is the noisier, as the study
# explains its Figs. 5a/5b and 8 ("more pronounced in Level-2 due to the signed weight representation").
# full_span: the signed span -max|W| .. max|W| (std 2 v max|W|, sqrt(2) times level 2's; it reverses those figures).
LEVEL1_RANGE = {"max_abs": 1.0, "full_span": 2.0}


def level1_variation_scale(hw: HardwareConfig) -> float:
    """The std, in units of max|W| per unit of device.variation, of the level-1 weight error (1 or 2)."""
    return LEVEL1_RANGE[hw.device.variation_range]


@register_device("rram_signed")
class SignedDevice(Device):
    """The weight is fake-quantized to 2^program_bits - 1 symmetric levels over [-max|W|, max|W|] and then
    programmed with variation relative to device.variation_range: std = variation * max|W| (max_abs, the default)
    or variation * 2 max|W| (full_span). Not equivalent to the per-cell variation of levels 2-3 (a pair of cells
    adds two independent errors: sqrt(2) * variation * max|W| on the weight)."""

    signed_weights = True

    def __init__(self, hw: HardwareConfig):
        super().__init__(hw)
        self.bits = hw.device.program_bits
        self.variation = hw.device.variation
        self.std = self.variation * level1_variation_scale(hw)   # in units of max|W| (w_norm's unit)

    def program(self, w_norm: torch.Tensor, streams: ChipStreams) -> torch.Tensor:
        """Normalized signed weights of every chip of the chunk, [Kc, out, in] (stream "program")."""
        w = quantize_symmetric(w_norm, self.bits)
        if self.variation == 0:
            return w.expand(len(streams), *w.shape).clone()
        noise = randn_chips(w.shape, streams("program"), w.device)
        return noise.mul_(self.std).add_(w)

    def read(self, programmed: torch.Tensor, t_inference_s: float, streams: Optional[ChipStreams]) -> torch.Tensor:
        """As programmed."""
        return programmed
