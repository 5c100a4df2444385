"""The simulator's DAC and ADC: noise management, uniform and mu-law quantizers with clipping (the quantizers and
their grid conventions are in ``periphery``, shared with hardware-aware training).
"""

from __future__ import annotations

from typing import Optional

import torch

from .config import ADCConfig, DACConfig
from .periphery import adc_levels, quantize_mulaw, quantize_uniform, quantize_uniform_, step_size

__all__ = ["ADC", "DAC", "adc_levels", "quantize_mulaw", "quantize_uniform"]


class ADC:
    """Digitizes normalized column outputs; ``bound`` is in the same normalized units as the outputs."""

    def __init__(self, cfg: ADCConfig, bound: Optional[float], signed: bool):
        self.bits, self.bound, self.signed = cfg.bits, bound, signed
        self.mulaw = cfg.quantizer == "mulaw"
        self.iterative = cfg.bound_management == "iterative" and bound is not None
        self.out_noise = cfg.out_noise

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """Digitized copy of y."""
        return self.quantize_(y.clone())

    def quantize_(self, y: torch.Tensor) -> torch.Tensor:
        """Digitize y in place (the output tensors are the largest of a forward; no copies)."""
        if self.mulaw:
            return quantize_mulaw(y, self.bits, self.bound, self.signed)
        return quantize_uniform_(y, self.bits, self.bound, self.signed)

    def uniform_grid(self) -> Optional[tuple[float, float]]:
        """(step, lowest level) of a uniform quantizer with a bound (what the compiled kernels digitize to); else
        None (mu-law, or no quantization)."""
        if self.mulaw or self.bits is None or self.bound is None:
            return None
        return step_size(self.bits, self.bound, self.signed), -self.bound if self.signed else 0.0


class DAC:
    """Normalizes each input vector (noise management) and quantizes it to the DAC grid.

    Returns (v, alpha) with x ~= alpha * v; the tile output is later multiplied back by alpha.
    """

    def __init__(self, cfg: DACConfig):
        self.cfg = cfg

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        if c.noise_management == "abs_max":
            # amax and amin apart: several times faster on a CPU than aminmax (torch 2.14), the same values.
            alpha = torch.maximum(x.amax(dim=-1, keepdim=True), -x.amin(dim=-1, keepdim=True))
            # An all-zero input vector stays zero; avoid 0/0.
            alpha = torch.where(alpha > 0, alpha, torch.ones_like(alpha))
            v = x / alpha
        else:
            alpha = self.fixed_alpha(x)
            v = x / c.input_range
        if c.signed:
            # abs_max inputs are within +-1 already: no clipping needed unless the bound is below 1.
            quantize_uniform_(v, c.bits, c.bound, signed=True, clip=c.noise_management != "abs_max" or c.bound < 1.0)
        else:
            # Sign-magnitude: the magnitude goes through an unsigned DAC; a negative input is a second read phase.
            # round() (half to even) is odd and the unsigned grid and clip are mirrored about zero, so rounding v
            # itself gives copysign(q(|v|), v) bit for bit (signed zeros too) without the two copies of |v|.
            quantize_uniform_(v, c.bits, c.bound, signed=False, clip=False).clamp_(-c.bound, c.bound)
        return v, alpha

    def fixed_alpha(self, x: torch.Tensor) -> torch.Tensor:
        """[..., 1]: the scale of inputs x [..., n] under noise_management none (the fixed input range)."""
        return torch.full_like(x[..., :1], self.cfg.input_range)

    @property
    def elementwise(self) -> bool:
        """True when each input is converted on its own (a fixed input range, no per-vector scaling): the DAC
        may then run on a convolution's activations before they are unfolded into k*k times as many patches."""
        return self.cfg.noise_management != "abs_max"
