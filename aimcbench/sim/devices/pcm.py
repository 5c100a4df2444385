"""pcm: aihwkit's PCMLikeNoiseModel -- programming noise, drift and 1/f read noise of phase-change cells."""

from __future__ import annotations

import math
from typing import Optional

import torch

from .base import Programmed, register_device
from .pair import ConductanceDevice
from .rng import ChipStreams, randn_per_cell

# aihwkit PCMLikeNoiseModel constants (facts from its documentation / source; see issue 2).
PCM_PROG_COEFF = (0.26348, 1.9650, -1.1731)  # sigma_prog(r) polynomial, uS at g_max = 25 uS
PCM_T0_S = 20.0                              # time of the first read after programming
PCM_T_READ_S = 250e-9                        # duration of one read
_R_CLIP = 1e-7                               # smallest relative conductance in the drift-exponent formulas


@register_device("pcm")
class PCMDevice(ConductanceDevice):
    """Settings: device.prog_noise_scale, read_noise_scale, drift_scale (multipliers of the calibrated model)."""

    def program(self, w_norm: torch.Tensor, streams: ChipStreams) -> Programmed:
        """Programming noise and drift exponents, both drawn at programming from the target conductance
        (stream "program": 4 normals per weight, g+ and g- noise then g+ and g- exponents)."""
        gp, gm = self.targets(w_norm)
        d = self.hw.device
        noise = randn_per_cell(4, w_norm.shape, streams("program"))
        out = []
        for i, g_t in enumerate((gp, gm)):
            r = g_t / self.g_max
            sigma = (PCM_PROG_COEFF[0] + PCM_PROG_COEFF[1] * r + PCM_PROG_COEFF[2] * r * r) * (self.g_max / 25.0)
            g_prog = (g_t + d.prog_noise_scale * sigma * noise[:, i]).clamp(min=0.0)
            r_c = r.abs().clamp(min=_R_CLIP)
            mu = (-0.0155 * torch.log(r_c) + 0.0244).clamp(0.049, 0.1)
            sd = (-0.0125 * torch.log(r_c) - 0.0059).clamp(0.008, 0.045)
            nu = (mu + sd * noise[:, 2 + i]).abs() * d.drift_scale
            out += [g_prog, nu]
        return Programmed(out[0], out[2], out[1], out[3])

    def read(self, p: Programmed, t_inference_s: float, streams: Optional[ChipStreams]):
        """Drift g (t/t0)^-nu and 1/f read noise (stream "read@<t_inference_s>") at t = t_inference_s + t0."""
        t = t_inference_s + PCM_T0_S
        d = self.hw.device
        noise = None
        if streams is not None:
            noise = randn_per_cell(2, p.g_plus.shape[1:], streams(f"read@{t_inference_s}"))
        out = []
        for i, (g_prog, nu) in enumerate(((p.g_plus, p.nu_plus), (p.g_minus, p.nu_minus))):
            g = g_prog * (t / PCM_T0_S) ** (-nu) if t > PCM_T0_S else g_prog
            if noise is not None and d.read_noise_scale > 0:
                q_s = (0.0088 / (g_prog / self.g_max).pow(0.65).clamp(min=1e-3)).clamp(max=0.2)
                sig = q_s * math.sqrt(math.log((t + PCM_T_READ_S) / (2 * PCM_T_READ_S)))
                g = (g + g.abs() * d.read_noise_scale * sig * noise[:, i]).clamp(min=0.0)
            out.append(g)
        return out[0], out[1]
