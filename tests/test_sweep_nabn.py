"""Noise-aware batch norm (mitigation.nabn) in sweeps: end to end, no-op without batch norm, bad settings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, compose, needs_metrics, needs_sim

from aimcbench.commands._common import check_sweep_config
from aimcbench.runner import point_hash, run_sweep

# A tiny CIFAR ResNet-8 (4/8/16 channels) with batch norm, trained for a few steps on synthetic 32x32 images.
TINY_RESNET = ["model=resnet8_small", "model.width_mult=0.25", "dataset=synthetic", "dataset.name=synthetic_cifar",
               "dataset.shape=[3,32,32]", "train=quick", "train.epochs=null", "train.steps=40", "train.limit=640",
               "train.batch_size=32", "mc.chips=3", "eval.n=64", "eval.batch_size=32",
               "mitigation.calib_batches=2", "hardware=weight_noise", "sweep=eta0", "sweep.values=[0.15]"]


def sweep_cfg(*overrides: str) -> dict:
    cfg = compose("sweep", list(overrides))
    check_sweep_config(cfg)
    return cfg



# ------------------------------------------------------------------------------------------ NaBN switch
@needs_sim
@needs_metrics
def test_nabn_switch_runs_end_to_end_and_changes_results_under_mul_noise(tmp_path):
    off = sweep_cfg(*TINY_RESNET)
    on = sweep_cfg(*TINY_RESNET, "mitigation.nabn=true")
    run_sweep(off, tmp_path / "off", report=False)
    meta = run_sweep(on, tmp_path / "on", report=False)
    assert meta["mitigation"]["applied"] is True
    assert json.loads((tmp_path / "off" / "meta.json").read_text())["mitigation"]["applied"] is False
    a = pd.read_parquet(tmp_path / "off" / "chips.parquet")["value"].to_numpy()
    b = pd.read_parquet(tmp_path / "on" / "chips.parquet")["value"].to_numpy()
    assert a.shape == b.shape == (3,)
    assert not np.allclose(a, b)  # recalibrated statistics give other per-chip accuracies
    # The digital baseline is the same float model either way.
    da = pd.read_csv(tmp_path / "off" / "digital.csv")["value"]
    db = pd.read_csv(tmp_path / "on" / "digital.csv")["value"]
    assert np.allclose(da, db)
    # The switch is part of each point's identity: a resume cannot mix the two.
    assert point_hash(on, "w") != point_hash(off, "w")


@needs_sim
@needs_metrics
def test_nabn_on_a_model_without_batch_norm_is_a_logged_no_op(tmp_path):
    msgs: list[str] = []
    cfg = sweep_cfg(*FAST, "hardware=weight_noise", "sweep=eta0", "sweep.values=[0.1]", "mitigation.nabn=true",
                    "mitigation.calib_batches=1")
    meta = run_sweep(cfg, tmp_path, report=False, log=msgs.append)
    assert meta["mitigation"]["applied"] is False
    assert any("no batch norm" in m for m in msgs)


@pytest.mark.parametrize("override, key", [
    ("mitigation.nabn=maybe", "mitigation.nabn"),
    ("mitigation.dynamic=1", "mitigation.dynamic"),
    ("mitigation.calib_batches=0", "mitigation.calib_batches"),
    ("mitigation.dynamic=true", "mitigation.dynamic"),  # without nabn
    ("+mitigation.batches=3", "mitigation.batches"),
    ("train.noise_injection={kind:sum,eta0:0.1}", "train.noise_injection"),
    ("train.noise_injection={kind:mul,eta0:-1}", "train.noise_injection"),
])
def test_bad_mitigation_and_noise_injection_settings_name_the_key(override, key, tmp_path, capsys):
    """Wrong types stop in Hydra's typed composition, bad values in the validation; both before any work."""
    from aimcbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(["sweep", override, f"hydra.run.dir={tmp_path}/run"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith(f"aimc: error: {key}:") and "\n" not in err, err
    assert not (tmp_path / "run").exists()


def test_cli_rejects_bad_nabn_with_exit_2(tmp_path, capsys):
    from aimcbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(["sweep", "mitigation.nabn=maybe", f"hydra.run.dir={tmp_path}/run"])  # (yes/no/on/off read as booleans)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("aimc: error: mitigation.nabn:") and len(err.splitlines()) == 1
