"""Splitting a layer's weight matrix over crossbar arrays, and the per-layer array plan (study 002 Table 1)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import HardwareConfig
from .layers import probe_layers, select_layers


@dataclass(frozen=True)
class TilePlan:
    """How one layer's [out, in] matrix sits on arrays.

    row_splits: (start, end) ranges over the inputs, one per row of arrays; col_splits: ranges over the outputs,
    one per column of arrays (an output takes two physical columns with separate_adc)."""

    row_splits: tuple[tuple[int, int], ...]
    col_splits: tuple[tuple[int, int], ...]
    columns_per_output: int

    @property
    def arrays(self) -> int:
        """Number of physical arrays."""
        return len(self.row_splits) * len(self.col_splits)


def _ranges(n: int, size: int) -> tuple[tuple[int, int], ...]:
    return tuple((s, min(s + size, n)) for s in range(0, n, size))


def plan_layer(in_features: int, out_features: int, hw: HardwareConfig, kernel_area: int = 1) -> TilePlan:
    """Plan one layer. ``kernel_area`` k*k of a conv, whose rows are ordered (channel, kh, kw) as unfold gives them."""
    m = hw.mapping
    per_out = 2 if m.differential == "separate_adc" else 1
    if m.tile_rows is None:
        return TilePlan(((0, in_features),), ((0, out_features),), per_out)
    rows = m.tile_rows
    if m.conv_rows == "channel_aligned" and kernel_area > 1 and kernel_area <= m.tile_rows:
        # Whole input channels per array: floor(tile_rows / (k*k)) channels (28 for 3x3 on 256 rows).
        rows = (m.tile_rows // kernel_area) * kernel_area
    return TilePlan(_ranges(in_features, rows), _ranges(out_features, m.tile_cols // per_out), per_out)


def analog_layer_shape(module: nn.Module) -> tuple[int, int, int]:
    """(in_features, out_features, kernel_area) of the matrix an analog Linear or Conv2d holds."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return module.in_channels // module.groups * kh * kw, module.out_channels, kh * kw
    return module.in_features, module.out_features, 1


def tile_plan(model: nn.Module, hw: HardwareConfig, input_shape: tuple[int, ...]) -> list[dict]:
    """Per analog layer: input size, filter shape, columns, row vector length and arrays (study 002 Table 1).

    ``input_shape`` excludes the batch dimension, e.g. (3, 32, 32)."""
    layers = select_layers(model, hw)
    inputs: dict[str, tuple] = {}
    probe_layers(model, layers, torch.zeros((1, *input_shape)),
                 lambda name, mod, args, out: inputs.__setitem__(name, tuple(args[0].shape[1:])))
    rows = []
    for name, mod in layers.items():
        n_in, n_out, area = analog_layer_shape(mod)
        plan = plan_layer(n_in, n_out, hw, area)
        shape = inputs.get(name, ())
        if isinstance(mod, nn.Conv2d):
            size = "x".join(str(s) for s in (*shape[1:], shape[0])) if len(shape) == 3 else "?"
            kh, kw = mod.kernel_size
            filt = f"{kh}x{kw}x{mod.in_channels // mod.groups}x{mod.out_channels}"
        else:
            size, filt = str(n_in), f"{n_in}x{n_out}"
        rows.append(dict(layer=name, input_size=size, filter_shape=filt, columns=n_out * plan.columns_per_output,
                         row_length=n_in, arrays_rows=len(plan.row_splits), arrays_cols=len(plan.col_splits),
                         arrays=plan.arrays))
    return rows
