"""weight_noise: studies 001 and 004 -- noise applied to the weights themselves, on ideal periphery."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..config import HardwareConfig
from ..periphery import quantize_symmetric
from .base import Device, register_device
from .rng import ChipStreams, randn_chips


@register_device("weight_noise")
class WeightNoiseDevice(Device):
    """Settings: the weight_noise section (kind, alpha, eta0, spatial_std, temporal_rel_std, on_bias) and
    device.program_bits."""

    signed_weights = True

    def __init__(self, hw: HardwareConfig):
        super().__init__(hw)
        self.cfg = hw.weight_noise
        self.bits = hw.device.program_bits

    @property
    def temporal(self) -> bool:
        """True when part of the noise is redrawn for every inference batch (study 004's N_T)."""
        return self.cfg.kind in ("mul", "add")

    def quantized(self, w_norm: torch.Tensor) -> torch.Tensor:
        """Uniform weight quantization over [-max|W|, max|W|]: 2^bits - 1 or 2^bits levels (weight_noise.levels)."""
        return quantize_symmetric(w_norm, self.bits, levels=self.cfg.levels)

    def program(self, w_norm: torch.Tensor, streams: ChipStreams) -> torch.Tensor:
        """The static part per chip (stream "program"): study 001's W(1 + alpha N), or study 004's spatial
        factor N_S."""
        w = self.quantized(w_norm)
        noise = randn_chips(w.shape, streams("program"), w.device)
        if self.cfg.kind == "gaussian_mul":
            return w * (1.0 + self.cfg.alpha * noise)
        return 1.0 + self.cfg.spatial_std * noise  # N_S ~ N(1, spatial_std^2)

    def read(self, programmed: torch.Tensor, t_inference_s: float, streams: Optional[ChipStreams]) -> torch.Tensor:
        """The static weights (a temporal kind is read per batch by ``sample``)."""
        return programmed

    def sample(self, w_norm: torch.Tensor, static: torch.Tensor, inv_scale: torch.Tensor,
               gens: Sequence[torch.Generator]) -> torch.Tensor:
        """Normalized weights for one inference batch (N_T ~ N(eta0, (rel_std eta0)^2) drawn now).

        ``inv_scale`` converts weight units to normalized units (ADD noise is in weight units, read literally)."""
        if not self.temporal:
            return static
        c = self.cfg
        n_t = c.eta0 + c.temporal_rel_std * c.eta0 * randn_chips(w_norm.shape, gens, w_norm.device)
        w = self.quantized(w_norm)
        if c.kind == "mul":
            return w + w * n_t * static
        return w + n_t * static * inv_scale

    def chip_bias(self, bias: torch.Tensor, streams: ChipStreams) -> Optional[torch.Tensor]:
        """gaussian_mul with on_bias: b(1 + alpha N) per chip (stream "bias"); otherwise the exact bias."""
        if not self.cfg.on_bias or self.temporal:
            return None
        noise = randn_chips(bias.shape, streams("bias"), bias.device)
        return bias * (1.0 + self.cfg.alpha * noise)
