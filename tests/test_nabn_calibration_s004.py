"""NaBN calibration over the training data (study 004, Algorithm 1): the calibrated statistics match the noisy
activations' true mean and variance; one calibration under fixed hardware (Fig. 3); ImageNet's train split."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from aimcbench.runner.calibration import (
    Calibrator,
    calibration_batches,
    hardware_overrides,
)
from aimcbench.runner.shards import chip_ids
from aimcbench.sim import load_hardware, to_analog


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Flatten(), nn.Linear(8 * 7 * 7, 10))
    return net.eval()


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    # a per-image brightness makes the batch means differ: the first batch alone is a poor estimate
    return torch.rand(n, 3, 16, 16, generator=g) * (0.2 + 2 * torch.rand(n, 1, 1, 1, generator=g))


def _true_stats(am, data):
    """Per chip, the mean and variance of the first batch-norm layer's input over all of ``data``."""
    seen = []
    h = am.batchnorms[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
    with torch.no_grad():
        for x in data.split(64):
            am(x)
    h.remove()
    z = torch.cat([s.reshape(am.chips, -1, *s.shape[1:]) for s in seen], dim=1)  # [K, N, C, H, W]
    return z.mean(dim=(1, 3, 4)), z.var(dim=(1, 3, 4)), z


@pytest.mark.parametrize("momentum, expect_close", [(None, True), (0.999, False)])
def test_cumulative_calibration_matches_the_noisy_activations(momentum, expect_close):
    """Static per-chip noise (gaussian_mul) makes the noisy activations well defined: the cumulative average over
    the whole calibration set gives their mean exactly and their variance to within the between-batch spread;
    Algorithm 1's m = 0.999 over 16 batches is ~98 % the first batch's statistics."""
    data = _data(1024)
    hw = load_hardware("weight_noise", ["weight_noise.alpha=0.3"])
    am = to_analog(_net(), hw, chips=3, seed=2, nabn=True)
    for bn in am.batchnorms:
        bn.momentum = momentum
    am.calibrate(data.split(64))
    bn = am.batchnorms[0]
    for b in am.batchnorms:
        b.mode = "fixed"
    mu, var, z = _true_stats(am, data)
    # Bound: 4 standard errors of the mean over N images (each image's spatial mean is one sample).
    img_means = z.mean(dim=(3, 4))                              # [K, N, C]
    se = img_means.std(dim=1) / math.sqrt(z.shape[1])
    err_mu = (bn.mean - mu).abs() / se
    err_var = ((bn.var - var) / var).abs()
    if expect_close:
        assert err_mu.max().item() < 1e-3                      # the exact average of the batch means
        # E over batches of the within-batch variance = total variance - variance of the batch means
        assert err_var.max().item() < 0.05
    else:  # 0.985 the first batch's statistics (0.999^15), 0.015 the other 15 batches'
        first = to_analog(_net(), hw, chips=3, seed=2, nabn=True)
        for b in first.batchnorms:
            b.momentum = momentum
        m1 = first.calibrate([data[:64]]).batchnorms[0].mean   # the first batch alone
        assert ((bn.mean - m1).abs() <= 0.03 * (mu - m1).abs() + 1e-6).all()
        assert err_mu.max().item() > 1e-2                      # and not the average over the data
    assert torch.equal(bn.batches, torch.full((3,), 16.0))


def test_load_statistics_and_calibrate_once_under_fixed_hardware():
    """Fig. 3: calibrate once at eta0 0.06 and start every point from those statistics (same chips)."""
    net = _net()
    data = _data(256)
    hw_cfg = {"device": {"model": "weight_noise"}, "weight_noise": {"kind": "mul", "eta0": 0.1}}
    cal = hardware_overrides(hw_cfg, ["weight_noise.eta0=0.06", "hardware.weight_noise.spatial_std=0.2"])
    assert cal["weight_noise"] == {"kind": "mul", "eta0": 0.06, "spatial_std": 0.2} and hw_cfg["weight_noise"]["eta0"] == 0.1
    cfg = {"mitigation": {"nabn": True, "calib_hardware": ["weight_noise.eta0=0.06"], "calib_momentum": None,
                          "dynamic": True}, "mc": {"chips": 3, "seed": 0}}
    calibrator = Calibrator(cfg, [data[:128], data[128:]], torch.device("cpu"), 1.0)
    hw = load_hardware("weight_noise", ["weight_noise.kind=mul", "weight_noise.eta0=0.1"])
    pcfg = {**cfg, "hardware": {"name": "weight_noise", "device": {"model": "weight_noise"},
                                "weight_noise": {"kind": "mul", "eta0": 0.1}}}
    runs = []
    for _ in range(2):
        am = to_analog(net, hw, chips=3, seed=0, nabn=True)
        calibrator(am, net, pcfg)
        runs.append(am)
    assert len(calibrator._once) == 1                         # one calibration for the whole sweep
    ref = to_analog(net, load_hardware("weight_noise", ["weight_noise.kind=mul", "weight_noise.eta0=0.06"]),
                    chips=3, seed=0, nabn=True)
    for bn in ref.batchnorms:
        bn.momentum = None
    ref.calibrate([data[:128], data[128:]])
    for am in runs:
        torch.testing.assert_close(am.batchnorms[1].mean, ref.batchnorms[1].mean)
        assert all(b.mode == "dynamic" for b in am.batchnorms)
    # At eta0 0.1 its own calibration differs from the one at 0.06.
    own = to_analog(net, hw, chips=3, seed=0, nabn=True).calibrate([data[:128], data[128:]])
    assert (own.batchnorms[1].mean - ref.batchnorms[1].mean).abs().max().item() > 1e-4


def test_dynamic_calibration_moves_by_algorithm_1s_momentum():
    net = _net()
    am = to_analog(net, load_hardware("ideal"), chips=1, nabn=True)
    for bn in am.batchnorms:
        bn.momentum = None
    data = _data(256)
    am.calibrate([data[:128], data[128:]], dynamic=True)
    before = am.batchnorms[0].mean.clone()
    x = _data(64, seed=5) * 3
    seen = []
    h = am.batchnorms[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
    with torch.no_grad():
        am(x)
    h.remove()
    mu = seen[0].mean(dim=(0, 2, 3))
    torch.testing.assert_close(am.batchnorms[0].mean[0], 0.999 * before[0] + 0.001 * mu, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------- ImageNet train split (fabricated)
@pytest.fixture
def imagenet_tree(tmp_path):
    """<tmp>/train/<wnid>/*.JPEG (3 classes x 4) and <tmp>/val/<wnid>/*.JPEG (3 x 1), ImageFolder layout."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 1)):
        for c, wnid in enumerate(("n03000003", "n01000001", "n02000002")):
            (tmp_path / split / wnid).mkdir(parents=True)
            for i in range(n):
                lo = {"n01000001": 0, "n02000002": 100, "n03000003": 200}[wnid]
                Image.fromarray(rng.integers(lo, lo + 50, (40, 48, 3), dtype=np.uint8)).save(
                    tmp_path / split / wnid / f"{wnid}_{i}.JPEG", quality=95)
    return tmp_path


def test_imagenet_train_split_loads_and_streams(imagenet_tree):
    from aimcbench.data import load_split
    from aimcbench.data.imagenet import iter_imagenet

    x, y = load_split("imagenet", "train", data_dir=str(imagenet_tree))
    assert x.shape == (12, 3, 224, 224) and y.tolist() == [0] * 4 + [1] * 4 + [2] * 4   # sorted wnids
    means = x.mean(dim=(1, 2, 3))
    assert means[:4].max() < means[4:8].min() and means[4:8].max() < means[8:].min()
    batches = iter_imagenet("train", 5, data_dir=str(imagenet_tree), resize=32, crop=24)
    got = list(batches)
    assert len(batches) == 3 and [b[0].shape[0] for b in got] == [5, 5, 2] and got[0][0].shape[1:] == (3, 24, 24)
    assert torch.equal(torch.cat([b[1] for b in got]), y)      # one pass, every training image once
    sub = iter_imagenet("train", 4, data_dir=str(imagenet_tree), limit=6, seed=1)
    assert sum(b[0].shape[0] for b in sub) == 6


def test_nabn_calibration_batches_read_imagenet_train(imagenet_tree):
    cfg = {"mitigation": {"nabn": True, "calib_pass": True}, "eval": {"batch_size": 5}, "mc": {"seed": 0},
           "dataset": {"name": "imagenet", "data_dir": str(imagenet_tree), "resize": 32, "crop": 32}}
    batches = calibration_batches(cfg)
    assert [b.shape for b in batches] == [(5, 3, 32, 32), (5, 3, 32, 32), (2, 3, 32, 32)]
    cfg["mitigation"] = {"nabn": True, "calib_batches": 1}
    assert [b.shape[0] for b in calibration_batches(cfg)] == [5]
    cfg["mitigation"] = {"nabn": False}
    assert calibration_batches(cfg) is None


def test_a_shard_calibrates_under_fixed_hardware_as_its_chips_do_unsharded():
    """Issue 15: sharding with calib_hardware. Shard 1 of 2 (chips 2, 3 of 4) loads the statistics those chips
    get in the unsharded calibration, bit for bit, so its merged rows are the unsharded run's."""
    net = _net()
    data = _data(256)
    hw = load_hardware("weight_noise", ["weight_noise.kind=mul", "weight_noise.eta0=0.1"])
    base = {"mitigation": {"nabn": True, "calib_hardware": ["weight_noise.eta0=0.06"], "calib_momentum": None},
            "hardware": {"name": "weight_noise", "device": {"model": "weight_noise"},
                         "weight_noise": {"kind": "mul", "eta0": 0.1}}}
    stats = {}
    for shard in ({"chips": 4, "seed": 0}, {"chips": 4, "seed": 0, "shard_index": 1, "shard_count": 2}):
        pcfg = {**base, "mc": shard}
        am = to_analog(net, hw, chips=chip_ids(shard), seed=0, nabn=True)
        Calibrator(pcfg, [data[:128], data[128:]], torch.device("cpu"), 1.0)(am, net, pcfg)
        stats[shard.get("shard_count", 1)] = [(bn.mean.clone(), bn.var.clone()) for bn in am.batchnorms]
    for (m_all, v_all), (m_2, v_2) in zip(stats[1], stats[2]):
        assert m_2.shape[0] == 2 and torch.equal(m_all[2:], m_2) and torch.equal(v_all[2:], v_2)
        assert not torch.equal(m_all[:2], m_2)  # other chips, other statistics: the slice is what matters
