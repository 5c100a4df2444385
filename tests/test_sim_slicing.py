"""Issue 17 in the simulator's forward: weight slices, bit-serial inputs, IR drop and ADC errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aimcbench.sim import load_hardware, to_analog
from aimcbench.sim.config import ConfigError
from aimcbench.sim.cost import model_cost
from aimcbench.sim.slicing import cycle_count, input_cycles, weight_slices


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(300, 64), nn.ReLU(), nn.Linear(64, 10)).eval()


def _x(n=48) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 300, generator=g) * (torch.rand(n, 300, generator=g) < 0.4)


def _run(profile, overrides, chips=2, x=None, model=None):
    hw = load_hardware(profile, overrides)
    with torch.no_grad():
        return to_analog(model or _mlp(), hw, chips=chips, seed=3)(_x() if x is None else x)


@pytest.mark.parametrize("slices, bits", [(2, 4), (4, 2), (8, 1), (3, 3)])
def test_weight_slices_add_up_to_the_rounded_weight(slices, bits):
    w = torch.rand(40, 30) * 2 - 1
    digits, factors = weight_slices(w, slices, bits)
    assert digits.shape == (slices, 40, 30)
    levels = 2**bits - 1
    cell = digits.abs() * levels
    assert torch.allclose(cell, cell.round(), atol=1e-5) and cell.max() <= levels  # each cell holds a b-bit level
    total = sum(f * d for f, d in zip(factors, digits.double()))
    n = 2 ** (slices * bits) - 1
    assert torch.allclose(total, torch.round(w.double().abs() * n) / n * torch.sign(w.double()), atol=1e-6)


@pytest.mark.parametrize("bits, signed, per_cycle", [(8, True, 1), (8, True, 4), (8, False, 3), (6, True, 2)])
def test_input_cycles_add_up_to_the_dac_code(bits, signed, per_cycle):
    n = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    v = torch.round((torch.rand(20, 50) * 2 - 1 if signed else torch.rand(20, 50)) * n) / n  # DAC outputs
    cyc, factors = input_cycles(v, bits, signed, per_cycle)
    assert cyc.shape[0] == len(factors) == cycle_count(bits, signed, per_cycle)
    assert cyc.abs().max() <= 1.0
    assert torch.allclose(sum(f * c for f, c in zip(factors, cyc)), v, atol=1e-6)


def test_slices_and_cycles_on_exact_converters_reproduce_the_unsliced_layer():
    """Ideal devices and ADCs: 4 slices of 2 bits equal one 8-bit cell; 8-bit inputs over 7 one-bit cycles equal
    the 8-bit DAC (to float rounding)."""
    base = ["dac.bits=8", "device.program_bits=8"]
    ref = _run("ideal", base)
    sliced = _run("ideal", ["dac.bits=8", "mapping.weight_slices=4", "device.bits_per_cell=2",
                            "dac.input_bits_per_cycle=1"])
    assert torch.allclose(sliced, ref, atol=1e-4, rtol=1e-4)
    digital = _mlp()(_x())
    assert (sliced[0] - digital).abs().max() < 0.05  # and both are the digital layer to 8-bit rounding


def test_adc_conversions_of_the_forward_are_what_the_cost_model_counts():
    """One image, one chip: every element the ADCs digitize in the forward is one conversion of the cost model
    (slices on their own columns, cycles, separate ADCs)."""
    ov = ["mapping.weight_slices=2", "device.bits_per_cell=4", "dac.bits=8", "dac.input_bits_per_cycle=4",
          "mapping.tile_rows=128", "mapping.tile_cols=128", "mapping.differential=separate_adc",
          "adc.bound_management=none"]
    hw = load_hardware("pcm", ov)
    model = _mlp()
    am = to_analog(model, hw, chips=1, seed=0)
    x = _x(1)
    with torch.no_grad():
        am(x)  # programs the chip (and reads its drift-compensation references): not part of an inference
    seen = []
    for cb in am.crossbars.values():
        q = cb.adc.quantize_
        cb.adc.quantize_ = lambda y, q=q: (seen.append(y.numel()), q(y))[1]
    with torch.no_grad():
        am(x)
    rows = model_cost(model, hw, (300,))
    assert sum(seen) == rows[-1]["adc_conversions"] > 0


def test_chip_k_keeps_its_numbers_in_any_chunk_with_every_circuit_setting():
    ov = ["mapping.weight_slices=2", "device.bits_per_cell=3", "dac.input_bits_per_cycle=4", "array.r_wire_ohm=1.5",
          "adc.nonideal.offset_std_lsb=0.5", "adc.nonideal.gain_std=0.02", "adc.nonideal.dnl_std_lsb=0.2",
          "mapping.tile_rows=128", "mapping.tile_cols=128"]
    many = _run("rram", ov, chips=3)
    alone = _run("rram", ov, chips=[2])
    assert torch.equal(many[2], alone[0])


def test_zero_wire_resistance_and_ideal_adcs_change_nothing():
    base = _run("rram", [])
    assert torch.equal(base, _run("rram", ["array.r_wire_ohm=0.0", "adc.nonideal.offset_std_lsb=0.0"]))


def test_output_error_grows_with_wire_resistance():
    digital = _mlp()(_x())
    err = [(_run("rram", ["mapping.tile_rows=256", "mapping.tile_cols=256", f"array.r_wire_ohm={r}"], chips=4)
            - digital).abs().mean().item() for r in (0.0, 1.0, 3.0, 10.0)]
    assert err[0] < err[1] < err[2] < err[3], err


def test_bad_circuit_settings_name_their_key():
    with pytest.raises(ConfigError, match="bits_per_cell"):
        _run("pcm", ["mapping.weight_slices=2"])
    with pytest.raises(ConfigError, match="input_bits_per_cycle"):
        _run("ideal", ["dac.input_bits_per_cycle=2"])
    with pytest.raises(ConfigError, match="r_wire_ohm"):
        _run("weight_noise", ["array.r_wire_ohm=1.0"])


@pytest.mark.parametrize("profile", ["pcm", "rram"])
def test_slice_zero_cells_keep_their_draws_at_every_slice_count(profile):
    """Weights of +-max|W| put the same target on slice 0's cells at 1, 2 and 3 slices (all digits full), so
    with the per-cell draws laid out row by row, chip k's slice-0 cells are programmed identically."""
    torch.manual_seed(0)
    w = torch.sign(torch.randn(16, 300))
    model = nn.Sequential(nn.Linear(300, 16, bias=False))
    model[0].weight.data = w
    progs = []
    for s in (1, 2, 3):
        hw = load_hardware(profile, [f"mapping.weight_slices={s}", "device.bits_per_cell=2"])
        cb = next(iter(to_analog(model, hw, chips=[0, 5], seed=3).crossbars.values()))
        p = cb.device_model.program(cb.circuit.physical_weights(cb.w_norm), cb.streams((0, 5)))
        progs.append(p)
    for p in progs[1:]:
        assert torch.equal(p.g_plus[:, :16], progs[0].g_plus) and torch.equal(p.g_minus[:, :16], progs[0].g_minus)
