"""Sweep points: one plain config per value of the sweep axis (plain dicts, no Hydra, no torch)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from .errors import UsageError

# Sections that take any key: a user's model or dataset ``_target_`` and its keyword arguments.
OPEN_SECTIONS = ("model", "dataset")


def set_dotted(cfg: dict, key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested plain dict; the key must already exist (typos are errors).

    Inside an open section (model, dataset) a new last key is allowed: a user's ``_target_`` takes any argument."""
    node = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        open_leaf = last and i >= 1 and parts[0] in OPEN_SECTIONS and isinstance(node, dict)
        if not isinstance(node, dict) or (part not in node and not open_leaf):
            allowed = ", ".join(map(str, node)) if isinstance(node, dict) else "(not a mapping)"
            raise UsageError(".".join(parts[: i + 1]), f"unknown key; allowed: {allowed}")
        if last:
            node[part] = value
        else:
            node = node[part]



def parse_fixed(item: str) -> tuple[str, Any]:
    """Split a sweep 'fixed' entry 'dotted.key=value' and parse the value like YAML."""
    key, text = item.split("=", 1)
    return key.strip(), (yaml.safe_load(text) if text.strip() else "")


def point_configs(cfg: dict) -> list[dict]:
    """One plain config per sweep point: a copy with ``sweep.fixed`` applied and the axis key set."""
    sw = cfg["sweep"]
    out = []
    for value in sw["values"]:
        point = copy.deepcopy(cfg)
        for item in sw.get("fixed", []):
            set_dotted(point, *parse_fixed(item))
        set_dotted(point, sw["key"], value)
        out.append(point)
    return out
