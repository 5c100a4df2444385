"""Errors of the models package and loading a user's state dict into any model (built-in or ``_target_``).

Kept here, below the training cache, so that model builders (torchvision, Mask R-CNN weights files) and the
cache both use it without importing each other.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch


class ModelError(ValueError):
    """A model config that cannot be turned into a model; ``str()`` is one line ``<dotted key>: <problem>``."""

    def __init__(self, message: str, key: str | None = None):
        self.key = key if key is not None else message.split(":", 1)[0]
        super().__init__(message)


class CheckpointError(ModelError):
    """A user checkpoint (model.checkpoint, model.weights_path) that is missing or does not fit; one line."""


def read_state_dict(path: str | os.PathLike, key: str, error: type[ModelError] = CheckpointError) -> dict:
    """A state dict from a user's file (also one saved as {"state_dict": ...}); one-line ``error`` naming ``key``
    when the file is missing, unreadable or holds something else. Shared by model.checkpoint and weights_path."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise error(f"{key}: no file {str(p)!r}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise error(f"{key}: cannot read {str(p)!r} as a torch state dict ({type(err).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise error(f"{key}: {str(p)!r} holds a {type(state).__name__}, not a state dict")
    return state


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike, key: str = "model.checkpoint") -> None:
    """Load a user's state dict into ``model``; CheckpointError with one line (naming the first bad tensor)
    if it does not fit."""
    p = Path(path).expanduser()
    state = read_state_dict(p, key)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        if bad:
            k = bad[0]
            parts.append(f"shape of {k} is {tuple(getattr(state[k], 'shape', ()))}, model has {tuple(own[k].shape)}")
        raise CheckpointError(f"{key}: {str(p)!r} does not fit the configured model ({'; '.join(parts)})")
    model.load_state_dict(state)
