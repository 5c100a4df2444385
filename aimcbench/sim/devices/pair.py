"""ideal: a signed weight held exactly by a conductance pair g+ - g- (the base of every pair device)."""

from __future__ import annotations

from typing import Optional

import torch

from ..config import HardwareConfig
from ..periphery import quantize_levels
from .base import Device, Programmed, register_device
from .rng import ChipStreams


@register_device("ideal")
class ConductanceDevice(Device):
    """Cells holding a signed weight as a pair g+ - g-; the ideal device programs the targets exactly and reads
    them unchanged. Pair families (pcm, rram, stuck_at) subclass it and override ``program`` / ``read``."""

    def __init__(self, hw: HardwareConfig):
        super().__init__(hw)
        self.g_max = hw.device.g_max_uS
        self.g_min = hw.g_min_uS
        self.g_range = self.g_max - self.g_min

    def targets(self, w_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """g+ = clip(w, 0, 1) * range + g_min, g- likewise for -w; the idle cell of a pair sits at g_min."""
        bits = self.hw.device.program_bits
        gp = quantize_levels(w_norm.clamp(0.0, 1.0), bits) * self.g_range + self.g_min
        gm = quantize_levels((-w_norm).clamp(0.0, 1.0), bits) * self.g_range + self.g_min
        return gp, gm

    def program(self, w_norm: torch.Tensor, streams: ChipStreams) -> Programmed:
        """Every chip holds the targets exactly (views: no copy per chip)."""
        gp, gm = self.targets(w_norm)
        k = len(streams)
        return Programmed(gp.expand(k, *w_norm.shape), gm.expand(k, *w_norm.shape))

    def read(self, p: Programmed, t_inference_s: float, streams: Optional[ChipStreams]):
        """As programmed, at any time."""
        return p.g_plus, p.g_minus
