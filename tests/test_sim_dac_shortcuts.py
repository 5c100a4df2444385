"""The DAC's speed shortcuts give the numbers of the plain definitions bit for bit (issue 15).

* A sign-magnitude (unsigned) DAC rounds v itself instead of copysign(q(|v|), v).
* An element-wise DAC (noise_management none) runs on a convolution's activations before they are unfolded.
"""

import pytest
import torch
from torch import nn

from aimcbench.sim import load_hardware, to_analog
from aimcbench.sim.config import DACConfig
from aimcbench.sim.converters import DAC
from aimcbench.sim.periphery import quantize_uniform_, step_size


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32)  # compares signed zeros too


@pytest.mark.parametrize("bits", [1, 4, 8, 12])
@pytest.mark.parametrize("bound", [0.7, 1.0])
@pytest.mark.parametrize("nm", ["abs_max", "none"])
def test_unsigned_dac_equals_copysign_of_quantized_magnitude(bits, bound, nm):
    g = torch.Generator().manual_seed(bits)
    step = step_size(bits, bound, signed=False)
    x = torch.cat([torch.randn(4, 5000, generator=g),
                   # exact half steps (ties), zeros of both signs, values past the bound
                   (torch.arange(-200, 200) * 0.5 * step).repeat(4, 1), torch.tensor([[0.0, -0.0, 3.0, -3.0]] * 4)], 1)
    cfg = DACConfig(bits=bits, bound=bound, signed=False, noise_management=nm, input_range=2.5)
    v, alpha = DAC(cfg)(x)
    ref = torch.copysign(quantize_uniform_((x / alpha).abs(), bits, bound, signed=False), x / alpha)
    assert torch.equal(_bits(v), _bits(ref))
    assert (v < 0).any() and (v == 0).any()  # both signs and zeros were exercised


@pytest.mark.parametrize("profile,overrides", [("rram_l3", []), ("rram_l3", ["dac.input_bits_per_cycle=2"]),
                                               ("pcm", ["dac.noise_management=none", "dac.input_range=3.0"])])
def test_elementwise_dac_before_unfolding_changes_no_number(monkeypatch, profile, overrides):
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 40, 3, padding=1), nn.ReLU(), nn.Conv2d(40, 16, 3, padding=1, stride=2),
                             nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 10)).eval()

    x = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 4 - 1  # negative inputs: sign phases
    hw = load_hardware(profile, overrides)
    with torch.no_grad():
        fast = to_analog(net(), hw, chips=3, seed=7)(x)
        monkeypatch.setattr(DAC, "elementwise", property(lambda self: False))
        plain = to_analog(net(), hw, chips=3, seed=7)(x)
    assert torch.equal(fast, plain)
    assert fast.abs().sum() > 0
