"""Every config group option composes and validates; sweep points are built as documented."""

from __future__ import annotations

import pytest
from conftest import compose

from aimcbench.commands._common import (UsageError, check_config, check_sweep_config, config_dir,
                                        point_configs)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def test_groups_are_populated():
    assert {"mlp", "dae"} <= set(options("model"))
    assert {"mnist", "fashion_mnist", "synthetic"} <= set(options("dataset"))
    assert {"adc_bits", "adc_bits_mulaw", "prog_noise", "read_noise", "drift_time", "input_noise",
            "weight_noise", "on_off", "variation"} <= set(options("sweep"))
    assert set(options("hardware")) >= {"ideal", "pcm"}


@pytest.mark.parametrize("group", ["model", "dataset", "hardware", "sweep", "train", "experiment"])
def test_every_option_composes_and_validates(group):
    for name in options(group):
        cfg = compose("sweep", [f"{group}={name}"])
        check_sweep_config(cfg)  # raises UsageError on any problem


@pytest.mark.parametrize("config", ["train", "tiles"])
def test_other_commands_compose(config):
    for model in options("model"):
        check_config(compose(config, [f"model={model}"]))


def test_default_sweep_is_mlp_mnist_pcm_adc_bits_40_chips():
    cfg = compose("sweep")
    assert (cfg["model"]["name"], cfg["dataset"]["name"], cfg["hardware"]["name"]) == ("mlp", "mnist", "pcm")
    assert cfg["sweep"]["key"] == "hardware.adc.bits" and cfg["sweep"]["values"] == [12, 8, 6, 4]
    assert cfg["mc"]["chips"] == 40 and cfg["model"]["task"] == "classification"
    assert compose("sweep", ["model=dae"])["model"]["task"] == "denoising"


def test_sweep_points_set_axis_and_fixed_overrides():
    cfg = compose("sweep", ["sweep=adc_bits_mulaw", "sweep.values=[4,3]"])
    points = point_configs(cfg)
    assert [p["hardware"]["adc"]["bits"] for p in points] == [4, 3]
    assert all(p["hardware"]["adc"]["quantizer"] == "mulaw" for p in points)
    assert cfg["hardware"]["adc"]["quantizer"] == "uniform"  # the base config is not modified


def test_every_sweep_key_exists_in_every_hardware_profile():
    for sweep in options("sweep"):
        for hw in options("hardware"):
            point_configs(compose("sweep", [f"sweep={sweep}", f"hardware={hw}"]))


@pytest.mark.parametrize("override, key", [
    (["mc.chips=0"], "mc.chips"),
    (["eval.n=-5"], "eval.n"),
    (["sweep.values=[8,0]"], "hardware.adc.bits"),
    (["sweep.key=hardware.adc.bitz"], "hardware.adc.bitz"),
    (["model.hidden=[]"], "model.hidden"),
    (["device=tpu"], "device"),
    (["train.steps=null"], "train.steps"),  # default epochs is null too: no training budget
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(UsageError) as info:
        check_sweep_config(compose("sweep", override))
    assert info.value.key == key
    assert "\n" not in str(info.value) and str(info.value).startswith(key)


@pytest.mark.parametrize("override, key", [(["train.lr=fast"], "train.lr"), (["mc.chip=3"], "mc.chip"),
                                           (["hardware.dac.bits=[8]"], "hardware.dac.bits")])
def test_wrong_types_and_unknown_keys_fail_while_composing_and_name_the_key(override, key, capsys):
    """The typed schema stops these in Hydra's composition; the command line turns that into one line."""
    from aimcbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(["sweep", *override, "--cfg", "job"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith(f"aimc: error: {key}:") and "\n" not in err, err
