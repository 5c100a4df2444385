"""One analog layer's weight matrix on tiled crossbars, for a chunk of chips at once.

The forward of each array follows aihwkit's analog MVM: per input vector and array, noise management (alpha =
max|x|) and DAC quantization; y = G x in normalized units (a weight of max|W| is one full conductance range); Gaussian
output noise; ADC quantization and clipping, with iterative bound management (an input whose output clips is
re-applied halved, up to 1000x); then digital scaling by alpha, the weight scale and drift compensation, and the
partial sums of the row arrays are added digitally. All chips of a chunk are one batched matmul.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
from torch import nn

from .config import HardwareConfig
from .converters import ADC, DAC
from .devices import ChipStreams, chip_generator, make_device, randn_chips
from .periphery import physical_adc_bound
from .tiling import TilePlan

BOLTZMANN_J_PER_K = 1.380649e-23   # study 003 thermal noise 4 k T G B
ELECTRON_CHARGE_C = 1.602176634e-19  # study 003 shot noise 2 q I B
_MAX_HALVINGS = 10  # 2^10 > 1000: aihwkit's bound-management limit


@dataclass
class ChipState:
    """What a chunk of chips needs for inference at one read-out time."""

    chips: tuple[int, ...]
    tiles: list = field(default_factory=list)   # per row array: W [Kc, rows, out] or (W+, W-) with separate ADCs
    comp: Optional[torch.Tensor] = None         # drift compensation factors [Kc, n_row_arrays, out]
    static: Optional[torch.Tensor] = None       # weight-noise static part [Kc, out, in] (temporal noise only)
    bias: Optional[torch.Tensor] = None         # per-chip noisy bias [Kc, out] (weight_noise.on_bias)
    gsum: Optional[list] = None                 # study 003 column noise: per row array (g+ + g-)/g_range
                                                # [Kc, rows, out], or (g+, g-)/g_range with separate ADCs


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
        # adc.full_scale calibrated_max: the largest ideal output seen while calibrating (None: not calibrating)
        self.calib_max: Optional[float] = None
        self.t_inference_s = hw.t_inference_s
        self._out_gens: dict[int, torch.Generator] = {}
        self._nt_gens: dict[int, torch.Generator] = {}
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

    def _split(self, u: torch.Tensor) -> list[torch.Tensor]:
        """[Kc, out, in] -> per row array [Kc, rows, out], contiguous for batched matmul."""
        return [u[:, :, r0:r1].transpose(1, 2).contiguous() for r0, r1 in self.plan.row_splits]

    # ----- chips -----------------------------------------------------------------------------------------------
    def streams(self, chips: Sequence[int]) -> ChipStreams:
        """The named random streams of these chips of this layer."""
        return ChipStreams(self.seed, self.name, chips, self.weight.device)

    def _gens(self, chips: Sequence[int], stream: str) -> list[torch.Generator]:
        return self.streams(chips)(stream)

    def set_time(self, t_inference_s: float) -> None:
        """Read the chips at another time: forward-noise streams restart from (seed, layer, chip, time)."""
        self.t_inference_s = float(t_inference_s)
        self._out_gens, self._nt_gens = {}, {}

    def out_gens(self, chips: Sequence[int]) -> list[torch.Generator]:
        """Persistent per-chip generators of the output noise at the current read-out."""
        for k in chips:
            if k not in self._out_gens:
                self._out_gens[k] = chip_generator(self.seed, self.name, k, f"out@{self.t_inference_s}",
                                                   self.weight.device)
        return [self._out_gens[k] for k in chips]

    def state(self, chips: Sequence[int]) -> ChipState:
        """Program the chips of ``chips`` (deterministically from their seeds) and read them at t_inference_s."""
        chips = tuple(chips)
        streams = self.streams(chips)
        dev = self.device_model
        prog = dev.program(self.w_norm, streams)
        if dev.signed_weights:
            if dev.temporal:  # the weights of each inference batch are drawn in forward_matrix
                return ChipState(chips, static=prog)
            bias = None if self.bias is None else dev.chip_bias(self.bias, streams)
            return ChipState(chips, tiles=self._split(dev.read(prog, self.t_inference_s, streams)), bias=bias)
        comp = None
        if self.hw.drift_compensation != "none":
            # Reference right after programming (no drift, no read noise), through the full noisy, quantized forward.
            ref = self._readout_level(*dev.read(prog, 0.0, None), streams("comp-ref"))
        gp, gm = dev.read(prog, self.t_inference_s, streams)
        if self.hw.drift_compensation != "none":
            cur = self._readout_level(gp, gm, streams(f"comp@{self.t_inference_s}"))
            comp = ref / cur
        return ChipState(chips, tiles=self._tiles(gp, gm), comp=comp, gsum=self._gsum(gp, gm))

    def _gsum(self, gp: torch.Tensor, gm: torch.Tensor) -> Optional[list]:
        """Normalized conductances that carry current in each read column (for thermal and shot noise)."""
        c = self.hw.column_noise
        if not (c.thermal or c.shot):
            return None
        r = self.device_model.g_range
        if self.separate:
            return list(zip(self._split(gp / r), self._split(gm / r)))
        return self._split((gp + gm) / r)

    def _column_noise_(self, y: torch.Tensor, v: torch.Tensor, gs: torch.Tensor, gens: list) -> None:
        """Study 003: add thermal 4kT G_col B and shot 2q|I|B current noise to y in place, in normalized units
        (a current divided by v_read * g_range). G_col = v_read-independent sum of the column's conductances,
        I = v_read * sum_i |v_i| g_i (both cells of a pair conduct)."""
        c = self.hw.column_noise
        g_range_S, v_read = self.device_model.g_range * 1e-6, self.hw.device.v_read_V
        var = torch.zeros((), device=y.device)
        if c.thermal:
            var = var + (4 * BOLTZMANN_J_PER_K * c.temperature_K * c.bandwidth_Hz / (v_read**2 * g_range_S)) \
                * gs.sum(dim=1, keepdim=True)
        if c.shot:
            var = var + (2 * ELECTRON_CHARGE_C * c.bandwidth_Hz / (v_read * g_range_S)) * torch.matmul(v.abs(), gs)
        noise = randn_chips(y.shape[1:], gens, y.device, out=self.scratch.get(y.shape, y.device))
        y.addcmul_(noise, var.sqrt())

    def _tiles(self, gp: torch.Tensor, gm: torch.Tensor) -> list:
        """Conductances -> normalized per-array matrices (one signed, or a pair for separate ADCs)."""
        g_range = self.device_model.g_range
        if self.separate:
            return list(zip(self._split(gp / g_range), self._split(gm / g_range)))
        return self._split((gp - gm) / g_range)

    def _readout_level(self, gp: torch.Tensor, gm: torch.Tensor, gens: list) -> torch.Tensor:
        """Drift-compensation read-out: the identity matrix through each array; max(mean|y|, 1e-4) per array
        (global) or per column (per_column), as [Kc, n_row_arrays, out]."""
        tiles = self._tiles(gp, gm)
        levels = []
        for t, (r0, r1) in enumerate(self.plan.row_splits):
            eye = torch.eye(r1 - r0, device=gp.device)
            a = self._array_read(eye, tiles[t], gens).abs().mean(dim=1)  # [Kc, out]
            if self.hw.drift_compensation == "global":
                for c0, c1 in self.plan.col_splits:
                    a[:, c0:c1] = a[:, c0:c1].mean(dim=1, keepdim=True)
            levels.append(a.clamp(min=1e-4))
        return torch.stack(levels, dim=1)

    # ----- forward --------------------------------------------------------------------------------------------
    # The output tensors [Kc, N, out] are the largest in the simulation: every step below works on them in place.
    def _noisy_mm(self, v: torch.Tensor, w: torch.Tensor, gens: list, gs=None) -> torch.Tensor:
        """y = v W (+ output noise); v [N, rows] shared by all chips or [Kc, N, rows]; returns [Kc, N, out]."""
        y = torch.matmul(v, w)
        if self.adc.out_noise > 0:
            # The noise lives only until it is added: one reused buffer avoids fresh pages on every call.
            noise = randn_chips(y.shape[1:], gens, y.device, out=self.scratch.get(y.shape, y.device))
            y.add_(noise, alpha=self.adc.out_noise)
        if gs is not None:
            self._column_noise_(y, v, gs, gens)
        return y

    def _phase(self, v: torch.Tensor, w, gens: list, gs=None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """One read of an array: digitized output and, with iterative bound management, the clip mask [Kc, N]."""
        if self.separate:
            gp, gm = (None, None) if gs is None else gs
            yp, ym = self._noisy_mm(v, w[0], gens, gp), self._noisy_mm(v, w[1], gens, gm)
            clip = None
            if self.adc.iterative:
                cp, cm = self.adc.clipped(yp), self.adc.clipped(ym)
                clip = cp if cm is None else (cm if cp is None else cp | cm)
            return self.adc.quantize_(yp).sub_(self.adc.quantize_(ym)), clip
        y = self._noisy_mm(v, w, gens, gs)
        clip = self.adc.clipped(y) if self.adc.iterative else None
        return self.adc.quantize_(y), clip

    def _array_read(self, v: torch.Tensor, w, gens: list, gs=None) -> torch.Tensor:
        """Digitized array output [Kc, N, out] for normalized inputs v, with sign phases and bound management."""
        if not self.adc.signed and bool((v < 0).any()):
            # An unsigned ADC sees positive currents only: negative inputs are applied in a second phase.
            return self._array_read(v.clamp(min=0), w, gens, gs).sub_(self._array_read((-v).clamp(min=0), w, gens, gs))
        y, clip = self._phase(v, w, gens, gs)
        if clip is not None and bool(clip.any()):
            self._manage_bounds(v, w, gens, y, clip)
        return y

    def _manage_bounds(self, v: torch.Tensor, w, gens: list, y: torch.Tensor, clip: torch.Tensor) -> None:
        """Iterative bound management: re-apply only the clipped input vectors, halved each time, chip by chip
        (clipping is rare, so gathering those rows beats recomputing the whole batch)."""
        for i in range(y.shape[0]):
            rows = clip[i].nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            vi = v[rows] if v.dim() == 2 else v[i, rows]
            wi = (w[0][i:i + 1], w[1][i:i + 1]) if self.separate else w[i:i + 1]
            gi = gens[i:i + 1]
            factor = 1.0
            for _ in range(_MAX_HALVINGS):
                factor *= 0.5
                yi, ci = self._phase(vi * factor, wi, gi)
                y[i, rows] = yi[0] / factor
                if ci is None:
                    break
                still = ci[0]
                if not bool(still.any()):
                    break
                rows, vi = rows[still], vi[still]

    def forward_matrix(self, x: torch.Tensor, st: ChipState) -> torch.Tensor:
        """The tiled analog product for input vectors x ([N, in] shared, or [Kc, N, in]) -> [Kc, N, out]."""
        gens = self.out_gens(st.chips) if self.adc.out_noise > 0 or st.gsum is not None else []
        tiles = st.tiles
        if st.static is not None:
            # Study 004: the temporal factor is redrawn for every inference batch.
            inv = 1.0 / self.scale_full
            tiles = self._split(self.device_model.sample(self.w_norm, st.static, inv, self._temporal_gens(st)))
        out = None
        for t, (r0, r1) in enumerate(self.plan.row_splits):
            v, alpha = self.dac(x[..., r0:r1])
            y = self._array_read(v, tiles[t], gens, None if st.gsum is None else st.gsum[t])
            # Digital side: weight scale and drift compensation per column ([Kc, 1, out]), input scale per row.
            s = self.scale[t] if st.comp is None else st.comp[:, t].unsqueeze(1) * self.scale[t]
            y.mul_(s)
            if out is None:
                out = y.mul_(alpha)
            else:
                out.addcmul_(y, alpha)
        return out

    def _temporal_gens(self, st: ChipState) -> list[torch.Generator]:
        """Generators for N_T: they live with the output-noise streams (one draw per inference batch)."""
        store = self._nt_gens
        for k in st.chips:
            if k not in store:
                store[k] = chip_generator(self.seed, self.name, k, f"temporal@{self.t_inference_s}",
                                          self.weight.device)
        return [store[k] for k in st.chips]

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
        n = self.weight.numel() * n_chips * 4
        return n * (2 if self.separate else 1)
