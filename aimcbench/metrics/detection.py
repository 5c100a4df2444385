"""Detection/segmentation agreement metrics that need no annotations: an analog chip's predictions against
the digital model's own predictions on the same image (study 000 Figs. 8-10 in numbers).

Both prediction sets are torchvision detection dicts (boxes [N,4] xyxy, labels [N], scores [N], masks
[N,1,H,W] probabilities), kept where score >= ``score_threshold``. Matching: pairs with the same label and box
IoU >= ``iou_threshold`` are matched one-to-one, greedily by highest box IoU. Then

* ``det_f1``          2 TP / (|analog| + |digital|)  (1 when both sets are empty: full agreement);
* ``mask_iou``        mean IoU of the binarized (> 0.5) masks of the matched pairs (NaN when none matched);
* ``label_retention`` fraction of digital detections whose best-overlapping analog detection (any label,
                      box IoU >= iou_threshold) carries the same label (NaN when digital found nothing);
                      a box that is kept but relabelled lowers it, a box that vanished too;
* ``score_change``    mean (analog - digital) score over matched pairs (NaN when none matched);
* ``detections``      number of analog detections at the threshold.
"""
from __future__ import annotations

import math

import torch

METRICS = ("det_f1", "mask_iou", "label_retention", "score_change", "detections")


def keep(pred: dict, score_threshold: float) -> dict:
    """The detections with score >= score_threshold (all keys filtered alike)."""
    sel = pred["scores"] >= score_threshold
    return {k: v[sel] for k, v in pred.items() if isinstance(v, torch.Tensor) and v.shape[:1] == sel.shape}


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N,4] x [M,4] xyxy boxes -> [N,M] IoU (0 where a union is empty)."""
    if a.numel() == 0 or b.numel() == 0:
        return torch.zeros(a.shape[0], b.shape[0])
    a, b = a.detach().double(), b.detach().double()
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """IoU of two binary masks of the same shape (1.0 when both are empty)."""
    a, b = a.bool(), b.bool()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def match(ref: dict, pred: dict, iou_threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one (ref index, pred index, box IoU) pairs with equal labels and IoU >= threshold, greedy by IoU."""
    iou = box_iou(ref["boxes"], pred["boxes"])
    same = ref["labels"][:, None] == pred["labels"][None, :]
    iou = torch.where(same, iou, torch.zeros_like(iou))
    pairs, used_r, used_p = [], set(), set()
    cand = [(float(iou[i, j]), i, j) for i, j in zip(*torch.nonzero(iou >= iou_threshold, as_tuple=True))]
    for v, i, j in sorted(cand, key=lambda t: (-t[0], int(t[1]), int(t[2]))):
        i, j = int(i), int(j)
        if i not in used_r and j not in used_p:
            pairs.append((i, j, v))
            used_r.add(i)
            used_p.add(j)
    return pairs


def detection_agreement(ref: dict, pred: dict, score_threshold: float = 0.5, iou_threshold: float = 0.5,
                        mask_threshold: float = 0.5) -> dict[str, float]:
    """The module's metrics for one image: ``pred`` (analog chip) against ``ref`` (digital model)."""
    r, p = keep(ref, score_threshold), keep(pred, score_threshold)
    nr, np_ = r["scores"].shape[0], p["scores"].shape[0]
    pairs = match(r, p, iou_threshold)
    out = {"det_f1": 1.0 if nr + np_ == 0 else 2 * len(pairs) / (nr + np_), "detections": float(np_)}
    if pairs and "masks" in r and "masks" in p:
        out["mask_iou"] = sum(mask_iou(r["masks"][i, 0] > mask_threshold, p["masks"][j, 0] > mask_threshold)
                              for i, j, _ in pairs) / len(pairs)
    else:
        out["mask_iou"] = math.nan
    out["score_change"] = (sum(float(p["scores"][j] - r["scores"][i]) for i, j, _ in pairs) / len(pairs)
                           if pairs else math.nan)
    if nr == 0:
        out["label_retention"] = math.nan
    else:
        iou = box_iou(r["boxes"], p["boxes"])
        kept = 0
        for i in range(nr):
            if np_ and float(iou[i].max()) >= iou_threshold:
                kept += int(p["labels"][int(iou[i].argmax())] == r["labels"][i])
        out["label_retention"] = kept / nr
    return out


def mean_agreement(refs: list[dict], preds: list[dict], **kw) -> dict[str, float]:
    """Per-image :func:`detection_agreement` averaged over images (NaNs skipped; NaN if all are NaN)."""
    per = [detection_agreement(r, p, **kw) for r, p in zip(refs, preds)]
    out = {}
    for m in METRICS:
        vals = [d[m] for d in per if not math.isnan(d[m])]
        out[m] = sum(vals) / len(vals) if vals else math.nan
    return out


# ------------------------------------------------------------------------------ sweep-point evaluation
def _cpu(pred: dict) -> dict:
    return {k: v.detach().cpu() for k, v in pred.items()}


@torch.no_grad()
def predict(model, images: list[torch.Tensor], batch_size: int = 1, device: str = "cpu") -> list[dict]:
    """The digital model's predictions, one dict per image (on the CPU)."""
    out = []
    for s in range(0, len(images), batch_size):
        out += [_cpu(p) for p in model([im.to(device) for im in images[s:s + batch_size]])]
    return out


def compact(pred: dict, score_threshold: float) -> dict:
    """Detections at the threshold with binarized masks (bool [N,H,W]): what a picture needs, small."""
    p = keep(pred, score_threshold)
    if "masks" in p:
        p["masks"] = p["masks"][:, 0] > 0.5
    return p


@torch.no_grad()
def evaluate_chips(amodel, images: list[torch.Tensor], refs: list[dict], score_threshold: float = 0.5,
                   iou_threshold: float = 0.5, batch_size: int = 1, device: str = "cpu",
                   targets: list[dict] | None = None) -> tuple[dict[str, list[float]], list[dict], list[float]]:
    """Metrics of every chip of an AnalogModel against the digital predictions ``refs``.

    Returns ({metric: [per chip]}, [chip k's compact prediction on the first image], [seconds per chip]).
    With COCO ``targets``, "mask_map" (torchmetrics segm mAP against the annotations) is added.
    The simulator runs detection models chip by chip, so chips are evaluated one at a time (bounded memory).
    """
    import time

    metrics: dict[str, list[float]] = {}
    firsts, seconds = [], []
    for k in amodel.chip_ids:
        t0 = time.perf_counter()
        preds = []
        for s in range(0, len(images), batch_size):
            batch = [im.to(device) for im in images[s:s + batch_size]]
            preds += [_cpu(p) for p in _chip_forward(amodel, k, batch)]
        seconds.append(time.perf_counter() - t0)
        vals = mean_agreement(refs, preds, score_threshold=score_threshold, iou_threshold=iou_threshold)
        if targets is not None:
            vals["mask_map"] = mask_map(preds, targets)
        for m, v in vals.items():
            metrics.setdefault(m, []).append(v)
        firsts.append(compact(preds[0], score_threshold))
    return metrics, firsts, seconds


def _chip_forward(amodel, chip: int, batch: list[torch.Tensor]) -> list[dict]:
    """Run one chip of an AnalogModel on a list of images (its chip-by-chip path, restricted to ``chip``)."""
    ids = amodel.chip_ids
    try:
        amodel.chip_ids = (chip,)
        return amodel(batch)[0]
    finally:
        amodel.chip_ids = ids


def mask_map(preds: list[dict], targets: list[dict]) -> float:
    """COCO mask mAP@[.5:.95] of predictions against annotations (torchmetrics; needs pycocotools)."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_type="segm")
    metric.update([{"masks": p["masks"][:, 0] > 0.5, "scores": p["scores"], "labels": p["labels"]} for p in preds],
                  [{"masks": t["masks"], "labels": t["labels"]} for t in targets])
    return float(metric.compute()["map"])


def evaluate_detection_point(amodel, images: list[torch.Tensor], refs: list[dict], targets: list[dict] | None,
                             digital_map: float | None, score_threshold: float, batch_size: int, device: str,
                             run_dir, point: int, axis_label: str
                             ) -> tuple[dict[str, list[float]], dict[str, float], list[float]]:
    """One sweep point of a detection model: per-chip metrics, the digital baseline, seconds per chip.

    Also writes the median chip's (by det_f1, then mask_iou; lower middle) first-image prediction to
    ``run_dir/images/det_point_XXX.npz`` for the segmentation picture grid."""
    import numpy as np

    from aimcbench.report.segmentation import save_prediction

    metrics, firsts, seconds = evaluate_chips(amodel, images, refs, score_threshold, batch_size=batch_size,
                                              device=device, targets=targets)
    n_ref = sum(int((r["scores"] >= score_threshold).sum()) for r in refs) / len(refs)
    digital = {"det_f1": 1.0, "mask_iou": 1.0 if n_ref else math.nan, "label_retention": 1.0 if n_ref else math.nan,
               "score_change": 0.0 if n_ref else math.nan, "detections": n_ref}
    if digital_map is not None:
        digital["mask_map"] = digital_map
    key = np.nan_to_num(np.array(metrics["det_f1"]), nan=-1.0) * 10 + np.nan_to_num(np.array(metrics["mask_iou"]),
                                                                                      nan=-1.0)
    order = np.argsort(key, kind="stable")
    chip = int(order[(len(order) - 1) // 2])
    save_prediction(run_dir, f"det_point_{point:03d}", firsts[chip], axis_label=axis_label,
                    chip=int(amodel.chip_ids[chip]))
    return metrics, digital, seconds


def detection_reference(model, cfg: dict, run_dir, device: str, meta: dict, log
                        ) -> tuple[list[torch.Tensor], list[dict] | None, list[dict], float | None]:
    """Images, COCO targets (or None), the digital predictions and the digital mask mAP (or None) of a
    detection sweep; writes images/det_digital.npz (first image and its digital detections) and meta notes."""
    import time

    from aimcbench.data.images import detection_inputs
    from aimcbench.report.segmentation import save_prediction

    dataset = cfg["dataset"]
    if dataset["name"] != "images":  # e.g. the sweep's default mnist: Mask R-CNN takes photographs
        from omegaconf import OmegaConf

        from aimcbench.configs import CONFIG_DIR

        dataset = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "dataset" / "images.yaml"), resolve=True)
        log(f"aimc: model {cfg['model']['name']} takes images: dataset={cfg['dataset']['name']} replaced by "
            f"dataset=images defaults (default image; set dataset=images dataset.paths=[...] for others)")
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
    save_prediction(run_dir, "det_digital", compact(refs[0], thr), image=images[0], image_name=names[0])
    det_map = mask_map(refs, targets) if targets is not None else None
    return images, targets, refs, det_map
