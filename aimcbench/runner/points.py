"""Sweep points: the configs (aimcbench.config.points, shared with the commands' validation) and the axis."""
from __future__ import annotations

# Re-exported: a bad sweep key is a usage error; point configs are shared with the commands' validation.
from aimcbench.config.errors import UsageError
from aimcbench.config.points import parse_fixed, point_configs, set_dotted

__all__ = ["UsageError", "axis_entries", "parse_fixed", "point_configs", "set_dotted"]


def axis_entries(sweep: dict) -> list[tuple[float, str]]:
    """(axis_value, axis_label) per sweep value; non-numeric values use their position on the axis."""
    out = []
    for i, v in enumerate(sweep["values"]):
        numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
        out.append((float(v) if numeric else float(i), f"{v:g}" if numeric else str(v)))
    return out
