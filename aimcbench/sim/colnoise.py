"""Study 003's column noise: thermal (4 k T G B) and shot (2 q I B) current noise of each column, per read."""

from __future__ import annotations

import torch

from .config import HardwareConfig
from .devices import ChipKeys

BOLTZMANN_J_PER_K = 1.380649e-23   # study 003 thermal noise 4 k T G B
ELECTRON_CHARGE_C = 1.602176634e-19  # study 003 shot noise 2 q I B


def column_noise_(y: torch.Tensor, v: torch.Tensor, gs: torch.Tensor, keys: ChipKeys, hw: HardwareConfig,
                  g_range_uS: float, scratch) -> None:
    """Add thermal 4kT G_col B and shot 2q|I|B current noise to the reads y [Kc, A, N, P] of inputs v in place, in
    normalized units (a current divided by v_read * g_range). G_col = v_read-independent sum of the column's
    conductances gs [Kc, A, R, P] (over g_range), I = v_read * sum_i |v_i| g_i (both cells of a pair conduct).
    ``scratch``: the crossbar's reusable buffer for the noise."""
    c = hw.column_noise
    g_range_S, v_read = g_range_uS * 1e-6, hw.device.v_read_V
    var = torch.zeros((), device=y.device)
    if c.thermal:
        var = var + (4 * BOLTZMANN_J_PER_K * c.temperature_K * c.bandwidth_Hz / (v_read**2 * g_range_S)) \
            * gs.sum(dim=2, keepdim=True)
    if c.shot:
        var = var + (2 * ELECTRON_CHARGE_C * c.bandwidth_Hz / (v_read * g_range_S)) * torch.matmul(v.abs(), gs)
    noise = keys.derive("column").randn(y.shape[1:], out=scratch.get(y.shape, y.device))
    y.add_(noise.mul_(var.sqrt()))
