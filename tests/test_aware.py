"""Study 002 architecture-aware training: the differentiable pipelines match the simulator, the injected variation
has the study's statistics, gradients reach weights and per-array scalers, and the level chain is cached."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aimcbench.sim import load_hardware, to_analog
from aimcbench.sim.convert import ARRAY_GAIN_ATTR
from aimcbench.train.hwaware import HardwareAware
from aimcbench.train.loop import augment_batch
from tests.conftest import compose

TINY_TILES = ["mapping.tile_rows=32", "mapping.tile_cols=8"]  # 3 channels of 3x3 per array, 4 outputs per array


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU6(), nn.Conv2d(8, 12, 3, padding=1), nn.ReLU6(),
                         nn.Flatten(), nn.Linear(12 * 8 * 8, 10)).eval()


def _pipeline(model: nn.Module, hw, x: torch.Tensor) -> torch.Tensor:
    patch = HardwareAware(model, hw)
    try:
        with torch.no_grad():
            return model(x)
    finally:
        patch.remove()


@pytest.mark.parametrize("profile,overrides", [("rram_l1", []), ("rram_l2", []), ("rram_l3", []),
                                               ("rram_l3", TINY_TILES)])
def test_noise_free_pipeline_equals_the_simulator(profile, overrides):
    """What training optimizes is what inference computes: the same numbers up to float rounding, which can flip
    a rare DAC/ADC rounding tie (one LSB on a handful of outputs)."""
    model, hw = _net(), load_hardware(profile, overrides)
    x = torch.rand(16, 3, 8, 8) * 2 - 0.5          # negative inputs exercise the sign phases
    with torch.no_grad():
        sim = to_analog(model, hw, chips=1)(x)[0]
        digital = model(x)
    aware = _pipeline(model, hw, x)
    assert torch.isclose(aware, sim, atol=1e-4, rtol=1e-4).float().mean() > 0.97
    assert (aware - sim).abs().median() < 1e-5
    # ... and the pipeline is not the float model (quantization is really there)
    assert (aware - digital).abs().max() > 10 * (aware - sim).abs().median()


def test_trained_array_scalers_reach_the_simulator():
    model, hw = _net(), load_hardware("rram_l3", TINY_TILES)
    patch = HardwareAware(model, hw, train_gains=True)
    g = torch.Generator().manual_seed(1)
    for gain in patch.gains.values():
        with torch.no_grad():
            gain.copy_(0.5 + torch.rand(gain.shape, generator=g))
    patch.remove()
    assert all(getattr(m, ARRAY_GAIN_ATTR, None) is not None for m in model if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert getattr(model[2], ARRAY_GAIN_ATTR).shape == (3, 3)   # 8 input channels / 3 per array, 12 outputs / 4
    x = torch.rand(16, 3, 8, 8)
    with torch.no_grad():
        sim = to_analog(model, hw, chips=1)(x)[0]
    aware = _pipeline(model, hw, x)
    assert (aware - sim).abs().median() < 1e-5
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            delattr(m, ARRAY_GAIN_ATTR)
    with torch.no_grad():
        plain = to_analog(model, hw, chips=1)(x)[0]
    assert (plain - sim).abs().max() > 1e-2                      # the scalers did change the chip's outputs


@pytest.mark.parametrize("profile,v,overrides", [("rram_l1", 0.0312, []),
                                                 ("rram_l1", 0.0312, ["device.variation_range=full_span"]),
                                                 ("rram_l2", 0.0312, [])])
def test_injected_variation_has_the_study_std(profile, v, overrides):
    """Level 1: std v * max|W| on the signed weight (variation_range max_abs; full_span: v * 2 max|W|); level 2:
    v * (I_on - I_off) per cell (= v max|W| in weight units). 120,000 samples: the sample std is within 1.5 % of
    the formula with overwhelming probability."""
    hw = load_hardware(profile, overrides)
    lin = nn.Linear(400, 300)
    model = nn.Sequential(lin).train()
    patch = HardwareAware(model, hw, injection=v, generator=torch.Generator().manual_seed(0))
    w_norm = lin.weight.detach() / lin.weight.detach().abs().max()
    clean = HardwareAware._weights.__get__(patch)  # same method, injection switched off below
    noisy = patch._weights(w_norm)
    patch.injection = 0.0
    ref = clean(w_norm)
    patch.remove()
    if profile == "rram_l1":
        dev, expected = noisy - ref, (2 * v if overrides else v)
    else:
        dev, expected = noisy[0] - ref[0], v     # clipping at 0 is negligible: idle cells sit at 1/9 >> 3 v
    n = dev.numel()
    std = dev.std().item()
    assert abs(std - expected) < 5 * expected / math.sqrt(2 * n) + 1e-9
    assert abs(dev.mean().item()) < 5 * expected / math.sqrt(n)


def test_gradients_reach_weights_and_scalers_through_the_quantizers():
    model, hw = _net().train(), load_hardware("rram_l3", TINY_TILES)
    patch = HardwareAware(model, hw, injection=0.0156, train_gains=True)
    loss = nn.functional.cross_entropy(model(torch.rand(8, 3, 8, 8)), torch.arange(8) % 10)
    loss.backward()
    patch.remove()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in patch.gains.values())


def test_crop_flip_is_a_shifted_and_maybe_mirrored_crop():
    x = torch.rand(6, 2, 8, 8)
    out = augment_batch(x, "crop_flip", torch.Generator().manual_seed(0))
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    for b in range(6):
        crops = [padded[b, :, dy:dy + 8, dx:dx + 8] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(out[b], c) or torch.equal(out[b], c.flip(2)) for c in crops)
    assert augment_batch(x, "none", torch.Generator()) is x
    with pytest.raises(ValueError, match="train_augment"):
        augment_batch(x, "rotate", torch.Generator())


def test_level_chain_is_cached_and_level3_keeps_its_scalers(tmp_path):
    from aimcbench.train import load_or_train

    cfg = compose("train", ["model=vgg_block", "model.width_mult=0.125", "dataset=synthetic_cifar", "train=level3",
                            "train.steps=20", "train.aware.steps=4", "train.limit=256", "train.batch_size=32",
                            "train.noise_injection=0.0312"])
    cache = tmp_path / "cache"
    logs: list[str] = []
    model, info = load_or_train(cfg["model"], cfg["dataset"], cfg["train"], cache_dir=str(cache), log=logs.append)
    assert info["source"] == "trained"
    assert len(list((cache / "models").glob("*.pt"))) == 4       # float, level 1, level 2, level 3
    assert sum("fine-tuning it for level" in m for m in logs) == 3
    gains = {n: getattr(m, ARRAY_GAIN_ATTR) for n, m in model.named_modules() if hasattr(m, ARRAY_GAIN_ATTR)}
    assert gains and any((g - 1).abs().max() > 0 for g in gains.values())   # the scalers were trained
    again, info2 = load_or_train(cfg["model"], cfg["dataset"], cfg["train"], cache_dir=str(cache), log=logs.append)
    assert info2["source"] == "cache"
    for n, g in gains.items():
        assert torch.equal(getattr(again.get_submodule(n), ARRAY_GAIN_ATTR), g)
    # Another injection level reuses levels 0-2 and trains only a new level 3.
    other = {**cfg["train"], "noise_injection": 0.0624}
    load_or_train(cfg["model"], cfg["dataset"], other, cache_dir=str(cache), log=logs.append)
    assert len(list((cache / "models").glob("*.pt"))) == 5


def test_a_variation_fraction_needs_aware_training():
    from aimcbench.commands._common import UsageError, check_config

    cfg = compose("train", ["train.noise_injection=0.05"])
    with pytest.raises(UsageError, match="train.noise_injection"):
        check_config(cfg)
    check_config(compose("train", ["train=level2", "train.noise_injection=0.05"]))
    with pytest.raises(UsageError, match="train.aware"):
        check_config(compose("train", ["train=level2", "train.aware.level=5"]))
