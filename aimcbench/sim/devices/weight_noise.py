"""weight_noise: studies 001 and 004 -- noise applied to the weights themselves, on ideal periphery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from ..config import HardwareConfig
from ..periphery import quantize_symmetric
from .base import Device, register_device
from .rng import ChipKeys, ChipStreams, randn_chips


@dataclass
class SpatialState:
    """Study 004's programmed chips: N_S [Kc, out, in] and what names each chip's network-wide N_T stream."""

    n_s: torch.Tensor
    seed: int
    chips: tuple[int, ...]


@register_device("weight_noise")
class WeightNoiseDevice(Device):
    """Settings: the weight_noise section (kind, alpha, eta0, spatial_std, temporal_rel_std, temporal_granularity,
    on_bias) and device.program_bits."""

    signed_weights = True

    def __init__(self, hw: HardwareConfig):
        super().__init__(hw)
        self.cfg = hw.weight_noise
        self.bits = hw.device.program_bits

    @property
    def temporal(self) -> bool:
        """True when part of the noise is redrawn for every inference batch (study 004's N_T)."""
        return self.cfg.kind in ("mul", "add")

    def quantized(self, w_norm: torch.Tensor) -> torch.Tensor:
        """Uniform weight quantization over [-max|W|, max|W|]: 2^bits - 1 or 2^bits levels (weight_noise.levels)."""
        return quantize_symmetric(w_norm, self.bits, levels=self.cfg.levels)

    def program(self, w_norm: torch.Tensor, streams: ChipStreams) -> Union[torch.Tensor, SpatialState]:
        """The static part per chip (stream "program"): study 001's W(1 + alpha N), or study 004's spatial
        factor N_S (with the chip ids, for the network-wide N_T of temporal_granularity batch)."""
        w = self.quantized(w_norm)
        noise = randn_chips(w.shape, streams("program"), w.device)
        if self.cfg.kind == "gaussian_mul":
            return w * (1.0 + self.cfg.alpha * noise)
        return SpatialState(1.0 + self.cfg.spatial_std * noise, streams.seed, tuple(streams.chips))  # N_S ~ N(1, s^2)

    def read(self, programmed, t_inference_s: float, streams: Optional[ChipStreams]) -> torch.Tensor:
        """The static weights (a temporal kind is read per batch by ``sample``)."""
        return programmed

    def temporal_factor(self, shape: Sequence[int], programmed: Union[torch.Tensor, SpatialState],
                        keys: ChipKeys, device: torch.device) -> torch.Tensor:
        """Standard normals z of one inference batch, N_T = eta0 (1 + temporal_rel_std z): [Kc, *shape] (weight)
        or [Kc, 1, 1] (batch).

        ``keys`` name this batch's draws of this layer (the crossbar counts each chip's batches: ``keys.reads``).
        batch: the n-th inference batch of chip k takes z from a stream named by (seed, chip k, n) only, so every
        analog layer of the chip, each counting its own batches, gets the same N_T in the same batch."""
        if self.cfg.temporal_granularity == "weight":
            return keys.randn(shape)
        if isinstance(programmed, SpatialState):
            seed, chips = programmed.seed, programmed.chips
        else:  # a bare N_S tensor (direct use of the device): chips 0..Kc-1
            seed, chips = 0, tuple(range(len(keys)))
        reads = keys.reads if keys.reads is not None else (0,) * len(chips)
        net = ChipKeys(seed, "network", chips, [f"N_T batch {n}" for n in reads], device)
        return net.randn((1, 1))

    def sample(self, w_norm: torch.Tensor, static: Union[torch.Tensor, SpatialState], inv_scale: torch.Tensor,
               keys: ChipKeys) -> torch.Tensor:
        """Normalized weights for one inference batch (N_T ~ N(eta0, (rel_std eta0)^2) drawn now, one per chip or
        one per weight: weight_noise.temporal_granularity).

        ``inv_scale`` converts weight units to normalized units (ADD noise is in weight units, read literally)."""
        if not self.temporal:
            return static
        c = self.cfg
        n_s = static.n_s if isinstance(static, SpatialState) else static
        n_t = c.eta0 + c.temporal_rel_std * c.eta0 * self.temporal_factor(w_norm.shape, static, keys, w_norm.device)
        w = self.quantized(w_norm)
        if c.kind == "mul":
            return w + w * n_t * n_s
        return w + n_t * n_s * inv_scale

    def chip_bias(self, bias: torch.Tensor, streams: ChipStreams) -> Optional[torch.Tensor]:
        """gaussian_mul with on_bias: b(1 + alpha N) per chip (stream "bias"); otherwise the exact bias."""
        if not self.cfg.on_bias or self.temporal:
            return None
        noise = randn_chips(bias.shape, streams("bias"), bias.device)
        return bias * (1.0 + self.cfg.alpha * noise)
