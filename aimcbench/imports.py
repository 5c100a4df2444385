"""Importing a user's object by dotted path (``model._target_``, ``dataset._target_``, ``model.task``).

A leaf module (imports nothing of aimcbench) so that models, data and tasks share one resolver.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any


def import_object(path: Any, key: str, error: type[Exception] = ValueError) -> Any:
    """The object ``pkg.mod.Name`` names; the working directory is importable too (``mynets.LeNet5`` for a
    file mynets.py there). Raises ``error("<key>: ...")`` (one line) saying which part failed and why."""
    if not isinstance(path, str) or "." not in path.strip("."):
        raise error(f"{key}: must be a dotted path module.Name (got {path!r})")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:  # console scripts do not put the working directory there
        sys.path.append(cwd)
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and (module_name + ".").startswith(err.name + "."):
                continue  # this prefix is not a module: try a shorter one (the rest may be attributes)
            raise error(f"{key}: importing {module_name!r} for {path!r} failed: {err}") from None
        except Exception as err:  # noqa: BLE001 - a user's module may raise anything while importing
            raise error(f"{key}: importing {module_name!r} for {path!r} failed: "
                        f"{type(err).__name__}: {' '.join(str(err).split())[:200]}") from None
        for i, attr in enumerate(parts[cut:]):
            if not hasattr(obj, attr):
                raise error(f"{key}: cannot import {path!r}: {'.'.join(parts[:cut + i])!r} has no attribute {attr!r}")
            obj = getattr(obj, attr)
        return obj
    raise error(f"{key}: cannot import {path!r}: no module named {parts[0]!r} (not installed, and no "
                f"{parts[0]}.py or {parts[0]}/ in the working directory {cwd})")
