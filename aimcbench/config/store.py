"""Register the schema in Hydra's ConfigStore: ``<command>_schema`` is the first entry of each command's defaults
list (``configs/<command>.yaml``), so composition is typed and the dataclass defaults are the defaults."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from .schema import APPS


def register() -> None:
    """Store every command's schema (idempotent; Hydra reads it while composing)."""
    cs = ConfigStore.instance()
    for name, cls in APPS.items():
        cs.store(name=f"{name}_schema", node=cls)
