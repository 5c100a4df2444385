"""Noise-injection training (train.noise_injection {kind, eta0}): cache key, the mul/add draws, fine-tuning."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from conftest import compose

from aimcbench.train import cache_key, noisy_parameters, train_model


# ------------------------------------------------------------------------------ noise-injection training
def test_noise_injection_is_part_of_the_cache_key_only_when_set():
    train = compose("train")["train"]
    assert train["noise_injection"] is None
    plain = cache_key({"name": "mlp"}, {"name": "synthetic"}, train, "fp")
    legacy = {k: v for k, v in train.items() if k != "noise_injection"}
    assert cache_key({"name": "mlp"}, {"name": "synthetic"}, legacy, "fp") == plain  # old caches stay valid
    a = cache_key({"name": "mlp"}, {"name": "synthetic"}, {**train, "noise_injection": {"kind": "mul", "eta0": 0.06}},
                  "fp")
    b = cache_key({"name": "mlp"}, {"name": "synthetic"}, {**train, "noise_injection": {"kind": "mul", "eta0": 0.1}},
                  "fp")
    assert len({plain, a, b}) == 3


def test_noisy_parameters_follow_the_mul_and_add_definitions():
    lin = torch.nn.Linear(200, 300)
    with torch.no_grad():
        lin.weight.fill_(0.5)
    gen = torch.Generator().manual_seed(0)
    w = noisy_parameters(lin, {"kind": "mul", "eta0": 0.1}, gen)["weight"]
    rel = (w / 0.5 - 1).detach()  # = N_T N_S: mean eta0 * 1, var = E[N_T^2] E[N_S^2] - eta0^2
    var = (0.1 ** 2 + 0.02 ** 2) * (1 + 0.1 ** 2) - 0.1 ** 2
    assert rel.mean().item() == pytest.approx(0.1, abs=4 * np.sqrt(var / rel.numel()))
    assert rel.var().item() == pytest.approx(var, rel=0.05)
    w2 = noisy_parameters(lin, {"kind": "mul", "eta0": 0.1}, gen)["weight"]
    assert not torch.equal(w, w2)  # fresh draw per mini-batch
    add = noisy_parameters(lin, {"kind": "add", "eta0": 0.1}, gen)["weight"] - 0.5
    assert add.mean().item() == pytest.approx(0.1, abs=0.002)
    # Gradients reach the clean weight through the reparametrization.
    w.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_noise_injection_training_gives_other_weights():
    torch.manual_seed(0)
    x = torch.rand(256, 1, 28, 28)
    y = torch.randint(0, 10, (256,))
    cfg = {"steps": 20, "batch_size": 32, "lr": 0.01, "seed": 0, "threads": 1}
    from aimcbench.models import build_model

    def fresh():  # the same initial weights for all three
        torch.manual_seed(1)
        return build_model("mlp", hidden=[16])

    a, b, c = fresh(), fresh(), fresh()
    train_model(a, x, y, "classification", cfg)
    train_model(b, x, y, "classification", {**cfg, "noise_injection": {"kind": "mul", "eta0": 0.1}})
    train_model(c, x, y, "classification", {**cfg, "noise_injection": None})
    wa, wb, wc = (m[1].weight.detach() for m in (a, b, c))
    assert torch.equal(wa, wc) and not torch.allclose(wa, wb)


def test_noise_injection_fine_tuning_starts_from_the_cached_plain_model(tmp_path):
    from aimcbench.train import load_or_train

    model_cfg = {"name": "mlp", "task": "classification", "hidden": [8], "checkpoint": None}
    data_cfg = {"name": "synthetic"}
    train = {"steps": 5, "epochs": None, "batch_size": 16, "lr": 0.01, "seed": 0, "threads": 1, "limit": 64,
             "noise_injection": None}
    plain, pinfo = load_or_train(model_cfg, data_cfg, train, cache_dir=tmp_path, log=lambda m: None)
    ft = {**train, "noise_injection": {"kind": "mul", "eta0": 0.06, "finetune_steps": 3, "finetune_lr": 1e-3}}
    tuned, tinfo = load_or_train(model_cfg, data_cfg, ft, cache_dir=tmp_path, log=lambda m: None)
    assert tinfo["key"] != pinfo["key"] and tinfo["trained"]
    w0, w1 = plain[1].weight.detach(), tuned[1].weight.detach()
    assert not torch.equal(w0, w1)
    # 3 Adam steps at lr 1e-3 move each weight by at most ~3e-3: it started from the plain model.
    assert (w1 - w0).abs().max() < 5e-3
    assert len(list((tmp_path / "models").glob("mlp-*.pt"))) == 2  # the plain entry was reused, not retrained
