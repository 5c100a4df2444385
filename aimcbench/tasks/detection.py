"""Detection/segmentation (study 000 Figs. 8-10): every chip's detections against the digital model's own on the
same images (aimcbench.metrics.detection), given weights only (COCO, a file or random; never trained).

Files: ``images/det_digital.npz`` (first image and its digital detections) once, and per point
``images/det_point_XXX.npz``: the median chip's (by det_f1, then mask_iou; lower middle) first-image detections,
for the segmentation picture grid of aimcbench.report.segmentation.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .base import PointResult, Task, npz_bytes, register_task


def load_detection_model(model_cfg: dict) -> tuple:
    """(eval model, weights identity for result hashes, source text) from a plain ``model`` config section.

    No training and no cache: the weights are torchvision's, a user file, or the seeded random init."""
    import hashlib
    import json
    from pathlib import Path

    from aimcbench.models import build_model

    params = {k: v for k, v in model_cfg.items() if k not in ("name", "task", "checkpoint")}
    model = build_model(model_cfg["name"], **params)
    if params.get("weights_path"):
        ident = hashlib.sha256(Path(params["weights_path"]).expanduser().read_bytes()).hexdigest()
        source = f"file {params['weights_path']}"
    else:  # what was actually loaded (weights=auto may fall back to random)
        loaded = getattr(model, "aimc_weights", "random")
        ident = "coco_v1" if loaded == "coco" else f"random:{params.get('seed', 0)}"
        source = "torchvision COCO_V1" if loaded == "coco" else f"random (seed {params.get('seed', 0)})"
    cfg_id = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return model, f"{ident}:{cfg_id}", source


class Detection(Task):
    name = "detection"
    trained = False

    def load_model(self, model_cfg):
        model, weights_id, source = load_detection_model(model_cfg)
        return model, weights_id, {"path": model_cfg.get("weights_path"), "source": source, "trained": False}

    def eval_data(self, model, cfg, device, meta, log):
        """Images, COCO targets (or None), the digital predictions and the digital mask mAP (or None); meta notes."""
        from aimcbench.data.images import detection_inputs
        from aimcbench.metrics.detection import (
            compact,
            mask_map,
            predict,
            prediction_arrays,
        )

        dataset = cfg["dataset"]
        if dataset.get("name") != "images":  # e.g. the sweep's default mnist: Mask R-CNN takes photographs
            from omegaconf import OmegaConf

            from aimcbench.configs import CONFIG_DIR

            dataset = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "dataset" / "images.yaml"), resolve=True)
            log(f"aimc: model {cfg['model'].get('name')} takes images: dataset={cfg['dataset'].get('name')} replaced "
                f"by dataset=images defaults (default image; set dataset=images dataset.paths=[...] for others)")
        meta["dataset_used"] = dataset
        ev = cfg["eval"]
        names, images, targets = detection_inputs(dataset, ev.get("n"))
        thr = float(ev.get("score_threshold", 0.5))
        t0 = time.perf_counter()
        refs = predict(model, images, int(ev["batch_size"]), device)
        meta["timings"]["digital_s_per_image"] = round((time.perf_counter() - t0) / len(images), 3)
        n_ref = [int((r["scores"] >= thr).sum()) for r in refs]
        meta["images"] = [{"name": n, "shape": list(im.shape), "digital_detections": k}
                          for n, im, k in zip(names, images, n_ref)]
        if not any(n_ref):
            top = max((float(r["scores"].max()) for r in refs if r["scores"].numel()), default=float("nan"))
            log(f"aimc: the digital model detects nothing at eval.score_threshold={thr:g} (top score {top:.3f}); "
                f"det_f1 is 1 only when a chip detects nothing too, mask_iou/label_retention/score_change are NaN "
                f"(undefined); lower eval.score_threshold for random weights")
        files = {"images/det_digital.npz": npz_bytes(**prediction_arrays(compact(refs[0], thr), image=images[0],
                                                                         image_name=names[0]))}
        det_map = mask_map(refs, targets) if targets is not None else None
        return DetectionData(images, targets, refs, det_map), files

    def evaluate(self, model, amodel, data, pcfg, ctx):
        """Per-chip metrics, the digital baseline, the median chip's first-image detections, seconds per chip."""
        from aimcbench.metrics.detection import evaluate_chips, prediction_arrays

        thr = float(pcfg["eval"]["score_threshold"])
        metrics, firsts, seconds = evaluate_chips(amodel, data.images, data.refs, thr, batch_size=ctx.batch_size,
                                                  device=ctx.device, targets=data.targets)
        n_ref = sum(int((r["scores"] >= thr).sum()) for r in data.refs) / len(data.refs)
        digital = {"det_f1": 1.0, "mask_iou": 1.0 if n_ref else math.nan,
                   "label_retention": 1.0 if n_ref else math.nan, "score_change": 0.0 if n_ref else math.nan,
                   "detections": n_ref}
        if data.digital_map is not None:
            digital["mask_map"] = data.digital_map
        key = (np.nan_to_num(np.array(metrics["det_f1"]), nan=-1.0) * 10
               + np.nan_to_num(np.array(metrics["mask_iou"]), nan=-1.0))
        chip = int(np.argsort(key, kind="stable")[(len(key) - 1) // 2])
        arrays = prediction_arrays(firsts[chip], axis_label=ctx.axis_label, chip=int(amodel.chip_ids[chip]))
        return PointResult(metrics, digital, {f"images/det_point_{ctx.point:03d}.npz": npz_bytes(**arrays)}, seconds)


class DetectionData:
    """A detection sweep's test data: images, COCO targets (or None), digital predictions, digital mask mAP."""

    def __init__(self, images, targets, refs, digital_map):
        self.images, self.targets, self.refs, self.digital_map = images, targets, refs, digital_map

    def __len__(self) -> int:
        return len(self.images)


register_task(Detection())
