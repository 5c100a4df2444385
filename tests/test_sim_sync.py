"""Issue 15: a forward reads nothing back to the host on a GPU, and its sync-free way of computing bound management
and sign phases gives the numbers of the CPU's way bit for bit.

The CPU stand-in for ``torch.cuda.set_sync_debug_mode("error")``: a TorchDispatchMode that records every operator
whose result the host must wait for (``item``/``bool`` are ``_local_scalar_dense``; ``nonzero``, boolean
indexing and ``masked_select`` size their output from the data). AIMC_SYNC_FREE=1 selects the GPU's way on a CPU.
scripts/gpu_check.py runs the same forward under the real sync debug mode where a GPU is at hand."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from aimcbench.sim import load_hardware, profile_names, to_analog
from aimcbench.sim.bounds import MAX_HALVINGS, Z_MAX, first_sure_halving, window
from aimcbench.sim.config import ADCConfig
from aimcbench.sim.converters import ADC

_HOST_READS = ("aten._local_scalar_dense", "aten.nonzero", "aten.is_nonzero", "aten.masked_select",
               "aten.equal", "aten._unique", "aten.unique")


class HostReads(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seen: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name.startswith(_HOST_READS):
            self.seen[name] += 1
        return func(*args, **(kwargs or {}))


def _net() -> nn.Module:
    """Positive weights: column sums of up to 1024 normalized inputs reach far past the ADC bounds (noise
    management scales every input vector to max |x| = 1, so the inputs' size alone cannot make outputs clip)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(16 * 8 * 8, 40), nn.ReLU(), nn.Linear(40, 10)).eval()
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            p.data.abs_()
    return net


def _forward(monkeypatch, sync_free: bool, profile: str, overrides=(), scale: float = 20.0):
    """Two forwards of 3 chips (the second reuses the programmed chips); the host reads of the second."""
    monkeypatch.setenv("AIMC_SYNC_FREE", "1" if sync_free else "0")
    torch.manual_seed(1)
    x = (torch.rand(6, 3, 8, 8) - 0.3) * scale      # negative inputs too; large: outputs clip
    with torch.no_grad():
        am = to_analog(_net(), load_hardware(profile, list(overrides)), chips=3, seed=0)
        y1 = am(x)
        reads = HostReads()
        with reads:
            y2 = am(x)
    return (y1, y2), reads.seen


CASES = [(p, ()) for p in profile_names()] + [
    ("pcm", ("adc.out_noise=3.0",)),                          # noise near the bound: a window of 2 halvings
    ("pcm", ("adc.out_noise=20.0",)),                         # noise past the bound: every halving uncertain
    ("pcm", ("adc.bits=4", "adc.bound=0.001")),               # vectors that still clip after 10 halvings
    ("pcm", ("mapping.differential=separate_adc",)),          # two ADC reads per output, clipped together
    ("pcm", ("adc.nonideal.offset_std_lsb=0.5", "adc.nonideal.gain_std=0.02")),
    ("rram", ("adc.bound_management=iterative", "adc.out_noise=0.05")),  # sign phases and bound management
]


@pytest.mark.parametrize("profile, overrides", CASES)
def test_sync_free_forward_reads_nothing_back_and_equals_the_cpu_way(monkeypatch, profile, overrides):
    ref, reads_cpu = _forward(monkeypatch, False, profile, overrides)
    got, reads = _forward(monkeypatch, True, profile, overrides)
    assert not reads, f"host reads in a sync-free forward: {dict(reads)}"
    for a, b in zip(ref, got):
        assert torch.equal(a, b), float((a - b).abs().max())
    hw = load_hardware(profile, list(overrides))
    if hw.adc.bound_management == "iterative" and hw.adc.bound is not None:
        # the CPU way did pick clipped vectors out: the comparison covered bound management
        assert reads_cpu["aten.nonzero.default"] > 0, dict(reads_cpu)


def test_sync_free_blocks_change_no_number(monkeypatch):
    # the passes over blocks of a few vectors (as on a large GPU chunk) give the numbers of one block
    from aimcbench.sim import bounds

    ref, _ = _forward(monkeypatch, True, "pcm", ("adc.out_noise=3.0",))
    monkeypatch.setattr(bounds, "BLOCK_ELEMENTS", 100)
    got, reads = _forward(monkeypatch, True, "pcm", ("adc.out_noise=3.0",))
    assert not reads and all(torch.equal(a, b) for a, b in zip(ref, got))


def test_the_detector_sees_the_cpu_ways_host_reads(monkeypatch):
    _, reads = _forward(monkeypatch, False, "rram")
    assert reads["aten._local_scalar_dense.default"] > 0   # the sign-phase check


def test_sign_phases_are_per_vector(monkeypatch):
    # An unsigned ADC reads a vector with negative inputs in two phases, one without in one: a vector's output
    # does not depend on whether another vector of its batch has negative inputs.
    monkeypatch.setenv("AIMC_SYNC_FREE", "0")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 16)).eval()
    pos = torch.rand(2, 64)
    mixed = torch.cat((pos[:1], torch.randn(1, 64)))
    hw = load_hardware("rram", [])
    outs = []
    with torch.no_grad():
        for x in (pos, mixed):
            outs.append(to_analog(net, hw, chips=4, seed=0)(x))
    assert torch.equal(outs[0][:, 0], outs[1][:, 0])
    assert not torch.equal(outs[0][:, 1], outs[1][:, 1])


@pytest.mark.parametrize("bound, noise", [(12.0, 0.02), (1.0, 0.1), (1.0, 0.3), (12.0, 20.0)])
def test_first_sure_halving_is_the_first_that_cannot_clip(bound, noise):
    adc = ADC(ADCConfig(bits=8, bound=bound, out_noise=noise), bound, True)
    band = noise * Z_MAX + 1e-5 * bound
    level = torch.cat((torch.rand(20000) * 3000 * bound, torch.tensor([0.0, bound - band, bound + band,
                                                                         2 * (bound - band)])))
    j = first_sure_halving(adc, level)
    t = bound - band
    if t <= 0:
        assert (j == MAX_HALVINGS + 1).all()
        assert window(adc) == MAX_HALVINGS
        return
    assert (torch.ldexp(level, -j) < t).all()                          # cannot clip at j ...
    jm = (j - 1).clamp(min=0)
    assert ((j == 0) | (torch.ldexp(level, -jm) >= t)).all()           # ... and j is the first such
    u = window(adc)
    assert 2**u * t >= bound + band and (u == 0 or 2 ** (u - 1) * t < bound + band)
    assert u == math.ceil(math.log2((bound + band) / t))
