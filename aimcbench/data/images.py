"""Image files for detection/segmentation models (``dataset=images``), optionally COCO val2017 with annotations.

Public API::

    images = load_images(paths=None, max_size=512)   # [(name, float32 [3,H,W] in [0,1])], longest side <= max_size
    default_image_path()                              # the "astronaut" photograph (NASA, public domain)
    images, targets = load_coco(images_dir, annotations, limit=None, max_size=512)   # targets for mask mAP

With no paths the default image is ``_sample/astronaut.png`` inside this package (the same file as scikit-image's
``astronaut.png``, byte for byte, so results match those made with it): a photograph of astronaut Eileen Collins
(NASA, public domain), one person, so the person class (red in the study's colours) is exercised.
Missing or unreadable files raise DataError with one line naming the key and the path.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .errors import DataError


def default_image_path() -> str:
    """The default image: astronaut.png (NASA, public domain), shipped as package data."""
    path = Path(__file__).with_name("_sample") / "astronaut.png"
    if not path.is_file():  # only a broken install lacks it
        raise DataError(f"dataset.paths: empty and the default image {str(path)!r} is missing from this "
                        "installation; set dataset.paths=[FILE, ...] or reinstall aimcbench")
    return str(path)


def _read(path: str, key: str) -> torch.Tensor:
    """One RGB image file -> float32 [3, H, W] in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{key}: no image file {str(p)!r}")
    try:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{key}: cannot read {str(p)!r} as an image ({type(err).__name__})") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def fit_size(img: torch.Tensor, max_size: int | None) -> tuple[torch.Tensor, float]:
    """Shrink so the longest side is at most ``max_size`` (antialiased); (image, scale factor applied)."""
    h, w = img.shape[-2:]
    if not max_size or max(h, w) <= max_size:
        return img, 1.0
    scale = max_size / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    out = torch.nn.functional.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].clamp_(0.0, 1.0), scale


def load_images(paths: list[str] | None = None, max_size: int | None = 512) -> list[tuple[str, torch.Tensor]]:
    """[(file name, image [3,H,W])] for ``paths`` (default: :func:`default_image_path`), resized to ``max_size``."""
    if isinstance(paths, str):
        paths = [paths]
    paths = list(paths or [default_image_path()])
    out = []
    for i, path in enumerate(paths):
        img, _ = fit_size(_read(str(path), f"dataset.paths[{i}]"), max_size)
        out.append((Path(path).name, img))
    return out


def load_coco(images_dir: str, annotations: str, limit: int | None = None, max_size: int | None = 512,
              ) -> tuple[list[tuple[str, torch.Tensor]], list[dict]]:
    """COCO val2017 images with instance masks (for torchmetrics' segm mAP); needs pycocotools for masks.

    Returns the first ``limit`` images (by id) that have annotations and, per image, a target
    {"boxes" [N,4] xyxy, "labels" [N], "masks" [N,H,W] bool} at the resized size.
    """
    ann_path, img_dir = Path(annotations).expanduser(), Path(images_dir).expanduser()
    if not ann_path.is_file():
        raise DataError(f"dataset.coco_annotations: no file {str(ann_path)!r} (instances_val2017.json)")
    if not img_dir.is_dir():
        raise DataError(f"dataset.coco_images: no directory {str(img_dir)!r} (val2017/)")
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        raise DataError("dataset.coco_annotations: decoding COCO masks needs pycocotools "
                        "(pip install pycocotools)") from None
    data = json.loads(ann_path.read_text())
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        if not a.get("iscrowd", 0):
            by_image.setdefault(a["image_id"], []).append(a)
    infos = sorted((im for im in data["images"] if im["id"] in by_image), key=lambda im: im["id"])
    images, targets = [], []
    for info in infos[:limit] if limit else infos:
        img = _read(str(img_dir / info["file_name"]), "dataset.coco_images")
        h, w = img.shape[-2:]
        img, scale = fit_size(img, max_size)
        masks, boxes, labels = [], [], []
        for a in by_image[info["id"]]:
            rle = mask_utils.frPyObjects(a["segmentation"], h, w)
            m = torch.from_numpy(mask_utils.decode(mask_utils.merge(rle) if isinstance(rle, list) else rle))
            if scale != 1.0:
                m = torch.nn.functional.interpolate(m[None, None].float(), size=img.shape[-2:], mode="nearest")[0, 0]
            x, y, bw, bh = a["bbox"]
            boxes.append([x * scale, y * scale, (x + bw) * scale, (y + bh) * scale])
            masks.append(m.bool())
            labels.append(a["category_id"])
        images.append((info["file_name"], img))
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels),
                        "masks": torch.stack(masks)})
    if not images:
        raise DataError(f"dataset.coco_annotations: no annotated image found in {str(ann_path)!r}")
    return images, targets


def detection_inputs(dataset_cfg: dict, limit: int | None = None
                     ) -> tuple[list[str], list[torch.Tensor], list[dict] | None]:
    """(names, images, COCO targets or None) from a plain ``dataset`` config section (dataset=images).

    COCO mode when both dataset.coco_images and dataset.coco_annotations are set; else dataset.paths."""
    max_size = dataset_cfg.get("max_size")
    if dataset_cfg.get("coco_annotations") or dataset_cfg.get("coco_images"):
        if not (dataset_cfg.get("coco_annotations") and dataset_cfg.get("coco_images")):
            raise DataError("dataset.coco_images: COCO mode needs both dataset.coco_images (val2017/) and "
                            "dataset.coco_annotations (instances_val2017.json)")
        pairs, targets = load_coco(dataset_cfg["coco_images"], dataset_cfg["coco_annotations"], limit, max_size)
    else:
        pairs, targets = load_images(dataset_cfg.get("paths"), max_size), None
        pairs = pairs[:limit] if limit else pairs
    return [n for n, _ in pairs], [im for _, im in pairs], targets
