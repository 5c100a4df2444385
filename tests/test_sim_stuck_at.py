"""The stuck_at device family (and the device registry it is registered in), tested statistically."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
import torch
from torch import nn

from aimcbench.sim import ConfigError, load_hardware, to_analog
from aimcbench.sim.config import DeviceConfig
from aimcbench.sim.devices import DEVICES, ChipStreams, StuckAtDevice, make_device

N = 200  # 200x200 weights: 40,000 cells of each sign per chip


def _hw(gmin=0.0, gmax=0.0, *extra):
    # g_min 2.5 uS: a cell stuck at g_min is then distinguishable from one stuck at 0.
    return load_hardware("stuck_at", [f"device.stuck_at_gmin_frac={gmin}", f"device.stuck_at_gmax_frac={gmax}",
                                      "device.g_min_uS=2.5", *extra])


def _binomial_ok(count: int, n: int, p: float, z: float = 5.0) -> bool:
    """count/n within z standard errors of p (normal approximation; n p (1 - p) >> 1 here)."""
    return abs(count / n - p) <= z * math.sqrt(p * (1 - p) / n)


def test_every_model_choice_is_a_registered_family():
    choices = dict(DeviceConfig.__dataclass_fields__["model"].metadata)["choices"]
    assert set(choices) == set(DEVICES)
    for name in choices:
        assert DEVICES[name].model == name
    assert isinstance(make_device(_hw()), StuckAtDevice)


@pytest.mark.parametrize("gmin, gmax", [(0.02, 0.05), (0.0, 0.1), (0.3, 0.0)])
def test_stuck_fraction_per_chip_matches_setting_and_stuck_cells_sit_exactly_at_the_bounds(gmin, gmax):
    hw = _hw(gmin, gmax)
    dev = make_device(hw)
    w = torch.full((N, N), 0.5)  # g+ targets mid-range (neither bound), g- (the idle cell) targets g_min
    target = 2.5 + 0.5 * (25.0 - 2.5)
    p = dev.program(w, ChipStreams(0, "layer", range(4)))
    n = N * N
    for k in range(4):
        gp, gm = p.g_plus[k], p.g_minus[k]
        at_min, at_max = gp == torch.tensor(2.5), gp == torch.tensor(25.0)
        # Every cell is either working (on target) or stuck exactly at g_min or g_max.
        assert bool(((gp == torch.tensor(target)) | at_min | at_max).all())
        assert bool(((gm == torch.tensor(2.5)) | (gm == torch.tensor(25.0))).all())
        assert _binomial_ok(int(at_min.sum()), n, gmin) if gmin else int(at_min.sum()) == 0
        assert _binomial_ok(int(at_max.sum()), n, gmax) if gmax else int(at_max.sum()) == 0
        assert _binomial_ok(int((gm == torch.tensor(25.0)).sum()), n, gmax) if gmax else \
            bool((gm == torch.tensor(2.5)).all())
    # The chips have different faults.
    assert not torch.equal(p.g_plus[0], p.g_plus[1])


def test_chip_k_keeps_its_faults_alone_or_in_a_batch_and_at_every_sweep_point():
    w = torch.rand(N, N) * 2 - 1
    hw = _hw(0.01, 0.05)
    dev = make_device(hw)
    alone = dev.program(w, ChipStreams(7, "fc", [3]))
    batch = dev.program(w, ChipStreams(7, "fc", [0, 1, 2, 3, 4]))
    assert torch.equal(alone.g_plus[0], batch.g_plus[3]) and torch.equal(alone.g_minus[0], batch.g_minus[3])

    def stuck_on(h):
        p = make_device(h).program(w, ChipStreams(7, "fc", [3]))
        return torch.stack([p.g_plus[0], p.g_minus[0]]) == torch.tensor(25.0)

    small, large = stuck_on(_hw(0.0, 0.01)), stuck_on(_hw(0.0, 0.05))
    # Nested faults: the cells stuck at a 1% fraction are stuck at 5% too (a sweep adds faults to the same chip).
    assert bool(large[small].all()) and int(large.sum()) > 3 * int(small.sum()) > 0
    # Programming variation of the working cells draws from another stream: the faults do not move.
    varied = stuck_on(_hw(0.0, 0.05, "device.variation=0.05"))
    assert torch.equal(varied, large)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))


def test_zero_fractions_reproduce_the_ideal_device_bitwise():
    model = _model()
    x = torch.randn(16, 3, 6, 6)
    for ov in ([], ["adc.bits=6", "dac.bits=8", "mapping.tile_rows=16", "mapping.tile_cols=8"]):
        ideal = to_analog(model, load_hardware("ideal", ov), chips=3, seed=1)(x)
        stuck = to_analog(model, load_hardware("stuck_at", ["device.stuck_at_gmax_frac=0", *ov]), chips=3, seed=1)(x)
        assert torch.equal(ideal, stuck)


def test_accuracy_falls_as_the_stuck_fraction_grows():
    # A nearest-class-mean classifier on overlapping Gaussian blobs (~90% accurate digitally): one analog
    # Linear(64, 10); 16 chips x 2000 samples make the accuracy's standard error ~0.2%.
    g = torch.Generator().manual_seed(0)
    means = torch.randn(10, 64, generator=g)
    labels = torch.randint(0, 10, (2000,), generator=g)
    x = means[labels] + 2.5 * torch.randn(2000, 64, generator=g)
    lin = nn.Linear(64, 10)
    with torch.no_grad():
        lin.weight.copy_(means)
        lin.bias.copy_(-0.5 * (means * means).sum(1))
    digital = (lin(x).argmax(1) == labels).float().mean().item()
    assert 0.8 < digital < 0.97
    acc = []
    for frac in (0.0, 0.02, 0.1, 0.3):
        hw = load_hardware("stuck_at", ["device.stuck_at_gmin_frac=0", f"device.stuck_at_gmax_frac={frac}"])
        y = to_analog(lin, hw, chips=16, seed=0)(x)              # [16, 2000, 10]
        acc.append((y.argmax(-1) == labels).float().mean().item())
    assert acc[0] == pytest.approx(digital, abs=1e-3)
    assert acc[0] > acc[1] + 0.01 and acc[1] > acc[2] + 0.02 and acc[2] > acc[3] + 0.04, acc


def test_bad_fractions_name_the_key():
    with pytest.raises(ConfigError, match=r"^hardware\.device\.stuck_at_gmax_frac: must be a number in \[0\.0, 1\.0\]"):
        load_hardware("stuck_at", ["device.stuck_at_gmax_frac=1.5"])
    with pytest.raises(ConfigError, match=r"^hardware\.device\.stuck_at_gmax_frac: stuck_at_gmin_frac \+ "
                                          r"stuck_at_gmax_frac must be at most 1"):
        load_hardware("stuck_at", ["device.stuck_at_gmin_frac=0.6", "device.stuck_at_gmax_frac=0.5"])
    with pytest.raises(ConfigError, match=r"^hardware\.device\.stuck_at_gmin_frac: must be 0 unless device\.model "
                                          r"is stuck_at"):
        load_hardware("rram", ["device.stuck_at_gmin_frac=0.1"])
    assert "\n" not in str(ConfigError("k", "m"))
    hints = typing.get_type_hints(DeviceConfig)
    for f in dataclasses.fields(DeviceConfig):
        if f.name.startswith("stuck_at"):
            assert hints[f.name] is float and len(f.metadata["doc"]) > 20
