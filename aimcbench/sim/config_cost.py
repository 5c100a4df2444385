"""Typed settings of the cost model: the component table (energy per event, time, area per component).

A table is a YAML file, ``configs/cost_table/<name>.yaml`` (packaged) or a path; every number in it names its source
(the packaged ``isaac_32nm``: ISAAC, Shafiee et al., ISCA 2016, Table 2). The hardware profile says what the chip
is (array size, converter bits, sharing, slicing, read voltage, conductances); the table says what each part
costs. :mod:`aimcbench.sim.cost` combines them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import _build, config_dir
from .fields import ConfigError, _f

DEFAULT_TABLE = "isaac_32nm"


@dataclass
class ArrayCost:
    """The crossbar array itself."""

    read_time_ns: float = _f("time of one array read (the read pulse t in the cell energy V^2 G t)", lo=0.0,
                             lo_open=True, default=100.0)
    cell_area_mm2: float = _f("area of one cell in mm^2", lo=0.0, default=1.52587890625e-09)


@dataclass
class ADCCost:
    """The ADC: Walden figure of merit, E = FOM * 2^bits per conversion."""

    walden_fom_fJ: float = _f("Walden figure of merit in fJ per conversion step: one conversion of b bits costs "
                              "FOM * 2^b", lo=0.0, default=6.510416666666667)
    ref_bits: int = _f("resolution at which conv_time_ns_ref and area_mm2_ref hold", lo=1, hi=24, default=8)
    conv_time_ns_ref: float = _f("time of one conversion at ref_bits in ns (linear in bits: a SAR ADC decides one "
                                 "bit per step)", lo=0.0, default=0.8333333333333334)
    area_mm2_ref: float = _f("area of one ADC at ref_bits in mm^2 (x 2^(bits - ref_bits))", lo=0.0, default=0.0012)


@dataclass
class DACCost:
    """The input DAC of each array row."""

    energy_pJ_1bit: float = _f("energy of one 1-bit conversion in pJ", lo=0.0, default=0.390625)
    area_mm2_1bit: float = _f("area of one 1-bit DAC in mm^2", lo=0.0, default=1.66015625e-07)
    scaling: str = _f("how a k-bit DAC's energy and area grow from a 1-bit one's: linear (x k: a k-bit input "
                      "applied at once costs what its k bit-serial pulses cost) or exp2 (x 2^(k-1): unit elements "
                      "of a binary-weighted DAC, the Accelergy/CiMLoop ISAAC model)", choices=("linear", "exp2"),
                      default="linear")


@dataclass
class SampleHoldCost:
    """The sample-and-hold of each ADC-read column."""

    energy_pJ: float = _f("energy per column conversion in pJ", lo=0.0, default=0.0009765625)
    area_mm2: float = _f("area per column in mm^2", lo=0.0, default=3.90625e-08)


@dataclass
class ShiftAddCost:
    """The shift-and-add units that combine weight slices and input cycles."""

    energy_pJ: float = _f("energy per ADC conversion shifted and added in pJ", lo=0.0, default=0.020833333333333332)
    area_mm2_per_adc: float = _f("area per ADC in mm^2", lo=0.0, default=3.0e-05)


@dataclass
class InputRegisterCost:
    """The register that feeds the DACs."""

    energy_pJ: float = _f("energy per DAC conversion in pJ (reading the input bits)", lo=0.0, default=0.12109375)
    area_mm2_per_row: float = _f("area per array row in mm^2", lo=0.0, default=2.05078125e-06)


@dataclass
class OutputRegisterCost:
    """The register that collects the ADC outputs."""

    energy_pJ: float = _f("energy per ADC conversion in pJ", lo=0.0, default=0.023958333333333335)
    area_mm2_per_column: float = _f("area per ADC-read column in mm^2", lo=0.0, default=7.51953125e-07)


@dataclass
class DigitalCost:
    """Digital work after the arrays, per operation."""

    add_pJ: float = _f("one addition of row-array partial sums in pJ", lo=0.0, default=0.1)
    mult_pJ: float = _f("one digital scaling (per output and row array) in pJ", lo=0.0, default=1.1)
    activation_pJ: float = _f("one activation (per output) in pJ", lo=0.0, default=0.4)


def _raw_rule(v: Any) -> str | None:
    return None if v is None or isinstance(v, dict) else "a mapping of published table rows or null"


@dataclass
class CostTable:
    """A component table: what one event of each part of the chip costs."""

    name: str = _f("table name (for reports)", default=DEFAULT_TABLE)
    array: ArrayCost = _f("the crossbar arrays: read time and cell area", factory=ArrayCost)
    adc: ADCCost = _f("the ADCs: figure of merit, conversion time and area", factory=ADCCost)
    dac: DACCost = _f("the input DACs: energy and area per bit", factory=DACCost)
    sample_hold: SampleHoldCost = _f("the sample-and-hold of each ADC-read column", factory=SampleHoldCost)
    shift_add: ShiftAddCost = _f("the shift-and-add units (slices and cycles)", factory=ShiftAddCost)
    input_register: InputRegisterCost = _f("the input registers that feed the DACs", factory=InputRegisterCost)
    output_register: OutputRegisterCost = _f("the output registers after the ADCs", factory=OutputRegisterCost)
    digital: DigitalCost = _f("digital operations after the arrays", factory=DigitalCost)
    raw: Any = _f("the source's own table rows, kept for reproducing its totals (not used by the model)",
                  default=None, check=_raw_rule)


def table_names() -> list[str]:
    """Names of the packaged component tables."""
    return sorted(p.stem for p in (config_dir() / "cost_table").glob("*.yaml"))


def load_cost_table(name_or_path: str | os.PathLike = DEFAULT_TABLE, key: str = "cost_table") -> CostTable:
    """A validated :class:`CostTable` from a packaged name or a YAML file; ``ConfigError`` naming ``key`` (or the
    bad entry) otherwise."""
    text = str(name_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) or os.sep in text else config_dir() / "cost_table" / f"{text}.yaml"
    if not path.is_file():
        raise ConfigError(key, f"no component table {text!r}; allowed: {', '.join(table_names())} or a YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(key, f"cannot read {str(path)!r} ({' '.join(str(err).split())[:150]})") from None
    return _build(CostTable, data, "cost_table")
