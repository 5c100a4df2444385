"""Static ADC errors beyond rounding: per chip and ADC an offset, a gain error and a per-code transfer curve
(DNL/INL), applied to the codes of an ideal uniform ADC.

Model (output-referred, in LSB of the ADC's code grid; ``adc.nonideal`` settings, config_circuit.py). Code index
k = 0 .. K-1 (K = ``adc_levels(bits, signed)``) is the code value c = code_min + k (signed: code_min = -(2^(b-1) -
1); unsigned: 0). Per ADC the DNL of step k (from code k-1 to k, k = 1 .. K-1) is d_k - mean(d), d_k ~ N(0,
dnl_std_lsb^2): removing the mean is the endpoint fit that leaves gain and offset to their own parameters, so the
first and last codes are exact and each DNL has std dnl_std_lsb sqrt(1 - 1/(K-1)). The INL of code k is the sum
of the DNL of steps 1..k plus an optional bow inl_lsb (1 - x_k^2), x_k = 2k/(K-1) - 1. The transfer table is
T[k] = c + INL_k. A code c is read as (T[k] + offset) (1 + gain) LSB, clipped to the code range: the converter's
reading, not necessarily an integer (the offset and gain of a real converter act before its rounding; here they
act on its ideal code, which is what the crossbar's quantize-then-apply order allows). The transfer is monotone
when every DNL > -1 LSB (and the bow's slope, at most 4 inl_lsb / (K-1) per step, does not undo it).

Randomness: chip k's offsets, gains and DNL come from its own streams "adc-offset", "adc-gain", "adc-dnl"
(rng.ChipStreams: seed, layer, chip, stream), as unit normals scaled by the settings. So a chip is the same alone
or in any chunk; sweeping one error's size scales the same draws; changing adc.bits redraws only the DNL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .config_circuit import ADCNonidealConfig
from .devices.rng import ChipStreams, randn_chips
from .periphery import adc_levels, grid_steps


@dataclass
class ADCErrors:
    """The static errors of the ADCs of a chunk of chips (one layer): what ``apply_adc_errors_`` needs."""

    offset_lsb: torch.Tensor              # [Kc, n_adc] offset in LSB
    gain: torch.Tensor                    # [Kc, n_adc] relative gain error (reading times 1 + gain)
    transfer_lsb: Optional[torch.Tensor]  # [Kc, n_adc, K] reading of code index k in LSB; None: ideal codes
    code_min: int                         # code value of index 0 (-(2^(b-1)-1) signed, 0 unsigned)

    def select(self, chips) -> "ADCErrors":
        """The errors of some chips of the chunk (an index or slice along the chip axis, e.g. ``slice(i, i + 1)``
        for bound management's per-chip re-reads) or, with a tuple ``(chips, adcs)``, of some of their ADCs."""
        c, a = chips if isinstance(chips, tuple) else (chips, slice(None))
        t = None if self.transfer_lsb is None else self.transfer_lsb[c][:, a]
        return ADCErrors(self.offset_lsb[c][:, a], self.gain[c][:, a], t, self.code_min)

    @property
    def inl_lsb(self) -> Optional[torch.Tensor]:
        """[Kc, n_adc, K] INL of every code (transfer minus the ideal code); None with ideal codes."""
        if self.transfer_lsb is None:
            return None
        k = self.transfer_lsb.shape[-1]
        ideal = torch.arange(self.code_min, self.code_min + k, device=self.transfer_lsb.device,
                             dtype=self.transfer_lsb.dtype)
        return self.transfer_lsb - ideal

    @property
    def dnl_lsb(self) -> Optional[torch.Tensor]:
        """[Kc, n_adc, K-1] DNL of every code step (step width minus one LSB); None with ideal codes."""
        return None if self.transfer_lsb is None else self.transfer_lsb.diff(dim=-1) - 1.0


def code_range(bits: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest code value of the converter (codes times the step are its output levels)."""
    n = grid_steps(bits, signed)
    return (-n, n) if signed else (0, n)


def adc_index(cols: int, columns_per_adc: int = 1,
              col_splits: Optional[Sequence[tuple[int, int]]] = None) -> torch.Tensor:
    """The ADC [cols] that reads each output column: consecutive groups of ``columns_per_adc`` columns within each
    physical array (``col_splits`` as TilePlan.col_splits; None: one array). ADC numbers run over the arrays."""
    splits = list(col_splits) if col_splits else [(0, cols)]
    out, first = torch.empty(cols, dtype=torch.long), 0
    for c0, c1 in splits:
        local = torch.arange(c1 - c0) // columns_per_adc
        out[c0:c1] = first + local
        first += int(local.max()) + 1 if c1 > c0 else 0
    return out


def draw_adc_errors(cfg: ADCNonidealConfig, bits: int, signed: bool, n_adc: int, streams: ChipStreams
                    ) -> Optional[ADCErrors]:
    """Draw the ADC errors of the chips of ``streams`` (one layer) for ``n_adc`` ADCs each; None when every
    setting is zero (the ideal ADC: leave the crossbar's output untouched). Once per chip state, like programming."""
    if not cfg.active():
        return None
    dev, kc = streams.device, len(streams)
    zeros = torch.zeros((kc, n_adc), device=dev)
    offset = randn_chips((n_adc,), streams("adc-offset"), dev).mul_(cfg.offset_std_lsb) if cfg.offset_std_lsb \
        else zeros
    gain = randn_chips((n_adc,), streams("adc-gain"), dev).mul_(cfg.gain_std) if cfg.gain_std else zeros.clone()
    lo, _ = code_range(bits, signed)
    levels = adc_levels(bits, signed)
    transfer = None
    if cfg.dnl_std_lsb or cfg.inl_lsb:
        # Sums of many steps: float64 keeps the table's integer part exact and the INL accurate at 2^16 codes.
        inl = torch.zeros((kc, n_adc, levels), device=dev, dtype=torch.float64)
        if cfg.dnl_std_lsb:
            d = randn_chips((n_adc, levels - 1), streams("adc-dnl"), dev).double().mul_(cfg.dnl_std_lsb)
            d -= d.mean(dim=-1, keepdim=True)          # endpoint fit: the steps add up to the ideal span
            inl[..., 1:] = d.cumsum(dim=-1)
        if cfg.inl_lsb:
            x = torch.linspace(-1.0, 1.0, levels, device=dev, dtype=torch.float64)
            inl += cfg.inl_lsb * (1.0 - x * x)
        ideal = torch.arange(lo, lo + levels, device=dev, dtype=torch.float64)
        transfer = (ideal + inl).float()
    return ADCErrors(offset, gain, transfer, lo)


def stacked_adc_index(cols: int, n_arrays: int, columns_per_adc: int = 1,
                      col_splits: Optional[Sequence[tuple[int, int]]] = None) -> tuple[torch.Tensor, int]:
    """ADC numbers [n_arrays, 1, cols] of the crossbar's stacked outputs [Kc, A, N, out] (every row array its own
    ADCs, numbered array by array) and the number of ADCs per chip (``draw_adc_errors``' n_adc)."""
    idx = adc_index(cols, columns_per_adc, col_splits)
    per = int(idx.max()) + 1 if cols else 0
    return (torch.arange(n_arrays).view(n_arrays, 1, 1) * per + idx).view(n_arrays, 1, cols), n_arrays * per


def apply_adc_errors_(y: torch.Tensor, errs: ADCErrors, step: float, bound: float, signed: bool,
                      adc_of: Optional[torch.Tensor] = None, chips: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Replace ideal ADC outputs ``y`` in place by the readings of the chips' non-ideal ADCs and return y.

    ``y`` holds codes times ``step``, clipped to ``bound`` (the output of ``quantize_uniform_``), with the chip
    axis first: [Kc, ..., cols]. ``adc_of`` (long) the ADC number of each output, broadcastable to y.shape[1:]
    (e.g. ``stacked_adc_index``'s [A, 1, out] for [Kc, A, N, out]; None: [cols], one ADC per column). With
    ``chips`` [M], y is [M, ..., cols], row m read by chip ``chips[m]`` (an index into the chunk), and ``adc_of``
    broadcasts against y itself (bound management's gathered re-reads). No loop over chips or arrays."""
    n_adc = errs.offset_lsb.shape[1]
    adc = torch.arange(y.shape[-1], device=y.device) if adc_of is None else adc_of.to(y.device)
    if chips is None:
        chip = torch.arange(y.shape[0], device=y.device).view(-1, *([1] * (y.dim() - 1)))
        adc = adc.unsqueeze(0)
    else:
        chip = chips.to(y.device).view(-1, *([1] * (y.dim() - 1)))
    unit = chip * n_adc + adc                                          # chip's ADC, broadcast against y
    off, gain = errs.offset_lsb.flatten()[unit], errs.gain.flatten()[unit]
    lo, hi = -bound if signed else 0.0, bound
    y.div_(step).round_()                                              # the code values
    if errs.transfer_lsb is not None:
        k = errs.transfer_lsb.shape[-1]
        code = (y - errs.code_min).clamp_(0, k - 1).long()
        y.copy_(errs.transfer_lsb.flatten()[code.add_(unit * k)])      # per-chip, per-ADC table lookup
    y.add_(off).mul_(gain.add(1.0)).mul_(step)
    return y.clamp_(lo, hi)
