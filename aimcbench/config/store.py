"""Register the schema in Hydra's ConfigStore: ``<command>_schema`` is the first entry of each command's defaults
list (``configs/<command>.yaml``), so composition is typed and the dataclass defaults are the defaults."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from .points import OPEN_SECTIONS
from .schema import APPS


def register() -> None:
    """Store every command's schema (idempotent; Hydra reads it while composing).

    Hydra puts the composed config in struct mode, which closes every mapping, so that a new key would need
    ``+key=value``; the open sections are explicitly marked non-struct, so ``model._target_=mynets.LeNet5`` works
    as it reads (a typo there is caught by the model's own check, which knows its arguments)."""
    cs = ConfigStore.instance()
    for name, cls in APPS.items():
        node = OmegaConf.structured(cls)
        for section in OPEN_SECTIONS:
            if section in node:
                OmegaConf.set_struct(node[section], False)
        cs.store(name=f"{name}_schema", node=node)
