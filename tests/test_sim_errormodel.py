"""Study 003: each closed-form error term against a simulation of that term alone, and the whole model against
the Monte Carlo simulator (statistical checks with confidence bounds)."""

from __future__ import annotations

import math

import pytest
import torch

from aimcbench.sim import load_hardware
from aimcbench.sim.crossbar import Crossbar
from aimcbench.sim.errormodel import layer_stats, predict, simulate_layer
from aimcbench.sim.tiling import plan_layer

OFF = ["column_noise.thermal=false", "column_noise.shot=false", "column_noise.prog_noise_uS=0.0", "dac.bits=null",
       "adc.bits=null", "adc.bound=1000.0"]


def _layer(seed: int = 0, out: int = 48, inp: int = 160, n: int = 96):
    """A random layer (two row tiles: 128 + 32 rows) and sparse non-negative inputs, like ReLU activations."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=g) * 0.1
    x = torch.rand(n, inp, generator=g) * (torch.rand(n, inp, generator=g) > 0.4)
    return w, x


def _hw(*overrides: str):
    return load_hardware("crossbar", [*OFF, *overrides])


def _sq_errors(w, x, hw, chips):
    """Squared errors (analog - exact) of every chip, input and output, flattened."""
    cb = Crossbar("fc", w, hw, plan_layer(w.shape[1], w.shape[0], hw), seed=3)
    with torch.no_grad():
        y = cb.forward_matrix(x, cb.state(range(chips)))
    return (y.double() - x.double() @ w.double().t()).pow(2).flatten()


def _check(term: str, overrides: list[str], chips: int, z: float = 4.0, rel_floor: float = 0.0):
    """Predicted term vs the mean simulated squared error, within z standard errors (+ a relative floor).

    Rounding errors have a mean per input that adds up over row tiles: the model books that under ``cross``,
    which belongs to the quantization terms here."""
    w, x = _layer()
    hw = _hw(*overrides)
    pred = predict(layer_stats("fc", w, x, hw), hw, hw.g_min_uS, hw.device.g_max_uS, hw.adc.bound, hw.adc.bits)
    mine = pred[term] + (pred["cross"] if term in ("dac", "quant") else 0.0)
    others = sum(v for k, v in pred.items() if k not in (term, "cross", "total", "gain_uA", "fs_uA"))
    assert abs(others) <= 1e-6 * mine, f"only {term} should be on: {pred}"
    e = _sq_errors(w, x, hw, chips)
    if chips > 1:  # errors of one chip share its programming: the chip means are the independent samples
        per_chip = e.view(chips, -1).mean(1)
        mean, se = float(per_chip.mean()), float(per_chip.std() / math.sqrt(chips))
    else:  # one chip: the spread over inputs and outputs is the uncertainty
        mean, se = float(e.mean()), float(e.std() / math.sqrt(e.numel()))
    assert abs(mine - mean) <= z * se + rel_floor * mean, (term, mine, mean, se)
    return mine, mean


def test_programming_noise_term():
    _check("prog", ["column_noise.prog_noise_uS=2.0"], chips=60)


def test_thermal_noise_term():
    _check("thermal", ["column_noise.thermal=true", "column_noise.bandwidth_Hz=1.0e+11"], chips=8)


def test_shot_noise_term():
    _check("shot", ["column_noise.shot=true", "column_noise.bandwidth_Hz=1.0e+11"], chips=8)


def test_thermal_noise_scales_with_temperature_and_bandwidth():
    w, x = _layer()
    st = layer_stats("fc", w, x, _hw("column_noise.thermal=true"))
    base = predict(st, _hw("column_noise.thermal=true"), 10.0, 100.0, 1000.0, None)["thermal"]
    hot = predict(st, _hw("column_noise.thermal=true", "column_noise.temperature_K=600.0"), 10.0, 100.0, 1000.0,
                  None)["thermal"]
    assert hot == pytest.approx(2 * base, rel=1e-9)


def test_dac_quantization_term():
    # Deterministic rounding of the inputs: step^2/12 holds statistically over inputs (10 % floor for its bias).
    _check("dac", ["dac.bits=5"], chips=1, rel_floor=0.1)


def test_adc_quantization_term():
    _check("quant", ["adc.bits=7", "adc.bound=8.0"], chips=1, rel_floor=0.02)


def test_clipping_term_is_exact_without_noise():
    w, x = _layer()
    hw = _hw("adc.bound=0.3")
    pred = predict(layer_stats("fc", w, x, hw), hw, hw.g_min_uS, hw.device.g_max_uS, 0.3, None)
    sim = float(_sq_errors(w, x, hw, 1).mean())
    assert pred["clip"] + pred["cross"] > 0
    assert pred["total"] == pytest.approx(sim, rel=1e-3)


@pytest.mark.parametrize("g_max,bound,bits", [(40.0, 1.0, 4), (100.0, 1.0, 4), (100.0, 0.4, 6), (60.0, 3.0, 3)])
def test_closed_form_matches_monte_carlo_within_10_percent(g_max, bound, bits):
    w, x = _layer(seed=1)
    hw = load_hardware("crossbar", [f"adc.bits={bits}", f"per_layer={{fc: {{g_max_uS: {g_max}, adc_bound: {bound}}}}}"])
    hw_l = hw.for_layer("fc")
    pred = predict(layer_stats("fc", w, x, hw), hw, hw_l.g_min_uS, g_max, bound, bits)["total"]
    sim = simulate_layer("fc", w, x, hw, chips=24)
    assert abs(pred / sim - 1) < 0.10, (pred, sim)
