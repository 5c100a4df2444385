"""The device interface and the registry that maps ``hardware.device.model`` to a device family.

A device family is one class, registered under its model name::

    @register_device("my_device")
    class MyDevice(ConductanceDevice):      # or Device, for signed weights
        def program(self, w_norm, streams): ...

``make_device(hw)`` builds the family that ``hw.device.model`` names; the crossbar calls only the methods below.
See docs/devices.md for the walk-through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, TypeVar

import torch

from ..config import HardwareConfig
from .rng import ChipKeys, ChipStreams


@dataclass
class Programmed:
    """Conductance pairs of a chunk of chips, [Kc, out, in] each, in uS (g_prog: right after programming)."""

    g_plus: torch.Tensor
    g_minus: torch.Tensor
    nu_plus: Optional[torch.Tensor] = None   # PCM drift exponents
    nu_minus: Optional[torch.Tensor] = None


class Device:
    """What the crossbar needs from a device family.

    Units: ``w_norm`` [out, in] is the weight divided by its mapping scale max|W|, in [-1, 1]. A device that stores
    a conductance pair (``signed_weights`` False) returns conductances in microsiemens from ``read`` and exposes
    ``g_min``, ``g_max`` and ``g_range`` = g_max - g_min (uS); the crossbar divides by g_range, so a weight of
    max|W| is one full conductance range. A device with ``signed_weights`` True returns normalized signed weights
    (one column per output, read by a signed ADC over adc.bound).

    Randomness: every draw of chip k comes from row k of ``streams(name)`` (counter-based keys, see
    ``rng.ChipKeys``: ``randn_chips(shape, streams(name))``): never from the global generator. Draw the same count of numbers whatever the values of
    the settings (or draw from a stream of its own that is skipped as a whole), so that a sweep over one setting
    does not shift the numbers of another; then chip k is the same chip at every sweep point and in any chunk."""

    model: ClassVar[str] = ""               # the hardware.device.model name (set by register_device)
    signed_weights: ClassVar[bool] = False  # True: signed normalized weights; False: a conductance pair in uS
    temporal: bool = False                  # True: part of the noise is redrawn for every inference batch

    def __init__(self, hw: HardwareConfig):
        self.hw = hw

    def program(self, w_norm: torch.Tensor, streams: ChipStreams) -> Any:
        """Program every chip of the chunk; returns the device's programmed state (opaque to the crossbar)."""
        raise NotImplementedError

    def read(self, programmed: Any, t_inference_s: float, streams: Optional[ChipStreams]):
        """What the chips hold when read t_inference_s seconds after programming: the pair (g_plus, g_minus)
        [Kc, out, in] in uS, or signed normalized weights [Kc, out, in]. ``streams`` None reads without read
        noise (the reference read-out of drift compensation)."""
        raise NotImplementedError

    def sample(self, w_norm: torch.Tensor, programmed: Any, inv_scale: torch.Tensor,
               keys: ChipKeys) -> torch.Tensor:
        """Temporal devices only: the signed normalized weights [Kc, out, in] of one inference batch, drawn from
        ``keys`` (this batch's stream of each chip: the crossbar names the n-th batch of chip k by n, and
        ``keys.reads`` holds n). ``inv_scale`` [out, in] converts weight units to normalized units."""
        raise NotImplementedError

    def chip_bias(self, bias: torch.Tensor, streams: ChipStreams) -> Optional[torch.Tensor]:
        """A per-chip copy [Kc, out] of the layer's digital bias, or None when the bias stays exact."""
        return None


D = TypeVar("D", bound=type)
DEVICES: dict[str, type[Device]] = {}


def register_device(name: str) -> Callable[[D], D]:
    """Class decorator: make the class the device family of ``hardware.device.model: <name>``."""

    def deco(cls: D) -> D:
        if name in DEVICES:
            raise ValueError(f"device model {name!r} is registered twice ({DEVICES[name].__name__}, {cls.__name__})")
        cls.model = name
        DEVICES[name] = cls
        return cls

    return deco


def make_device(hw: HardwareConfig) -> Device:
    """The device family of ``hw.device.model``, built for the profile ``hw``."""
    try:
        cls = DEVICES[hw.device.model]
    except KeyError:
        raise ValueError(f"hardware.device.model: no device family {hw.device.model!r}; registered: "
                         f"{', '.join(sorted(DEVICES))}") from None
    return cls(hw)
