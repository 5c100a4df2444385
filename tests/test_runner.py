"""End-to-end Monte Carlo sweeps on synthetic data with 2 chips: layout, resume, config-change refusal."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, compose, needs_metrics, needs_sim

from aimcbench.commands._common import check_sweep_config
from aimcbench.runner import CHIP_COLUMNS, ResultsMismatchError, SweepInterrupted, run_sweep

pytestmark = [needs_sim, needs_metrics]


def sweep_cfg(*overrides: str) -> dict:
    cfg = compose("sweep", FAST + list(overrides))
    check_sweep_config(cfg)
    return cfg


def test_classifier_sweep_writes_the_contract_layout(tmp_path):
    cfg = sweep_cfg("hardware=pcm", "sweep=adc_bits", "sweep.values=[8,2]")
    meta = run_sweep(cfg, tmp_path, label="hardware=pcm sweep=adc_bits", report=False)
    chips = pd.read_parquet(tmp_path / "chips.parquet")
    # CHIP_COLUMNS first, then the job's identity from its label (runs started from Python have no .hydra/)
    assert list(chips.columns) == [*CHIP_COLUMNS, "job", "hardware", "sweep"]
    assert set(chips["job"]) == {"hardware=pcm,sweep=adc_bits"} and set(chips["hardware"]) == {"pcm"}
    assert len(chips) == 2 * 2 * 1  # points x chips x metrics
    assert set(chips["metric"]) == {"accuracy"} and set(chips["chip"]) == {0, 1}
    assert chips["axis_value"].tolist() == [8.0, 8.0, 2.0, 2.0] and chips["axis_label"].iloc[0] == "8"
    assert chips["axis_value"].dtype == np.float64 and chips["value"].between(0, 1).all()
    digital = pd.read_csv(tmp_path / "digital.csv")
    assert len(digital) == 2 and digital["value"].nunique() == 1  # same float model at both points
    saved = json.loads((tmp_path / "meta.json").read_text())
    assert saved["status"] == "complete" and saved["axis"] == "hardware.adc.bits" and saved["axis_log"] is False
    assert saved["label"] == "hardware=pcm sweep=adc_bits" and len(saved["points"]) == 2
    assert {"git_rev", "versions", "device", "seeds", "timings"} <= set(saved)
    assert (tmp_path / "config.yaml").is_file() and meta["status"] == "complete"
    # A 2-bit ADC must hurt the classifier relative to 8 bits (median over chips).
    med = chips.groupby("point")["value"].median()
    assert med[1] < med[0]


def test_ideal_hardware_matches_the_digital_model(tmp_path):
    cfg = sweep_cfg("hardware=ideal", "sweep=variation", "sweep.values=[0.0]")
    run_sweep(cfg, tmp_path, report=False)
    chips = pd.read_parquet(tmp_path / "chips.parquet")
    digital = pd.read_csv(tmp_path / "digital.csv")
    assert np.allclose(chips["value"], digital["value"].iloc[0], atol=1.5 / 64)


def test_interrupted_sweep_resumes_to_the_same_rows(tmp_path):
    cfg = sweep_cfg("hardware=pcm", "sweep=read_noise", "sweep.values=[1,4]")
    full = tmp_path / "full"
    run_sweep(cfg, full, report=False)

    cut = tmp_path / "cut"
    with pytest.raises(SweepInterrupted):
        run_sweep(cfg, cut, report=False, stop_after=1)
    assert (cut / "points" / "point_000.parquet").is_file()
    assert not (cut / "points" / "point_001.parquet").exists()
    stopped = json.loads((cut / "meta.json").read_text())
    assert stopped["status"] == "failed" and "stopped after 1 point" in stopped["error"]
    first = (cut / "points" / "point_000.parquet").stat().st_mtime_ns

    meta = run_sweep(cfg, cut, report=False)
    assert meta["timings"]["computed_points"] == 1  # only the missing point was computed
    assert (cut / "points" / "point_000.parquet").stat().st_mtime_ns == first
    pd.testing.assert_frame_equal(pd.read_parquet(full / "chips.parquet"), pd.read_parquet(cut / "chips.parquet"))

    # The same directory under another config is refused instead of silently mixing results.
    with pytest.raises(ResultsMismatchError, match="different config"):
        run_sweep(sweep_cfg("hardware=pcm", "sweep=read_noise", "sweep.values=[1,4]", "mc.seed=5"), cut,
                  report=False)


def test_denoiser_sweep_writes_psnr_ssim_and_images(tmp_path):
    cfg = sweep_cfg("model=dae", "hardware=pcm", "sweep=input_noise", "sweep.values=[0.2,0.6]", "eval.images=4")
    run_sweep(cfg, tmp_path, report=False)
    chips = pd.read_parquet(tmp_path / "chips.parquet")
    assert set(chips["metric"]) == {"psnr", "ssim"} and len(chips) == 2 * 2 * 2
    psnr = chips[chips.metric == "psnr"].groupby("point")["value"].median()
    assert psnr[0] > psnr[1]  # more input noise, worse reconstruction
    digital = pd.read_csv(tmp_path / "digital.csv")
    dpsnr = digital[digital.metric == "psnr"].set_index("point")["value"]
    assert dpsnr[0] > dpsnr[1]
    with np.load(tmp_path / "images" / "point_001.npz") as z:
        assert {"clean", "noisy", "digital", "analog", "axis_label"} <= set(z.files)
        assert z["analog"].shape == (4, 28, 28) and z["analog"].dtype == np.float32
        assert str(z["axis_label"]) == "0.6"
        # The fixed noise draw, scaled: noisier inputs are further from the clean images.
        assert np.abs(z["noisy"] - z["clean"]).mean() > 0.1
