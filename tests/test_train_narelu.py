"""Study 003: the noise-aware ReLU (expectation against Monte Carlo), its fine-tuning, and its cache key."""

from __future__ import annotations

import math

import torch

from aimcbench.models import build_model
from aimcbench.train.cache import cache_key
from aimcbench.train.narelu import NoiseAwareReLU, finetune_narelu, noise_aware_copy

SPEC = {"profile": "crossbar", "adc_bits": 4, "optimized": False, "epochs": 1, "lr": 0.001, "samples": 32}


def test_expected_clipped_relu_matches_monte_carlo():
    u = torch.linspace(-2, 3, 11)
    act = NoiseAwareReLU(0.5)
    act.sat = torch.full((1, 11), 1.5)
    got = act(u.unsqueeze(0))[0]
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200_000, 1, generator=g)
    samples = torch.clamp(torch.relu(u + 0.5 * z), max=1.5)
    mc, se = samples.mean(0), samples.std(0) / math.sqrt(z.shape[0])
    assert torch.all((got - mc).abs() <= 4 * se + 1e-6), (got, mc)


def test_zero_noise_is_relu_with_saturation():
    act = NoiseAwareReLU(0.0)
    act.sat = torch.tensor([[1.0, 1.0, 1.0]])
    assert torch.equal(act(torch.tensor([[-1.0, 0.5, 2.0]])), torch.tensor([[0.0, 0.5, 1.0]]))


def test_finetune_changes_weights_and_keeps_the_layout():
    torch.manual_seed(0)
    model = build_model("mlp", hidden=[16]).eval()
    x = torch.rand(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    copy = noise_aware_copy(model, {"1": {"sigma": 0.1, "bound": 2.0, "rows": ((0, 128), (128, 784))}})
    assert isinstance(copy[2], NoiseAwareReLU) and set(copy.state_dict()) == set(model.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = {"steps": None, "epochs": 1, "batch_size": 16, "lr": 0.002, "seed": 0, "threads": 1, "narelu": SPEC}
    stats = finetune_narelu(model, x, y, cfg)
    assert set(stats["narelu_sigma"]) == {"1", "3"} and all(s > 0 for s in stats["narelu_sigma"].values())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert isinstance(model[2], torch.nn.ReLU)  # the model itself keeps plain ReLUs


def test_cache_key_covers_narelu_and_null_keeps_old_keys():
    m, d = {"name": "mlp", "hidden": [16]}, {"name": "synthetic"}
    t = {"steps": 10, "lr": 0.01, "seed": 0}
    assert cache_key(m, d, t, "fp") == cache_key(m, d, {**t, "narelu": None}, "fp")
    assert cache_key(m, d, t, "fp") != cache_key(m, d, {**t, "narelu": SPEC}, "fp")
    assert cache_key(m, d, {**t, "narelu": SPEC}, "fp") != cache_key(m, d, {**t, "narelu": {**SPEC, "adc_bits": 5}},
                                                                      "fp")
