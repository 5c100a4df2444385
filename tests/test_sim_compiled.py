"""Issue 15: compiled noise kernels (a sweep's ``compile=true``, ``sim.compiled.set_compiled``): the same streams as the plain
kernels to about an ulp, statistically normal and bounded as bound management assumes, chip k the same chip alone
or in a chunk, and a point hash of their own (compiled numbers never mix with plain ones on resume).

Compiling takes ~15 s per kernel (two kernels); the module compiles them once."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aimcbench.config.schema import SweepApp
from aimcbench.runner.contract import point_hash
from aimcbench.sim import load_hardware, to_analog
from aimcbench.sim.bounds import Z_MAX
from aimcbench.sim import compiled as compiled_mod
from aimcbench.sim.compiled import set_compiled
from aimcbench.sim.devices.rng import ChipKeys, compiled_noise


@pytest.fixture(scope="module")
def compiled():
    before = set_compiled(True)
    try:
        if compiled_noise("normals", torch.device("cpu")) is None or compiled_noise("noisy", torch.device("cpu")) is None:
            pytest.skip("torch.compile cannot build a CPU kernel here (no C++ compiler)")
        yield
    finally:
        set_compiled(before)


def _plain(fn):
    before = set_compiled(False)
    try:
        return fn()
    finally:
        set_compiled(before)


def test_compiled_normals_are_the_plain_streams_to_an_ulp(compiled):
    keys = ChipKeys(3, "c", range(5), "out")
    got = keys.randn((333, 41))                      # odd length: the last pair is cut
    want = _plain(lambda: keys.randn((333, 41)))
    assert torch.allclose(got, want, rtol=0, atol=4e-6), (got - want).abs().max()
    y = torch.randn(5, 333, 41)
    noisy = keys.add_randn(y, 0.25)
    assert torch.allclose(noisy, y + 0.25 * want, rtol=0, atol=2e-6)
    assert _plain(lambda: keys.add_randn(y, 0.25)) is None   # plain: the caller adds the noise itself


def test_compiled_normals_are_standard_normal_and_bounded(compiled):
    n = 2_000_000
    z = ChipKeys(11, "stats", range(2), "out").randn((n // 2,)).flatten().double()
    # mean within 5 standard errors; variance within a chi-square band (alpha ~ 1e-6: sd of s^2 is sqrt(2/n))
    assert abs(z.mean().item()) < 5 / math.sqrt(n)
    assert abs(z.var().item() - 1.0) < 5 * math.sqrt(2 / n)
    # the tails: P(|z| > 3) = 0.0027 within 5 binomial standard deviations
    p3 = (z.abs() > 3).double().mean().item()
    assert abs(p3 - 0.0026998) < 5 * math.sqrt(0.0027 / n)
    assert z.abs().max().item() <= Z_MAX      # sync-free bound management relies on it (bounds.py)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10)).eval()


@pytest.mark.parametrize("profile, overrides", [
    ("pcm", ["adc.out_noise=0.5"]),                                        # noisy enough that bound management re-reads
    ("pcm", ["adc.out_noise=0.5", "mapping.differential=separate_adc"]),    # two reads per output
    ("rram", ["adc.bound_management=iterative", "adc.out_noise=0.05"]),     # unsigned ADC: sign phases
    ("pcm", ["adc.out_noise=0.5", "adc.nonideal.offset_std_lsb=0.5"]),      # ADC errors: noise compiled, ADC not
])
def test_compiled_chip_is_the_same_alone_in_a_chunk_and_on_rerun(compiled, profile, overrides):
    """The compiled reads (noise, ADC and the bound test in one kernel) keep a chip the same chip; they agree with
    the plain reads but for outputs an ulp moved across an ADC rounding edge."""
    x = torch.randn(32, 64)
    hw = load_hardware(profile, overrides)
    with torch.no_grad():
        chunk = to_analog(_net(), hw, chips=4, seed=7)(x)
        alone = to_analog(_net(), hw, chips=[2], seed=7)(x)
        again = to_analog(_net(), hw, chips=4, seed=7)(x)
        plain = _plain(lambda: to_analog(_net(), hw, chips=4, seed=7)(x))
    assert torch.equal(chunk[2], alone[0])
    assert torch.equal(chunk, again)
    # compiled and plain: the same chips, outputs within a few ADC steps where an ulp moved a rounding
    assert (chunk - plain).abs().median().item() == 0.0
    assert (chunk != plain).float().mean().item() < 0.05


def test_compile_is_part_of_the_point_hash():
    cfg = {"hardware": {"name": "pcm"}, "precision": "default", "sweep": {"key": "adc.bits"}, "eval": {"batch_size": 8}}
    plain = point_hash(dict(cfg), "w", "d")
    assert point_hash(dict(cfg, compile=False), "w", "d") == plain   # the default adds nothing to old hashes
    assert point_hash(dict(cfg, compile=True), "w", "d") != plain


def test_plain_is_the_default_and_a_failed_compile_falls_back(monkeypatch):
    assert SweepApp().compile is False
    before = set_compiled(True)
    try:
        monkeypatch.setattr(compiled_mod, "_KERNELS", {})
        monkeypatch.setattr(compiled_mod.torch, "compile", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no cc")))
        with pytest.warns(UserWarning, match="torch.compile of the normals_flat kernel failed"):
            assert compiled_noise("normals", torch.device("cpu")) is None
        assert ChipKeys(0, "l", [0], "s").randn((10,)).shape == (1, 10)   # the plain path
    finally:
        set_compiled(before)


def test_compiled_rereads_are_the_plain_ones_and_both_bound_managements_agree(compiled, monkeypatch):
    keys = ChipKeys(5, "b", range(3), "out halved 1")
    rows, start = torch.tensor([0, 2, 2, 1]), torch.tensor([0, 40, 8, 1000])   # even: as reads use it
    got = keys.randn_rows(rows, start, 40)
    assert torch.allclose(got, _plain(lambda: keys.randn_rows(rows, start, 40)), rtol=0, atol=4e-6)
    x = torch.randn(32, 64) * 4
    hw = load_hardware("pcm", ["adc.out_noise=1.0", "adc.bound=4"])   # many vectors clip
    outs = {}
    for way in ("0", "1"):   # the CPU's gather and the GPU's masked passes, both on compiled kernels
        monkeypatch.setenv("AIMC_SYNC_FREE", way)
        with torch.no_grad():
            outs[way] = to_analog(_net(), hw, chips=3, seed=1)(x)
    assert torch.equal(outs["0"], outs["1"])


def test_compiled_noiseless_pair_is_the_plain_difference(compiled, monkeypatch):
    """Study 002's RRAM (separate ADCs for W+ and W-, no output noise, no bound management): both reads digitized
    and subtracted by one kernel, the plain numbers."""
    from aimcbench.sim import crossbar as crossbar_mod

    used = []

    def spy(device):
        kernel = compiled_mod.digitized_difference(device)
        used.append(kernel is not None)
        return kernel

    monkeypatch.setattr(crossbar_mod, "digitized_difference", spy)
    x = torch.randn(32, 64) * 3                     # negative inputs too: both sign phases
    hw = load_hardware("rram_l3", [])
    with torch.no_grad():
        got = to_analog(_net(), hw, chips=3, seed=2)(x)
        alone = to_analog(_net(), hw, chips=[1], seed=2)(x)
        compiled_calls = list(used)
        plain = _plain(lambda: to_analog(_net(), hw, chips=3, seed=2)(x))
    assert compiled_calls and all(compiled_calls) and not any(used[len(compiled_calls):])
    assert torch.equal(got[1], alone[0])
    assert (got != plain).float().mean().item() < 0.01, (got - plain).abs().max()
    assert got.abs().sum() > 0
