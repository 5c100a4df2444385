"""The counter-based chip streams (sim/devices/rng.py): chip k's numbers do not depend on its chunk, and they are
independent standard normals / uniforms (tested statistically, enough samples to be sure)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from aimcbench.sim.devices.rng import ChipKeys


def test_transcendentals_give_the_same_bits_wherever_an_element_sits():
    # The premise of float32 Box-Muller: torch's CPU log/cos/sin/sqrt of an element do not depend on its
    # position in the tensor (vector body or tail, thread split), so chip k's normals do not depend on its chunk.
    x = torch.rand(100_003, generator=torch.Generator().manual_seed(0)) + 1e-3
    for f in (torch.log, torch.cos, torch.sin, torch.sqrt):
        ref = f(x)
        for off in (1, 3, 7, 15, 17, 31):
            assert torch.equal(f(x[off:].clone()), ref[off:]), (f.__name__, off)
        assert torch.equal(torch.stack([f(x[i:i + 1])[0] for i in range(200)]), ref[:200])


@pytest.mark.parametrize("shape", [(7, 13), (1,), (3, 1, 5), (300, 257)])
def test_chip_k_draws_the_same_numbers_in_any_chunk(shape):
    ref = ChipKeys(5, "layer", [4], "out").randn(shape)[0]
    for chips in ([4], [0, 4], [9, 3, 4, 1, 2], list(range(12))):
        keys = ChipKeys(5, "layer", chips, "out")
        assert torch.equal(keys.randn(shape)[chips.index(4)], ref)
    u = ChipKeys(5, "layer", [4], "stuck").rand(shape)[0]
    assert torch.equal(ChipKeys(5, "layer", [1, 4, 2], "stuck").rand(shape)[1], u)


def test_element_lookups_match_the_dense_stream():
    keys = ChipKeys(0, "x", range(3), "out")
    dense = keys.randn((40, 26)).view(3, -1)
    rows = torch.tensor([0, 2, 2, 1])
    idx = torch.tensor([0, 5, 1039, 500])
    assert torch.equal(keys.randn_at(rows, idx), dense[rows, idx])
    start = torch.tensor([0, 26 * 7, 26 * 39])
    got = keys.randn_rows(torch.tensor([1, 0, 2]), start, 26)
    assert torch.equal(got, torch.stack([dense[1, 0:26], dense[0, 182:208], dense[2, 1014:1040]]))


def test_normals_are_standard_and_independent():
    n_chips, n = 40, 50_000
    z = ChipKeys(1, "stat", range(n_chips), "out").randn((n,)).double()
    total = z.numel()  # 2,000,000
    assert abs(z.mean().item()) < 5 / math.sqrt(total)
    # sample variance: sd of s^2 is sqrt(2/N) for normals
    assert abs(z.var().item() - 1) < 5 * math.sqrt(2 / total)
    assert abs((z**4).mean().item() - 3) < 5 * math.sqrt(96 / total)  # kurtosis of a normal (var of z^4 is 96)
    assert stats.kstest(z[:8].flatten().numpy(), "norm").pvalue > 1e-4
    # no correlation between chips, nor between neighbouring elements (each |r| within 5 sigma of 0)
    c = torch.corrcoef(z[:, :10_000])
    off = c[~torch.eye(n_chips, dtype=torch.bool)]
    assert off.abs().max().item() < 5 / math.sqrt(10_000) * 1.3  # max of 1,560 correlations
    lag = (z[:, 1:] * z[:, :-1]).mean().item()
    assert abs(lag) < 5 / math.sqrt(total)


def test_uniforms_are_uniform():
    u = ChipKeys(2, "stat", range(10), "u").rand((20_000,)).double().flatten()
    assert u.min().item() >= 0 and u.max().item() < 1
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-4
    assert abs(u.mean().item() - 0.5) < 5 * math.sqrt(1 / 12 / u.numel())


def test_streams_and_seeds_are_distinct():
    a = ChipKeys(0, "l", [0], "out @1").randn((1000,))
    assert not torch.equal(a, ChipKeys(0, "l", [0], "out @2").randn((1000,)))
    assert not torch.equal(a, ChipKeys(1, "l", [0], "out @1").randn((1000,)))
    assert not torch.equal(a, ChipKeys(0, "m", [0], "out @1").randn((1000,)))
    assert torch.equal(a, ChipKeys(0, "l", [0], "out @1").randn((1000,)))
