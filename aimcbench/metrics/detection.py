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
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(-1)
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


def prediction_arrays(pred: dict, image=None, **extra) -> dict:
    """A compact prediction (see :func:`compact`) as numpy arrays for an .npz file: boxes, labels, scores,
    masks bit-packed with their shape, optionally the image (float16) and ``extra`` values.
    aimcbench.report.segmentation reads them back (load_prediction)."""
    import numpy as np

    masks = pred["masks"].numpy().astype(bool) if "masks" in pred else np.zeros((0, 1, 1), bool)
    arrays = {"boxes": pred["boxes"].numpy().astype(np.float32), "labels": pred["labels"].numpy().astype(np.int64),
              "scores": pred["scores"].numpy().astype(np.float32), "mask_shape": np.array(masks.shape),
              "masks": np.packbits(masks.reshape(-1))}
    if image is not None:
        arrays["image"] = image.detach().cpu().numpy().astype(np.float16)
    arrays.update({k: np.array(v) for k, v in extra.items()})
    return arrays
