"""Device models: from normalized weights to programmed, drifted and read conductances, per chip.

Every random draw of chip k comes from a generator seeded by (seed, layer name, k, stream), see ``chip_generator``:
chip k is the same chip whatever ADC, time or batch is being swept, and a rerun reproduces it.
Conductances are in microsiemens. ``w_norm`` is the weight divided by the mapping scale, in [-1, 1].
"""

from __future__ import annotations

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .config import HardwareConfig

# aihwkit PCMLikeNoiseModel constants (facts from its documentation / source; see issue 2).
PCM_PROG_COEFF = (0.26348, 1.9650, -1.1731)  # sigma_prog(r) polynomial, uS at g_max = 25 uS
PCM_T0_S = 20.0                              # time of the first read after programming
PCM_T_READ_S = 250e-9                        # duration of one read
_R_CLIP = 1e-7                               # smallest relative conductance in the drift-exponent formulas


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (stable across processes and platforms, unlike ``hash``)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def chip_generator(seed: int, layer: str, chip: int, stream: str, device: torch.device) -> torch.Generator:
    """The generator of one chip, layer and stream ("program", "read@t", "out@t", ...)."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, layer, chip, stream))
    return g


def randn_chips(shape: Sequence[int], gens: Sequence[torch.Generator], device: torch.device,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """Standard normals [len(gens), *shape], row k drawn from generator k (into ``out`` if given)."""
    if out is None:
        out = torch.empty((len(gens), *shape), device=device)
    if out.device.type == "cpu" and len(gens) > 1 and out[0].numel() >= 65536 and torch.get_num_threads() > 1:
        # torch's CPU normal_ with a generator runs on one core; chips have independent generators, so fill
        # them from several threads (the op releases the GIL). Same numbers as the serial loop.
        list(_pool().map(lambda k: out[k].normal_(generator=gens[k]), range(len(gens))))
    else:
        for k, g in enumerate(gens):
            out[k].normal_(generator=g)
    return out


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers != torch.get_num_threads():
        _POOL = ThreadPoolExecutor(max_workers=torch.get_num_threads(), thread_name_prefix="aimc-rng")
    return _POOL


def quantize_levels(frac: torch.Tensor, bits: Optional[int]) -> torch.Tensor:
    """Round a fraction in [0, 1] to 2^bits evenly spaced programming targets (bits None: unchanged)."""
    if bits is None:
        return frac
    n = 2**bits - 1
    return torch.round(frac * n) / n


def quantize_symmetric(w_norm: torch.Tensor, bits: Optional[int]) -> torch.Tensor:
    """Round normalized signed weights in [-1, 1] to 2^bits - 1 symmetric levels (bits None: unchanged)."""
    if bits is None:
        return w_norm
    n = 2 ** (bits - 1) - 1
    return torch.round(w_norm * n) / n


@dataclass
class Programmed:
    """Conductance pairs of a chunk of chips, [Kc, out, in] each, in uS (g_prog: right after programming)."""

    g_plus: torch.Tensor
    g_minus: torch.Tensor
    nu_plus: Optional[torch.Tensor] = None   # PCM drift exponents
    nu_minus: Optional[torch.Tensor] = None


class ConductanceDevice:
    """Ideal, PCM and RRAM cells holding a signed weight as a pair g+ - g-."""

    def __init__(self, hw: HardwareConfig):
        self.hw = hw
        self.g_max = hw.device.g_max_uS
        self.g_min = hw.g_min_uS
        self.g_range = self.g_max - self.g_min

    def targets(self, w_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """g+ = clip(w, 0, 1) * range + g_min, g- likewise for -w; the idle cell of a pair sits at g_min."""
        bits = self.hw.device.program_bits
        gp = quantize_levels(w_norm.clamp(0.0, 1.0), bits) * self.g_range + self.g_min
        gm = quantize_levels((-w_norm).clamp(0.0, 1.0), bits) * self.g_range + self.g_min
        return gp, gm

    def program(self, w_norm: torch.Tensor, gens: Sequence[torch.Generator]) -> Programmed:
        """Program every chip of the chunk (one generator per chip)."""
        gp, gm = self.targets(w_norm)
        d, model, dev = self.hw.device, self.hw.device.model, w_norm.device
        shape = w_norm.shape
        if model == "ideal":
            k = len(gens)
            return Programmed(gp.expand(k, *shape), gm.expand(k, *shape))
        if model == "rram":
            # Study 002: each cell independently off target by variation * (g_max - g_min) * N(0, 1), never < 0.
            std = d.variation * self.g_range
            # Study 003: an absolute error in uS (independent of the range) adds in quadrature.
            std = math.hypot(std, self.hw.column_noise.prog_noise_uS)
            noise = randn_chips((2, *shape), gens, dev)
            return Programmed((gp + std * noise[:, 0]).clamp(min=0.0), (gm + std * noise[:, 1]).clamp(min=0.0))
        # PCM: programming noise and drift exponents, both drawn at programming from the target conductance.
        noise = randn_chips((4, *shape), gens, dev)
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

    def read(self, p: Programmed, t_inference_s: float, gens: Sequence[torch.Generator] | None) -> tuple:
        """Conductances of one read-out at t_inference_s (PCM: drift and 1/f read noise; others: as programmed).

        ``gens`` None reads without read noise (the reference read-out of drift compensation)."""
        if self.hw.device.model != "pcm":
            return p.g_plus, p.g_minus
        t = t_inference_s + PCM_T0_S
        d = self.hw.device
        noise = randn_chips((2, *p.g_plus.shape[1:]), gens, p.g_plus.device) if gens is not None else None
        out = []
        for i, (g_prog, nu) in enumerate(((p.g_plus, p.nu_plus), (p.g_minus, p.nu_minus))):
            g = g_prog * (t / PCM_T0_S) ** (-nu) if t > PCM_T0_S else g_prog
            if noise is not None and d.read_noise_scale > 0:
                q_s = (0.0088 / (g_prog / self.g_max).pow(0.65).clamp(min=1e-3)).clamp(max=0.2)
                sig = q_s * math.sqrt(math.log((t + PCM_T_READ_S) / (2 * PCM_T_READ_S)))
                g = (g + g.abs() * d.read_noise_scale * sig * noise[:, i]).clamp(min=0.0)
            out.append(g)
        return out[0], out[1]


class WeightNoiseDevice:
    """Studies 001 and 004: noise applied to the weights themselves, on ideal periphery."""

    def __init__(self, hw: HardwareConfig):
        self.cfg = hw.weight_noise
        self.bits = hw.device.program_bits

    @property
    def temporal(self) -> bool:
        """True when part of the noise is redrawn for every inference batch (study 004's N_T)."""
        return self.cfg.kind in ("mul", "add")

    def quantized(self, w_norm: torch.Tensor) -> torch.Tensor:
        """Uniform symmetric weight quantization with 2^bits - 1 levels over [-max|W|, max|W|]."""
        return quantize_symmetric(w_norm, self.bits)

    def program(self, w_norm: torch.Tensor, gens: Sequence[torch.Generator]) -> torch.Tensor:
        """The static part per chip: study 001's W(1 + alpha N), or study 004's spatial factor N_S."""
        w = self.quantized(w_norm)
        noise = randn_chips(w.shape, gens, w.device)
        if self.cfg.kind == "gaussian_mul":
            return w * (1.0 + self.cfg.alpha * noise)
        return 1.0 + self.cfg.spatial_std * noise  # N_S ~ N(1, spatial_std^2)

    def sample(self, w_norm: torch.Tensor, static: torch.Tensor, inv_scale: torch.Tensor,
               gens: Sequence[torch.Generator]) -> torch.Tensor:
        """Normalized weights for one inference batch (N_T ~ N(eta0, (rel_std eta0)^2) drawn now).

        ``inv_scale`` converts weight units to normalized units (ADD noise is in weight units, read literally)."""
        if not self.temporal:
            return static
        c = self.cfg
        n_t = c.eta0 + c.temporal_rel_std * c.eta0 * randn_chips(w_norm.shape, gens, w_norm.device)
        w = self.quantized(w_norm)
        if c.kind == "mul":
            return w + w * n_t * static
        return w + n_t * static * inv_scale


class SignedDevice:
    """Study 002's level-1 pipeline: a signed weight stored directly (no cell pair, no on/off ratio).

    The weight is fake-quantized to 2^program_bits - 1 symmetric levels over [-max|W|, max|W|] and then programmed
    with variation relative to the signed range: std = variation * 2 max|W| (the study's level-1 definition, which
    is not equivalent to the per-cell variation of levels 2-3, see models-and-devices.md)."""

    def __init__(self, hw: HardwareConfig):
        self.bits = hw.device.program_bits
        self.variation = hw.device.variation

    def program(self, w_norm: torch.Tensor, gens: Sequence[torch.Generator]) -> torch.Tensor:
        """Normalized signed weights of every chip of the chunk, [Kc, out, in]."""
        w = quantize_symmetric(w_norm, self.bits)
        if self.variation == 0:
            return w.expand(len(gens), *w.shape).clone()
        noise = randn_chips(w.shape, gens, w.device)
        return noise.mul_(2.0 * self.variation).add_(w)
