"""The one error type of bad settings and arguments."""

from __future__ import annotations

from aimcbench.sim.config import ConfigError


class UsageError(ConfigError):
    """A bad setting or argument; ``key`` is the dotted key, ``str()`` is one line ``<key>: <what is allowed>``.

    A :class:`~aimcbench.sim.ConfigError` (the simulator's settings) is the same kind of error."""
