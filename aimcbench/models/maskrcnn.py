"""Mask R-CNN (ResNet-50-FPN) of study 000 Figs. 8-10: torchvision's ``maskrcnn_resnet50_fpn``.

Weights, in this order: ``weights_path`` (a local state dict, e.g. torchvision's COCO file copied by hand),
``weights: coco`` (torchvision's COCO_V1 weights, downloaded once into torch's hub cache), or none (random,
seeded: for tests and for timing). Every Conv2d and Linear (backbone, FPN, RPN, box and mask heads) is what
the simulator's default layer selection maps onto crossbars; the mask head's ConvTranspose2d, the frozen
batch norms, RoIAlign, NMS and the box decoding stay digital, as in the study.

``resize=False`` (default) runs every image at the size the dataset gives it (``dataset.max_size``): on a
CPU the network's cost is set by the image size, and torchvision would otherwise upscale to 800 px.
``resize=True`` keeps torchvision's own resize to ``min_size``/``max_size`` (what the COCO weights were
trained with).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CheckpointError, read_state_dict

logger = logging.getLogger(__name__)


class MaskRCNNLoadError(CheckpointError):
    """The configured weights cannot be had (download failed, bad file); one-line message (exit 2 in aimc)."""


def _no_resize(image: torch.Tensor, target=None):
    """Stand-in for GeneralizedRCNNTransform.resize: keep the image as the loader sized it."""
    return image, target


def _load_state(path: str) -> dict:
    return read_state_dict(path, "model.weights_path", MaskRCNNLoadError)


def build_maskrcnn(weights: str | None = "auto", weights_path: str | None = None, seed: int = 0,
                   resize: bool = False, min_size: int = 800, max_size: int = 1333,
                   box_score_thresh: float = 0.05, detections_per_img: int = 100,
                   rpn_post_nms_top_n_test: int = 1000) -> nn.Module:
    """Eval-mode torchvision Mask R-CNN ResNet-50-FPN (91 COCO categories, 44.4 M parameters).

    weights: "coco" (error when it cannot be had), "auto" (COCO when it can be had, else random with a
    one-line notice) or None (random); weights_path: local state dict (wins over ``weights``); seed: the random init
    when neither is given. box_score_thresh / detections_per_img: torchvision's post-processing (random
    weights score every class near 1/91, below the default 0.05, so random-weight runs lower it).
    """
    from torchvision.models.detection import (
        MaskRCNN_ResNet50_FPN_Weights,
        maskrcnn_resnet50_fpn,
    )

    if weights not in (None, "coco", "auto"):
        raise MaskRCNNLoadError(f"model.weights: must be coco, auto or null (got {weights!r})")
    kw = dict(min_size=min_size, max_size=max_size, box_score_thresh=box_score_thresh,
              box_detections_per_img=detections_per_img, rpn_post_nms_top_n_test=rpn_post_nms_top_n_test)
    source = "random"
    model = None
    if weights_path:
        state = _load_state(weights_path)
        model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, **kw)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            lines = str(err).splitlines()
            first = lines[1].strip() if len(lines) > 1 else str(err)
            raise MaskRCNNLoadError(f"model.weights_path: {weights_path!r} does not fit maskrcnn_resnet50_fpn "
                                    f"({first[:160]})") from None
        source = "file"
    elif weights in ("coco", "auto"):
        coco = MaskRCNN_ResNet50_FPN_Weights.COCO_V1
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(coco.url).name
        offline = os.environ.get("AIMC_NO_DOWNLOAD") and not cached.is_file()
        try:
            if offline:
                raise OSError("AIMC_NO_DOWNLOAD is set")
            model = maskrcnn_resnet50_fpn(weights=coco, **kw)
            source = "coco"
        except Exception as err:
            why = f"{type(err).__name__}: {' '.join(str(err).split())[:80]}"
            if weights == "coco":
                raise MaskRCNNLoadError(
                    f"model.weights=coco: torchvision's COCO weights could not be had ({why}); put "
                    f"{cached.name} in {cached.parent} or set model.weights_path=FILE "
                    f"(or model.weights=null for random weights)") from None
            logger.warning(f"model.weights=auto: COCO weights not available ({why}); using random weights "
                           f"(seed {seed}); put {cached.name} in {cached.parent} for the study's model")
    if model is None:
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # the random init is part of the model's identity
        try:
            model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, **kw)
        finally:
            torch.random.set_rng_state(gen_state)
    model.aimc_weights = source  # what was actually loaded: "coco" | "file" | "random"
    if not resize:
        model.transform.resize = _no_resize
    return model.eval()


# COCO category names (torchvision's 91-entry list, "N/A" for unused ids), for labels in pictures.
def coco_names() -> list[str]:
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    return list(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])
