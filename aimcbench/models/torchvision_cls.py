"""torchvision classification networks (study 004's ImageNet models and issue 4's ResNet-18/34/50).

``build_torchvision(arch, ...)`` builds one of :data:`ARCHS` with, in this order of precedence:

* ``weights_path``: a local state dict of that architecture (e.g. torchvision's file copied by hand, or a
  CIFAR model trained elsewhere); a missing or ill-fitting file is a one-line :class:`TorchvisionLoadError`.
* ``weights="imagenet"``: torchvision's IMAGENET1K_V1 weights through its weights enum (hub cache, else a
  download); when they cannot be had the error names ``model.weights`` and points to ``model.weights_path``.
* neither: random initialisation seeded by ``seed`` (tests, timing, or training from scratch).

``cifar_stem=True`` replaces the ImageNet stem for 32x32 inputs: a 3x3 stride-1 first convolution and no
max-pool (ResNets), or a stride-1 first convolution (MobileNet-v2). Such models are trained like the other
CIFAR models (ImageNet weights do not fit the new stem).

The returned model carries two attributes the training cache reads (aimcbench.train.cache.load_or_train):
``aimc_pretrained`` (bool: evaluate as built, never train) and ``aimc_weights_id`` (what was loaded, for
result hashes). Both ImageNet weights and a weights file count as pretrained unless ``pretrained=False``
asks to train from them; ``pretrained=True`` with random weights skips training too (tests, timing).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CheckpointError, read_state_dict

# arch -> name of torchvision's weights enum (each has IMAGENET1K_V1)
ARCHS: dict[str, str] = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
    "resnet101": "ResNet101_Weights",
    "wide_resnet50_2": "Wide_ResNet50_2_Weights",
    "mobilenet_v2": "MobileNet_V2_Weights",
}


class TorchvisionLoadError(CheckpointError):
    """Bad settings or weights that cannot be had for a torchvision model; one line (aimc exits 2)."""


def _apply_cifar_stem(model: nn.Module, arch: str) -> None:
    """Adapt the stem to 32x32 inputs: ImageNet's 7x7/2 conv + 3x3/2 max-pool would shrink 32 px to 8 px."""
    if arch == "mobilenet_v2":
        first = model.features[0][0]  # Conv2d(3, 32, 3, stride 2, padding 1)
        model.features[0][0] = nn.Conv2d(first.in_channels, first.out_channels, 3, stride=1, padding=1, bias=False)
    else:
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()


def _imagenet_model(arch: str, num_classes: int, cifar_stem: bool) -> tuple[nn.Module, str]:
    """torchvision's IMAGENET1K_V1 model, or a one-line TorchvisionLoadError saying what to do instead."""
    import torchvision.models as tvm

    if num_classes != 1000 or cifar_stem:
        raise TorchvisionLoadError(
            f"model.weights=imagenet: the ImageNet weights of {arch} need num_classes=1000 and cifar_stem=false "
            f"(got {num_classes}, {str(cifar_stem).lower()}); use model.weights=null to train this variant")
    enum = getattr(tvm, ARCHS[arch]).IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
    try:
        if os.environ.get("AIMC_NO_DOWNLOAD") and not cached.is_file():
            raise OSError("AIMC_NO_DOWNLOAD is set")
        model = tvm.get_model(arch, weights=enum)
    except Exception as err:  # noqa: BLE001 - no network, proxy, corrupt download: all mean "cannot be had"
        why = f"{type(err).__name__}: {' '.join(str(err).split())[:80]}"
        raise TorchvisionLoadError(
            f"model.weights=imagenet: torchvision's IMAGENET1K_V1 weights of {arch} could not be had ({why}); "
            f"put {cached.name} in {cached.parent} or set model.weights_path=FILE "
            f"(or model.weights=null for random weights)") from None
    return model, f"torchvision:{arch}:IMAGENET1K_V1"


def _load_file(model: nn.Module, arch: str, path: str) -> str:
    """Load a state dict file into ``model``; return its sha256 (the weights' identity)."""
    p = Path(path).expanduser()
    state = read_state_dict(p, "model.weights_path", TorchvisionLoadError)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else "mismatch"
        raise TorchvisionLoadError(f"model.weights_path: {str(p)!r} does not fit {arch} "
                                   f"(num_classes/cifar_stem as configured): {detail[:160]}") from None
    return hashlib.sha256(p.read_bytes()).hexdigest()


def build_torchvision(arch: str, num_classes: int = 1000, weights: str | None = None,
                      weights_path: str | None = None, cifar_stem: bool = False, seed: int = 0,
                      pretrained: bool | None = None) -> nn.Module:
    """Eval-mode torchvision classifier ``arch`` (one of :data:`ARCHS`) giving [B, num_classes] logits.

    weights: "imagenet" (IMAGENET1K_V1) or None (random, seeded by ``seed``); weights_path: local state dict,
    wins over ``weights``; cifar_stem: 3x3 stride-1 stem without max-pool for 32x32 inputs. pretrained: None
    (evaluate without training exactly when weights were loaded), True (never train, even random weights),
    False (train, starting from whatever was loaded).
    """
    import torchvision.models as tvm

    if arch not in ARCHS:
        raise TorchvisionLoadError(f"model.arch: unknown torchvision model {arch!r}; allowed: {', '.join(ARCHS)}")
    if weights not in (None, "imagenet"):
        raise TorchvisionLoadError(f"model.weights: must be imagenet or null (got {weights!r})")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise TorchvisionLoadError(f"model.num_classes: must be an integer >= 2 (got {num_classes!r})")
    if weights == "imagenet" and not weights_path:
        model, ident = _imagenet_model(arch, num_classes, bool(cifar_stem))
        loaded = True
    else:
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(int(seed))  # the random init is part of the model's identity
        try:
            model = tvm.get_model(arch, weights=None, num_classes=num_classes)
            if cifar_stem:
                _apply_cifar_stem(model, arch)
        finally:
            torch.random.set_rng_state(gen_state)
        ident = f"random:{seed}"
        loaded = bool(weights_path)
        if weights_path:
            ident = "file:" + _load_file(model, arch, weights_path)
    model.aimc_pretrained = loaded if pretrained is None else bool(pretrained)
    model.aimc_weights_id = ident
    return model.eval()


__all__ = ["ARCHS", "TorchvisionLoadError", "build_torchvision"]
