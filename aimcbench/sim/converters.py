"""DAC and ADC models: uniform and mu-law quantizers with clipping.

Conventions follow aihwkit's IOParameters: a signed converter of ``bits`` bits over [-bound, bound] has step
``2*bound/(2^bits - 2)``, i.e. 2^bits - 1 levels symmetric around zero. An unsigned converter (study 002's ADC over
0-45 uA) has 2^bits levels over [0, bound], step ``bound/(2^bits - 1)``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .config import ADCConfig, DACConfig


def quantize_uniform(y: torch.Tensor, bits: Optional[int], bound: Optional[float], signed: bool = True) -> torch.Tensor:
    """Round ``y`` to the converter's grid and clip it to its range (no rounding when bits is None)."""
    if bits is not None:
        step = (2.0 * bound / (2**bits - 2)) if signed else (bound / (2**bits - 1))
        y = torch.round(y / step) * step
    if bound is not None:
        y = y.clamp(-bound if signed else 0.0, bound)
    return y


def quantize_mulaw(y: torch.Tensor, bits: int, bound: float, signed: bool = True) -> torch.Tensor:
    """Study 000 eq. 4: compress with F(x) = sgn(x) ln(1 + mu|x|)/ln(1 + mu), mu = 2^bits - 1, quantize uniformly,
    expand. Small outputs get fine steps, large ones coarse: small partial sums are not mapped to zero."""
    mu = float(2**bits - 1)
    z = (y / bound).clamp(-1.0 if signed else 0.0, 1.0)
    f = torch.sign(z) * torch.log1p(mu * z.abs()) / math.log1p(mu)
    fq = quantize_uniform(f, bits, 1.0, signed)
    return torch.sign(fq) * torch.expm1(fq.abs() * math.log1p(mu)) / mu * bound


def adc_levels(bits: int, signed: bool = True) -> int:
    """Number of distinct output codes of the converter."""
    return 2**bits - 1 if signed else 2**bits


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
        if self.bits is not None:
            step = (2.0 * self.bound / (2**self.bits - 2)) if self.signed else (self.bound / (2**self.bits - 1))
            y.div_(step).round_().mul_(step)
        if self.bound is not None:
            y.clamp_(-self.bound if self.signed else 0.0, self.bound)
        return y

    def clipped(self, y: torch.Tensor) -> Optional[torch.Tensor]:
        """Mask [..., N] of input vectors with an output at or past the bound; None when nothing clips.

        A global min/max comes first: it is ~8x cheaper than the per-vector reduction and usually suffices."""
        lo, hi = torch.aminmax(y)
        if hi < self.bound and (not self.signed or lo > -self.bound):
            return None
        lo, hi = torch.aminmax(y, dim=-1)
        return (hi >= self.bound) | (lo <= -self.bound) if self.signed else hi >= self.bound


class DAC:
    """Normalizes each input vector (noise management) and quantizes it to the DAC grid.

    Returns (v, alpha) with x ~= alpha * v; the tile output is later multiplied back by alpha.
    """

    def __init__(self, cfg: DACConfig):
        self.cfg = cfg

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        if c.noise_management == "abs_max":
            lo, hi = torch.aminmax(x, dim=-1, keepdim=True)
            alpha = torch.maximum(hi, -lo)
            # An all-zero input vector stays zero; avoid 0/0.
            alpha = torch.where(alpha > 0, alpha, torch.ones_like(alpha))
            v = x / alpha
        else:
            alpha = torch.full_like(x[..., :1], c.input_range)
            v = x / c.input_range
        if c.signed:
            if c.bits is not None:
                step = 2.0 * c.bound / (2**c.bits - 2)
                v.div_(step).round_().mul_(step)
            if c.noise_management != "abs_max" or c.bound < 1.0:  # abs_max inputs are within +-1 already
                v.clamp_(-c.bound, c.bound)
        else:
            # Sign-magnitude: the magnitude goes through an unsigned DAC; a negative input is a second read phase.
            v = torch.sign(v) * quantize_uniform(v.abs(), c.bits, c.bound, signed=False)
        return v, alpha
