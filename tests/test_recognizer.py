"""The digit recognizer of the denoising task (aimcbench/tasks/recognizer.py) and its digit_accuracy metric."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from conftest import FAST, compose, needs_metrics, needs_sim

from aimcbench.tasks.recognizer import (
    TRAIN_DEFAULTS,
    RecognizerError,
    load_recognizer,
    recognized,
    recognizer_config,
)
from aimcbench.train import load_or_train

# A small recognizer trained in seconds (the packaged preset trains 3000 steps on full MNIST).
SMALL = {"model": {"name": "mlp", "task": "classification", "hidden": [64], "checkpoint": None},
         "dataset": {"name": "mnist", "data_dir": None, "shape": [1, 28, 28]},
         "train": {"steps": 300, "batch_size": 64, "seed": 0}}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(recognizer, its dataset section, clean test images, labels) on MNIST (full or the embedded sample)."""
    from aimcbench.data import load_from_config

    cache = str(tmp_path_factory.mktemp("cache"))
    net, info = load_recognizer(SMALL, {"name": "mnist"}, cache, "cpu", lambda m: None, load_or_train)
    x, y = load_from_config(SMALL["dataset"], "test", limit=500, seed=0)
    return net, info["_dataset_cfg"], x, y, cache


def test_presets_resolve_by_name_by_dataset_and_off(monkeypatch):
    monkeypatch.delenv("AIMC_DATA_DIR", raising=False)
    cfg = recognizer_config(None, {"name": "mnist"})          # null: the preset named like the data set
    assert cfg["model"]["name"] == "mlp" and cfg["dataset"]["name"] == "mnist"
    assert cfg["train"]["steps"] == 3000 and cfg["train"]["seed"] == 0 and "lr" in cfg["train"]
    assert recognizer_config("mnist", {"name": "synthetic"}) == {**cfg, "dataset": {**cfg["dataset"]}}
    assert recognizer_config(None, {"name": "synthetic"}) is None  # no preset for it: no digit_accuracy
    assert recognizer_config("none", {"name": "mnist"}) is None
    with pytest.raises(RecognizerError, match="eval.recognizer: no preset 'nope'"):
        recognizer_config("nope", {"name": "mnist"})
    with pytest.raises(RecognizerError, match="model and dataset"):
        recognizer_config({"model": {"name": "mlp"}}, {"name": "mnist"})
    # the task's own data directory is used when the recognizer's data set is the same and names none
    assert recognizer_config(None, {"name": "mnist", "data_dir": "/d"})["dataset"]["data_dir"] == "/d"


def test_recognizer_is_cached_and_deterministic(small):
    net, *_, cache = small
    again, info = load_recognizer(SMALL, {"name": "mnist"}, cache, "cpu", lambda m: None, load_or_train)
    assert info["source"] == "cache"
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_accuracy_is_high_on_clean_digits_and_chance_on_noise(small):
    net, data, x, y, _ = small
    clean = float(recognized(net, x, y, data))
    assert clean > 0.8
    noise = torch.rand((5, *x.shape), generator=torch.Generator().manual_seed(1))  # 5 "chips" of pure noise
    per_chip = recognized(net, noise, y, data)
    assert per_chip.shape == (5,)
    # pure noise carries no digit: the recognizer is right only as often as its favourite class occurs (~10 %)
    assert float(per_chip.max()) < 0.3


def test_accuracy_is_computed_per_chip(small):
    net, data, x, y, _ = small
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(2))
    stacked = recognized(net, torch.stack([x, noise, x]), y, data)
    assert stacked.shape == (3,)
    assert float(stacked[0]) == pytest.approx(float(recognized(net, x, y, data)))
    assert float(stacked[1]) == pytest.approx(float(recognized(net, noise, y, data)))
    assert float(stacked[0]) > float(stacked[1]) + 0.5
    # out-of-range reconstructions are clamped to the images' range [0, 1] first
    wide = x * 3.0 - 1.0
    assert float(recognized(net, wide, y, data)) == pytest.approx(float(recognized(net, wide.clamp(0, 1), y, data)))


@needs_sim
@needs_metrics
def test_denoising_sweep_reports_digit_accuracy_per_chip_with_references(tmp_path):
    from aimcbench.commands._common import check_sweep_config
    from aimcbench.runner import run_sweep

    rec = ("{model:{name:mlp,task:classification,hidden:[32],checkpoint:null},"
           "dataset:{name:synthetic,shape:[1,28,28]},train:{steps:100,batch_size:32}}")
    cfg = compose("sweep", FAST + ["model=dae", "hardware=pcm", "sweep=input_noise", "sweep.values=[0.2,0.8]",
                                   f"eval.recognizer={rec}", f"cache_dir={tmp_path / 'cache'}"])
    check_sweep_config(cfg)
    run_sweep(cfg, tmp_path / "run", report=False)
    chips = pd.read_parquet(tmp_path / "run" / "chips.parquet")
    acc = chips[chips.metric == "digit_accuracy"]
    assert len(acc) == 2 * 2 and acc["value"].between(0, 1).all()       # points x chips
    digital = pd.read_csv(tmp_path / "run" / "digital.csv")
    refs = set(digital["metric"])
    assert {"digit_accuracy", "digit_accuracy_noisy_input", "digit_accuracy_clean_input"} <= refs
    clean = digital[digital.metric == "digit_accuracy_clean_input"]["value"]
    assert clean.nunique() == 1                                       # the clean inputs do not depend on sigma
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["recognizer"]["clean_accuracy"] == pytest.approx(float(clean.iloc[0]))
    assert meta["recognizer"]["model"] == "mlp" and meta["recognizer"]["source"] == "trained"


def test_train_defaults_are_the_schemas_and_training_needs_the_runners_cache():
    from omegaconf import OmegaConf

    from aimcbench.config.schema import TrainConfig

    assert TRAIN_DEFAULTS == OmegaConf.to_container(OmegaConf.structured(TrainConfig))
    with pytest.raises(RecognizerError, match="sweep runner"):
        load_recognizer("mnist", {"name": "mnist"}, None, "cpu", print, None)
    assert load_recognizer("none", {"name": "mnist"}, None, "cpu", print, None) == (None, {})


def test_schema_rule_refuses_a_malformed_recognizer():
    from aimcbench.config.schema import _recognizer_rule

    assert _recognizer_rule(None) is None and _recognizer_rule("mnist") is None
    assert _recognizer_rule({"model": {}, "dataset": {}, "train": {}}) is None
    assert _recognizer_rule({"model": {}}) is not None and _recognizer_rule(3) is not None


def test_validation_names_the_presets():
    from aimcbench.config.errors import UsageError
    from aimcbench.config.validate import check_config

    cfg = compose("sweep", ["model=dae", "eval.recognizer=mnist"])
    check_config(cfg)
    with pytest.raises(UsageError, match=r"eval.recognizer: must be one of mnist, none"):
        check_config({**cfg, "eval": {**cfg["eval"], "recognizer": "nope"}})
