"""The ``aimc`` command line: help, dispatch to Hydra, exit status 2 with one line on bad input, resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import FAST, aimc, needs_metrics, needs_sim

from aimcbench.cli import report_args


def test_help_lists_every_command():
    res = aimc("--help")
    assert res.returncode == 0
    for cmd in ("train", "sweep", "report", "tiles"):
        assert any(line.strip().startswith(cmd + " ") for line in res.stdout.splitlines()), cmd


BAD = [
    (["mc.chip=3"], "mc.chip"),
    (["mc.chips=0"], "mc.chips"),
    (["mc.chips=many"], "mc.chips"),
    (["hardware.adc.bits=abc"], "hardware.adc.bits"),
    (["hardware.adc.quantizer=log"], "hardware.adc.quantizer"),
    (["model=mlp4"], "model"),
    (["sweep.values=[8,0]"], "hardware.adc.bits"),
    (["-m", "hardware=pcm,nope"], "hardware"),
    (["-m", "mc.chips=2,-1"], "mc.chips"),
    (["hardware=pcm,rram"], "hardware"),
    (["train.lr=0"], "train.lr"),
    (["eval.n=[1,2]"], "eval.n"),
]


@pytest.mark.parametrize("args, key", BAD)
def test_bad_overrides_exit_2_with_one_line_naming_the_key(args, key, tmp_path, capsys):
    from aimcbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(["sweep", *args, f"hydra.run.dir={tmp_path}/run"])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"aimc: error: {key}:"), err
    assert not (tmp_path / "run").exists()  # rejected before any work


@pytest.mark.parametrize("args, key", [BAD[0], BAD[3], BAD[7]])
def test_bad_overrides_exit_status_2_in_a_subprocess(args, key, tmp_path):
    res = aimc("sweep", *args, f"hydra.run.dir={tmp_path}/run")
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().startswith(f"aimc: error: {key}:") and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, start", [
    (["sweeep"], "aimc: error: command: unknown 'sweeep'; allowed: train, sweep, report, tiles"),
    (["report", "no/such/dir"], "aimc: error: dirs: 'no/such/dir' is not a directory"),
])
def test_unknown_command_and_bad_report_dir_exit_2(argv, start, capsys):
    from aimcbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith(start), err


def test_hydra_flags_pass_through():
    res = aimc("sweep", "model=dae", "sweep=adc_bits_mulaw", "--cfg", "job")
    assert res.returncode == 0, res.stderr
    assert "name: dae" in res.stdout and "key: hardware.adc.bits" in res.stdout


def test_report_directories_become_the_dirs_override():
    assert report_args(["out/a", "out/b's", "x=1", "-m"]) == ["x=1", "-m", "dirs=['out/a','out/b\\'s']"]


@needs_sim
def test_tiles_prints_the_plan_and_total():
    res = aimc("tiles", "model=mlp3", "hardware=rram")
    assert res.returncode == 0, res.stderr
    assert "total arrays:" in res.stdout and "arrays" in res.stdout.splitlines()[1]


def test_user_checkpoint_that_does_not_fit_exits_2(tmp_path):
    import torch

    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "bad.pt")
    res = aimc("train", f"model.checkpoint={tmp_path / 'bad.pt'}", f"hydra.run.dir={tmp_path}/run")
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("aimc: error: model.checkpoint:")


@needs_sim
@needs_metrics
def test_killed_sweep_resumes_from_the_command_line(tmp_path):
    run = tmp_path / "run"
    args = ["sweep", *FAST, "hardware=weight_noise", "sweep=weight_noise", "sweep.values=[0.05,0.5]", f"hydra.run.dir={run}"]
    res = aimc(*args, env={"AIMC_STOP_AFTER_POINTS": "1"})
    assert res.returncode == 3, res.stderr  # the hook exits abruptly after point 0, like a kill
    assert json.loads((run / "meta.json").read_text())["status"] == "running"
    assert sorted(p.name for p in (run / "points").glob("point_*.parquet")) == ["point_000.parquet"]
    res = aimc(*args)
    assert res.returncode == 0, res.stderr
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["timings"]["computed_points"] == 1
    chips = pd.read_parquet(run / "chips.parquet")
    assert sorted(chips["axis_value"].unique()) == [0.05, 0.5]
    assert "median_chip" in res.stdout


def test_tiles_prints_study_002_array_totals(capsys):
    from aimcbench.cli import main

    for model, total in (("vgg_block", 78), ("wrn16_8", 1447)):
        assert main(["tiles", f"model={model}", "dataset=synthetic_cifar", "hardware=rram"]) in (0, None)
        assert f"total arrays: {total}" in capsys.readouterr().out
        # the exact command: no data set named, the model's own input shape is used
        assert main(["tiles", f"model={model}", "hardware=rram_l3"]) in (0, None)
        out = capsys.readouterr().out
        assert f"total arrays: {total}" in out and "from model.input_shape" in out
