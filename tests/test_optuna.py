"""The sweep's objective drives Hydra's Optuna sweeper (the [optuna] extra; skipped without the plugin): a few
trials of a tiny synthetic sweep, and the value each trial returns is what the docs say, read back from the
trial's own percentiles.csv."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import FAST, aimc, needs_metrics, needs_sim

from aimcbench.commands.sweep import objective_value
from aimcbench.config import UsageError

needs_optuna = pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                                  reason="hydra-optuna-sweeper not installed (pip install aimcbench[optuna])")


def test_objective_is_the_percentile_at_the_point(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"point": p, "axis": "hardware.adc.bits", "axis_value": float(b), "axis_label": str(b), "chip": c,
             "metric": m, "value": float(rng.uniform(0.5, 1.0))}
            for p, b in enumerate([4, 6, 8]) for c in range(7) for m in ("accuracy", "loss")]
    chips = pd.DataFrame(rows)
    chips.to_parquet(tmp_path / "chips.parquet")
    pd.DataFrame([{"point": p, "metric": m, "value": 0.9} for p in range(3) for m in ("accuracy", "loss")]
                 ).to_csv(tmp_path / "digital.csv", index=False)
    acc = chips[chips.metric == "accuracy"]
    last = acc[acc.point == 2]["value"]
    assert objective_value(tmp_path)[0] == pytest.approx(np.percentile(last, 5))  # defaults: p5, first metric, last
    value, what = objective_value(tmp_path, {"stat": "p50", "point": 0, "metric": "loss", "relative": True})
    assert value == pytest.approx(np.median(chips[(chips.metric == "loss") & (chips.point == 0)]["value"]) - 0.9)
    assert what == "p50 of loss at point 0 (hardware.adc.bits=4) minus digital"
    value, _ = objective_value(tmp_path, {"relative": True, "target": -0.01})
    assert value == pytest.approx(abs(np.percentile(last, 5) - 0.9 + 0.01))
    with pytest.raises(UsageError, match="objective.point"):
        objective_value(tmp_path, {"point": 3})
    with pytest.raises(UsageError, match="objective.metric"):
        objective_value(tmp_path, {"metric": "psnr"})


@needs_optuna
@pytest.mark.slow  # three trials, each a sweep with its report: about a minute
@needs_sim
@needs_metrics
def test_optuna_searches_adc_bits_on_the_documented_objective(tmp_path):
    # The README's example, made tiny: p5 accuracy minus digital, distance to -0.01 (1 point below digital).
    res = aimc("sweep", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3", "hydra.sweeper.direction=minimize",
               "hydra.sweeper.sampler.seed=0", "hardware.adc.bits=choice(3,4,6)", *FAST, "mc.chips=4", "hardware=rram",
               "sweep=variation", "sweep.values=[0.02,0.05]", "objective.relative=true", "objective.target=-0.01",
               "progress=off", cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    root = tmp_path / "multirun" / "sweep"
    best = yaml.safe_load((root / "optimization_results.yaml").read_text())
    values = {}
    for job in (p for p in root.iterdir() if p.is_dir()):
        table = pd.read_csv(job / "percentiles.csv")
        last = table[table["metric"] == "accuracy"].iloc[-1]  # objective.point=-1: the last point
        assert last["axis_value"] == 0.05
        bits = yaml.safe_load((job / "config.yaml").read_text())["hardware"]["adc"]["bits"]
        values[bits] = abs(last["p5"] - last["digital"] + 0.01)
        assert f"= {values[bits]:.6g}" in (job / "sweep.log").read_text()  # the logged objective line
    assert values and best["best_value"] == pytest.approx(min(values.values()), abs=1e-9)
    assert values[best["best_params"]["hardware.adc.bits"]] == pytest.approx(best["best_value"], abs=1e-9)
