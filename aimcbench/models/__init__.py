"""Model builders for aimcbench.

Public API::

    model = build_model(name, **params)     # name in MODELS; params are the builder's keyword args
    n = analog_parameter_count(model)       # weights + biases of all Conv2d and Linear modules

Conv2d and Linear layers are the ones the simulator maps onto analog crossbars; everything else
(batch norm, transposed convolutions, pooling, activations) stays digital.
"""
from __future__ import annotations

import inspect

from torch import nn

from .dae import DenoisingAutoencoder
from .maskrcnn import build_maskrcnn
from .mlp import MLP
from .resnet import CifarResNet
from .torchvision_cls import build_torchvision
from .vgg import VGGBlock
from .wrn import WideResNet

MODELS: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "dae": DenoisingAutoencoder,
    "vgg_block": VGGBlock,
    "wrn16_8": WideResNet,
    "resnet_cifar": CifarResNet,
    "maskrcnn": build_maskrcnn,  # a builder function (torchvision model), not a class
    "torchvision": build_torchvision,  # torchvision classifiers by arch (resnet18 ... mobilenet_v2), builder function
}


def build_model(name: str, **params) -> nn.Module:
    """Build model ``name`` with keyword ``params`` (e.g. build_model("mlp", hidden=[500, 500])).

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


def analog_parameter_count(model: nn.Module) -> int:
    """Number of parameters (weights + biases) in the model's Conv2d and Linear modules."""
    return sum(p.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
               for p in m.parameters(recurse=False))


__all__ = ["MODELS", "analog_parameter_count", "build_model"]
