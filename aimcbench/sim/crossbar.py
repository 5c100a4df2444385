"""One analog layer's weight matrix on tiled crossbars, for a chunk of chips at once.

The forward of each array follows aihwkit's analog MVM: per input vector and array, noise management (alpha =
max|x|) and DAC quantization; y = G x in normalized units (a weight of max|W| is one full conductance range); Gaussian
output noise; ADC quantization and clipping, with iterative bound management (an input whose output clips is
re-applied halved, up to 1000x); then digital scaling by alpha, the weight scale and drift compensation, and the
partial sums of the row arrays are added digitally. All row arrays of all chips of a chunk are one batched matmul
(arrays stacked, padded to the tallest), and every step after it is one kernel over all of them: the number of
operations a forward dispatches does not grow with the chips or the arrays (tests/test_sim_dispatch.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn

from .config import HardwareConfig
from .bounds import clip_mask, manage_gather, manage_masked
from .circuit import Circuit
from .colnoise import column_noise_
from .converters import ADC, DAC
from .devices import ChipKeys, ChipStreams, make_device
from .compiled import digitized_difference, scaled_sum
from .devices.rng import compiled_noise
from .periphery import physical_adc_bound
from .tiling import TilePlan



@dataclass
class ChipState:
    """What a chunk of chips needs for inference at one read-out time."""

    chips: tuple[int, ...]
    tiles: Any = None                           # stacked arrays W [Kc, A, R, P] or (W+, W-) with separate ADCs
    comp: Optional[torch.Tensor] = None         # drift compensation factors [Kc, A, P] (P physical columns)
    adc_errs: Any = None                        # the chips' ADC offsets, gains, transfer curves (None: ideal)
    static: Optional[torch.Tensor] = None       # weight-noise static part [Kc, out, in] (temporal noise only)
    bias: Optional[torch.Tensor] = None         # per-chip noisy bias [Kc, out] (weight_noise.on_bias)
    gsum: Any = None                            # study 003 column noise: (g+ + g-)/g_range [Kc, A, R, out],
                                                # or (g+, g-)/g_range with separate ADCs


class Scratch:
    """A reusable float buffer for short-lived tensors (the output noise)."""

    def __init__(self) -> None:
        self.buf: Optional[torch.Tensor] = None

    def get(self, shape, device: torch.device) -> torch.Tensor:
        n = 1
        for s in shape:
            n *= s
        if self.buf is None or self.buf.numel() < n or self.buf.device != device:
            self.buf = torch.empty(n, device=device)
        return self.buf[:n].view(shape)


class Crossbar(nn.Module):
    """The analog matrix of a Linear or (unfolded) Conv2d layer: [out, in] weights, programmed on many chips."""

    def __init__(self, name: str, weight: torch.Tensor, hw: HardwareConfig, plan: TilePlan, seed: int,
                 bias: Optional[torch.Tensor] = None):
        super().__init__()
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone(), persistent=False)
        self.name, self.hw, self.plan, self.seed = name, hw, plan, seed
        w = weight.detach().float()
        self.register_buffer("weight", w, persistent=False)
        scale = self._scales(w)                     # [n_row_arrays, out]: the max|W| each weight is divided by
        self.register_buffer("scale", scale, persistent=False)
        # Per-weight scale [out, in]: normalizes the weights, and converts study 004's ADD noise each batch.
        self.register_buffer("scale_full", self._expand(scale), persistent=False)
        self.register_buffer("w_norm", w / self.scale_full, persistent=False)
        self.separate = hw.mapping.differential == "separate_adc"
        self.dac = DAC(hw.dac)
        self.device_model = make_device(hw)  # the family registered under hw.device.model
        if self.device_model.signed_weights:
            adc_bound, signed = hw.adc.bound, True
            self.separate = False  # weights are stored signed: one column per output
        elif hw.adc.range_uA is not None:
            adc_bound, signed = physical_adc_bound(hw), False  # an unsigned ADC over [0, range_uA]
        else:
            adc_bound, signed = hw.adc.bound, True
        self.adc = ADC(hw.adc, adc_bound, signed)
        # Weight slices, input cycles, IR drop, ADC errors (issue 17); the arrays hold circuit.phys_cols columns.
        self.circuit = Circuit(hw, plan, w.shape[0], self.device_model.signed_weights, self.device_model.temporal,
                               self.separate, signed)
        # adc.full_scale calibrated_max: the largest ideal output seen while calibrating (None: not calibrating)
        self.calib_max: Optional[float] = None
        self.t_inference_s = hw.t_inference_s
        # Reads each chip has made at this read-out time (output noise; study 004's per-batch factor): the n-th
        # read's noise is named by n, so it is the same whatever chunk the chip runs in.
        self._reads: dict[int, int] = {}
        self._nt_reads: dict[int, int] = {}
        self.rows = max(r1 - r0 for r0, r1 in plan.row_splits)  # rows of the tallest array (the stacked height)
        self.scratch = Scratch()  # to_analog shares one among all layers of a model

    # ----- mapping -------------------------------------------------------------------------------------------
    def _scales(self, w: torch.Tensor) -> torch.Tensor:
        """Weight scale per row array and output: max|W| of the array, of each column in it, or of the layer."""
        mode = self.hw.mapping.weight_scaling
        out = torch.empty(len(self.plan.row_splits), w.shape[0], device=w.device)
        for t, (r0, r1) in enumerate(self.plan.row_splits):
            block = w[:, r0:r1].abs()
            if mode == "per_layer":
                out[t] = w.abs().max()
            elif mode == "per_column":
                out[t] = block.amax(dim=1)
            else:
                for c0, c1 in self.plan.col_splits:
                    out[t, c0:c1] = block[c0:c1].max()
        # An all-zero block keeps zero weights: any positive scale works.
        return torch.where(out > 0, out, torch.ones_like(out))

    def _expand(self, per_tile: torch.Tensor) -> torch.Tensor:
        """[..., n_row_arrays, out] -> [..., out, in] (each input column takes its row array's value)."""
        sizes = [r1 - r0 for r0, r1 in self.plan.row_splits]
        idx = torch.repeat_interleave(torch.arange(len(sizes), device=per_tile.device),
                                      torch.tensor(sizes, device=per_tile.device))
        return per_tile[..., idx, :].transpose(-1, -2)

    def _stack(self, u: torch.Tensor) -> torch.Tensor:
        """[Kc, out, in] -> [Kc, A, R, out]: the A row arrays stacked, each padded with zero rows to the tallest
        array's R rows, so that every array of every chip is one batched matmul."""
        kc, n_out, n_in = u.shape
        a, r = len(self.plan.row_splits), self.rows
        if a * r != n_in:
            u = torch.nn.functional.pad(u, (0, a * r - n_in))
        return u.view(kc, n_out, a, r).permute(0, 2, 3, 1).contiguous()

    def _stack_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Input vectors [..., N, in] -> [..., A, N, R], contiguous, the last array's rows zero padded like the
        weights: one copy, laid out as the products read it."""
        a, r = len(self.plan.row_splits), self.rows
        lead, n, n_in = x.shape[:-2], x.shape[-2], x.shape[-1]
        if a * r == n_in:
            return x.reshape(*lead, n, a, r).movedim(-2, -3).contiguous()
        out = x.new_empty(*lead, a, n, r)
        full = (a - 1) * r
        out[..., :a - 1, :, :].copy_(x[..., :full].reshape(*lead, n, a - 1, r).movedim(-2, -3))
        out[..., a - 1, :, :n_in - full].copy_(x[..., full:])
        out[..., a - 1, :, n_in - full:].zero_()
        return out

    # ----- chips -----------------------------------------------------------------------------------------------
    def streams(self, chips: Sequence[int]) -> ChipStreams:
        """The named random streams of these chips of this layer."""
        return ChipStreams(self.seed, self.name, chips, self.weight.device)

    def set_time(self, t_inference_s: float) -> None:
        """Read the chips at another time: forward-noise streams restart from (seed, layer, chip, time)."""
        self.t_inference_s = float(t_inference_s)
        self._reads, self._nt_reads = {}, {}

    def _next_keys(self, chips: Sequence[int], stream: str, counts: dict) -> ChipKeys:
        """Keys of the next read of ``stream`` by each chip: chip k's n-th read is named "<stream> #n", whatever
        chunk it runs in (the counter-based stand-in for a generator that advances)."""
        names = []
        for k in chips:
            n = counts.get(k, 0)
            counts[k] = n + 1
            names.append(f"{stream}@{self.t_inference_s} #{n}")
        keys = self.streams(chips)(names)
        keys.reads = tuple(counts[k] - 1 for k in chips)
        return keys

    def state(self, chips: Sequence[int]) -> ChipState:
        """Program the chips of ``chips`` (deterministically from their seeds) and read them at t_inference_s."""
        chips = tuple(chips)
        streams = self.streams(chips)
        dev = self.device_model
        errs = self.circuit.adc_errors(streams)
        prog = dev.program(self.circuit.physical_weights(self.w_norm), streams)
        if dev.signed_weights:
            if dev.temporal:  # the weights of each inference batch are drawn in forward_matrix
                return ChipState(chips, static=prog, adc_errs=errs)
            bias = None if self.bias is None else dev.chip_bias(self.bias, streams)
            return ChipState(chips, tiles=self._stack(dev.read(prog, self.t_inference_s, streams)), bias=bias,
                             adc_errs=errs)
        comp = None
        if self.hw.drift_compensation != "none":
            # Reference right after programming (no drift, no read noise), through the full noisy, quantized forward.
            ref = self._readout_level(*dev.read(prog, 0.0, None), streams("comp-ref"), errs)
        gp, gm = dev.read(prog, self.t_inference_s, streams)
        if self.hw.drift_compensation != "none":
            cur = self._readout_level(gp, gm, streams(f"comp@{self.t_inference_s}"), errs)
            comp = ref / cur
        return ChipState(chips, tiles=self._tiles(gp, gm), comp=comp, gsum=self._gsum(gp, gm), adc_errs=errs)

    def _gsum(self, gp: torch.Tensor, gm: torch.Tensor):
        """Normalized conductances that carry current in each read column (for thermal and shot noise)."""
        c = self.hw.column_noise
        if not (c.thermal or c.shot):
            return None
        r = self.device_model.g_range
        if self.separate:
            return self._stack(gp / r), self._stack(gm / r)
        return self._stack((gp + gm) / r)

    def _tiles(self, gp: torch.Tensor, gm: torch.Tensor):
        """Conductances -> normalized stacked arrays [Kc, A, R, out] (one signed, or a pair for separate ADCs)."""
        g_range = self.device_model.g_range
        if self.separate or self.hw.array.r_wire_ohm > 0:
            ep, em = self.circuit.ir_drop(self._stack(gp / g_range), self._stack(gm / g_range), g_range)
            return (ep, em) if self.separate else ep.sub_(em)
        return self._stack((gp - gm) / g_range)

    def _readout_level(self, gp: torch.Tensor, gm: torch.Tensor, keys: ChipKeys, errs=None) -> torch.Tensor:
        """Drift-compensation read-out: the identity matrix through each array; max(mean|y|, 1e-4) per array
        (global) or per column (per_column), as [Kc, A, out]."""
        a, r = len(self.plan.row_splits), self.rows
        sizes = torch.tensor([r1 - r0 for r0, r1 in self.plan.row_splits], device=gp.device)
        real = torch.arange(r, device=gp.device).view(1, r) < sizes.view(a, 1)   # [A, R]: rows that exist
        eye = torch.eye(r, device=gp.device).expand(a, r, r) * real.unsqueeze(-1)  # [A, N=R, R]
        y = self._read(eye, self._tiles(gp, gm), keys, None, errs)                # [Kc, A, R, P]
        lv = (y.abs() * real.view(1, a, r, 1)).sum(dim=2) / sizes.view(1, a, 1)   # mean over the array's rows
        if self.hw.drift_compensation == "global":
            for c0, c1 in self.circuit.col_splits:
                lv[:, :, c0:c1] = lv[:, :, c0:c1].mean(dim=2, keepdim=True)
        return lv.clamp(min=1e-4)

    # ----- forward --------------------------------------------------------------------------------------------
    # The output tensors [Kc, A, N, out] are the largest in the simulation: every step below works on them in
    # place; nothing loops over chips or arrays, and nothing reads a value back to the host on a GPU (bounds.py, _sync_free).
    def _noisy_mm(self, v: torch.Tensor, w: torch.Tensor, keys: Optional[ChipKeys], gs=None,
                  clean: Optional[list] = None, copy: bool = False) -> torch.Tensor:
        """y = v W (+ output noise): v [A, N, R] shared by all chips or [Kc, A, N, R]; returns [Kc, A, N, out].
        ``clean``: a list that receives v W before the noise (for bound management; a copy if noisy or ``copy``)."""
        y = self._matmul(v, w)
        # Compiled noise (compile=true, sim/compiled.py) returns a new tensor, so y itself stays the clean product.
        noisy = None if self.adc.out_noise <= 0 else keys.add_randn(y, self.adc.out_noise)
        if clean is not None:
            fresh = noisy is None and (self.adc.out_noise > 0 or gs is not None or copy)
            clean.append(y.clone() if fresh else y)
        if noisy is not None:
            y = noisy
        elif self.adc.out_noise > 0:
            # The noise lives only until it is added: one reused buffer avoids fresh pages on every call.
            noise = keys.randn(y.shape[1:], out=self.scratch.get(y.shape, y.device))
            y.add_(noise.mul_(self.adc.out_noise))
        if gs is not None:
            column_noise_(y, v, gs, keys, self.hw, self.device_model.g_range, self.scratch)
        return y

    def _matmul(self, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """[..., A, N, R] @ [Kc, A, R, out]. A last array shorter than R is multiplied on its own rows (two
        products instead of one, so that its zero padding costs no multiply-adds: 784 inputs on 512-row arrays
        would otherwise do 31 % more work). Both write into one output (out=): a cat would copy it all again."""
        last = self.plan.row_splits[-1][1] - self.plan.row_splits[-1][0]
        if last == self.rows:
            return torch.matmul(v, w)
        y = v.new_empty(w.shape[0], w.shape[1], v.shape[-2], w.shape[-1])
        torch.matmul(v[..., :-1, :, :], w[:, :-1], out=y[:, :-1])
        torch.matmul(v[..., -1:, :, :last], w[:, -1:, :last], out=y[:, -1:])
        return y

    def _read(self, v: torch.Tensor, w, keys: Optional[ChipKeys], gs=None, errs=None) -> torch.Tensor:
        """Digitized array outputs [Kc, A, N, out] of normalized inputs v, with sign phases and bound management."""
        if not self.adc.signed:
            # An unsigned ADC sees positive currents only: a vector with negative inputs has them applied in a
            # second phase (one with none is read once). Sync-free: both phases always, the second masked.
            neg = v.amin(dim=-1, keepdim=True) < 0     # [..., A, N, 1] (amin: 10x faster than (v < 0).any)
            if self._sync_free(v) or bool(neg.any()):
                kn = None if keys is None else keys.derive("phase-")
                yn = self._read_phase(v.neg().clamp_(min=0), w, kn, gs, errs)
                return self._read_phase(v.clamp(min=0), w, keys, gs, errs).sub_(yn.masked_fill_(~neg, 0.0))
        return self._read_phase(v, w, keys, gs, errs)

    def _sync_free(self, v: torch.Tensor) -> bool:
        """Compute without reading values back to the host: on a GPU (AIMC_SYNC_FREE=1/0 forces it either way).
        Both ways give the same numbers; on a CPU the host reads cost nothing and skip work."""
        force = os.environ.get("AIMC_SYNC_FREE")
        return v.device.type != "cpu" if force not in ("0", "1") else force == "1"

    def _read_phase(self, v: torch.Tensor, w, keys: Optional[ChipKeys], gs=None, errs=None) -> torch.Tensor:
        """One read phase: products, output noise, ADC, and iterative bound management (bounds.py)."""
        sync_free = self._sync_free(v)
        clean: Optional[list] = [] if self.adc.iterative else None   # noise-free products for re-reads
        # One read per ADC: (weights, noise keys, column conductances); two with separate ADCs for W+ and W-.
        if self.separate:
            gp, gm = (None, None) if gs is None else gs
            kp, km = (None, None) if keys is None else (keys.derive("+"), keys.derive("-"))
            reads = [(w[0], kp, gp), (w[1], km, gm)]
        else:
            reads = [(w, keys, gs)]
        diff = self._compiled_difference(v, reads, errs, clean)
        if diff is not None:
            return diff
        sub, fused = [k for _, k, _ in reads], self._compiled_reads(v, reads, errs, clean)
        if fused is not None:
            return self._finish(fused[0], sub, fused[1], clean, sync_free, errs, digitized=True)
        ys = [self._noisy_mm(v, wt, k, g, clean, sync_free) for wt, k, g in reads]
        return self._finish(ys, sub, None, clean, sync_free, errs)

    def _grid(self, reads: list, errs) -> Optional[tuple[float, float]]:
        """The ADC's uniform grid (step, lo) for the compiled kernels; None if chip errors or column noise alter it."""
        return None if errs is not None or any(g is not None for *_, g in reads) else self.adc.uniform_grid()

    def _compiled_difference(self, v: torch.Tensor, reads: list, errs, clean: Optional[list]):
        """W+ and W- read noiselessly by ideal uniform ADCs (study 002's RRAM), no bound management: both digitized
        and subtracted by one compiled kernel (compile=true), or None (the step-by-step way)."""
        grid = None if len(reads) != 2 or clean is not None or self.adc.out_noise > 0 else self._grid(reads, errs)
        kernel = None if grid is None else digitized_difference(v.device)
        if kernel is None:
            return None
        yp, ym = (self._matmul(v, wt) for wt, _, _ in reads)
        return kernel(yp, ym, grid[0], grid[1], self.adc.bound)

    def _compiled_reads(self, v: torch.Tensor, reads: list, errs, clean: Optional[list]):
        """(digitized reads, their levels): the noisy reads digitized by one compiled kernel each (compile=true, a
        noisy uniform ADC without per-chip errors or column noise), or None (the step-by-step way)."""
        adc = self.adc
        grid = None if reads[0][1] is None or adc.out_noise <= 0 else self._grid(reads, errs)
        if grid is None or compiled_noise("digitized", v.device) is None:
            return None
        ys, levels = [], []
        for wt, k, _ in reads:
            y = self._matmul(v, wt)
            if clean is not None:
                clean.append(y)
            q, level = k.add_randn_digitized(y, adc.out_noise, *grid, adc.bound, adc.signed)
            ys.append(q)
            levels.append(level)
        return ys, levels

    def _finish(self, ys: list, sub: list, levels: Optional[list], clean: Optional[list], sync_free: bool, errs,
                digitized: bool = False) -> torch.Tensor:
        """Digitize the reads ys (unless ``digitized``) with bound management; ``levels``: their per-vector levels
        when known (compiled reads), else computed here."""
        def digitize(y: torch.Tensor, j: int, rows: Optional[torch.Tensor]) -> torch.Tensor:
            return self.circuit.apply_adc_(self.adc.quantize_(y), errs, self.adc.bound, j, rows=rows)

        manage = None
        if clean is not None:
            clip = clip_mask(self.adc, ys[0]) if levels is None else levels[0] >= self.adc.bound
            for i, y in enumerate(ys[1:], 1):
                clip |= clip_mask(self.adc, y) if levels is None else levels[i] >= self.adc.bound
            # bool(): a host read, free on a CPU, where picking the few clipped vectors out saves work
            manage = manage_masked if sync_free else manage_gather if bool(clip.any()) else None
        if manage is not None:
            manage(ys, clean, clip, sub, self.adc, digitize, digitized)   # digitizes ys, replaces the clipped ones
        elif not digitized:
            for j, y in enumerate(ys):
                digitize(y, j, None)
        return ys[0] if len(ys) == 1 else ys[0].sub_(ys[1])

    def forward_matrix(self, x: torch.Tensor, st: ChipState, converted: bool = False,
                       stacked: bool = False) -> torch.Tensor:
        """The tiled analog product for input vectors x ([N, in] shared, or [Kc, N, in]) -> [Kc, N, out]; x is the
        output of an element-wise DAC (``dac(x)[0]``) if ``converted``, laid out as [..., A, N, R] if ``stacked``."""
        noisy = self.adc.out_noise > 0 or st.gsum is not None
        keys = self._next_keys(st.chips, "out", self._reads) if noisy else None
        tiles = st.tiles
        if st.static is not None:
            # Study 004: the temporal factor is redrawn for every inference batch.
            inv = 1.0 / self.scale_full
            nt = self._next_keys(st.chips, "temporal", self._nt_reads)
            tiles = self._stack(self.device_model.sample(self.w_norm, st.static, inv, nt))
        xs = x if stacked else self._stack_inputs(x)
        v, alpha = (xs, self.dac.fixed_alpha(xs)) if converted else self.dac(xs)  # [..., A, N, R], [..., A, N, 1]
        v, cycle_factors = self.circuit.cycle_inputs(v)                # bit-serial: [..., A, C N, R]
        y = self._read(v.contiguous(), tiles, keys, st.gsum, st.adc_errs)   # [Kc, A, C N, P]
        # Digital side: shift-and-add of cycles and slices, drift compensation per physical column, weight scale
        # per array and output, input scale per vector; then the partial sums of the row arrays are added.
        y = self.circuit.combine(y, cycle_factors, st.comp)
        out = scaled_sum(y, self.scale.unsqueeze(1), alpha)   # compile=true: one kernel
        if out is not None:
            return out
        return y.mul_(self.scale.unsqueeze(1)).mul_(alpha).sum(dim=1)

    # ----- study 003 naive full scale (adc.full_scale calibrated_max) ---------------------------------------
    def ideal_output_max(self, x: torch.Tensor) -> float:
        """The largest |ideal column output| of any array and column for input vectors x [N, in], in normalized
        units: exact normalized weights, inputs divided by the DAC's per-vector alpha, no noise, no quantization
        (``TileStats.y`` of the error model). It is what a designer's simulation of the digital network on
        calibration inputs shows, so it is the same for every chip."""
        m = 0.0
        for r0, r1 in self.plan.row_splits:
            xs = x[..., r0:r1].float()
            _, alpha = self.dac(xs)
            y = (xs / alpha) @ self.w_norm[:, r0:r1].t()
            m = max(m, float(y.abs().max())) if y.numel() else m
        return m

    def ideal_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """The exact product x W^T [N, out] (the digital layer without its bias), as [1, N, out]."""
        return (x.float() @ self.weight.t()).unsqueeze(0)

    def set_adc_bound(self, bound: float) -> None:
        """Replace the ADC full scale (normalized units), keeping its resolution and sign convention."""
        self.adc = ADC(self.hw.adc, float(bound), self.adc.signed)

    def state_bytes(self, n_chips: int) -> int:
        """Memory of the cached read state of n_chips chips (float32)."""
        n = len(self.plan.row_splits) * self.rows * self.weight.shape[0] * n_chips * 4
        return n * (2 if self.separate else 1)
