"""Hydra search-path plugin: the studies' presets (``experiment=s000_fig6`` ...) for aimcbench's own apps.

The engine's configs (``aimcbench/configs``) know nothing of the studies; each study keeps its presets in
``aimcbench/studies/<id>/conf/experiment/``. Hydra discovers this plugin in the ``hydra_plugins`` namespace and
it appends those folders to the search path of apps whose primary configs are aimcbench's, so the presets
resolve while a user's own ``hydra.searchpath`` or ``--config-dir`` still works as usual (and other Hydra apps
in the same environment are left alone).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


def studies_conf_dirs() -> list[Path]:
    """``aimcbench/studies/<id>/conf`` for every study, found without importing the package."""
    spec = importlib.util.find_spec("aimcbench")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0]) / "studies"
    return sorted(p for p in root.glob("s[0-9]*/conf") if p.is_dir())


class AimcbenchStudiesSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        ours = any(str(e.path or "").rstrip("/").endswith(("aimcbench/configs", "aimcbench.configs"))
                   for e in search_path.get_path())
        if ours:
            for conf in studies_conf_dirs():
                search_path.append(provider=f"aimcbench-{conf.parent.name}", path=f"file://{conf}")
