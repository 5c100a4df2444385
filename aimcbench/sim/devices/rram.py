"""rram: study 002's resistive cells -- each cell of the pair programmed off target by a Gaussian error."""

from __future__ import annotations

import math

import torch

from .base import Programmed, register_device
from .pair import ConductanceDevice
from .rng import ChipStreams, randn_per_cell


@register_device("rram")
class RRAMDevice(ConductanceDevice):
    """Settings: device.variation (std as a fraction of g_max - g_min, study 002) and column_noise.prog_noise_uS
    (an absolute std in uS, study 003); the two add in quadrature. Read as programmed (no drift)."""

    def program_std_uS(self) -> float:
        """Std in uS of each cell's programming error."""
        return math.hypot(self.hw.device.variation * self.g_range, self.hw.column_noise.prog_noise_uS)

    def program(self, w_norm: torch.Tensor, streams: ChipStreams) -> Programmed:
        """Each cell independently off target by std * N(0, 1) (stream "program": 2 normals per weight), never
        below 0 uS."""
        std = self.program_std_uS()
        if std == 0:  # g + 0 * N is g exactly: skip the draw (the stream serves nothing else)
            return super().program(w_norm, streams)
        gp, gm = self.targets(w_norm)
        noise = randn_per_cell(2, w_norm.shape, streams("program"))
        return Programmed((gp + std * noise[:, 0]).clamp(min=0.0), (gm + std * noise[:, 1]).clamp(min=0.0))
