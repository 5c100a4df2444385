"""ADC offset, gain and INL/DNL: the ideal case exactly, the spreads statistically, and chip independence.

Statistical tests are two-sided at alpha = 1e-4 each (chi-square for variances, normal for means), on 200 chips x
64 ADCs = 12,800 offsets/gains and 200 x 16 ADCs x 62 DNL steps; the seeds are fixed, so a pass is reproducible and
a wrong formula (e.g. a std off by 5 %, outside the ~1.6 % half-width of the offset test) fails.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from aimcbench.sim.adc_nonideal import (ADCErrors, adc_index, apply_adc_errors_, code_range, draw_adc_errors,
                                        stacked_adc_index)
from aimcbench.sim.config import ConfigError, _build
from aimcbench.sim.config_circuit import ADCNonidealConfig, check_circuit
from aimcbench.sim.devices.rng import ChipStreams
from aimcbench.sim.periphery import adc_levels, quantize_uniform_, step_size

ALPHA = 1e-4
CHIPS = range(200)


def _cfg(**kw) -> ADCNonidealConfig:
    return _build(ADCNonidealConfig, kw, "hardware.adc.nonideal")


def _draw(cfg, bits=6, signed=True, n_adc=64, chips=CHIPS, seed=11, layer="fc1"):
    return draw_adc_errors(cfg, bits, signed, n_adc, ChipStreams(seed, layer, chips))


def _var_in_bounds(x: torch.Tensor, sigma: float, dof: int) -> None:
    """sum x^2 / sigma^2 ~ chi2(dof) (x of mean zero by construction or with its mean removed)."""
    q = float((x.double() ** 2).sum()) / sigma**2
    lo, hi = stats.chi2.ppf(ALPHA / 2, dof), stats.chi2.ppf(1 - ALPHA / 2, dof)
    assert lo < q < hi, f"chi2 {q:.1f} outside [{lo:.1f}, {hi:.1f}] (dof {dof}); std ratio {math.sqrt(q / dof):.4f}"


def test_zero_settings_are_the_ideal_adc_exactly():
    assert not _cfg().active() and _draw(_cfg()) is None
    for signed in (True, False):
        bits, bound = 5, 3.0
        y = torch.randn(3, 50, 8) * 2.5
        ideal = quantize_uniform_(y.clone(), bits, bound, signed)
        zero = ADCErrors(torch.zeros(3, 8), torch.zeros(3, 8), None, code_range(bits, signed)[0])
        assert torch.equal(apply_adc_errors_(ideal.clone(), zero, step_size(bits, bound, signed), bound, signed), ideal)
        lo = code_range(bits, signed)[0]
        table = torch.arange(lo, lo + adc_levels(bits, signed), dtype=torch.float32).expand(3, 8, -1).clone()
        zero_t = ADCErrors(zero.offset_lsb, zero.gain, table, lo)
        assert torch.equal(apply_adc_errors_(ideal.clone(), zero_t, step_size(bits, bound, signed), bound, signed),
                           ideal)


def test_offset_and_gain_spreads_match_the_settings():
    e = _draw(_cfg(offset_std_lsb=0.7, gain_std=0.02))
    assert e.offset_lsb.shape == (200, 64) and e.transfer_lsb is None
    for x, sigma in ((e.offset_lsb, 0.7), (e.gain, 0.02)):
        _var_in_bounds(x, sigma, x.numel())
        z = float(x.double().mean()) / (sigma / math.sqrt(x.numel()))
        assert abs(z) < stats.norm.ppf(1 - ALPHA / 2)
    assert abs(float(torch.corrcoef(torch.stack([e.offset_lsb.flatten(), e.gain.flatten()]))[0, 1])) < 0.05
    # A wrong std is caught: the same draws judged against 5 % more fail the test.
    with pytest.raises(AssertionError):
        _var_in_bounds(e.offset_lsb, 0.7 * 1.05, e.offset_lsb.numel())


def test_dnl_spread_inl_is_its_running_sum_and_endpoints_are_exact():
    sigma, bits = 0.3, 6
    e = _draw(_cfg(dnl_std_lsb=sigma), bits=bits, n_adc=16)
    k = adc_levels(bits, True)
    assert e.transfer_lsb.shape == (200, 16, k) and k == 63
    dnl, inl = e.dnl_lsb, e.inl_lsb
    # The endpoint fit removes each ADC's mean step: its K-1 steps have K-2 degrees of freedom.
    _var_in_bounds(dnl, sigma, 200 * 16 * (k - 2))
    assert torch.allclose(inl[..., 1:], dnl.double().cumsum(-1).float(), atol=1e-4)
    assert float(inl[..., 0].abs().max()) == 0.0 and float(inl[..., -1].abs().max()) < 1e-4
    # A step reads backwards exactly where its DNL is below -1 LSB (at 0.3 LSB a few of the 198,400 steps are).
    assert torch.equal(e.transfer_lsb.diff(dim=-1) < 0, dnl < -1) and bool((dnl < -1).any())


def test_transfer_is_monotone_when_dnl_stays_above_minus_one_lsb():
    bits, bound = 6, 2.0
    step = step_size(bits, bound, True)
    e = _draw(_cfg(dnl_std_lsb=0.1, offset_std_lsb=0.5, gain_std=0.05), bits=bits, n_adc=16, chips=range(20))
    assert float(e.dnl_lsb.min()) > -1     # 10 sigma: no step of these 20 x 16 x 62 is that far off
    lo, hi = code_range(bits, True)
    ramp = (torch.arange(lo, hi + 1, dtype=torch.float32) * step).clamp(-bound, bound)
    y = ramp.view(1, -1, 1).expand(20, -1, 16).contiguous()
    read = apply_adc_errors_(y, e, step, bound, True)
    assert bool((read.diff(dim=1) >= 0).all()) and bool((read.diff(dim=1) > 0).float().mean() > 0.9)


def test_bow_shaped_inl():
    e = _draw(_cfg(inl_lsb=1.5), bits=4, signed=False, n_adc=2, chips=[0])
    x = torch.linspace(-1, 1, 16, dtype=torch.float64)
    assert torch.allclose(e.inl_lsb[0, 1].double(), 1.5 * (1 - x * x), atol=1e-6)
    assert e.transfer_lsb[0, 0, 0] == 0 and e.transfer_lsb[0, 0, -1] == 15    # unsigned codes 0 .. 15


def test_chip_k_keeps_its_adcs_alone_in_any_chunk_and_across_settings():
    cfg = _cfg(offset_std_lsb=0.5, gain_std=0.01, dnl_std_lsb=0.2)
    chunk = _draw(cfg, chips=[0, 1, 2, 3, 4, 5, 6, 7], n_adc=8)
    for sub in ([5], [5, 3], [7, 5, 0]):
        part = _draw(cfg, chips=sub, n_adc=8)
        for name in ("offset_lsb", "gain", "transfer_lsb"):
            assert torch.equal(getattr(part, name), getattr(chunk, name)[sub])
    one = chunk.select(slice(5, 6))
    assert torch.equal(one.offset_lsb, chunk.offset_lsb[5:6]) and torch.equal(one.transfer_lsb, chunk.transfer_lsb[5:6])
    some = chunk.select(([1, 2], slice(4, 8)))
    assert some.gain.shape == (2, 4) and torch.equal(some.transfer_lsb, chunk.transfer_lsb[1:3, 4:8])
    assert not torch.equal(chunk.offset_lsb[0], chunk.offset_lsb[1])          # chips differ from each other
    assert not torch.equal(_draw(cfg, chips=[0], n_adc=8, layer="fc2").offset_lsb, chunk.offset_lsb[:1])
    # Another ADC resolution redraws only the DNL; another offset std scales the same draws.
    other_bits = _draw(cfg, chips=[0, 1, 2, 3, 4, 5, 6, 7], n_adc=8, bits=8)
    assert torch.equal(other_bits.offset_lsb, chunk.offset_lsb) and torch.equal(other_bits.gain, chunk.gain)
    double = _draw(_cfg(offset_std_lsb=1.0), chips=[0, 1, 2, 3, 4, 5, 6, 7], n_adc=8)
    assert torch.allclose(double.offset_lsb, 2 * chunk.offset_lsb)


def test_apply_reads_transfer_plus_offset_times_gain_and_clips():
    bits, bound, signed = 4, 1.4, True
    step = step_size(bits, bound, signed)
    e = _draw(_cfg(offset_std_lsb=0.8, gain_std=0.1, dnl_std_lsb=0.25), bits=bits, n_adc=3, chips=[4, 9])
    y = quantize_uniform_(torch.randn(2, 40, 3) * 1.2, bits, bound, signed)
    got = apply_adc_errors_(y.clone(), e, step, bound, signed)
    lo = code_range(bits, signed)[0]
    for c in range(2):
        for n in range(40):
            for j in range(3):
                code = round(float(y[c, n, j]) / step)
                want = (float(e.transfer_lsb[c, j, code - lo]) + float(e.offset_lsb[c, j])) * \
                    (1 + float(e.gain[c, j])) * step
                assert float(got[c, n, j]) == pytest.approx(min(max(want, -bound), bound), abs=1e-5)
    assert float(got.abs().max()) <= bound


def test_columns_sharing_an_adc_share_its_errors():
    idx = adc_index(10, columns_per_adc=4, col_splits=[(0, 6), (6, 10)])
    assert idx.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert adc_index(5).tolist() == [0, 1, 2, 3, 4]
    e = _draw(_cfg(offset_std_lsb=1.0), bits=6, n_adc=3, chips=[0, 1])
    y = torch.zeros(2, 5, 10)
    apply_adc_errors_(y, e, step_size(6, 1.0, True), 1.0, True, idx)
    assert torch.equal(y[..., 0], y[..., 3]) and torch.equal(y[..., 6], y[..., 9])
    assert not torch.equal(y[..., 3], y[..., 4])


def test_settings_validation():
    with pytest.raises(ConfigError, match=r"^hardware\.adc\.nonideal\.offset_std_lsb: must be a number in \[0\.0"):
        _cfg(offset_std_lsb=-0.1)
    for key in ("gain_std", "dnl_std_lsb"):
        with pytest.raises(ConfigError, match=rf"^hardware\.adc\.nonideal\.{key}:"):
            _cfg(**{key: -1})
    assert _cfg(inl_lsb=-0.5).inl_lsb == -0.5      # a bow may bend either way

    class Adc:   # the adc section as check_circuit sees it
        def __init__(self, bits, quantizer, nonideal):
            self.bits, self.quantizer, self.nonideal = bits, quantizer, nonideal

    class Hw:
        def __init__(self, *a):
            self.adc = Adc(*a)

    check_circuit(Hw(None, "uniform", _cfg()), "hardware.")            # ideal: nothing to check
    check_circuit(Hw(6, "uniform", _cfg(gain_std=0.01)), "hardware.")
    with pytest.raises(ConfigError, match=r"^hardware\.adc\.nonideal\.gain_std: .*adc\.bits"):
        check_circuit(Hw(None, "uniform", _cfg(gain_std=0.01)), "hardware.")
    with pytest.raises(ConfigError, match=r"^hardware\.adc\.nonideal\.dnl_std_lsb: .*uniform"):
        check_circuit(Hw(6, "mulaw", _cfg(dnl_std_lsb=0.1)), "hardware.")


def test_stacked_arrays_and_gathered_rows_read_through_the_right_adcs():
    """The crossbar's layout: outputs [Kc, A, N, out] of A row arrays, each with its own ADCs; bound management
    re-reads gathered rows (chip, array, vector) of several chips at once."""
    bits, bound, signed, a, out = 5, 2.0, True, 3, 6
    step = step_size(bits, bound, signed)
    idx, n_adc = stacked_adc_index(out, a, columns_per_adc=2, col_splits=[(0, 4), (4, 6)])
    assert n_adc == 9 and idx.shape == (3, 1, 6) and idx[2, 0].tolist() == [6, 6, 7, 7, 8, 8]
    e = _draw(_cfg(offset_std_lsb=0.6, gain_std=0.05, dnl_std_lsb=0.2), bits=bits, n_adc=n_adc, chips=[2, 8])
    y = quantize_uniform_(torch.randn(2, a, 7, out) * 1.5, bits, bound, signed)
    got = apply_adc_errors_(y.clone(), e, step, bound, signed, idx)
    for t in range(a):   # array t alone, with its ADCs' errors
        one = e.select((slice(None), slice(3 * t, 3 * t + 3)))
        assert torch.equal(got[:, t], apply_adc_errors_(y[:, t].clone(), one, step, bound, signed, idx[0, 0]))
    sel = torch.tensor([[1, 2, 4], [0, 0, 6], [1, 0, 0]])          # (chip, array, vector) rows
    rows = y[sel[:, 0], sel[:, 1], sel[:, 2]].clone()             # [M, out]
    apply_adc_errors_(rows, e, step, bound, signed, idx[sel[:, 1], 0], chips=sel[:, 0])
    assert torch.equal(rows, got[sel[:, 0], sel[:, 1], sel[:, 2]])
