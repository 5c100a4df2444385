"""Typed settings of the array circuit beyond its cells: line resistance (IR drop) and the static errors of the
ADCs (offset, gain, INL/DNL). Kept apart from :mod:`aimcbench.sim.config` so that file stays one screenful of
schema per section; ``HardwareConfig.array`` and ``ADCConfig.nonideal`` hold these classes. Every default is the
ideal circuit: with them the simulator's numbers are today's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .fields import ConfigError, _f


@dataclass
class ArrayConfig:
    """The wires of a crossbar array (IR drop, :mod:`aimcbench.sim.irdrop`)."""

    r_wire_ohm: float = _f("wire resistance in ohms of one cell segment of every row (word) line and column (bit) "
                           "line; each cell's contribution is attenuated by the voltage lost along its row from the "
                           "driver and along its column to the sense end (first-order model refined by "
                           "irdrop_sweeps, within 1 % of a nodal solve while the worst cell loses under ~45 % of its "
                           "voltage; 0: ideal wires)", lo=0.0, default=0.0)
    irdrop_sweeps: int = _f("fixed-point sweeps that refine the first-order IR-drop attenuation (0: first order "
                            "only; 5 reaches the model's accuracy on arrays up to 128 x 128)", lo=0, hi=100, default=5)


@dataclass
class ADCNonidealConfig:
    """Static errors of each ADC, drawn once per chip and ADC from the chip's own "adc-*" random streams (a chip
    keeps its ADCs at every sweep point; :mod:`aimcbench.sim.adc_nonideal`). They act on the ADC's output codes
    and need adc.bits and the uniform quantizer."""

    offset_std_lsb: float = _f("std in LSB of each ADC's static offset, Gaussian, drawn per chip and ADC",
                               lo=0.0, default=0.0)
    gain_std: float = _f("std of each ADC's relative gain error (reading times 1 + N(0, gain_std^2)), per chip and "
                         "ADC", lo=0.0, default=0.0)
    dnl_std_lsb: float = _f("std in LSB of the differential nonlinearity of each code step, Gaussian per code, ADC "
                            "and chip, less its mean over the steps (an endpoint fit: first and last code exact); "
                            "its running sum is the INL", lo=0.0, default=0.0)
    inl_lsb: float = _f("peak in LSB of a systematic bow-shaped INL, the same for every ADC: inl_lsb (1 - x^2), "
                        "x from -1 at the first code to 1 at the last (negative: bowed down)", default=0.0)

    def active(self) -> bool:
        """Whether any error is set (all zero: the ideal ADC, nothing drawn)."""
        return any((self.offset_std_lsb, self.gain_std, self.dnl_std_lsb, self.inl_lsb))


def check_circuit(hw: Any, p: str) -> None:
    """Rules of these settings that involve other sections (``p`` is the key prefix with its trailing dot)."""
    e = hw.adc.nonideal
    if not e.active():
        return
    key = next(f"{p}adc.nonideal.{k}" for k in ("offset_std_lsb", "gain_std", "dnl_std_lsb", "inl_lsb")
               if getattr(e, k))
    if hw.adc.bits is None:
        raise ConfigError(key, "ADC errors are in LSB and need adc.bits (got adc.bits null); set adc.bits or 0 here")
    if hw.adc.quantizer != "uniform":
        raise ConfigError(key, f"ADC errors need adc.quantizer uniform (got {hw.adc.quantizer!r}); or set 0 here")
