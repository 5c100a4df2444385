"""Study 002: the output noise of the level-1 pipeline against the level-2 pipeline at the same variation v.

The study's equations (section 5): at levels 2-3 "the variations are applied independently to each cell", std
v * (I_on - I_off) per cell; a cell spans max|W| in weight units, so the pair g+ - g- carries std sqrt(2) v max|W| on
the signed weight. Level 1 ("variations directly applied to the signed weights") draws std v * R on the weight, with
R = max|W| (device.variation_range max_abs, the default) or 2 max|W| (full_span). A layer's output y_i = sum_j W_ij x_j
then has noise std sigma_w * ||x||, so the level-1 / level-2 output noise std ratio is R / (sqrt(2) max|W|):
1/sqrt(2) (max_abs) or sqrt(2) (full_span). Tested with exact chi-square / F intervals on independent samples
(one output of one chip is one sample; different outputs use different weights, different chips independent draws).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from aimcbench.sim import load_hardware, to_analog

V = 0.02          # small enough that no level-2 cell is clipped at 0 (g_min = 3 uS is 5.6 std above 0)
N_IN, N_OUT, CHIPS = 64, 32, 150   # 4,800 independent output errors per pipeline
ALPHA = 1e-3      # two-sided level of the intervals (a false failure once in a thousand runs)


def _layer() -> nn.Linear:
    torch.manual_seed(0)
    lin = nn.Linear(N_IN, N_OUT, bias=False)
    with torch.no_grad():
        lin.weight.uniform_(-0.5, 0.5)
    return lin


def _x() -> torch.Tensor:
    """One input on the 8-bit DAC grid over the ReLU6 range (x = 6 k / 255), so the DAC passes it exactly."""
    k = torch.arange(N_IN) % 200 + 20
    return (6.0 * k / 255.0).float().unsqueeze(0)


def _errors(profile: str, overrides: list[str], seed: int) -> np.ndarray:
    """Output errors (chip output - noise-free output of the same pipeline), divided by max|W| ||x||: [chips*out]."""
    lin, x = _layer(), _x()
    with torch.no_grad():
        clean = to_analog(lin, load_hardware(profile, overrides + ["device.variation=0"]), chips=1)(x)[0]
        noisy = to_analog(lin, load_hardware(profile, overrides + [f"device.variation={V}"]), chips=CHIPS,
                          seed=seed)(x)
    scale = lin.weight.abs().max().item() * x.norm().item()
    return ((noisy - clean).reshape(-1) / scale).double().numpy()


def _std_interval(e: np.ndarray) -> tuple[float, float, float]:
    """Sample std (mean known to be 0) with its exact 1 - ALPHA chi-square interval."""
    n = e.size
    s = math.sqrt(float(np.mean(e ** 2)))
    lo = s * math.sqrt(n / stats.chi2.ppf(1 - ALPHA / 2, n))
    hi = s * math.sqrt(n / stats.chi2.ppf(ALPHA / 2, n))
    return s, lo, hi


def _ratio_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """std(a) / std(b) (zero means) with its exact 1 - ALPHA interval from F(n_a, n_b)."""
    ra = float(np.mean(a ** 2)) / float(np.mean(b ** 2))
    f_hi, f_lo = stats.f.ppf(1 - ALPHA / 2, a.size, b.size), stats.f.ppf(ALPHA / 2, a.size, b.size)
    return math.sqrt(ra), math.sqrt(ra / f_hi), math.sqrt(ra / f_lo)


@pytest.fixture(scope="module")
def level2() -> np.ndarray:
    return _errors("rram_l2", [], seed=2)


def test_level2_output_noise_is_sqrt2_v_max_w(level2):
    s, lo, hi = _std_interval(level2)
    assert abs(np.mean(level2)) < 5 * s / math.sqrt(level2.size)       # unbiased (no clipping at this v)
    assert lo <= math.sqrt(2) * V <= hi, (s / V, lo / V, hi / V)


@pytest.mark.parametrize("reading, range_in_max_w", [("max_abs", 1.0), ("full_span", 2.0)])
def test_level1_over_level2_output_noise_ratio(level2, reading, range_in_max_w):
    level1 = _errors("rram_l1", [f"device.variation_range={reading}"], seed=1)
    s, lo, hi = _std_interval(level1)
    assert lo <= range_in_max_w * V <= hi, (reading, s / V, lo / V, hi / V)
    expected = range_in_max_w / math.sqrt(2)        # 1/sqrt(2) (max_abs) or sqrt(2) (full_span)
    r, r_lo, r_hi = _ratio_interval(level1, level2)
    assert r_lo <= expected <= r_hi, (reading, r, r_lo, r_hi)
    # and the interval is tight enough to tell the two readings apart (1/sqrt(2) against sqrt(2)) and from 1
    other = math.sqrt(2) if reading == "max_abs" else 1.0 / math.sqrt(2)
    assert not (r_lo <= other <= r_hi) and not (r_lo <= 1.0 <= r_hi)


def test_default_level1_reading_is_max_abs():
    assert load_hardware("rram_l1").device.variation_range == "max_abs"
