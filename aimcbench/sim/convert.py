"""Converting a trained torch model into many programmed analog chips, evaluated in one batched pass.

Inside the converted network activations carry the chips folded into the batch: [Kc*B, ...]. Digital modules
(batch norm in eval mode, activations, pooling, ConvTranspose, residual adds) act per sample and need no change;
analog layers unfold the chip dimension, run all chips' arrays as one batched matmul and fold it back. The input
[B, ...] is shared by all chips until the first analog layer, which computes every chip from the one input.
"""

from __future__ import annotations

import copy
import warnings
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError, HardwareConfig
from .crossbar import ChipState, Crossbar, Scratch
from .layers import select_layers
from .nabn import ChipBatchNorm, replace_batchnorms
from .patches import flat_patches, patch_view, stack_patches
from .tiling import analog_layer_shape, plan_layer


class ChipContext:
    """The chunk of chips being evaluated and the shared batch size, seen by every analog layer of a model."""

    def __init__(self) -> None:
        self.chips: tuple[int, ...] = (0,)
        self.batch: int = 0
        self.states: Optional[dict[str, ChipState]] = None   # cached read states of this chunk, if any


class _AnalogLayer(nn.Module):
    def __init__(self, crossbar: Crossbar, ctx: ChipContext):
        super().__init__()
        self.crossbar = crossbar
        self.ctx = ctx
        self._chip_bias: Optional[torch.Tensor] = None

    def _chips_in(self, n: int) -> int:
        """0 when a batch of n samples is shared by all chips of the chunk (or there is one chip), else Kc."""
        ctx, kc = self.ctx, len(self.ctx.chips)
        if kc == 1 or n == ctx.batch:
            return 0
        if n != kc * ctx.batch:
            raise RuntimeError(f"{self.crossbar.name}: batch {n} is neither {ctx.batch} nor "
                               f"{kc}x{ctx.batch}; the model must keep the batch dimension first")
        return kc

    def _matrix(self, x: torch.Tensor, converted: bool = False, stacked: bool = False) -> torch.Tensor:
        """[lead, N', in] -> analog product [Kc, lead/Kc * N', out] (lead is B, shared, or Kc*B); ``converted``:
        x went through the layer's element-wise DAC already; ``stacked``: x is laid out per row array already
        (``stack_patches``)."""
        ctx, cb = self.ctx, self.crossbar
        if cb.calib_max is not None:  # AnalogModel.calibrate_adc: record the ideal outputs, propagate digitally
            flat = x.reshape(-1, x.shape[-1])
            cb.calib_max = max(cb.calib_max, cb.ideal_output_max(flat))
            self._chip_bias = None
            return cb.ideal_matrix(flat)
        st = ctx.states[cb.name] if ctx.states is not None else cb.state(ctx.chips)
        if not stacked:
            kc = self._chips_in(x.shape[0])
            x = x.reshape(-1, x.shape[-1]) if kc == 0 else x.reshape(kc, -1, x.shape[-1])
        y = cb.forward_matrix(x, st, converted, stacked)
        self._chip_bias = st.bias
        return y

    def _add_bias(self, y: torch.Tensor, kc: int) -> torch.Tensor:
        """Digital bias: the layer's own, or each chip's noisy copy ([Kc*B, out, ...] viewed per chip)."""
        if self._chip_bias is not None:
            view = y.view(kc, -1, y.shape[1], y[0, 0].numel()) if y.dim() > 2 else y.view(kc, -1, y.shape[-1], 1)
            view.add_(self._chip_bias.view(kc, 1, -1, 1))
            return y
        bias = self.crossbar.bias  # the layer's digital bias lives with its crossbar
        if bias is None:
            return y
        return y.add_(bias.view(1, -1, *([1] * (y.dim() - 2))))


class AnalogLinear(_AnalogLayer):
    """nn.Linear on crossbars; bias added digitally."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._matrix(x)
        y = y.reshape(-1, *x.shape[1:-1], y.shape[-1])
        if y.dim() != 2:  # [N, ..., out] inputs: the bias broadcasts over the last dimension
            return y if self.crossbar.bias is None else y.add_(self.crossbar.bias)
        return self._add_bias(y, len(self.ctx.chips))


class AnalogConv2d(_AnalogLayer):
    """nn.Conv2d as an unfolded (im2col) matrix product on crossbars, one input vector per output pixel."""

    def __init__(self, conv: nn.Conv2d, crossbar: Crossbar, ctx: ChipContext):
        super().__init__(crossbar, ctx)
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            self.pad_mode, self.pad = conv.padding_mode, conv._reversed_padding_repeated_twice
            padding = 0
        else:
            self.pad_mode, self.pad, padding = None, None, conv.padding
        self.kernel, self.stride, self.dilation, self.padding = conv.kernel_size, conv.stride, conv.dilation, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cb = self.crossbar
        calibrating = cb.calib_max is not None   # AnalogModel.calibrate_adc: raw inputs in im2col's layout
        # A DAC that converts each input on its own (fixed input range) runs on the activations, not on the k*k
        # times larger patches: the same numbers (zero padding converts to zero).
        converted = cb.dac.elementwise and not calibrating
        if converted:
            x = cb.dac(x)[0]
        if self.pad is not None:
            x = F.pad(x, self.pad, mode="constant" if self.pad_mode == "zeros" else self.pad_mode)
        p = patch_view(x, self.kernel, self.dilation, _pair(self.padding), self.stride)  # [lead, Ho, Wo, C, kh, kw]
        ho, wo = p.shape[1:3]
        # Stacked per row array in one copy where arrays hold whole channels (patches.py); else im2col's layout.
        chips = self._chips_in(p.shape[0])
        stacked = None if calibrating else stack_patches(p, cb.plan.row_splits, cb.rows, chips)
        if stacked is not None:
            y = self._matrix(stacked, converted, stacked=True)          # [Kc, lead'*L, out]
        else:
            y = self._matrix(flat_patches(p), converted)
        y = y.reshape(-1, ho * wo, y.shape[-1]).transpose(1, 2).reshape(-1, y.shape[-1], ho, wo)
        return self._add_bias(y, len(self.ctx.chips))


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


# Peak bytes per analog weight of one chip while its read state is programmed: ~48 measured (torch 2.14 CPU, pcm),
# with a margin. Before this term counted, 2,000 MLP chips in one 4 GB "activation" chunk peaked at 14.7 GB RSS.
# Also used by aimcbench.config.resources to estimate a sweep's memory before it starts.
PROGRAM_BYTES_PER_WEIGHT = 64

# On a CPU, more chips per chunk stop paying once a chunk's largest activation and its chips' programmed arrays
# pass a few hundred MB (measured, 2 cores, s per chip in chunks of 1 / 2 / 4 / 8 chips: small CNN, pcm, 1,000
# 32x32 images, 295 MB of unfolded inputs per chip: 1.35 / 1.11 / 1.37 / 2.04; WRN-16-8 rram_l3, 64 images, 302 MB
# plus 88 MB of arrays per chip: 6.97 / 9.56 at 1 / 2; tensors past 2 GiB are fresh mmaps whatever the
# allocator). A chunk stays below this, which keeps the batched call no slower than a loop of single chips.
CPU_CHUNK_BYTES = 640 * 2**20


class AnalogModel(nn.Module):
    """K programmed chips of one network. ``forward(x [B, ...]) -> [K, B, ...]``; ``drift(t)`` re-reads them."""

    def __init__(self, net: nn.Module, crossbars: dict[str, Crossbar], chip_ids: tuple[int, ...], ctx: ChipContext,
                 chip_chunk: Optional[int], max_memory_gb: float):
        super().__init__()
        self.net, self.chip_ids, self.ctx = net, chip_ids, ctx
        self.chips = len(chip_ids)
        self.crossbars = crossbars
        self.chip_chunk, self.max_memory_gb = chip_chunk, max_memory_gb
        self._cache: dict[tuple[int, ...], dict[str, ChipState]] = {}
        self._act_per_sample: Optional[int] = None
        self.batchnorms: list[ChipBatchNorm] = []

    def drift(self, t_inference_s: float) -> "AnalogModel":
        """Read the same programmed chips at another time after programming."""
        for cb in self.crossbars.values():
            cb.set_time(t_inference_s)
        self._cache.clear()
        for bn in self.batchnorms:  # a calibration was for the old read-out
            bn.reset()
        return self

    @torch.no_grad()
    def calibrate(self, batches, dynamic: bool = False) -> "AnalogModel":
        """Noise-aware batch norm (study 004 Algorithm 1): recompute every chip's batch-norm statistics on
        ``batches`` (an iterable of input tensors, training data) run through the noisy chips. ``dynamic`` keeps
        updating them with every later batch (test-time calibration). Needs ``to_analog(..., nabn=True)``.
        Layers with ``adc.full_scale: calibrated_max`` get their ADC full scale first (:meth:`calibrate_adc`, same
        batches); a model without batch norm then needs no ``nabn``."""
        adc = {}
        if any(cb.hw.adc.full_scale == "calibrated_max" for cb in self.crossbars.values()):
            batches = list(batches)  # read twice (only then: a pass over a whole training split stays streamed)
            adc = self.calibrate_adc(batches)  # study 003 naive full scale first: the statistics see the final ADCs
        if not self.batchnorms:
            if adc:
                return self
            raise RuntimeError("calibrate() needs to_analog(..., nabn=True) and a model with batch norm, or "
                               "hardware.adc.full_scale calibrated_max")
        for bn in self.batchnorms:
            bn.mode = "calibrate"
        try:
            for x in batches:
                self(x)
        finally:
            for bn in self.batchnorms:
                bn.mode = "dynamic" if dynamic else "fixed"
        return self

    @torch.no_grad()
    def calibrate_adc(self, batches) -> dict[str, float]:
        """Study 003's naive full scale: every layer whose profile has ``adc.full_scale: calibrated_max`` gets
        the largest ideal column output (:meth:`Crossbar.ideal_output_max`) over ``batches`` (input tensors,
        training data) as its ADC bound, one per layer, the same on every chip. The batches run once through
        the network with every analog layer exact (the digital model), so the bound does not depend on the
        chips or on how they are chunked. Returns {layer: bound} of the calibrated layers ({} when none is)."""
        todo = [n for n, cb in self.crossbars.items() if cb.hw.adc.full_scale == "calibrated_max"]
        if not todo:
            return {}
        modes = [bn.mode for bn in self.batchnorms]
        for bn in self.batchnorms:
            bn.mode = "fixed"
        for cb in self.crossbars.values():
            cb.calib_max = 0.0
        try:
            for x in batches:
                self.ctx.chips, self.ctx.batch, self.ctx.states = self.chip_ids[:1], x.shape[0], None
                self.net(x)
            found = {n: self.crossbars[n].calib_max for n in todo}
        finally:
            for cb in self.crossbars.values():
                cb.calib_max = None
            for bn, mode in zip(self.batchnorms, modes):
                bn.mode = mode
        for n, bound in found.items():
            if bound > 0:  # all-zero outputs: keep adc.bound (a zero full scale digitizes nothing)
                self.crossbars[n].set_adc_bound(bound)
        self._cache.clear()  # drift-compensation references were read through the old ADCs
        return {n: self.crossbars[n].adc.bound for n in todo}

    def _activation_numel(self, x: torch.Tensor) -> int:
        """Largest activation (unfolded conv inputs included) per sample of the digital model, for chunking."""
        sizes = [x[:1].numel()]

        def hook(mod, args, out):
            if isinstance(out, torch.Tensor):
                sizes.append(out[:1].numel())
            if isinstance(mod, AnalogConv2d):
                sizes.append(args[0][:1].numel() * mod.kernel[0] * mod.kernel[1])
            if isinstance(mod, _AnalogLayer) and isinstance(out, torch.Tensor):
                # Inside: one output per row array (stacked), its noise and, with bound management, its clean
                # copy: up to 3 x arrays x the layer's output (sizes count 4 live copies of the largest).
                sizes.append(out[:1].numel() * len(mod.crossbar.plan.row_splits) * 3 // 4 + 1)

        hooks = [m.register_forward_hook(hook) for m in self.net.modules()]
        modes = [bn.mode for bn in self.batchnorms]
        for bn in self.batchnorms:  # a probe must not touch any chip's calibration
            bn.mode = "fixed"
        # Nor any chip's noise streams: forget the reads the probe makes, so the chips' read counts are unchanged.
        streams = {n: (dict(cb._reads), dict(cb._nt_reads)) for n, cb in self.crossbars.items()}
        try:
            self.ctx.chips, self.ctx.batch, self.ctx.states = self.chip_ids[:1], 1, None
            with torch.no_grad():
                self.net(x[:1])
        finally:
            for h in hooks:
                h.remove()
            for bn, mode in zip(self.batchnorms, modes):
                bn.mode = mode
            for n, (reads, nt_reads) in streams.items():
                self.crossbars[n]._reads, self.crossbars[n]._nt_reads = reads, nt_reads
        return max(sizes)

    def chunks(self, batch: int, x: torch.Tensor) -> list[tuple[int, ...]]:
        """Chip chunks: all chips at once unless their activations would exceed max_memory_gb."""
        size = self.chip_chunk
        if size is None:
            if self._act_per_sample is None:
                self._act_per_sample = self._activation_numel(x)
            # ~4 live copies of the largest activation, float32, plus programming a chip's weights
            # (PROGRAM_BYTES_PER_WEIGHT); max_memory_gb bounds the whole chunk, not only its activations.
            per_chip = 4 * 4 * batch * self._act_per_sample + PROGRAM_BYTES_PER_WEIGHT * sum(
                cb.weight.numel() for cb in self.crossbars.values())
            size = max(1, int(self.max_memory_gb * 2**30 // max(per_chip, 1)))
            if x.device.type == "cpu":
                hot = 4 * batch * self._act_per_sample + sum(cb.state_bytes(1) for cb in self.crossbars.values())
                size = min(size, max(1, CPU_CHUNK_BYTES // max(hot, 1)))
        size = min(size, self.chips)
        return [self.chip_ids[k:k + size] for k in range(0, self.chips, size)]

    def _states(self, chunk: tuple[int, ...]) -> Optional[dict[str, ChipState]]:
        """Cached read states of a chunk when all chips fit in memory; otherwise None (recomputed per call)."""
        if chunk in self._cache:
            return self._cache[chunk]
        total = sum(cb.state_bytes(self.chips) for cb in self.crossbars.values())
        states = {name: cb.state(chunk) for name, cb in self.crossbars.items()}
        if total <= self.max_memory_gb * 2**30 / 2:
            self._cache[chunk] = states
        return states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            return self._forward_per_chip(x)
        b = x.shape[0]
        outs = []
        for chunk in self.chunks(b, x):
            self.ctx.chips, self.ctx.batch = chunk, b
            self.ctx.states = self._states(chunk)
            y = self.net(x)
            kc = len(chunk)
            if not isinstance(y, torch.Tensor):
                raise TypeError("the model returns no tensor: run its chips one at a time (chip_chunk=1)")
            if y.shape[0] == kc * b:
                y = y.reshape(kc, b, *y.shape[1:])
            else:  # no analog layer on the way: every chip gives the digital output
                y = y.unsqueeze(0).expand(kc, *y.shape)
            outs.append(y)
        self.ctx.states = None
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _forward_per_chip(self, x) -> list:
        """Models whose inputs or outputs are not one batch tensor (e.g. detection models taking a list of
        images and returning dicts) run chip by chip: a list with one output per chip. With a single chip in
        flight every analog layer accepts any leading layout (e.g. [num_boxes, features])."""
        if self.chip_chunk not in (None, 1):
            raise TypeError("inputs that are not one tensor run with chip_chunk=1 (chips one at a time), "
                            f"not {self.chip_chunk}")
        outs = []
        for k in self.chip_ids:
            self.ctx.chips, self.ctx.batch = (k,), -1
            self.ctx.states = self._states((k,))
            outs.append(self.net(x))
        self.ctx.states = None
        return outs


# Study 002 level 3: a model fine-tuned with trainable per-array digital scalers carries them as a plain attribute
# (not a buffer, so its state dict still loads into the bare architecture) named ARRAY_GAIN_ATTR on each layer:
# a [row arrays, column arrays] tensor of factors on the initial scaler max|W| (1 = untrained).
ARRAY_GAIN_ATTR = "aimc_array_gain"


def apply_array_gain(cb: Crossbar, gain: Optional[torch.Tensor]) -> bool:
    """Multiply the crossbar's digital output scalers by trained per-array factors; False (and unchanged) when the
    factors were trained for another tiling than this profile's (e.g. a level-3 model read on the untiled levels)."""
    if gain is None:
        return False
    plan = cb.plan
    if tuple(gain.shape) != (len(plan.row_splits), len(plan.col_splits)):
        return False
    sizes = torch.tensor([c1 - c0 for c0, c1 in plan.col_splits], device=cb.scale.device)
    cb.scale = cb.scale * torch.repeat_interleave(gain.to(cb.scale), sizes, dim=1)
    return True


def to_analog(model: nn.Module, hw: HardwareConfig, chips: int | Sequence[int] = 1, seed: int = 0,
              device: torch.device | str | None = None, chip_chunk: Optional[int] = None,
              max_memory_gb: float = 4.0, nabn: bool = False) -> AnalogModel:
    """Program ``chips`` chips (a count: chips 0..n-1; or the chip indices) of a trained model on ``hw``.

    The model is deep-copied and put in eval mode; its selected Linear/Conv2d layers become analog. Chip k's
    draws depend only on (seed, layer name, k). ``chip_chunk`` bounds how many chips run at once (None: as many
    as fit in ``max_memory_gb``: their activations plus the peak of programming their weights). ``nabn`` gives every batch norm per-chip statistics that
    ``AnalogModel.calibrate`` recomputes under the noise (study 004)."""
    chip_ids = tuple(range(chips)) if isinstance(chips, int) else tuple(int(k) for k in chips)
    if not chip_ids or min(chip_ids) < 0:
        raise ValueError(f"chips: must be a count >= 1 or non-negative chip indices (got {chips!r})")
    net = copy.deepcopy(model).eval()
    if isinstance(net, (nn.Linear, nn.Conv2d)):
        net = nn.Sequential(net)  # a bare layer: give it a parent so it can be replaced
    if device is not None:
        net.to(device)
    layers = select_layers(net, hw)
    if not layers:
        warnings.warn(f"hardware {hw.name}: no analog layer selected; every chip is the digital model")
    unknown = sorted(set(hw.per_layer or {}) - set(layers))
    if unknown:
        raise ConfigError("hardware.per_layer", f"no analog layer {unknown[0]!r} in the model; analog layers: "
                                                f"{', '.join(layers)}")
    uncalibrated = [n for n in layers if hw.adc.full_scale == "calibrated_max" and "adc_bound" not in
                    ((hw.per_layer or {}).get(n) or {})]
    if uncalibrated:
        warnings.warn(f"hardware {hw.name}: adc.full_scale calibrated_max: layers {', '.join(uncalibrated)} keep "
                      f"adc.bound {hw.adc.bound} until AnalogModel.calibrate_adc(training batches) runs (or use "
                      "the per-layer profile `aimc optimize hardware.adc.full_scale=calibrated_max` writes)")
    ctx = ChipContext()
    scratch = Scratch()
    crossbars = {}
    for name, mod in layers.items():
        n_in, n_out, area = analog_layer_shape(mod)
        plan = plan_layer(n_in, n_out, hw, area)
        # Study 003: hw.per_layer (from aimc optimize) replaces g_min/g_max and the ADC full scale per layer.
        cb = Crossbar(name, mod.weight.reshape(n_out, n_in), hw.for_layer(name), plan, seed, bias=mod.bias)
        cb.scratch = scratch
        apply_array_gain(cb, getattr(mod, ARRAY_GAIN_ATTR, None))
        new = AnalogConv2d(mod, cb, ctx) if isinstance(mod, nn.Conv2d) else AnalogLinear(cb, ctx)
        parent_name, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent_name) if parent_name else net, child, new)
        crossbars[name] = cb
    amodel = AnalogModel(net, crossbars, chip_ids, ctx, chip_chunk, max_memory_gb)
    if nabn:
        amodel.batchnorms = replace_batchnorms(net, ctx, chip_ids)
    return amodel
