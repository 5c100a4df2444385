"""Log-log power-law fit of the error rate against the swept noise level, and its plot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aimcbench.report.loglog import fit_loglog, write_loglog


# ------------------------------------------------------------------------------------------ slope fit
def test_slope_fit_recovers_a_known_power_law_and_ignores_flat_and_saturated_points():
    rng = np.random.default_rng(0)
    alpha = np.geomspace(0.01, 100, 17)
    err = 0.02 * alpha ** 1.7 * np.exp(0.03 * rng.standard_normal(alpha.size))
    err = np.clip(err, 0.005, 0.9)  # flat at the digital error below, saturated at chance above
    fit = fit_loglog(alpha, err, digital_error=0.005, num_classes=10)
    assert fit["slope"] == pytest.approx(1.7, abs=0.1)
    used = np.array(fit["used"])
    assert not used[0] and not used[-1] and used.sum() >= 4
    assert fit["r2"] > 0.98 and fit["range"][0] > 0.01 and fit["range"][1] < 10
    none = fit_loglog([0.1, 0.2], [0.01, 0.01], digital_error=0.01)
    assert none["slope"] is None and "fewer than 2" in none["note"]


def test_write_loglog_reads_a_sweep_dir_and_saves_plot_and_fit(tmp_path):
    alpha = [0.1, 0.2, 0.4, 0.8]
    err = [0.02 * (a / 0.1) ** 1.5 for a in alpha]
    rows = [{"point": i, "axis": "hardware.weight_noise.alpha", "axis_value": a, "axis_label": f"{a:g}", "chip": k,
             "metric": "accuracy", "value": 1 - e * (1 + 0.01 * (k - 1))} for i, (a, e) in enumerate(zip(alpha, err))
            for k in range(3)]
    pd.DataFrame(rows).to_parquet(tmp_path / "chips.parquet")
    pd.DataFrame([{"point": 0, "metric": "accuracy", "value": 0.995}]).to_csv(tmp_path / "digital.csv")
    (tmp_path / "meta.json").write_text(json.dumps({"label": "layers=[0]"}))
    fit = write_loglog(tmp_path)
    assert fit["slope"] == pytest.approx(1.5, abs=1e-6)
    assert (tmp_path / "loglog_accuracy.png").stat().st_size > 1000
    assert json.loads((tmp_path / "loglog_fit.json").read_text())["layers=[0]"]["slope"] == pytest.approx(1.5)
