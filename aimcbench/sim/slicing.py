"""Bit slicing: a weight over several cells, an input over several read cycles, recombined by shift-and-add.

Weights (``mapping.weight_slices`` S cells of ``device.bits_per_cell`` b bits each): the normalized magnitude
|w| in [0, 1] is rounded to B = S b bits, m = round(|w| (2^B - 1)), and written in base 2^b, m = sum_i s_i 2^(b i)
with digits s_i in [0, 2^b - 1]. Slice i holds sign(w) s_i / (2^b - 1): a full-range signed weight that the
device programs like any other (a pair g+/g-, or a signed cell), on its own columns, read by its own ADC
conversions. The digital side adds slice i's digitized output times 2^(b i) (2^b - 1) / (2^B - 1).

Inputs (``dac.input_bits_per_cycle`` p): the DAC code of a normalized input v in [-1, 1] with ``dac.bits`` d is
c = round(v n), n = 2^(d-1) - 1 (signed, sign-magnitude) or 2^d - 1; its magnitude is written in base 2^p,
|c| = sum_j c_j 2^(p j), j < C = ceil(magnitude bits / p), and cycle j applies sign(v) c_j / (2^p - 1). The
digital side adds cycle j's digitized output times 2^(p j) (2^p - 1) / n.

With exact devices and converters both are identities: sum_i 2^(b i) (2^b - 1)/(2^B - 1) s_i/(2^b - 1) = m/(2^B - 1),
the B-bit weight, and likewise the d-bit input (tests/test_sim_slicing.py).
"""

from __future__ import annotations

import math
from typing import Optional

import torch


def weight_slices(w_norm: torch.Tensor, slices: int, bits_per_cell: Optional[int]) -> tuple[torch.Tensor, list]:
    """[out, in] normalized weights -> ([S, out, in] slice weights in [-1, 1], [S] recombination factors).

    One slice without device.bits_per_cell returns the weights unchanged (device.program_bits quantizes as before);
    one slice with it holds b-bit weights."""
    if slices == 1 and bits_per_cell is None:
        return w_norm.unsqueeze(0), [1.0]
    b = bits_per_cell
    total = slices * b
    m = torch.round(w_norm.abs().double() * (2**total - 1))
    sign = torch.sign(w_norm).double()
    digits, factors = [], []
    for i in range(slices):
        d = torch.remainder(torch.div(m, 2 ** (b * i), rounding_mode="floor"), 2**b)
        digits.append((sign * d / (2**b - 1)).to(w_norm.dtype))
        factors.append(2 ** (b * i) * (2**b - 1) / (2**total - 1))
    return torch.stack(digits), factors


def cycle_count(dac_bits: Optional[int], signed: bool, per_cycle: Optional[int]) -> int:
    """Read cycles of one input vector: ceil(magnitude bits / per_cycle), 1 without bit-serial inputs."""
    if per_cycle is None or dac_bits is None:
        return 1
    return math.ceil((dac_bits - 1 if signed else dac_bits) / per_cycle)


def input_cycles(v: torch.Tensor, dac_bits: int, signed: bool, per_cycle: int) -> tuple[torch.Tensor, list]:
    """DAC-quantized normalized inputs v [..., R] -> ([C, ..., R] cycle inputs in [-1, 1], [C] factors)."""
    n = 2 ** (dac_bits - 1) - 1 if signed else 2**dac_bits - 1
    code = torch.round(v.abs() * n)
    sign = torch.sign(v)
    base = 2**per_cycle
    cycles, factors = [], []
    for j in range(cycle_count(dac_bits, signed, per_cycle)):
        d = torch.remainder(torch.div(code, base**j, rounding_mode="floor"), base)
        cycles.append(sign * d / (base - 1))
        factors.append(base**j * (base - 1) / n)
    return torch.stack(cycles), factors
