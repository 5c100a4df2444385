"""The circuit around a crossbar's cells (issue 17), as the crossbar's forward uses it: weight slices on extra
columns, bit-serial input cycles, IR drop along the array lines, and each chip's non-ideal ADCs.

Physical columns: a layer of ``out`` outputs and S weight slices has P = S x out physical columns per row array,
slice-major (column s out + c holds slice s of output c). Everything between programming and the digital
recombination (device, IR drop, drift-compensation read-out, ADC) works on the P physical columns.
"""

from __future__ import annotations

from typing import Optional

import torch

from .adc_nonideal import ADCErrors, apply_adc_errors_, draw_adc_errors, stacked_adc_index
from .config import ConfigError, HardwareConfig
from .devices import ChipStreams
from .irdrop import effective_conductance_pair, effective_conductance_tiled
from .periphery import step_size
from .slicing import cycle_count, input_cycles, weight_slices
from .tiling import TilePlan


def check_device_circuit(hw: HardwareConfig, signed_cells: Optional[bool] = None,
                         temporal: Optional[bool] = None) -> None:
    """The circuit settings the profile's device family can take (a ConfigError naming the key otherwise); the
    sweep's validation calls it for every point before anything runs."""
    if signed_cells is None or temporal is None:
        from .devices import make_device

        dev = make_device(hw)
        signed_cells, temporal = dev.signed_weights, bool(dev.temporal)
    slices = hw.mapping.weight_slices
    if slices > 1 and temporal:
        raise ConfigError("hardware.mapping.weight_slices", f"{slices} slices need weights that stay put (not "
                                                            f"{hw.device.model!r} with noise redrawn per batch)")
    if slices > 1 and hw.device.bits_per_cell is None:
        raise ConfigError("hardware.device.bits_per_cell", f"must be set with mapping.weight_slices = {slices} "
                                                           "(got null)")
    if hw.dac.input_bits_per_cycle is not None and hw.dac.bits is None:
        raise ConfigError("hardware.dac.input_bits_per_cycle", "needs dac.bits (a digital input code to slice)")
    if hw.array.r_wire_ohm > 0 and signed_cells:
        raise ConfigError("hardware.array.r_wire_ohm", f"needs a conductance-pair device, not {hw.device.model!r} "
                                                       "(signed weights have no cells)")


class Circuit:
    """Slices, cycles, IR drop and ADC errors of one crossbar layer (all off: the layer of before, exactly)."""

    def __init__(self, hw: HardwareConfig, plan: TilePlan, n_out: int, signed_cells: bool, temporal: bool,
                 separate: bool, adc_signed: bool):
        self.hw, self.plan, self.n_out, self.separate, self.adc_signed = hw, plan, n_out, separate, adc_signed
        self.slices = hw.mapping.weight_slices
        check_device_circuit(hw, signed_cells, temporal)
        self.cycles = cycle_count(hw.dac.bits, hw.dac.signed, hw.dac.input_bits_per_cycle)
        self.phys_cols = self.slices * n_out
        # Column-array ranges over the physical columns (each slice's share of every column array).
        self.col_splits = [(s * n_out + c0, s * n_out + c1) for s in range(self.slices) for c0, c1 in plan.col_splits]
        self.adc_idx, self.n_adc = stacked_adc_index(self.phys_cols, len(plan.row_splits), hw.adc.columns_per_adc,
                                                     self.col_splits)
        self.slice_factors: list = [1.0]

    # ----- programming ------------------------------------------------------------------------------------------
    def physical_weights(self, w_norm: torch.Tensor) -> torch.Tensor:
        """[out, in] normalized weights -> [P, in]: the slices' weights, slice-major."""
        w, self.slice_factors = weight_slices(w_norm, self.slices, self.hw.device.bits_per_cell)
        return w.reshape(-1, w.shape[-1])

    def ir_drop(self, gp: torch.Tensor, gm: Optional[torch.Tensor], g_range_uS: float):
        """Stacked normalized conductances [Kc, A, R, P] -> their IR-drop attenuated copies (g+ and g- of an output
        on adjacent columns of one array), or the inputs themselves with array.r_wire_ohm 0."""
        r = self.hw.array.r_wire_ohm
        if r == 0:
            return gp, gm
        sweeps = self.hw.array.irdrop_sweeps
        if gm is None:
            return effective_conductance_tiled(gp, g_range_uS, r, self.col_splits, sweeps), None
        return effective_conductance_pair(gp, gm, g_range_uS, r, self.col_splits, sweeps)

    def adc_errors(self, streams: ChipStreams) -> Optional[ADCErrors]:
        """Each chip's ADC offsets, gains and transfer curves (None: ideal ADCs, or no uniform quantizer)."""
        adc = self.hw.adc
        if adc.bits is None or adc.quantizer != "uniform":
            return None
        return draw_adc_errors(adc.nonideal, adc.bits, self.adc_signed, self.n_adc * (2 if self.separate else 1),
                               streams)

    # ----- reading ------------------------------------------------------------------------------------------------
    def apply_adc_(self, y: torch.Tensor, errs: Optional[ADCErrors], bound: float, j: int,
                   rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Digitized outputs [Kc, A, N, P] (or bound management's rows [M, P] of (chip, array, vector) ``rows``)
        through the chips' non-ideal ADCs; ``j`` 1 for the minus ADCs of separate_adc."""
        if errs is None:
            return y
        step = step_size(self.hw.adc.bits, bound, self.adc_signed)
        idx = self.adc_idx.to(y.device) + j * self.n_adc
        if rows is None:
            return apply_adc_errors_(y, errs, step, bound, self.adc_signed, idx)
        return apply_adc_errors_(y, errs, step, bound, self.adc_signed, idx[rows[:, 1], 0], chips=rows[:, 0])

    def cycle_inputs(self, v: torch.Tensor) -> tuple[torch.Tensor, list]:
        """DAC outputs [..., A, N, R] -> [..., A, C N, R] (cycle-major within each array), and the C factors."""
        if self.cycles == 1:
            return v, [1.0]
        dac = self.hw.dac
        vc, factors = input_cycles(v, dac.bits, dac.signed, dac.input_bits_per_cycle)   # [C, ..., A, N, R]
        return vc.movedim(0, -3).flatten(-3, -2), factors

    def combine(self, y: torch.Tensor, cycle_factors: list, comp: Optional[torch.Tensor]) -> torch.Tensor:
        """Digitized physical outputs [Kc, A, C N, P] -> [Kc, A, N, out]: shift-and-add of the cycles, drift
        compensation per physical column (comp [Kc, A, P]), shift-and-add of the slices."""
        kc, a = y.shape[0], y.shape[1]
        if len(cycle_factors) > 1:
            f = torch.tensor(cycle_factors, device=y.device, dtype=y.dtype).view(1, 1, -1, 1, 1)
            y = (y.view(kc, a, len(cycle_factors), -1, y.shape[-1]) * f).sum(dim=2)
        if comp is not None:
            y = y.mul_(comp.unsqueeze(2))
        if self.slices > 1:
            f = torch.tensor(self.slice_factors, device=y.device, dtype=y.dtype).view(-1, 1)
            y = (y.view(kc, a, y.shape[2], self.slices, self.n_out) * f).sum(dim=3)
        return y
