"""Tests for aimcbench.metrics: accuracy, PSNR, SSIM and the chip-dimension shape rule."""
from __future__ import annotations

import math

import pytest
import torch

from aimcbench.metrics import accuracy, psnr, ssim


def test_accuracy_scalar_and_chips():
    y = torch.tensor([0, 1, 2, 1])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 0]), 3).float()   # 2 of 4 right
    acc = accuracy(logits, y)
    assert acc.dim() == 0 and acc.item() == pytest.approx(0.5)
    chips = torch.stack([torch.nn.functional.one_hot(y, 3).float(), logits, -torch.nn.functional.one_hot(y, 3).float()])
    per_chip = accuracy(chips, y)
    assert per_chip.shape == (3,)
    assert per_chip.tolist() == pytest.approx([1.0, 0.5, 0.0])


def test_accuracy_statistics():
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (20_000,), generator=gen)
    acc = accuracy(torch.randn(5, 20_000, 10, generator=gen), y)
    # Random logits: ~10% correct; binomial std = sqrt(.1*.9/20000) ~ 0.0021.
    assert torch.all((acc - 0.1).abs() < 0.01)


def test_accuracy_bad_shapes():
    with pytest.raises(ValueError, match="logits must be"):
        accuracy(torch.zeros(3, 5, 10), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be"):
        accuracy(torch.zeros(4, 10), torch.zeros(4, 1, dtype=torch.long))


def test_psnr_matches_hand_formula():
    gen = torch.Generator().manual_seed(1)
    target = torch.rand(6, 1, 28, 28, generator=gen)
    pred = target + 0.05 * torch.randn(3, 6, 1, 28, 28, generator=gen)
    got = psnr(pred, target)
    assert got.shape == (3,)
    for k in range(3):
        per_image = [10 * math.log10(1.0 / ((pred[k, i] - target[i]) ** 2).mean().item()) for i in range(6)]
        assert got[k].item() == pytest.approx(sum(per_image) / 6, rel=1e-5)
    # Uniform noise of std s gives MSE s^2: PSNR ~ -20 log10(s) = 26.02 dB for s = 0.05.
    assert got.mean().item() == pytest.approx(26.02, abs=0.3)
    # data_range scales PSNR by 20 log10(range).
    assert psnr(pred[0] * 255, target * 255, data_range=255.0).item() == pytest.approx(got[0].item(), rel=1e-4)


def test_psnr_per_image_mean_not_pooled():
    target = torch.zeros(2, 1, 4, 4)
    pred = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.01)])
    # Per-image: (20 + 40) / 2 = 30 dB; a pooled MSE would give ~23 dB.
    assert psnr(pred, target).item() == pytest.approx(30.0, rel=1e-5)


def test_ssim_identity_and_monotone_in_noise():
    gen = torch.Generator().manual_seed(2)
    target = torch.rand(8, 1, 28, 28, generator=gen)
    assert ssim(target, target).item() == pytest.approx(1.0, abs=1e-5)
    noise = torch.randn(8, 1, 28, 28, generator=gen)
    levels = [0.02, 0.05, 0.1, 0.2, 0.4]
    chips = torch.stack([(target + s * noise).clamp(0, 1) for s in levels])
    values = ssim(chips, target)
    assert values.shape == (5,)
    assert torch.all(values[1:] < values[:-1]) and values[0] < 1.0 and values[-1] > -1.0


def test_ssim_matches_torchmetrics():
    tm = pytest.importorskip("torchmetrics.functional.image")
    gen = torch.Generator().manual_seed(3)
    for shape, data_range in (((5, 1, 28, 28), 1.0), ((3, 3, 32, 32), 2.0)):
        target = torch.rand(*shape, generator=gen)
        pred = target + 0.2 * torch.randn(*shape, generator=gen)
        ref = tm.structural_similarity_index_measure(pred, target, data_range=data_range, reduction="none")
        torch.testing.assert_close(ssim(pred, target, data_range=data_range), ref.mean(), atol=1e-5, rtol=0)
        ref_psnr = tm.peak_signal_noise_ratio(pred, target, data_range=data_range, reduction="none",
                                              dim=(1, 2, 3))
        torch.testing.assert_close(psnr(pred, target, data_range=data_range), ref_psnr.mean())


def test_ssim_insensitive_to_constant_shift_less_than_structure():
    # SSIM's structure term: a small brightness shift hurts less than shuffling the pixels.
    gen = torch.Generator().manual_seed(4)
    target = torch.nn.functional.avg_pool2d(torch.rand(4, 1, 32, 32, generator=gen), 3, 1, 1)
    shifted = (target + 0.05).clamp(0, 1)
    shuffled = target.flatten(1)[:, torch.randperm(32 * 32, generator=gen)].reshape(4, 1, 32, 32)
    assert ssim(shifted, target) > ssim(shuffled, target) + 0.3


def test_chunking_consistent(monkeypatch):
    import aimcbench.metrics as metrics

    gen = torch.Generator().manual_seed(5)
    target = torch.rand(7, 1, 28, 28, generator=gen)
    pred = target + 0.1 * torch.randn(4, 7, 1, 28, 28, generator=gen)
    whole = ssim(pred, target), psnr(pred, target)
    monkeypatch.setattr(metrics, "_CHUNK", 3)
    torch.testing.assert_close(ssim(pred, target), whole[0])
    torch.testing.assert_close(psnr(pred, target), whole[1])


def test_hw_images_without_channel():
    target = torch.rand(3, 28, 28)
    pred = torch.stack([target, (target + 0.3).clamp(0, 1)])
    values = ssim(pred, target)
    assert values.shape == (2,) and values[0].item() == pytest.approx(1.0, abs=1e-5) and values[1] < 1


def test_image_metric_bad_shapes():
    with pytest.raises(ValueError, match="psnr: prediction shape"):
        psnr(torch.zeros(2, 2, 2, 1, 28, 28), torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="ssim: prediction images"):
        ssim(torch.zeros(3, 2, 1, 28, 28), torch.zeros(4, 1, 28, 28))
    with pytest.raises(ValueError, match="too small"):
        ssim(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
