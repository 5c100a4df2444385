"""Noise sections of the hardware settings (``hardware.weight_noise``, ``hardware.column_noise``): the generic
weight noise of studies 001 and 004 and study 003's column noise. Re-exported by :mod:`aimcbench.sim.config`."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import _f


@dataclass
class WeightNoiseConfig:
    """Generic weight noise of studies 001 and 004 (used when device.model is weight_noise)."""

    kind: str = _f("gaussian_mul: W(1 + alpha N(0,1)) per chip (study 001); mul: W + W N_T N_S; add: W + N_T N_S "
                   "(study 004, N_T redrawn every inference batch)", choices=("gaussian_mul", "mul", "add"), default='gaussian_mul')
    alpha: float = _f("study 001 relative std of the multiplicative noise", lo=0.0, default=0.0)
    eta0: float = _f("study 004 noise scale: mean of the temporal factor N_T", lo=0.0, default=0.0)
    spatial_std: float = _f("study 004 std of N_S ~ N(1, spatial_std^2), per weight per chip", lo=0.0, default=0.1)
    temporal_rel_std: float = _f("study 004 std of N_T relative to eta0 (0.2)", lo=0.0, default=0.2)
    temporal_granularity: str = _f("study 004 how many N_T an inference batch draws per chip. batch: one scalar "
                                   "N_T per chip per inference batch, shared by every weight of every analog layer "
                                   "(the study: 'N_T ... randomly sampled for each inference batch', a supply "
                                   "voltage / temperature factor); weight: an independent N_T per weight per batch",
                                   choices=("batch", "weight"), default="batch")
    on_bias: bool = _f("gaussian_mul also perturbs each layer's bias, per chip (study 001 keeps the bias as an "
                       "extra input row of the weight matrix); false: biases stay exact", default=False)
    levels: str = _f("grid of device.program_bits = b on the weights w / max|W|: pow2_minus_1 (2^b - 1 levels "
                     "symmetric around zero, step 2 max|W| / (2^b - 2)) or pow2 (2^b levels from -max|W| to max|W|, "
                     "step 2 max|W| / (2^b - 1), no zero level)", choices=("pow2_minus_1", "pow2"),
                     default="pow2_minus_1")


@dataclass
class ColumnNoiseConfig:
    """Study 003: physical noise of each column current, redrawn at every read (and a device-independent
    programming noise). Thermal (Johnson) noise has variance 4 k T G_col B, G_col = sum of the column's
    conductances; shot noise 2 q |I| B, I = the column current (both columns of a differential pair)."""

    thermal: bool = _f("add thermal (Johnson) noise 4 k T G_col bandwidth_Hz of each column current", default=False)
    shot: bool = _f("add shot noise 2 q |I| bandwidth_Hz of each column current", default=False)
    temperature_K: float = _f("temperature of the thermal noise in kelvin", lo=0.0, lo_open=True, default=300.0)
    bandwidth_Hz: float = _f("noise bandwidth of one column read in hertz (about 1 / (2 * integration time))",
                             lo=0.0, lo_open=True, default=1000000000.0)
    prog_noise_uS: float = _f("std in microsiemens of a Gaussian programming error added to every cell "
                              "(device model rram; 0: none)", lo=0.0, default=0.0)
