"""Noise-aware batch norm: per-chip statistics recalibrated under the noise (study 004, Algorithm 1)."""

import pytest
import torch
from torch import nn

from aimcbench.sim import load_hardware, to_analog


def _net_with_population_stats(data: torch.Tensor) -> nn.Module:
    """A small CNN with batch norm whose running statistics are the exact averages over ``data``."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8, momentum=None), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, stride=2), nn.BatchNorm2d(8, momentum=None), nn.ReLU(),
                        nn.Flatten(), nn.Linear(8 * 7 * 7, 10))
    net.train()
    with torch.no_grad():
        for batch in data.split(512):
            net(batch)
    return net.eval()


def _data(n=2048, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 16, 16, generator=g)


def test_nabn_leaves_a_noise_free_model_unchanged():
    data = _data()
    net = _net_with_population_stats(data)
    x = _data(256, seed=1)
    am = to_analog(net, load_hardware("ideal"), chips=2, nabn=True)
    am.calibrate(data.split(512))
    with torch.no_grad():
        y, ref = am(x), net(x)
    rel = ((y - ref).norm(dim=(1, 2)) / ref.norm())
    assert rel.max().item() < 0.02
    # Unchanged statistics without calibration: exactly the digital model.
    am = to_analog(net, load_hardware("ideal"), chips=2, nabn=True)
    with torch.no_grad():
        torch.testing.assert_close(am(x)[0], ref, atol=1e-5, rtol=1e-4)


def test_calibration_statistics_are_per_chip_and_independent_of_batching():
    data = _data(1024)
    net = _net_with_population_stats(data)
    hw = load_hardware("weight_noise", ["weight_noise.alpha=0.5"])
    am = to_analog(net, hw, chips=4, seed=3, nabn=True).calibrate(data.split(256))
    means = am.batchnorms[0].mean
    assert means.shape == (4, 8)
    assert (means[0] - means[1]).abs().max() > 1e-3       # each chip has its own statistics
    alone = to_analog(net, hw, chips=[2], seed=3, nabn=True).calibrate(data.split(256))
    torch.testing.assert_close(alone.batchnorms[0].mean[0], means[2], atol=1e-5, rtol=1e-4)
    chunked = to_analog(net, hw, chips=4, seed=3, nabn=True, chip_chunk=3).calibrate(data.split(256))
    torch.testing.assert_close(chunked.batchnorms[1].var, am.batchnorms[1].var, atol=1e-5, rtol=1e-4)


def test_calibration_follows_the_momentum_rule():
    data = _data(512)
    net = _net_with_population_stats(data)
    am = to_analog(net, load_hardware("ideal"), chips=1, nabn=True)
    b1, b2 = data[:256], data[256:] * 2.0
    am.calibrate([b1])
    m1 = am.batchnorms[0].mean.clone()
    am.batchnorms[0].calibrated.zero_()
    am.calibrate([b2])
    m2 = am.batchnorms[0].mean.clone()
    am.batchnorms[0].calibrated.zero_()
    am.calibrate([b1, b2])  # first batch initializes, the second moves it by (1 - 0.999)
    torch.testing.assert_close(am.batchnorms[0].mean, 0.999 * m1 + 0.001 * m2, atol=1e-6, rtol=1e-5)


def test_nabn_recovers_the_shift_of_mul_noise():
    """MUL noise scales every weight by about (1 + eta0): stale statistics mis-normalize, calibrated ones do not."""
    data = _data(1024)
    net = _net_with_population_stats(data)
    x = _data(256, seed=2)
    ref = net(x).detach()
    hw = load_hardware("weight_noise", ["weight_noise.kind=mul", "weight_noise.eta0=0.5"])
    errs = {}
    for nabn in (False, True):
        am = to_analog(net, hw, chips=3, nabn=nabn)
        if nabn:
            am.calibrate(data.split(256))
        with torch.no_grad():
            y = am(x)
        errs[nabn] = ((y - ref).norm(dim=(1, 2)) / ref.norm()).median().item()
    assert errs[True] < 0.5 * errs[False]


def test_calibrate_needs_nabn():
    net = _net_with_population_stats(_data(256))
    with pytest.raises(RuntimeError, match="nabn=True"):
        to_analog(net, load_hardware("ideal")).calibrate([_data(8)])
