"""Study 003's naive ADC full scale (hardware adc.full_scale calibrated_max): the largest ideal column output on
calibration inputs, one per layer, set by AnalogModel.calibrate_adc or written per layer by the error model's
naive_layer (aimc optimize)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aimcbench.sim import load_hardware, to_analog
from aimcbench.sim.errormodel import (
    layer_inputs,
    layer_stats,
    naive_layer,
    optimize_layer,
)


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(300, 40), nn.ReLU(), nn.Linear(40, 10))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, m.in_features ** -0.5)
    return net.eval()


def _inputs(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 300, generator=g) * (torch.rand(n, 300, generator=g) < 0.3)  # sparse, MNIST-like


def _expected_max(cb, x: torch.Tensor) -> float:
    """By hand: per row array, inputs divided by their own max |x|, times the normalized weights."""
    best = 0.0
    for r0, r1 in cb.plan.row_splits:
        xs = x[:, r0:r1]
        alpha = xs.abs().amax(dim=1, keepdim=True).clamp(min=1e-30)
        y = (xs / alpha) @ (cb.weight[:, r0:r1] / cb.scale_full[:, r0:r1]).t()
        best = max(best, float(y.abs().max()))
    return best


@torch.no_grad()
def test_calibrated_full_scale_is_the_largest_ideal_output_per_layer():
    net, hw = _net(), load_hardware("crossbar", ["adc.bits=6", "adc.full_scale=calibrated_max"])
    calib = [_inputs(32, 1), _inputs(32, 2)]
    am = to_analog(net, hw, chips=2, seed=0)
    got = am.calibrate_adc(calib)
    x = torch.cat(calib)
    first, second = am.crossbars["0"], am.crossbars["2"]
    assert len(first.plan.row_splits) == 3  # 300 inputs on 128-row arrays
    assert got["0"] == pytest.approx(_expected_max(first, x), rel=1e-5)
    assert got["2"] == pytest.approx(_expected_max(second, torch.relu(net[0](x))), rel=1e-5)
    assert first.adc.bound == got["0"] and second.adc.bound == got["2"]
    # far below the column's largest possible output (128 rows at full input on g_max)
    assert 0.5 < got["0"] < 40 and 0.5 < got["2"] < 40
    # the error model's naive layer (aimc optimize with calibrated_max) sets the same bound on the same inputs
    acts = layer_inputs(net, x, ["0", "2"])
    for name in ("0", "2"):
        st = layer_stats(name, net.get_submodule(name).weight, acts[name], hw)
        ch = optimize_layer(st, hw, 6, hw.g_min_uS, hw.device.g_max_uS)
        assert ch.adc_bound == pytest.approx(got[name], rel=1e-5)
        assert (ch.g_min_uS, ch.g_max_uS) == (hw.g_min_uS, hw.device.g_max_uS)  # device limits
        assert ch.adc_bound == naive_layer(st, hw, 6).adc_bound


def test_fixed_full_scale_is_untouched():
    am = to_analog(_net(), load_hardware("crossbar"), chips=1)
    assert am.calibrate_adc([_inputs(8, 1)]) == {}
    assert all(cb.adc.bound == 128.0 for cb in am.crossbars.values())


def test_chip_k_does_not_depend_on_chunking():
    net, hw = _net(), load_hardware("crossbar", ["adc.bits=5", "adc.full_scale=calibrated_max"])
    calib, x = [_inputs(16, 3), _inputs(16, 4)], _inputs(20, 9)
    outs = []
    for chunk in (1, 3, None):
        am = to_analog(net, hw, chips=[0, 2, 5], seed=7, chip_chunk=chunk)
        am.calibrate(calib)  # the generic path: no batch norm needed when an ADC is calibrated
        outs.append(am(x))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    # chip 5 alone is chip 5 of the group
    am = to_analog(net, hw, chips=[5], seed=7)
    am.calibrate(calib)
    assert torch.equal(am(x)[0], outs[0][2])


@pytest.mark.parametrize("bits", [4, 5, 6, 7, 8])
@torch.no_grad()
def test_calibrated_full_scale_reads_below_8_bits(bits):
    """The worst-case full scale (128) digitizes every output of these layers to zero below 8 bits (chance
    accuracy); the calibrated one keeps the outputs close to the digital ones."""
    net, x = _net(), _inputs(64, 5)
    ref = net(x)
    worst = to_analog(net, load_hardware("crossbar", [f"adc.bits={bits}"]), chips=2)
    cal = to_analog(net, load_hardware("crossbar", [f"adc.bits={bits}", "adc.full_scale=calibrated_max"]), chips=2)
    cal.calibrate_adc([_inputs(64, 6), _inputs(64, 7)])
    bias = net[2].bias
    y_worst, y_cal = worst(x) - bias, cal(x) - bias
    if bits <= 6:
        assert float(y_worst.abs().max()) == 0.0
    elif bits == 7:
        assert float((y_worst == 0).float().mean()) > 0.9
    err = float((y_cal - (ref - bias)).pow(2).mean() / (ref - bias).pow(2).mean())
    assert err < {4: 0.5, 5: 0.2}.get(bits, 0.1)
    assert float((y_cal != 0).float().mean()) > 0.8


def test_calibrate_without_batchnorm_or_calibrated_adc_still_refuses():
    with pytest.raises(RuntimeError, match="calibrated_max"):
        to_analog(_net(), load_hardware("crossbar"), chips=1).calibrate([_inputs(4, 1)])


def test_a_sweep_calibrates_the_full_scale_itself(tmp_path):
    """`aimc sweep hardware.adc.full_scale=calibrated_max` sets each layer's full scale from training images
    (no per-layer profile needed): no uncalibrated-bound notice, and at 4 bits the chips keep most of the digital
    accuracy where the worst-case bound 128 reads zero."""
    import subprocess
    import sys

    import pandas as pd

    def run(name, *extra):
        out = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "aimcbench", "sweep", "model=mlp3", "dataset=synthetic",
                               "train=quick", "hardware=crossbar", "sweep=adc_bits", "sweep.values=[4]",
                               "mc.chips=2", "eval.n=128", "threads=1", "progress=off", f"hydra.run.dir={out}",
                               *extra], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        t = pd.read_csv(out / "percentiles.csv")
        return proc.stdout + proc.stderr, float(t["mean"].iloc[0]), float(t["digital"].iloc[0])

    log, acc_cal, digital = run("cal", "hardware.adc.full_scale=calibrated_max")
    assert "keep adc.bound" not in log
    _, acc_worst, _ = run("worst")
    assert acc_cal > max(acc_worst + 0.2, 0.7 * digital), (acc_cal, acc_worst, digital)
