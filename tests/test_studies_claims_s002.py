"""Study 002 claim checks on fabricated sweep outputs (the real runs are `make reproduce-paper-figures`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from aimcbench.studies.s002 import claims as claims_s002

VARIATION = [0.0, 0.0312, 0.0624, 0.1248]


def _job(path: Path, hw: str, level: int, inj: float, p75: list[float], lr_schedule=None, input_range=6.0) -> None:
    path.mkdir(parents=True)
    cfg = {"hardware": {"name": hw, "dac": {"input_range": input_range}},
           "train": {"noise_injection": inj, "aware": {"level": level, "lr_schedule": lr_schedule}}}
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    rows = [dict(axis="hardware.device.variation", axis_value=v, axis_label=str(v), metric="accuracy", n_chips=10,
                 p50=p - 0.01, p75=p) for v, p in zip(VARIATION, p75)]
    pd.DataFrame(rows).to_csv(path / "percentiles.csv", index=False)
    chips = [dict(point=i, axis="hardware.device.variation", axis_value=v, axis_label=str(v), chip=k,
                  metric="accuracy", value=p - 0.02 * k / 10) for i, (v, p) in enumerate(zip(VARIATION, p75))
             for k in range(10)]
    pd.DataFrame(chips).to_parquet(path / "chips.parquet")


def test_table1_counts_the_study_arrays(tmp_path):
    res = claims_s002.table1([], tmp_path)
    assert res["holds"] is True and "78" in res["ours"] and "1447" in res["ours"]
    assert Path(res["plot"]).is_file() and "| vgg_block |" in (tmp_path / "table1.md").read_text()


def test_fig5_holds_only_when_injection_wins_at_high_variation(tmp_path):
    run = tmp_path / "run0"
    _job(run / "a", "rram_l3", 3, 0.0, [0.9, 0.85, 0.6, 0.3])
    _job(run / "b", "rram_l3", 3, 0.0624, [0.89, 0.87, 0.75, 0.5])
    res = claims_s002.fig5([run], tmp_path)
    assert res["holds"] is True and Path(res["plot"]).is_file()
    run2 = tmp_path / "run_bad"
    _job(run2 / "a", "rram_l3", 3, 0.0, [0.9, 0.85, 0.6, 0.3])
    _job(run2 / "b", "rram_l3", 3, 0.0624, [0.89, 0.8, 0.5, 0.2])
    assert claims_s002.fig5([run2], tmp_path)["holds"] is False
    assert claims_s002.fig5([tmp_path / "nothing"], tmp_path)["holds"] is None


def test_fig8_normalizes_by_the_matching_reference(tmp_path):
    run = tmp_path / "run0"
    _job(run / "a", "rram_l1", 1, 0.0, [0.9, 0.8, 0.6, 0.4])
    _job(run / "b", "rram_l2", 1, 0.0, [0.9, 0.7, 0.3, 0.2])
    res = claims_s002.fig8([run], tmp_path)
    assert res["holds"] is True
    ratios = [float(x) for x in res["ours"].split(": ")[1].split(", ")]
    assert np.allclose(ratios, [0.3 / 0.6, 0.2 / 0.4])


def test_fig4_reads_the_level_by_pipeline_matrix(tmp_path):
    run = tmp_path / "run0"
    for lvl in (1, 3):
        for hw, acc in (("rram_l1", 0.9), ("rram_l2", 0.895), ("rram_l3", 0.7 if lvl == 1 else 0.88)):
            _job(run / f"{lvl}{hw}", hw, lvl, 0.0, [acc + 0.01] * 4)
    _job(tmp_path / "run1" / "ir", "rram_l1", 1, 0.0, [0.3] * 4, input_range=1.0)
    res = claims_s002.fig4([run, tmp_path / "run1"], tmp_path)
    assert res["holds"] is True and "IR 29.0 %" in res["ours"]
