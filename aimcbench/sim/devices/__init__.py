"""Device models: from normalized weights to programmed, drifted and read conductances, per chip.

One module per device family, each registered under its ``hardware.device.model`` name:

    ideal         pair.ConductanceDevice   exact conductance pair g+ - g- (the base of the pair families)
    pcm           pcm.PCMDevice            aihwkit's PCMLikeNoiseModel (programming noise, drift, read noise)
    rram          rram.RRAMDevice          study 002 cells with programming variation
    rram_signed   rram_signed.SignedDevice study 002 level 1: signed weights, variation on the signed range
    weight_noise  weight_noise.WeightNoiseDevice   studies 001/004: noise on the weights themselves
    stuck_at      stuck_at.StuckAtDevice   cells stuck at g_min or g_max (rram otherwise)

The interface (``base.Device``) and the registry (``register_device``, ``DEVICES``, ``make_device``) are in
``base``; the per-chip random streams (``derive_seed``, ``chip_generator``, ``ChipStreams``, ``randn_chips``) in
``rng``. Conductances are in microsiemens; ``w_norm`` is the weight divided by the mapping scale, in [-1, 1].
Every random draw of chip k comes from a generator seeded by (seed, layer name, k, stream): chip k is the same
chip whatever ADC, time or batch is being swept, and a rerun reproduces it. docs/devices.md adds a family.
"""

from ..periphery import quantize_levels, quantize_symmetric
from .base import DEVICES, Device, Programmed, make_device, register_device
from .pair import ConductanceDevice
from .pcm import PCM_PROG_COEFF, PCM_T0_S, PCM_T_READ_S, PCMDevice
from .rng import ChipKeys, ChipStreams, chip_generator, derive_seed, rand_chips, randn_chips
from .rram import RRAMDevice
from .rram_signed import SignedDevice
from .stuck_at import StuckAtDevice
from .weight_noise import WeightNoiseDevice

__all__ = ["DEVICES", "PCM_PROG_COEFF", "PCM_T0_S", "PCM_T_READ_S", "ChipKeys", "ChipStreams", "ConductanceDevice", "Device",
           "PCMDevice", "Programmed", "RRAMDevice", "SignedDevice", "StuckAtDevice", "WeightNoiseDevice",
           "chip_generator", "derive_seed", "make_device", "quantize_levels", "quantize_symmetric", "rand_chips",
           "randn_chips", "register_device"]
