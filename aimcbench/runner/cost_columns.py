"""The cost columns of a sweep: energy, latency, area and conversions per inference at every point (issue 17).

``cost.csv`` in the run directory has one row per point (``point, axis_value, axis_label``) and the totals of
:func:`aimcbench.sim.cost.model_cost` for that point's hardware, priced by the packaged component table. They
depend on the config alone (no chip is drawn), so they are recomputed whole at the end of every run and resume
needs nothing of them. The report joins them with the accuracy percentiles (``aimcbench.report.pareto``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from .contract import atomic_write_text

COST_FILE = "cost.csv"
#: the columns of cost.csv after point, axis_value, axis_label (per inference; units in the names)
COLUMNS = ["energy_pJ", "latency_ns", "area_mm2", "adc_conversions", "dac_conversions", "array_reads", "arrays",
           "macs", "energy_adc_pJ", "energy_dac_pJ", "energy_array_pJ", "energy_periphery_pJ", "energy_digital_pJ"]


def _shapes(cfg: dict) -> list[tuple[int, ...]]:
    """Input shapes to try: the data set's, then the model's own."""
    out = [tuple(s) for s in (cfg["dataset"].get("shape"), cfg["model"].get("input_shape")) if s]
    return list(dict.fromkeys(out))


def point_cost(model: torch.nn.Module, pcfg: dict) -> dict:
    """The per-inference totals (COLUMNS) of one point's hardware for ``model``."""
    from aimcbench.sim import hardware_from_dict
    from aimcbench.sim.cost import model_cost, probe_input

    hw = hardware_from_dict(pcfg["hardware"])
    err: Exception = ValueError("no input shape: set dataset.shape or model.input_shape")
    for shape in _shapes(pcfg):
        try:
            total = model_cost(model, hw, shape, example=probe_input(shape, pcfg["dataset"].get("normalize")))[-1]
        except (RuntimeError, TypeError, ValueError) as e:  # the model does not take inputs of this shape
            err = e
            continue
        return {k: total[k] for k in COLUMNS}
    raise err


def write_cost_columns(run_dir: Path, model: torch.nn.Module, points: list[dict], entries: list,
                       log: Callable[[str], None]) -> Path | None:
    """Write ``cost.csv`` (one row per point); a model the cost model cannot run (e.g. inputs that are not one
    tensor) gets a notice instead, and the sweep goes on."""
    rows = []
    try:
        for i, (pcfg, (value, label)) in enumerate(zip(points, entries)):
            rows.append({"point": i, "axis_value": value, "axis_label": label, **point_cost(model, pcfg)})
    except Exception as err:  # noqa: BLE001 - cost columns are an addition: never fail a finished sweep for them
        log(f"aimc: cost columns not written ({type(err).__name__}: {' '.join(str(err).split())[:200]})")
        return None
    path = Path(run_dir) / COST_FILE
    atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))
    return path
