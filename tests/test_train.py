"""Digital training and the trained-model cache."""

from __future__ import annotations

import threading

import pytest
import torch

import aimcbench.train.cache as cache_mod
from aimcbench.train import CheckpointError, cache_key, corrupt, load_checkpoint, load_or_train, total_variation
from aimcbench.train.loop import evaluate_digital

MLP = {"name": "mlp", "task": "classification", "hidden": [32], "checkpoint": None}
DATA = {"name": "synthetic", "data_dir": None, "shape": [1, 28, 28]}
TRAIN = {"epochs": 2, "batch_size": 64, "lr": 0.003, "alpha_tv": 0.001, "noise_sigma_max": 0.6, "seed": 0,
         "limit": 1000}


def test_training_learns_and_the_cache_is_reused(tmp_path, monkeypatch):
    model, info = load_or_train(MLP, DATA, TRAIN, cache_dir=tmp_path)
    assert info["trained"] and info["source"] == "trained"
    from aimcbench.data import load_split

    x, y = load_split("synthetic", "test", limit=500)
    acc = evaluate_digital(model, x, y, "classification")["accuracy"]
    assert acc > 0.5  # 10 classes: chance is 0.1

    def boom(*a, **k):
        raise AssertionError("second call must not train")

    monkeypatch.setattr("aimcbench.train.loop.train_model", boom)
    again, info2 = load_or_train(MLP, DATA, TRAIN, cache_dir=tmp_path)
    assert info2["source"] == "cache" and info2["path"] == info["path"]
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_cache_key_covers_what_changes_the_weights():
    base = cache_key(MLP, DATA, TRAIN, "fp")
    assert base == cache_key(dict(MLP), {**DATA, "data_dir": "/elsewhere"}, dict(TRAIN), "fp")
    assert base == cache_key({**MLP, "checkpoint": "x.pt"}, DATA, TRAIN, "fp")
    assert base != cache_key({**MLP, "hidden": [64]}, DATA, TRAIN, "fp")
    assert base != cache_key(MLP, DATA, {**TRAIN, "seed": 1}, "fp")
    assert base != cache_key(MLP, {**DATA, "name": "mnist"}, TRAIN, "fp")
    assert base != cache_key(MLP, DATA, TRAIN, "other-data")


def test_concurrent_jobs_train_once(tmp_path, monkeypatch):
    calls = []
    real = cache_mod.load_or_train.__globals__["torch"]  # noqa: F841 - keep torch import alive
    from aimcbench.train import loop

    original = loop.train_model

    def counting(*a, **k):
        calls.append(1)
        return original(*a, **k)

    monkeypatch.setattr(loop, "train_model", counting)
    cfg = {**TRAIN, "epochs": 1, "limit": 300}
    results = []
    threads = [threading.Thread(target=lambda: results.append(load_or_train(MLP, DATA, cfg, cache_dir=tmp_path)[1]))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(r["source"] for r in results) == ["cache", "cache", "trained"]
    assert not list((tmp_path / "models").glob(".*tmp"))  # no temporary files left behind


def test_dae_training_reduces_reconstruction_error():
    """Uses the runner tests' quick settings, so the trained DAE lands in the shared test cache."""
    from conftest import FAST, compose

    from aimcbench.data import load_split
    from aimcbench.models import build_model

    cfg = compose("sweep", FAST + ["model=dae"])
    x, y = load_split("synthetic", "test", limit=200)
    before = evaluate_digital(build_model("dae").eval(), x, y, "denoising")["psnr"]
    model, info = load_or_train(cfg["model"], cfg["dataset"], cfg["train"])
    after = evaluate_digital(model, x, y, "denoising")["psnr"]
    assert after > before + 3.0  # dB


def test_user_checkpoint_is_loaded_or_rejected_clearly(tmp_path):
    from aimcbench.models import build_model

    good = build_model("mlp", hidden=[32])
    torch.save(good.state_dict(), tmp_path / "good.pt")
    model, info = load_or_train({**MLP, "checkpoint": str(tmp_path / "good.pt")}, DATA, TRAIN, cache_dir=tmp_path)
    assert info["source"] == "checkpoint"
    assert all(torch.equal(a, b) for a, b in zip(good.state_dict().values(), model.state_dict().values()))

    torch.save(build_model("mlp", hidden=[16]).state_dict(), tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"model.checkpoint: .*does not fit.*shape"):
        load_checkpoint(build_model("mlp", hidden=[32]), tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no file"):
        load_checkpoint(good, tmp_path / "missing.pt")


def test_step_budget_overrides_epochs():
    from aimcbench.data import load_split
    from aimcbench.models import build_model
    from aimcbench.train import train_model

    x, y = load_split("synthetic", "train", limit=100)
    stats = train_model(build_model("mlp", hidden=[8]), x, y, "classification", {**TRAIN, "steps": 7, "epochs": 50})
    assert stats["steps"] == 7 and abs(stats["epochs"] - 7 / 2) < 1e-9  # 100 images / 64 per batch = 2 batches


def test_corrupt_clamps_and_tv_is_zero_on_flat_images():
    g = torch.Generator().manual_seed(0)
    x = torch.full((4, 1, 8, 8), 0.5)
    noisy = corrupt(x, 0.6, g)
    assert noisy.min() >= 0 and noisy.max() <= 1 and (noisy - x).abs().mean() > 0.1
    assert float(total_variation(x)) == 0.0
    assert float(total_variation(noisy)) > 0.1


def test_recipes_pick_the_study_specific_training_and_plain_otherwise():
    from aimcbench.train.recipes import pick_recipe

    base = {"steps": 5, "epochs": None, "noise_injection": None, "aware": None, "narelu": None}
    aware = {"level": 2, "profiles": ["a", "b", "c"], "steps": 3}
    assert pick_recipe(base).name == "plain" and pick_recipe(base).start_config(base) is None
    r = pick_recipe({**base, "aware": aware, "noise_injection": 0.03})
    assert r.name == "aware" and r.keeps_array_gains
    assert r.start_config({**base, "aware": aware})["aware"]["level"] == 1  # level N starts from level N-1
    assert pick_recipe({**base, "aware": {**aware, "level": 0}}).name == "plain"
    ni = {**base, "noise_injection": {"kind": "mul", "eta0": 0.1, "finetune_steps": 4}}
    assert pick_recipe(ni).name == "noise_injection_finetune" and pick_recipe(ni).start_config(ni)["noise_injection"] is None
    # injection while training from scratch (no finetune_steps) is plain training with noise
    assert pick_recipe({**base, "noise_injection": {"kind": "mul", "eta0": 0.1}}).name == "plain"
    na = {**base, "narelu": {"epochs": 1}}
    assert pick_recipe(na).name == "narelu" and pick_recipe(na).start_config(na)["narelu"] is None


def test_null_dataset_preprocessing_keys_leave_the_cache_key_unchanged():
    model, train = {"name": "mlp", "hidden": [8]}, {"steps": 5, "seed": 0}
    plain = cache_key(model, {"name": "synthetic"}, train, "fp")
    nulls = {"name": "synthetic", "normalize": None, "transform": None, "_target_": None, "data_dir": "/x"}
    assert cache_key(model, nulls, train, "fp") == plain
    norm = {"name": "synthetic", "normalize": {"mean": [0.5], "std": [0.5]}}
    assert cache_key(model, norm, train, "fp") != plain
