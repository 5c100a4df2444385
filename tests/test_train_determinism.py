"""Training is a function of the config: the same config trained twice (in one process or two, from empty caches)
gives bitwise-identical weights, whatever the caller did with the global RNGs, and training leaves them alone."""

from __future__ import annotations

import hashlib
import os
import random
import re

import numpy as np
import pytest
import torch

from aimcbench.train import load_or_train
from aimcbench.train.cache import collect_array_gains
from tests.conftest import aimc, compose

MLP = {"name": "mlp", "task": "classification", "hidden": [32], "checkpoint": None}
DATA = {"name": "synthetic", "data_dir": None, "shape": [1, 28, 28]}
TRAIN = {"steps": 6, "epochs": None, "batch_size": 32, "lr": 0.003, "alpha_tv": 0.001, "noise_sigma_max": 0.6,
         "seed": 0, "limit": 256, "noise_injection": None, "aware": None, "narelu": None}


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Everything training produces: the state dict and any trained per-array scalers."""
    out = dict(model.state_dict())
    out.update({f"gain:{k}": v for k, v in collect_array_gains(model).items()})
    return out


def _assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, va in a.items():
        assert va.dtype == b[k].dtype and va.shape == b[k].shape, k
        assert va.numpy().tobytes() == b[k].numpy().tobytes(), f"{k} differs"


def _train_twice(tmp_path, model_cfg, data_cfg, train_cfg) -> tuple[dict, dict]:
    """Train from two empty caches, with the caller's global RNGs in two different states each time."""
    out = []
    for i in range(2):
        torch.manual_seed(1000 + i)  # an unseeded process: the global streams differ between the two runs
        random.seed(1000 + i)
        np.random.seed(1000 + i)
        model, info = load_or_train(model_cfg, data_cfg, train_cfg, cache_dir=tmp_path / f"cache{i}",
                                    log=lambda m: None)
        assert info["source"] == "trained" and info["seed"] == int(train_cfg["seed"])
        out.append(_weights(model))
    return out[0], out[1]


def test_mlp_classifier_trains_bitwise_identically(tmp_path):
    a, b = _train_twice(tmp_path, MLP, DATA, TRAIN)
    _assert_bitwise_equal(a, b)


def test_a_different_seed_gives_different_weights(tmp_path):
    a, _ = load_or_train(MLP, DATA, TRAIN, cache_dir=tmp_path / "a", log=lambda m: None)
    b, info = load_or_train(MLP, DATA, {**TRAIN, "seed": 1}, cache_dir=tmp_path / "b", log=lambda m: None)
    assert info["seed"] == 1
    assert all(not torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_training_leaves_the_callers_rngs_alone(tmp_path):
    """Nothing leaks out of training: the caller's torch, numpy and random streams continue as if it never ran."""
    torch.manual_seed(7)
    random.seed(7)
    np.random.seed(7)
    states = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    load_or_train(MLP, DATA, TRAIN, cache_dir=tmp_path, log=lambda m: None)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert random.getstate() == states[1]
    assert np.array_equal(np.random.get_state()[1], states[2])


def test_denoising_autoencoder_trains_bitwise_identically(tmp_path):
    dae = {"name": "dae", "task": "denoising", "checkpoint": None}
    a, b = _train_twice(tmp_path, dae, DATA, {**TRAIN, "steps": 3, "limit": 96})
    _assert_bitwise_equal(a, b)


def test_noise_injection_finetune_is_bitwise_reproducible(tmp_path):
    """Base model and the injected fine-tune, from empty caches; then the fine-tune alone, from a cache that
    already holds the base model (a level-N fine-tune starts from the cached level N-1 model)."""
    ft = {**TRAIN, "noise_injection": {"kind": "mul", "eta0": 0.1, "finetune_steps": 3}}
    a, b = _train_twice(tmp_path, MLP, DATA, ft)
    _assert_bitwise_equal(a, b)
    cache = tmp_path / "base-first"
    load_or_train(MLP, DATA, TRAIN, cache_dir=cache, log=lambda m: None)
    torch.manual_seed(99)
    tuned, info = load_or_train(MLP, DATA, ft, cache_dir=cache, log=lambda m: None)
    assert info["source"] == "trained"
    _assert_bitwise_equal(a, _weights(tuned))
    plain, _ = load_or_train(MLP, DATA, TRAIN, cache_dir=cache, log=lambda m: None)
    assert any(not torch.equal(x, y) for x, y in zip(plain.state_dict().values(), tuned.state_dict().values()))


def test_hardware_aware_level_chain_is_bitwise_reproducible(tmp_path):
    """Float model -> level 1 with injected variation (the fast settings of tests/test_aware.py)."""
    cfg = compose("train", ["model=vgg_block", "model.width_mult=0.125", "dataset=synthetic_cifar", "train=level1",
                            "train.steps=4", "train.aware.steps=2", "train.limit=64", "train.batch_size=32",
                            "train.noise_injection=0.0312"])
    a, b = _train_twice(tmp_path, cfg["model"], cfg["dataset"], cfg["train"])
    _assert_bitwise_equal(a, b)


def _state_bytes(path) -> str:
    """sha256 of the raw bytes of a cache entry's tensors (names, dtypes, shapes, values)."""
    entry = torch.load(path, map_location="cpu", weights_only=True)
    h = hashlib.sha256()
    for k, v in entry["state_dict"].items():
        h.update(f"{k}:{v.dtype}:{tuple(v.shape)}".encode())
        h.update(v.numpy().tobytes())
    return h.hexdigest()


def test_cli_train_twice_in_two_processes_is_identical(tmp_path):
    """`aimc train model=mlp dataset=synthetic train.steps=10` twice, two processes, two empty caches."""
    printed, digests = [], []
    for i in range(2):
        cache = tmp_path / f"cache{i}"
        res = aimc("train", "model=mlp", "dataset=synthetic", "train.steps=10", f"hydra.run.dir={tmp_path}/run{i}",
                   env={"AIMC_CACHE_DIR": str(cache), "PYTHONHASHSEED": str(i)})
        assert res.returncode == 0, res.stderr
        printed.append(re.findall(r"^test accuracy \S+", res.stdout, re.MULTILINE))
        (entry,) = (cache / "models").glob("*.pt")
        digests.append(_state_bytes(entry))
    assert printed[0] and printed[0] == printed[1]
    assert digests[0] == digests[1]


def test_gpu_determinism_settings_apply_only_on_cuda_and_are_restored(monkeypatch):
    """The GPU switches (train/seeding.py) without a GPU: on 'cuda' they are on inside the scope, off after."""
    from aimcbench.train import seeding

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    with seeding.deterministic("cpu"):
        assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    monkeypatch.setattr(seeding, "_cuda_devices", lambda device: [0])
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    torch.backends.cudnn.benchmark = True
    try:
        with seeding.deterministic("cuda"):
            assert torch.are_deterministic_algorithms_enabled()
            assert torch.is_deterministic_algorithms_warn_only_enabled()
            assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
            assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.backends.cudnn.benchmark is True
        assert torch.are_deterministic_algorithms_enabled() == before[0]
    finally:
        torch.backends.cudnn.benchmark = before[1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_is_bitwise_reproducible(tmp_path):
    torch_dev = "cuda"
    out = []
    for i in range(2):
        torch.manual_seed(i)
        model, _ = load_or_train(MLP, DATA, TRAIN, cache_dir=tmp_path / f"c{i}", device=torch_dev,
                                 log=lambda m: None)
        out.append(_weights(model))
    _assert_bitwise_equal(*out)
