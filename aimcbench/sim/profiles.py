"""Hardware profiles as files: ``configs/hardware/<name>.yaml`` (packaged) or a user's own YAML file.

A profile states only how it differs from the defaults of :class:`~aimcbench.sim.config.HardwareConfig` (the
exact ``ideal`` chip), optionally on top of other profiles named in a Hydra-style ``defaults`` list::

    # configs/hardware/rram_l3.yaml: study 002's level-3 pipeline is the rram profile under its own name
    defaults: [rram, _self_]
    name: rram_l3

Hydra composes the same files for the ``aimc`` commands (``hardware=rram_l3``); this module reads them without
Hydra, for notebooks and scripts::

    hw = load_hardware("pcm", ["adc.bits=6"])                  # packaged profile + dotted overrides
    hw = load_hardware("my_chip.yaml").replace(adc__bits=6)    # a user's file (its defaults resolve beside it)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, HardwareConfig, apply_overrides, config_dir, hardware_from_dict


def profile_names(search: tuple[Path, ...] = ()) -> list[str]:
    """Names of the profiles in ``search`` folders and the packaged ``configs/hardware``."""
    dirs = [*search, config_dir() / "hardware"]
    return sorted({p.stem for d in dirs for p in Path(d).glob("*.yaml")})


def _find(name: str, search: tuple[Path, ...]) -> Path:
    for d in [*search, config_dir() / "hardware"]:
        path = Path(d) / f"{name}.yaml"
        if path.is_file():
            return path
    raise ConfigError("hardware", f"no profile {name!r}; allowed: {', '.join(profile_names(search))} "
                                  "(or the path of a YAML file)")


def _merge(base: dict, top: dict) -> dict:
    """``top`` over ``base``, recursively for mappings (lists and scalars replace)."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def profile_dict(path: Path, search: tuple[Path, ...] = (), _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The settings a profile file states, its ``defaults`` list resolved (without the schema's defaults)."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError("hardware", f"{path}: its defaults list includes itself")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError("hardware", f"cannot read profile {str(path)!r} ({' '.join(str(err).split())[:150]})")
    if not isinstance(data, dict):
        raise ConfigError("hardware", f"{path}: a profile must be a YAML mapping")
    defaults = data.pop("defaults", []) or []
    out: dict[str, Any] = {}
    own_done = False
    for entry in defaults:
        if entry == "_self_":
            out, own_done = _merge(out, data), True
        elif isinstance(entry, str):
            search_here = (path.parent, *search)
            out = _merge(out, profile_dict(_find(entry, search_here), search, (*_seen, path)))
        else:
            raise ConfigError("hardware", f"{path}: defaults entries must be profile names or _self_ (got {entry!r})")
    return out if own_done else _merge(out, data)


def load_hardware(name_or_path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = (),
                  search: tuple[str | os.PathLike, ...] = ()) -> HardwareConfig:
    """A validated :class:`HardwareConfig`: a profile name (``search`` folders first, then the packaged ones) or the
    path of a YAML file, with dotted ``key=value`` overrides applied on top."""
    dirs = tuple(Path(d) for d in search)
    text = str(name_or_path)
    path = Path(text) if (text.endswith((".yaml", ".yml")) or os.sep in text) else _find(text, dirs)
    if not path.is_file():
        raise ConfigError("hardware", f"no profile file {text!r}")
    hw = hardware_from_dict(profile_dict(path, dirs))
    # Overrides apply to the full settings (schema defaults filled in), so they may name every key.
    return hardware_from_dict(apply_overrides(dataclasses.asdict(hw), overrides)) if overrides else hw
