"""Issue 17's sweep presets: each composes into valid hardware at every point, and the cost the sweep writes moves
as the model says (slices add conversions, taller arrays need fewer, wire resistance costs nothing extra)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import compose

from aimcbench.config import point_configs
from aimcbench.models import build_from_config
from aimcbench.report.pareto import accuracy_and_energy_plot
from aimcbench.runner.cost_columns import write_cost_columns
from aimcbench.runner.points import axis_entries
from aimcbench.sim import hardware_from_dict


def _cost(tmp_path, preset: str, hardware: str = "rram") -> pd.DataFrame:
    cfg = compose("sweep", [f"sweep={preset}", f"hardware={hardware}"])
    points = point_configs(cfg)
    for p in points:
        hardware_from_dict(p["hardware"])  # every point is a valid profile
    return pd.read_csv(write_cost_columns(tmp_path, build_from_config(cfg["model"]), points,
                                          axis_entries(cfg["sweep"]), lambda *a: None))


def test_weight_slices_cost_one_conversion_per_slice(tmp_path):
    cost = _cost(tmp_path, "weight_slices")
    conv = cost["adc_conversions"].to_numpy()
    assert np.array_equal(conv, conv[0] * np.array([1, 2, 3, 4]))
    assert np.all(np.diff(cost["energy_pJ"]) > 0)


def test_taller_arrays_need_fewer_conversions(tmp_path):
    cost = _cost(tmp_path, "array_size_energy")
    assert np.all(np.diff(cost["adc_conversions"]) < 0) and np.all(np.diff(cost["energy_pJ"]) < 0)


def test_wire_resistance_changes_accuracy_not_cost(tmp_path):
    cost = _cost(tmp_path, "ir_drop")
    assert len(cost) == 5 and cost["energy_pJ"].nunique() == 1


def test_accuracy_and_energy_share_the_sweep_axis():
    rows = pd.DataFrame({"axis_value": [64, 128, 256, 512], "axis_label": ["64", "128", "256", "512"],
                         "metric": "accuracy", "energy_pJ": [4e4, 2e4, 1e4, 5e3], "p5": [0.9, 0.88, 0.8, 0.6],
                         "p50": [0.92, 0.9, 0.85, 0.7], "p95": [0.93, 0.92, 0.88, 0.75], "digital": 0.95})
    fig = accuracy_and_energy_plot(rows, axis="hardware.mapping.tile_rows", log=True)
    left, right = fig.axes
    assert right.get_ylabel().startswith("energy per inference")
    assert [t.get_text() for t in left.get_xticklabels()] == ["64", "128", "256", "512"]
    assert right.get_ylabel() == "energy per inference (nJ)"
    assert right.get_yscale() == "linear" and pytest.approx(right.lines[0].get_ydata()) == rows["energy_pJ"] / 1e3
