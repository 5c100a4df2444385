"""``aimc cost``: per analog layer and in total, the energy, latency and area of one inference on a hardware profile,
and the array reads and converter conversions they come from (:mod:`aimcbench.sim.cost`)."""

from __future__ import annotations

from omegaconf import DictConfig

from ._common import check_config, exits_on_user_error, on_model_inputs, plain

#: printed columns, units in the names
COLUMNS = ["layer", "vectors", "arrays", "array_reads", "dac_conversions", "adc_conversions", "energy_adc_pJ",
           "energy_pJ", "latency_ns", "area_mm2"]


def _cell(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) >= 1e-3 else f"{value:.3g}"


def format_cost(rows: list[dict]) -> str:
    """Plain-text table of cost rows (the last one the total), one line per layer."""
    cells = [[_cell(r[c]) for c in COLUMNS] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(COLUMNS, widths)))]
    lines += ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
              for row in cells]
    t = rows[-1]
    lines.append(f"total per inference: {t['energy_pJ'] / 1e6:.4g} uJ, {t['latency_ns'] / 1e3:.4g} us, "
                 f"{t['area_mm2']:.4g} mm^2, {int(t['adc_conversions']):,} ADC conversions, "
                 f"{int(t['array_reads']):,} array reads ({int(t['macs']):,} MACs: "
                 f"{t['energy_pJ'] / max(t['macs'], 1):.3g} pJ per MAC)")
    return "\n".join(lines)


def notes(hw) -> list[str]:
    """What the numbers leave out on this profile."""
    out = []
    if hw.adc.bits is None:
        out.append("adc.bits is null (an ideal ADC): its conversions are counted but cost nothing")
    if hw.dac.bits is None:
        out.append("dac.bits is null (exact inputs): DAC conversions cost nothing")
    return out


@exits_on_user_error
def run(cfg: DictConfig) -> None:
    """Hydra task: build the (untrained) model, count and price one inference, print the table."""
    from aimcbench.models import build_from_config, model_label
    from aimcbench.sim import hardware_from_dict
    from aimcbench.sim.config import _build
    from aimcbench.sim.config_cost import CostTable
    from aimcbench.sim.cost import model_cost, probe_input

    data = plain(cfg)
    check_config(data)
    model = build_from_config(data["model"]).eval()
    label = model_label(data["model"])
    hw = hardware_from_dict(data["hardware"])
    table = _build(CostTable, data["cost_table"], "cost_table")
    normalize = data["dataset"].get("normalize")
    # The probe image is normalized as the data set's images are; a model's own input_shape has no data set.
    rows, where = on_model_inputs(data, label, lambda shape, own: model_cost(
        model, hw, shape, table, None if own else probe_input(shape, normalize)))
    where = f", {where}" if where else ""
    print(f"{label} on {hw.name}, priced by {table.name}{where}; per inference (one input):")
    print(format_cost(rows))
    for note in notes(hw):
        print(f"note: {note}")
