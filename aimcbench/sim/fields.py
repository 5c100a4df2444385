"""The schema field helper of the typed settings (``_f``) and the error every bad setting raises (``ConfigError``).

Kept apart from :mod:`aimcbench.sim.config` so that the settings' dataclasses fit in one file; the command schema
(``aimcbench/config/schema.py``) builds its fields with the same ``_f``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any


class ConfigError(ValueError):
    """A bad hardware setting; ``key`` is the dotted key, ``str()`` is one line naming it."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


_NO_DEFAULT = dataclasses.MISSING


def _f(doc: str, choices: tuple | None = None, lo: float | None = None, hi: float | None = None,
       lo_open: bool = False, default: Any = _NO_DEFAULT, factory: Any = _NO_DEFAULT,
       check: Any = None) -> Any:
    """A schema field: its doc string, its default (``default``, or ``factory`` for lists, mappings and nested
    settings) and what values are allowed (choices, a numeric range, or ``check(value) -> str | None`` returning
    what is allowed when the value is not). The defaults of the hardware settings are the ``ideal`` profile:
    exact weights and converters; every packaged profile (``configs/hardware/*.yaml``) states only how it differs."""
    meta = {"doc": doc, "choices": choices, "lo": lo, "hi": hi, "lo_open": lo_open, "check": check}
    if factory is not _NO_DEFAULT:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)
