"""Model builders for aimcbench.

Public API::

    model = build_model(name, **params)          # name in MODELS; params are the builder's keyword args
    model = build_from_config(model_cfg)         # a ``model`` section: registered name or _target_
    check_model_config(model_cfg)                # validate without building (ModelError, one line)
    load_checkpoint(model, path)                 # a user's state dict; CheckpointError if it does not fit
    n = analog_parameter_count(model)            # weights + biases of all Conv2d and Linear modules

Conv2d and Linear layers are the ones the simulator maps onto analog crossbars; everything else
(batch norm, transposed convolutions, pooling, activations) stays digital.
"""
from __future__ import annotations

from torch import nn

from .checkpoint import CheckpointError, ModelError, load_checkpoint, read_state_dict
from .registry import (
    MODELS,
    RESERVED_KEYS,
    build_from_config,
    build_model,
    builder_kwargs,
    check_model_config,
    import_object,
    model_label,
    register_model,
)


def analog_parameter_count(model: nn.Module) -> int:
    """Number of parameters (weights + biases) in the model's Conv2d and Linear modules."""
    return sum(p.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
               for p in m.parameters(recurse=False))


__all__ = ["MODELS", "RESERVED_KEYS", "CheckpointError", "ModelError", "analog_parameter_count", "build_from_config",
           "build_model", "builder_kwargs", "check_model_config", "import_object", "load_checkpoint", "model_label",
           "read_state_dict", "register_model"]
