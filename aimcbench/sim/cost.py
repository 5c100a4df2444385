"""Energy, latency and area per inference of a network on a hardware profile, priced by a component table.

Per analog layer the model counts the events of one inference (one input image, batch 1):

- ``vectors`` V: input vectors the layer's matrix sees (a conv: its output pixels; a Linear: 1 per sample);
- ``cycles``: input bit-serial cycles, ceil(magnitude bits / dac.input_bits_per_cycle), magnitude bits = dac.bits - 1
  for a signed (sign-magnitude) DAC, dac.bits for an unsigned one (1 when input_bits_per_cycle is null);
- ``phases``: 2 where an unsigned ADC (adc.range_uA) meets inputs that go negative (the simulator's second read
  phase), else 1;
- array reads = V x cycles x phases x arrays; DAC conversions = V x cycles x phases x rows x column-arrays;
- ADC conversions = V x cycles x phases x row-arrays x outputs x columns per output (2 with separate_adc) x
  mapping.weight_slices: every slice and cycle is one conversion per column, whatever ADCs are shared;
- cell reads, each V^2 G t with V = device.v_read_V (full-scale input: an upper bound), G the mean of g_min and
  g_max and t the table's read time;
- digital work: a shift-and-add per conversion, (row-arrays - 1) partial-sum additions, one scaling per output
  and row-array, one activation per output.

Weight slices sit side by side on an array's columns (ISAAC's layout): an array holds tile_cols / (columns per
output x slices) outputs. Time: the arrays of a layer work in parallel, its input vectors, cycles and phases
one after another, and layers one after another (one image, no pipelining); a cycle lasts the longer of the
array read and the conversions of the columns that share an ADC (sample-and-hold overlaps the two). Area: every
array of the model with its own periphery (weight-stationary, no array reused by two layers).
Ideal converters (bits null) cost nothing here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .config import ConfigError, HardwareConfig
from .config_cost import DEFAULT_TABLE, CostTable, load_cost_table
from .devices import DEVICES
from .layers import probe_layers, select_layers
from .slicing import cycle_count
from .tiling import analog_layer_shape, plan_layer

#: the columns of a cost table row, in order (units in the names)
COST_COLUMNS = ["layer", "vectors", "arrays", "array_reads", "dac_conversions", "adc_conversions", "macs",
                "energy_adc_pJ", "energy_dac_pJ", "energy_array_pJ", "energy_periphery_pJ", "energy_digital_pJ",
                "energy_pJ", "latency_ns", "area_mm2"]


@dataclass(frozen=True)
class LayerShape:
    """What the cost of one analog layer depends on besides the profile."""

    name: str
    n_in: int           # matrix rows (a conv: in_channels * k * k)
    n_out: int          # matrix columns (outputs)
    kernel_area: int    # k * k of a conv (1 for Linear): how rows are aligned to arrays
    vectors: int        # input vectors per inference
    negative_inputs: bool = False   # whether its inputs take negative values (a second phase on unsigned ADCs)


def probe_input(input_shape: tuple[int, ...], normalize: Optional[dict] = None) -> torch.Tensor:
    """One seeded input [1, *input_shape]: uniform [0, 1) pixels (the raw images aimcbench feeds), then
    ``(x - mean) / std`` per channel when the data set is normalized (``{mean: [...], std: [...]}``), so that the
    first layer's inputs take the signs they take on the data (a second phase on unsigned ADCs)."""
    x = torch.rand((1, *input_shape), generator=torch.Generator().manual_seed(0))
    if normalize:
        view = (1, -1, *([1] * (len(input_shape) - 1)))
        x = (x - torch.tensor(normalize["mean"], dtype=x.dtype).view(view)) / torch.tensor(
            normalize["std"], dtype=x.dtype).view(view)
    return x


def layer_shapes(model: nn.Module, hw: HardwareConfig, input_shape: tuple[int, ...],
                 example: Optional[torch.Tensor] = None) -> list[LayerShape]:
    """The analog layers of ``model`` on ``hw`` with their input vectors per inference, from one forward pass of
    ``example`` (default: :func:`probe_input` of ``input_shape``)."""
    layers = select_layers(model, hw)
    seen: dict[str, tuple] = {}

    def record(name, mod, args, out):
        x = args[0]
        vec = out.shape[-2] * out.shape[-1] if isinstance(mod, nn.Conv2d) else math.prod(x.shape[1:-1])
        seen[name] = (int(vec), bool((x < 0).any()))

    param = next(model.parameters(), None)
    example = probe_input(input_shape) if example is None else example
    example = example.to(param.device) if param is not None else example
    probe_layers(model, layers, example[:1], record)
    out = []
    for name, mod in layers.items():
        n_in, n_out, area = analog_layer_shape(mod)
        vec, neg = seen.get(name, (0, False))  # a layer the forward never reaches costs nothing
        out.append(LayerShape(name, n_in, n_out, area, vec, neg))
    return out


def count_layer(shape: LayerShape, hw: HardwareConfig) -> dict:
    """Events of one inference of one layer, and the array geometry they run on (see the module docstring)."""
    m = hw.mapping
    hw = hw.for_layer(shape.name)
    signed_cells = getattr(DEVICES.get(hw.device.model), "signed_weights", False)
    per_out = 2 if (m.differential == "separate_adc" and not signed_cells) else 1  # ADC-read columns per output
    cells = 1 if signed_cells else 2        # physical cells per weight slice: one signed cell or a pair
    slices = m.weight_slices
    plan = plan_layer(shape.n_in, shape.n_out, hw, shape.kernel_area)  # rows split as the simulator splits them
    row_arrays = len(plan.row_splits)
    if m.tile_rows is None:
        col_arrays, rows, cols = 1, shape.n_in, shape.n_out * per_out * slices
    else:
        fit = m.tile_cols // (per_out * slices)
        if fit < 1:
            raise ConfigError("hardware.mapping.weight_slices", f"{slices} slices x {per_out} columns per output do "
                                                                f"not fit in mapping.tile_cols = {m.tile_cols}")
        col_arrays, rows, cols = math.ceil(shape.n_out / fit), m.tile_rows, m.tile_cols
    bits, per_cycle = hw.dac.bits, hw.dac.input_bits_per_cycle
    cycles = cycle_count(bits, hw.dac.signed, per_cycle)  # as the simulator's bit-serial inputs (sim.slicing)
    unsigned_adc = not signed_cells and hw.adc.range_uA is not None
    phases = 2 if unsigned_adc and shape.negative_inputs else 1
    reads = shape.vectors * cycles * phases           # reads of every array of the layer
    outputs = shape.vectors * shape.n_out
    return dict(
        layer=shape.name, vectors=shape.vectors, cycles=cycles, phases=phases, slices=slices, per_out=per_out,
        cells=cells, row_arrays=row_arrays, col_arrays=col_arrays, arrays=row_arrays * col_arrays, rows=rows,
        cols=cols, adcs_per_array=math.ceil(cols / hw.adc.columns_per_adc),
        dac_bits_per_cycle=None if bits is None else min(per_cycle or bits, bits),
        array_reads=reads * row_arrays * col_arrays,
        dac_conversions=reads * shape.n_in * col_arrays,
        adc_conversions=reads * row_arrays * shape.n_out * per_out * slices,
        cell_reads=reads * shape.n_in * shape.n_out * slices * cells,
        macs=shape.vectors * shape.n_in * shape.n_out,
        partial_sum_adds=outputs * (row_arrays - 1), scalings=outputs * row_arrays, activations=outputs,
    )


def adc_energy_pJ(bits: Optional[int], table: CostTable) -> float:
    """One conversion: Walden's E = FOM * 2^bits (0 for an ideal ADC, bits null)."""
    return 0.0 if bits is None else table.adc.walden_fom_fJ * 1e-3 * 2.0 ** bits


def dac_factor(bits: Optional[int], table: CostTable) -> float:
    """A ``bits``-bit DAC over a 1-bit one (energy and area): bits (linear) or 2^(bits-1) (exp2); 0 when ideal."""
    if bits is None:
        return 0.0
    return float(bits) if table.dac.scaling == "linear" else 2.0 ** (bits - 1)


def dac_energy_pJ(bits: Optional[int], table: CostTable) -> float:
    """One conversion of ``bits`` bits (0 for an ideal DAC, bits null)."""
    return table.dac.energy_pJ_1bit * dac_factor(bits, table)


def cell_energy_pJ(hw: HardwareConfig, table: CostTable) -> float:
    """One cell read at full-scale input: V^2 G t, V in volts, G in uS (V^2 G in uW), t in ns -> fJ -> pJ."""
    g_mean_uS = (hw.g_min_uS + hw.device.g_max_uS) / 2
    return hw.device.v_read_V ** 2 * g_mean_uS * table.array.read_time_ns * 1e-3


def price_layer(c: dict, hw: HardwareConfig, table: CostTable) -> dict:
    """Energy (pJ), latency (ns) and area (mm^2) of one layer's counts ``c`` (:func:`count_layer`)."""
    hw = hw.for_layer(c["layer"])
    t, bits = table, hw.adc.bits
    e_adc, e_dac = adc_energy_pJ(bits, t), dac_energy_pJ(c["dac_bits_per_cycle"], t)
    conv, dacs = c["adc_conversions"], c["dac_conversions"]
    energy = dict(
        energy_adc_pJ=conv * e_adc, energy_dac_pJ=dacs * e_dac,
        energy_array_pJ=c["cell_reads"] * cell_energy_pJ(hw, t),
        energy_periphery_pJ=conv * (t.sample_hold.energy_pJ + t.output_register.energy_pJ)
        + dacs * t.input_register.energy_pJ,
        energy_digital_pJ=conv * t.shift_add.energy_pJ + c["partial_sum_adds"] * t.digital.add_pJ
        + c["scalings"] * t.digital.mult_pJ + c["activations"] * t.digital.activation_pJ,
    )
    energy["energy_pJ"] = sum(energy.values())
    t_conv = 0.0 if bits is None else t.adc.conv_time_ns_ref * bits / t.adc.ref_bits
    cycle_ns = max(t.array.read_time_ns, min(hw.adc.columns_per_adc, c["cols"]) * t_conv)
    latency = c["vectors"] * c["cycles"] * c["phases"] * cycle_ns
    a_adc = 0.0 if bits is None else t.adc.area_mm2_ref * 2.0 ** (bits - t.adc.ref_bits)
    a_dac = t.dac.area_mm2_1bit * dac_factor(c["dac_bits_per_cycle"], t)
    cells = c["rows"] * c["cols"] * c["cells"] / c["per_out"]  # a combined pair: two cells per ADC-read column
    per_array = (cells * t.array.cell_area_mm2 + c["adcs_per_array"] * (a_adc + t.shift_add.area_mm2_per_adc)
                 + c["rows"] * (a_dac + t.input_register.area_mm2_per_row)
                 + c["cols"] * (t.sample_hold.area_mm2 + t.output_register.area_mm2_per_column))
    return {**energy, "latency_ns": latency, "area_mm2": c["arrays"] * per_array}


def cost_rows(shapes: list[LayerShape], hw: HardwareConfig, table: CostTable | str | None = None) -> list[dict]:
    """One row per layer (COST_COLUMNS) and a last row ``total`` (sums; latency: layers one after another)."""
    table = load_cost_table(table or DEFAULT_TABLE) if table is None or isinstance(table, str) else table
    rows = []
    for shape in shapes:
        c = count_layer(shape, hw)
        rows.append({k: v for k, v in {**c, **price_layer(c, hw, table)}.items() if k in COST_COLUMNS})
    total = {k: sum(r[k] for r in rows) for k in COST_COLUMNS if k != "layer"}
    rows.append({"layer": "total", **total})
    return rows


def model_cost(model: nn.Module, hw: HardwareConfig, input_shape: tuple[int, ...],
               table: CostTable | str | None = None, example: Optional[torch.Tensor] = None) -> list[dict]:
    """Per analog layer of ``model`` on ``hw`` and in total: counts, energy_pJ, latency_ns, area_mm2 per inference
    (one sample of ``input_shape``, batch excluded), priced by ``table`` (default: the packaged ISAAC table)."""
    return cost_rows(layer_shapes(model, hw, input_shape, example), hw, table)


def published_totals(raw: dict) -> dict:
    """ISAAC-style totals from a table's ``raw`` rows ([count, power_mW, area_mm2] per component): one IMA, one tile
    (its IMAs plus the tile's own components), the chip (tiles plus chip_extra), in mW / W and mm^2."""
    ima_mW = sum(r[1] for r in raw["ima"].values())
    ima_mm2 = sum(r[2] for r in raw["ima"].values())
    n = raw["imas_per_tile"]
    tile_mW = n * ima_mW + sum(r[1] for r in raw["tile"].values())
    tile_mm2 = n * ima_mm2 + sum(r[2] for r in raw["tile"].values())
    extra = raw["chip_extra"]
    return dict(ima_mW=ima_mW, ima_mm2=ima_mm2, tile_mW=tile_mW, tile_mm2=tile_mm2,
                chip_W=(raw["tiles_per_chip"] * tile_mW + extra[1]) / 1000,
                chip_mm2=raw["tiles_per_chip"] * tile_mm2 + extra[2])
