"""Which network a ``model`` config section means: a registered name, or ``_target_`` = any importable
nn.Module class or factory (``mypkg.nets.LeNet5``, or ``mynets.LeNet5`` for a file mynets.py in the working
directory), built with the section's other keys as keyword arguments.

Keys that describe the model to aimcbench rather than to its builder are never passed: ``name``, ``task``,
``checkpoint`` (a state dict loaded after building, :func:`aimcbench.models.checkpoint.load_checkpoint`) and
``input_shape`` (the image shape ``aimc tiles`` uses). For a ``_target_``, ``num_classes`` is passed only when the
target takes it, and when ``_target_`` overrides a registered model's section (``model._target_=...`` over the
default ``model=mlp``) that model's own keys (``hidden`` ...) are left out. Every problem is a
:class:`ModelError` whose message starts with the offending key.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from aimcbench.imports import import_object as _import_object

from .checkpoint import ModelError
from .dae import DenoisingAutoencoder
from .maskrcnn import build_maskrcnn
from .mlp import MLP
from .resnet import CifarResNet
from .torchvision_cls import build_torchvision
from .vgg import VGGBlock
from .wrn import WideResNet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "dae": DenoisingAutoencoder,
    "vgg_block": VGGBlock,
    "wrn16_8": WideResNet,
    "resnet_cifar": CifarResNet,
    "maskrcnn": build_maskrcnn,  # a builder function (torchvision model), not a class
    "torchvision": build_torchvision,  # torchvision classifiers by arch (resnet18 ... mobilenet_v2), builder function
}
"""Registered model names -> class or builder function (``register_model`` adds to it)."""

RESERVED_KEYS = ("name", "task", "checkpoint", "input_shape", "_target_")
TARGET_KEY = "model._target_"


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make ``model.name=<name>`` build ``builder(**keys)`` (for packages that extend aimcbench)."""
    MODELS[name] = builder


def _parameters(fn: Callable) -> tuple[list[str], list[str], bool]:
    """(keyword parameter names, required ones, takes **kwargs) of a class or function; ([], [], True) if unknown."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], [], True
    names, required, var_kw = [], [], False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
            names.append(p.name)
            if p.default is p.empty:
                required.append(p.name)
    return names, required, var_kw


def build_model(name: str, **params) -> nn.Module:
    """Build registered model ``name`` with keyword ``params`` (e.g. build_model("mlp", hidden=[500, 500])).

    Unknown names or parameters raise ValueError with one line listing what is allowed.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}'; allowed: {', '.join(MODELS)}")
    cls = MODELS[name]
    allowed = [p for p in inspect.signature(cls.__init__ if isinstance(cls, type) else cls).parameters
               if p != "self"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"model '{name}' got unknown parameter(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(allowed)}")
    return cls(**params)


def import_object(path: Any, key: str) -> Any:
    """The object a dotted path names (working directory importable); ModelError(``key``: ...) otherwise."""
    return _import_object(path, key, ModelError)


def target_kwargs(model_cfg: dict, target: Callable) -> dict:
    """Keyword arguments for a ``_target_`` builder; ModelError on keys it does not take or that it needs."""
    names, required, var_kw = _parameters(target)
    kwargs = {k: v for k, v in model_cfg.items() if k not in RESERVED_KEYS}
    if "num_classes" in kwargs and not var_kw and "num_classes" not in names:
        kwargs.pop("num_classes")  # describes the data; passed only to targets that take it
    path = model_cfg["_target_"]
    if model_cfg.get("name") in MODELS and not var_kw:
        # `model._target_=...` over a registered model's section (e.g. the default model=mlp): the keys that
        # model's builder takes (hidden, width_mult ...) belong to it, not to the target. Typos still fail.
        own, _, _ = _parameters(MODELS[model_cfg["name"]])
        kwargs = {k: v for k, v in kwargs.items() if k in names or k not in own}
    unknown = sorted(set(kwargs) - set(names)) if not var_kw else []
    if unknown:
        raise ModelError(f"{TARGET_KEY}: {path} takes no keyword argument(s) {', '.join(unknown)} "
                         f"(from model.{unknown[0]}); it takes: {', '.join(names) or 'none'}", f"model.{unknown[0]}")
    missing = [n for n in required if n not in kwargs]
    if missing:
        raise ModelError(f"{TARGET_KEY}: {path} needs {', '.join(missing)}; set model.{missing[0]}=...")
    return kwargs


def builder_kwargs(model_cfg: dict) -> dict:
    """Keyword arguments of a registered model's builder (every key except the reserved ones)."""
    return {k: v for k, v in model_cfg.items() if k not in RESERVED_KEYS}


def check_model_config(model_cfg: dict) -> None:
    """Validate a ``model`` section without building it: the name is registered, or ``_target_`` imports, is
    callable and takes the section's keys. ModelError (one line naming the key) otherwise."""
    target = model_cfg.get("_target_")
    if target is None:
        if model_cfg.get("name") not in MODELS:
            raise ModelError(f"model.name: must be one of {', '.join(MODELS)}, or set model._target_ to "
                             f"an importable nn.Module class (got {model_cfg.get('name')!r})")
        return
    obj = import_object(target, TARGET_KEY)
    if not callable(obj):
        raise ModelError(f"{TARGET_KEY}: {target} is a {type(obj).__name__}, not an nn.Module class or factory")
    target_kwargs(model_cfg, obj)


def build_from_config(model_cfg: dict) -> nn.Module:
    """The (untrained) model a ``model`` section describes: ``_target_`` or a registered ``name``."""
    target = model_cfg.get("_target_")
    if target is None:
        return build_model(model_cfg["name"], **builder_kwargs(model_cfg))
    check_model_config(model_cfg)
    fn = import_object(target, TARGET_KEY)
    kwargs = target_kwargs(model_cfg, fn)
    try:
        model = fn(**kwargs)
    except Exception as err:  # noqa: BLE001 - the user's constructor failed: one line naming the key
        raise ModelError(f"{TARGET_KEY}: {target}(...) raised {type(err).__name__}: "
                         f"{' '.join(str(err).split())[:200]}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{TARGET_KEY}: {target}(...) returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def model_label(model_cfg: dict) -> str:
    """A short name for logs, file names and meta.json: ``name``, else the last part of ``_target_``."""
    if model_cfg.get("_target_"):
        return str(model_cfg["_target_"]).rsplit(".", 1)[-1]
    return str(model_cfg["name"])
