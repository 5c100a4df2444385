"""stuck_at: stuck-at faults -- a fraction of the cells is stuck at g_min or at g_max, whatever they are programmed to.

A cell stuck at g_min (stuck-off: an open or never-set cell) or at g_max (stuck-on: a shorted or never-reset
cell) ignores programming. Which cells are stuck is a property of the chip: drawn once per cell at programming,
from chip k's own stream "stuck_at", so chip k has the same faulty cells at every sweep point, read time and
chunk. Each cell of a pair draws one uniform u: stuck at g_min when u < stuck_at_gmin_frac, else stuck at g_max
when u < stuck_at_gmin_frac + stuck_at_gmax_frac. The faults are nested: the cells stuck at a fraction f are
among those stuck at any larger fraction, so a sweep over the fraction adds faults to the same chip.

The working cells behave as rram cells (device.variation, column_noise.prog_noise_uS; both 0 in the stuck_at
profile: ideal otherwise). Settings, fractions of all cells in [0, 1] with a sum of at most 1:
  device.stuck_at_gmin_frac   fraction of cells stuck at g_min
  device.stuck_at_gmax_frac   fraction of cells stuck at g_max
"""

from __future__ import annotations

import torch

from .base import Programmed, register_device
from .rng import ChipStreams, rand_per_cell
from .rram import RRAMDevice


@register_device("stuck_at")
class StuckAtDevice(RRAMDevice):
    """rram cells (ideal when variation and prog_noise_uS are 0) of which a per-chip random fraction is stuck."""

    def program(self, w_norm: torch.Tensor, streams: ChipStreams) -> Programmed:
        """Program the working cells (RRAMDevice), then pin the stuck ones at g_min or g_max."""
        p = super().program(w_norm, streams)
        f_min, f_max = self.hw.device.stuck_at_gmin_frac, self.hw.device.stuck_at_gmax_frac
        if f_min == 0 and f_max == 0:  # no fault: the stream is not drawn (it serves nothing else)
            return p
        u = rand_per_cell(2, w_norm.shape, streams("stuck_at"))  # [Kc, 2, out, in]
        return Programmed(self._stick(p.g_plus, u[:, 0], f_min, f_max), self._stick(p.g_minus, u[:, 1], f_min, f_max))

    def _stick(self, g: torch.Tensor, u: torch.Tensor, f_min: float, f_max: float) -> torch.Tensor:
        """g with the cells whose uniform falls below f_min at g_min, and below f_min + f_max at g_max."""
        g = torch.where(u < f_min + f_max, self.g_max, g)
        return torch.where(u < f_min, self.g_min, g)
