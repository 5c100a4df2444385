"""Study 001's weight grid (2^b - 1 or 2^b levels) and its bias as the 785th input row of W1 (eq. 1)."""

import pytest
import torch
from torch import nn

from aimcbench.models import build_model
from aimcbench.sim import load_hardware, to_analog
from aimcbench.sim.periphery import quantize_symmetric, weight_levels


@pytest.mark.parametrize("bits", [2, 3, 8])
@pytest.mark.parametrize("levels", ["pow2_minus_1", "pow2"])
def test_weight_grid_levels_and_spacing(bits, levels):
    w = torch.linspace(-1.0, 1.0, 20001, dtype=torch.float64)
    q = torch.unique(quantize_symmetric(w, bits, levels=levels))
    n = 2**bits - 1 if levels == "pow2_minus_1" else 2**bits
    assert q.numel() == n == weight_levels(bits, levels)
    step = 2.0 / (2**bits - 2) if levels == "pow2_minus_1" else 2.0 / (2**bits - 1)
    torch.testing.assert_close(q.diff(), torch.full((n - 1,), step, dtype=torch.float64))
    assert q[0].item() == pytest.approx(-1.0) and q[-1].item() == pytest.approx(1.0)  # the grid spans +-max|W|
    assert bool((q.abs() < 1e-12).any()) == (levels == "pow2_minus_1")                # zero is a level only there
    assert (quantize_symmetric(w, bits, levels=levels) - w).abs().max() <= step / 2 + 1e-12  # nearest level


def test_two_bits_is_ternary_or_four_levels_and_none_is_exact():
    w = torch.tensor([-1.0, -0.6, -0.2, 0.2, 0.6, 1.0])
    torch.testing.assert_close(quantize_symmetric(w, 2), torch.tensor([-1.0, -1.0, 0.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(quantize_symmetric(w, 2, levels="pow2"),
                               torch.tensor([-1.0, -1 / 3, -1 / 3, 1 / 3, 1 / 3, 1.0]))
    assert quantize_symmetric(w, None, levels="pow2") is w
    with pytest.raises(ValueError, match="levels"):
        quantize_symmetric(w, 2, levels="pow3")


@pytest.mark.parametrize("levels, n", [("pow2_minus_1", 7), ("pow2", 8)])
def test_weight_noise_device_programs_the_chosen_grid(levels, n):
    lin = nn.Linear(1001, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.linspace(-0.5, 0.5, 1001))
    hw = load_hardware("weight_noise", ["device.program_bits=3", "weight_noise.alpha=0.0",
                                        f"weight_noise.levels={levels}"])
    with torch.no_grad():
        y = to_analog(lin, hw, chips=1)(torch.eye(1001))[0, :, 0]  # row k reads weight k
    assert torch.unique(y.round(decimals=5)).numel() == n
    assert load_hardware("weight_noise").weight_noise.levels == "pow2_minus_1"  # the default grid is unchanged


def _first_layer(h=3000, n_in=4, seed=0):
    """The input side of a bias=input_row MLP (Flatten, AppendOne, Linear(n_in + 1, h, bias=False))."""
    torch.manual_seed(seed)
    mlp = build_model("mlp", in_features=n_in, hidden=[h], num_classes=2, bias="input_row")
    with torch.no_grad():
        mlp[2].weight.uniform_(0.2, 1.0)   # positive, away from zero: relative errors are well defined
    return mlp, nn.Sequential(*list(mlp.children())[:3])


def test_input_row_bias_is_the_last_weight_column_and_later_layers_have_none():
    mlp, first = _first_layer(h=6)
    assert [type(m).__name__ for m in mlp] == ["Flatten", "AppendOne", "Linear", "ReLU", "Linear"]
    assert all(m.bias is None for m in mlp if isinstance(m, nn.Linear))
    x = torch.rand(5, 4)
    ref = x @ mlp[2].weight[:, :4].T + mlp[2].weight[:, 4]        # W1 [x; 1] with the bias as row 785
    torch.testing.assert_close(first(x), ref)
    am = to_analog(mlp, load_hardware("weight_noise", ["weight_noise.alpha=0.1"]), chips=2)
    assert list(am.crossbars) == ["2", "4"] and all(cb.bias is None for cb in am.crossbars.values())
    plain = build_model("mlp", in_features=4, hidden=[6], num_classes=2)
    assert plain[1].in_features == 4 and plain[1].bias is not None and plain[3].bias is not None  # default: all


def test_input_row_bias_gets_the_weights_noise_and_output_is_linear_in_x_and_one():
    alpha, chips = 0.2, 4
    mlp, first = _first_layer()
    w = mlp[2].weight.detach()                                    # [3000, 5]; column 4 is the bias b
    hw = load_hardware("weight_noise", ["weight_noise.alpha=0.2"])
    # Inputs 0, e_1 ... e_4 and a random x: chip k's outputs give its noisy W1' column by column.
    xs = torch.cat([torch.zeros(1, 4), torch.eye(4), torch.rand(1, 4)])
    with torch.no_grad():
        y = to_analog(first, hw, chips=chips)(xs)                 # [chips, 6, 3000]
    b_noisy = y[:, 0]                                             # W1' [0; 1] = the chip's noisy bias
    cols = y[:, 1:5] - b_noisy[:, None]                           # W1' [e_i; 1] - W1' [0; 1] = column i
    # Eq. 4 on the bias row: b (1 + alpha N), std alpha |b| per chip; 12,000 draws -> the std within ~1.3 %.
    rel_b = b_noisy / w[:, 4] - 1
    assert rel_b.std().item() == pytest.approx(alpha, rel=0.04)
    assert abs(rel_b.mean().item()) < 4 * alpha / (rel_b.numel() ** 0.5)
    assert ((b_noisy - w[:, 4]) / w[:, 4].abs()).std().item() == pytest.approx(alpha, rel=0.04)
    rel_w = cols / w[:, :4].T - 1
    assert rel_w.std().item() == pytest.approx(alpha, rel=0.04)   # the pixel rows: the same relative noise
    assert not torch.allclose(b_noisy[0], b_noisy[1])             # drawn per chip
    # The random input's output is exactly W1' [x; 1] with that chip's noisy matrix.
    x = xs[5]
    torch.testing.assert_close(y[:, 5], b_noisy + (cols * x[None, :, None]).sum(1), atol=1e-4, rtol=1e-4)


def test_input_row_bias_is_quantized_on_the_first_layers_grid():
    _, first = _first_layer(h=500)
    with torch.no_grad():
        first[2].weight[:, 4].uniform_(-1.5, 1.5)                 # the bias sets max|W|
    hw = load_hardware("weight_noise", ["weight_noise.alpha=0.0", "device.program_bits=2", "weight_noise.levels=pow2"])
    with torch.no_grad():
        b = to_analog(first, hw, chips=1)(torch.zeros(1, 4))[0, 0]
    wmax = first[2].weight.abs().max().item()
    grid = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0]) * wmax
    assert torch.unique(b.round(decimals=4)).numel() == 4
    assert (b[:, None] - grid[None]).abs().min(1).values.max().item() < 1e-4
