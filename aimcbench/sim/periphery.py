"""The quantizers of the periphery -- DAC, ADC and programming-target grids -- shared by the simulator and by
hardware-aware training (``aimcbench.train.hwaware``).

Grid conventions follow aihwkit's IOParameters: a signed quantizer of ``bits`` bits over [-bound, bound] has
2^bits - 1 levels symmetric around zero, step ``2*bound/(2^bits - 2)``; an unsigned one (study 002's ADC over
0-45 uA) has 2^bits levels over [0, bound], step ``bound/(2^bits - 1)``. Both are ``bound / grid_steps(bits,
signed)``: the step formula lives in ``grid_steps`` only.

Every quantizer takes ``ste``: False is the simulator's forward; True is the same forward with straight-through
gradients for training (round's gradient is one; clipping's is the clamp's, zero outside the range). The
simulator's hot path uses the in-place ``quantize_uniform_`` (its outputs are the largest tensors of a forward).
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .config import HardwareConfig


def grid_steps(bits: int, signed: bool) -> int:
    """Steps from zero to full scale: 2^(bits-1) - 1 signed (so step = 2*bound/(2^bits - 2)), 2^bits - 1 unsigned."""
    return 2 ** (bits - 1) - 1 if signed else 2**bits - 1


def step_size(bits: int, bound: float, signed: bool = True) -> float:
    """The quantization step of a ``bits``-bit converter with full scale ``bound``."""
    # bound / (2^(b-1) - 1) is bitwise the same double as 2*bound / (2^b - 2): scaling by 2 is exact.
    return bound / grid_steps(bits, signed)


def adc_levels(bits: int, signed: bool = True) -> int:
    """Number of distinct output codes of the converter."""
    return 2 * grid_steps(bits, signed) + 1 if signed else grid_steps(bits, signed) + 1


def ste_round(t: torch.Tensor) -> torch.Tensor:
    """round(t) forward, identity backward."""
    return t + (torch.round(t) - t).detach()


def _round(t: torch.Tensor, ste: bool) -> torch.Tensor:
    return ste_round(t) if ste else torch.round(t)


def quantize_uniform(y: torch.Tensor, bits: Optional[int], bound: Optional[float], signed: bool = True,
                     ste: bool = False, clip_first: bool = False) -> torch.Tensor:
    """Round ``y`` to the converter's grid and clip it to its range (no rounding when bits is None, no clipping
    when bound is None). ``clip_first`` clips before rounding (the training DAC's order; the two orders differ
    only for inputs past the bound, by at most an ulp: bound vs. n * step)."""
    if clip_first and bound is not None:
        y = y.clamp(-bound if signed else 0.0, bound)
    if bits is not None:
        step = step_size(bits, bound, signed)
        y = _round(y / step, ste) * step
    if not clip_first and bound is not None:
        y = y.clamp(-bound if signed else 0.0, bound)
    return y


def quantize_grid(y: torch.Tensor, step, lo, hi) -> torch.Tensor:
    """``quantize_uniform``'s rounding and clipping with the step and range given (a new tensor). The compiled
    kernels take step and range as tensors, so a sweep over ADC bits or ranges reuses one kernel."""
    return torch.clamp((y / step).round() * step, lo, hi)


def quantize_uniform_(y: torch.Tensor, bits: Optional[int], bound: Optional[float], signed: bool = True,
                      clip: bool = True) -> torch.Tensor:
    """``quantize_uniform`` in place (no copies of the largest tensors); ``clip`` False rounds only."""
    if bits is not None:
        step = step_size(bits, bound, signed)
        y.div_(step).round_().mul_(step)
    if clip and bound is not None:
        y.clamp_(-bound if signed else 0.0, bound)
    return y


def quantize_mulaw(y: torch.Tensor, bits: int, bound: float, signed: bool = True) -> torch.Tensor:
    """Study 000 eq. 4: compress with F(x) = sgn(x) ln(1 + mu|x|)/ln(1 + mu), mu = 2^bits - 1, quantize uniformly,
    expand. Small outputs get fine steps, large ones coarse: small partial sums are not mapped to zero."""
    mu = float(2**bits - 1)
    z = (y / bound).clamp(-1.0 if signed else 0.0, 1.0)
    f = torch.sign(z) * torch.log1p(mu * z.abs()) / math.log1p(mu)
    fq = quantize_uniform(f, bits, 1.0, signed)
    return torch.sign(fq) * torch.expm1(fq.abs() * math.log1p(mu)) / mu * bound


def _quantize_unit(x: torch.Tensor, bits: Optional[int], signed: bool, ste: bool) -> torch.Tensor:
    # round(x * n) / n, not round(x / step) * step: the programming grids have always been computed this way.
    if bits is None:
        return x
    n = grid_steps(bits, signed)
    return _round(x * n, ste) / n


def quantize_levels(frac: torch.Tensor, bits: Optional[int], ste: bool = False) -> torch.Tensor:
    """Round a fraction in [0, 1] to 2^bits evenly spaced programming targets (bits None: unchanged)."""
    return _quantize_unit(frac, bits, False, ste)


WEIGHT_LEVELS = ("pow2_minus_1", "pow2")
"""The two grids of a ``bits``-bit signed weight (see :func:`quantize_symmetric`)."""


def weight_levels(bits: int, levels: str = "pow2_minus_1") -> int:
    """Number of distinct weight values of the grid: 2^bits - 1 (pow2_minus_1) or 2^bits (pow2)."""
    return 2**bits - 1 if levels == "pow2_minus_1" else 2**bits


def quantize_symmetric(w_norm: torch.Tensor, bits: Optional[int], ste: bool = False,
                       levels: str = "pow2_minus_1") -> torch.Tensor:
    """Round normalized signed weights in [-1, 1] (w / max|W|) to a grid of ``bits`` bits (bits None: unchanged).

    ``levels`` pow2_minus_1: 2^bits - 1 levels symmetric around zero, zero one of them, step 2 / (2^bits - 2) (the
    aihwkit convention; 2 bits is ternary). pow2: 2^bits evenly spaced levels from -1 to 1, both end points
    included, step 2 / (2^bits - 1) (every code of a b-bit word used; no level at zero, 1 bit is binary +-1).
    """
    if levels == "pow2_minus_1":
        return _quantize_unit(w_norm, bits, True, ste)
    if levels != "pow2":
        raise ValueError(f"levels: {levels!r}; allowed: {', '.join(WEIGHT_LEVELS)}")
    # Shift [-1, 1] onto [0, 1] and use the unsigned grid of 2^bits targets (end points included).
    return 2.0 * _quantize_unit((w_norm + 1.0) * 0.5, bits, False, ste) - 1.0 if bits is not None else w_norm


def physical_adc_bound(hw: HardwareConfig) -> Optional[float]:
    """The full scale of an ADC given in microamps (adc.range_uA) in normalized output units: a normalized output
    y = sum(v * g / g_range) is the current y * g_range * v_read. None when the ADC has no physical range."""
    if hw.adc.range_uA is None:
        return None
    return hw.adc.range_uA / ((hw.device.g_max_uS - hw.g_min_uS) * hw.device.v_read_V)
