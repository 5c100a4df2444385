"""Architecture-aware training (study 002): the level-1/2/3 inference pipelines as differentiable forwards.

``HardwareAware(model, hw, injection)`` swaps the forward of every analog layer (the simulator's own layer
selection) for the pipeline of the hardware profile ``hw`` -- rram_l1, rram_l2 or rram_l3 -- so that fine-tuning
sees what inference will see:

* inputs: the DAC (magnitudes quantized over [0, input_range], a negative input as a second read phase);
* level 1 (device.model rram_signed): weights fake-quantized to 2^bits - 1 signed levels, optional variation
  injection of std ``injection * max|W|`` (``device.variation_range`` max_abs; full_span: ``2 max|W|``);
* levels 2-3 (device.model rram): the two-cell representation with idle cells at I_off, 2^bits programming
  targets per cell, injection of std ``injection * (I_on - I_off)`` per cell, clipped at 0;
* level 3 (tiled, with an ADC): each row array read separately, both columns digitized by the unsigned ADC
  over [0, range_uA], subtracted, multiplied by a trainable per-array scaler and summed.

Quantizers use straight-through gradients (round's gradient is one; clipping's is zero outside the range).
The variation is drawn fresh for every mini-batch. In eval mode with ``injection`` 0 the forward equals the
simulator's single-chip forward on the same profile (tested), which is what makes the fine-tuning honest.
The layer's range max|W| is taken as a constant of each step (the simulator maps it to the full cell range).
"""

from __future__ import annotations

import types
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from aimcbench.sim.config import HardwareConfig
from aimcbench.sim.convert import ARRAY_GAIN_ATTR
from aimcbench.sim.devices.rram_signed import level1_variation_scale
from aimcbench.sim.layers import select_layers
from aimcbench.sim.periphery import (physical_adc_bound, quantize_levels, quantize_symmetric, quantize_uniform,
                                     ste_round)
from aimcbench.sim.tiling import analog_layer_shape, plan_layer

__all__ = ["HardwareAware", "ste_round"]


def _check_supported(hw: HardwareConfig) -> None:
    """Architecture-aware training covers study 002's pipelines; say which setting is outside them."""
    rules = [
        ("device.model", hw.device.model in ("rram", "rram_signed"), "rram or rram_signed"),
        ("dac.noise_management", hw.dac.noise_management == "none", "none"),
        ("dac.signed", not hw.dac.signed, "false"),
        ("adc.quantizer", hw.adc.quantizer == "uniform", "uniform"),
        ("adc.out_noise", hw.adc.out_noise == 0, "0"),
        ("mapping.weight_scaling", hw.mapping.weight_scaling == "per_layer", "per_layer"),
    ]
    if hw.mapping.tile_rows is not None:
        rules.append(("mapping.conv_rows", hw.mapping.conv_rows == "channel_aligned", "channel_aligned"))
    for key, ok, allowed in rules:
        if not ok:
            raise ValueError(f"hardware.{key}: architecture-aware training supports only {allowed} "
                             f"(profile {hw.name})")


class HardwareAware:
    """Patches a model's analog layers with the differentiable pipeline of ``hw`` (undo with :meth:`remove`).

    ``gains`` holds the trainable per-array scalers of a tiled profile (``train_gains``), keyed by layer name,
    [row arrays, column arrays], initialized at 1 (the simulator's initial scaler max|W| * input_range)."""

    def __init__(self, model: nn.Module, hw: HardwareConfig, injection: float = 0.0, train_gains: bool = False,
                 generator: Optional[torch.Generator] = None):
        _check_supported(hw)
        self.model, self.hw, self.injection = model, hw, float(injection)
        self.gen = generator
        self.layers = select_layers(model, hw)
        self.plans = {}
        self.gains: dict[str, nn.Parameter] = {}
        for name, mod in self.layers.items():
            n_in, n_out, area = analog_layer_shape(mod)
            if isinstance(mod, nn.Conv2d) and mod.groups != 1 and hw.mapping.tile_rows is not None:
                raise ValueError(f"model: layer {name} is a grouped convolution; tiled training needs groups=1")
            plan = plan_layer(n_in, n_out, hw, area)
            self.plans[name] = plan
            if hw.mapping.tile_rows is not None or hw.adc.bits is not None:
                old = getattr(mod, ARRAY_GAIN_ATTR, None)
                shape = (len(plan.row_splits), len(plan.col_splits))
                init = old.detach().clone() if old is not None and tuple(old.shape) == shape else torch.ones(shape)
                self.gains[name] = nn.Parameter(init.to(mod.weight.device), requires_grad=train_gains)
            mod.forward = types.MethodType(self._make_forward(name), mod)

    def parameters(self) -> list[nn.Parameter]:
        """The trainable scalers (empty unless train_gains)."""
        return [g for g in self.gains.values() if g.requires_grad]

    def remove(self) -> None:
        """Restore the plain forwards and leave the trained scalers on the layers (ARRAY_GAIN_ATTR)."""
        for name, mod in self.layers.items():
            del mod.forward
            if name in self.gains:
                setattr(mod, ARRAY_GAIN_ATTR, self.gains[name].detach().clone().cpu())

    # ----------------------------------------------------------------------------------------------- pieces
    def _noise(self, shape, device) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen).to(device) if self.gen is not None else \
            torch.randn(shape, device=device)

    def _dac(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized inputs v = x / input_range on the DAC grid (sign-magnitude, as the simulator's DAC)."""
        c = self.hw.dac
        v = x / c.input_range
        mag = quantize_uniform(v.abs(), c.bits, c.bound, signed=False, ste=True, clip_first=True)
        return torch.sign(v).detach() * mag

    def _weights(self, w_norm: torch.Tensor):
        """Level 1: one signed normalized matrix. Levels 2-3: the pair (G+, G-) in units of the cell range."""
        d, train = self.hw.device, self.model.training
        bits = d.program_bits
        if d.model == "rram_signed":
            w = quantize_symmetric(w_norm, bits, ste=True)
            if train and self.injection > 0:
                # the inference pipeline's level-1 range (device.variation_range): max|W| or 2 max|W|
                w = w + level1_variation_scale(self.hw) * self.injection * self._noise(w.shape, w.device)
            return w
        g_off = self.hw.g_min_uS / (d.g_max_uS - self.hw.g_min_uS)
        pair = []
        for f in (w_norm.clamp(0.0, 1.0), (-w_norm).clamp(0.0, 1.0)):
            g = quantize_levels(f, bits, ste=True) + g_off
            if train and self.injection > 0:
                g = (g + self.injection * self._noise(g.shape, g.device)).clamp(min=0.0)
            pair.append(g)
        return tuple(pair)

    def _adc(self, y: torch.Tensor) -> torch.Tensor:
        """The unsigned column ADC in normalized units (bound = range_uA over the cell range at full input)."""
        a = self.hw.adc
        bound = physical_adc_bound(self.hw) if a.range_uA is not None else a.bound
        return quantize_uniform(y, a.bits, bound, signed=False, ste=True)

    def _make_forward(self, name: str):
        hw_aware = self

        def forward(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
            return hw_aware._forward(name, mod, x)

        return forward

    def _op(self, mod: nn.Module, v: torch.Tensor, w: torch.Tensor, rows: Optional[tuple[int, int]] = None):
        """The layer's linear map of normalized inputs by a normalized matrix (rows: one row array's inputs)."""
        if isinstance(mod, nn.Conv2d):
            area = mod.kernel_size[0] * mod.kernel_size[1]
            if rows is not None:
                c0, c1 = rows[0] // area, rows[1] // area
                v, w = v[:, c0:c1], w[:, c0:c1]
            return F.conv2d(v, w, None, mod.stride, mod.padding, mod.dilation, mod.groups) \
                if mod.padding_mode == "zeros" else \
                F.conv2d(F.pad(v, mod._reversed_padding_repeated_twice, mode=mod.padding_mode), w, None,
                         mod.stride, 0, mod.dilation, mod.groups)
        if rows is not None:
            v, w = v[..., rows[0]:rows[1]], w[:, rows[0]:rows[1]]
        return F.linear(v, w)

    def _forward(self, name: str, mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # The quantizers need float32 even inside a mixed-precision step (bf16 has 8 bits of mantissa).
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._forward_fp32(name, mod, x.float())

    def _forward_fp32(self, name: str, mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
        w = mod.weight
        w_max = w.detach().abs().max().clamp(min=1e-12)
        weights = self._weights(w / w_max)
        v = self._dac(x)
        tiled = self.hw.mapping.tile_rows is not None or self.hw.adc.bits is not None
        if isinstance(weights, torch.Tensor):          # level 1: signed, ideal periphery
            y = self._op(mod, v, weights)
        elif not tiled:                                # level 2: the pair on ideal converters
            y = self._op(mod, v, weights[0] - weights[1])
        else:                                          # level 3
            y = self._tiled(name, mod, v, weights)
        y = y * (w_max * self.hw.dac.input_range)
        if mod.bias is not None:
            y = y + (mod.bias.view(1, -1, *([1] * (y.dim() - 2))) if isinstance(mod, nn.Conv2d) else mod.bias)
        return y

    def _tiled(self, name: str, mod: nn.Module, v: torch.Tensor, pair) -> torch.Tensor:
        """Each row array read on its own (two sign phases if inputs are negative), ADC per column, scaled, summed."""
        plan, gain = self.plans[name], self.gains[name]
        gp, gm = (g.reshape(g.shape[0], *mod.weight.shape[1:]) for g in pair)
        phases = [v]
        if bool((v.detach() < 0).any()):
            phases = [v.clamp(min=0.0), (-v).clamp(min=0.0)]
        sizes = torch.tensor([c1 - c0 for c0, c1 in plan.col_splits], device=v.device)
        out = None
        for t, rows in enumerate(plan.row_splits):
            part = None
            for i, vp in enumerate(phases):
                y = self._adc(self._op(mod, vp, gp, rows)) - self._adc(self._op(mod, vp, gm, rows))
                part = y if part is None else (part + y if i == 0 else part - y)
            g = torch.repeat_interleave(gain[t], sizes)
            part = part * (g.view(1, -1, *([1] * (part.dim() - 2))) if isinstance(mod, nn.Conv2d) else g)
            out = part if out is None else out + part
        return out
