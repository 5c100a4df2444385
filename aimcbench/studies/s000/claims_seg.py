"""Checks of study 000's Mask R-CNN claims (Figs. 8-10), each on chip-paired statistics with intervals.

The study shows pictures only (COCO weights, an urban image); we read its words with the annotation-free
agreement metrics of aimcbench.metrics.detection, per chip, against the digital model's own detections:
``det_f1`` (detections kept), ``label_retention`` (labels kept), ``mask_iou`` (IoU of the matched masks; a chip
that matches nothing has lost its masks: 0). Chip k is the same chip at every point, so losses between two
points are chip-paired. Thresholds are ours where the study gives none (each check's docstring, the manifest's
departures). The claims are about the COCO model: a run with random weights (no COCO file on the machine) is
"not judged", with its numbers printed. Each check returns ``verdict.result(...)`` and never raises.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from aimcbench.studies import verdict as V

SMALL = 0.1   # "not much effect" / "keeps": a mean loss below 0.1 (on 0-1 agreement scores; ours)
MISPLACED = 0.5   # "masks all misplaced": mean mask IoU with the digital masks below 0.5 (ours)


def _weights(run_dir: Path) -> str:
    """'coco', 'file', 'random' or 'unknown': what the run's model was loaded from (meta.json)."""
    try:
        src = json.loads((Path(run_dir) / "meta.json").read_text())["model_cache"]["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"
    return "coco" if "COCO" in src else ("file" if src.startswith("file") else "random")


def _grid(run_dir: Path) -> str | None:
    p = Path(run_dir) / "segmentation.png"
    return str(p) if p.is_file() else None


def _series(df: pd.DataFrame, metric: str, x: float) -> pd.Series:
    """Per-chip values of ``metric`` at ``x``; mask_iou NaN (nothing matched) counts 0 where the chip has det_f1."""
    s = V.at(df[df["metric"] == metric], x)
    if metric == "mask_iou":
        chips = V.at(df[df["metric"] == "det_f1"], x).index
        s = s.reindex(chips.union(s.index)).fillna(0.0)
    return s.dropna()


def _loss(df: pd.DataFrame, metric: str, a: float, b: float) -> V.Interval:
    return V.paired(_series(df, metric, a), _series(df, metric, b), f"mean {metric} loss {a:g} -> {b:g}")


def _panel(run_dirs, xs, what: str):
    """(chip values, run dir, 'ours' prefix, missing-answer or None) of a panel's run0."""
    if not run_dirs:
        return None, None, "", V.missing(f"the {what} run")
    d = Path(run_dirs[0])
    df = V.chip_values(d)
    if any(len(_series(df, "det_f1", x)) == 0 for x in xs):
        return None, d, "", V.missing(f"{what}: det_f1 at {', '.join(f'{x:g}' for x in xs)} in run0", _grid(d))
    parts = []
    for m in ("det_f1", "label_retention", "mask_iou"):
        parts.append(f"{m} " + ", ".join(f"{x:g}: {_series(df, m, x).mean():.2f}" for x in xs))
    return df, d, "mean over chips: " + "; ".join(parts) + f" [{_weights(d)} weights]", None


def _judged(d: Path, verdict: str, ours: str, iv: V.Interval) -> dict:
    """The result, or "not judged" with the numbers when the model is not the study's (random weights)."""
    if _weights(d) not in ("coco", "file"):
        return V.result(V.NOT_JUDGED, "not judged: random weights (the study's COCO weights are not on this "
                        "machine), numbers for reference: " + ours, iv, plot=_grid(d))
    return V.result(verdict, ours, iv, plot=_grid(d))


def fig8_adc(run_dirs, out_dir) -> dict:
    """Fig. 8(a): "ADC resolution affects both labels and masks" and "the masks are all misplaced starting at 6-bit
    ADC resolution": chip-paired label_retention loss 12 -> 6 bits > 0 and mean mask IoU at 6 bits < 0.5."""
    df, d, ours, miss = _panel(run_dirs, (12, 6), "ADC sweep")
    if miss:
        return miss
    labels = _loss(df, "label_retention", 12, 6)
    masks = V.bootstrap(_series(df, "mask_iou", 6), "mean mask_iou at 6 bits")
    verdict = V.combine(V.above(labels, 0.0), V.below(masks, MISPLACED))
    return _judged(d, verdict, f"{labels.text()}; {ours}", masks)


def _masks_before_labels(run_dirs, a: float, b: float, span: str) -> dict:
    """Programming noise from ``a`` to ``b`` hurts the masks more than the labels: the chip-paired mask_iou loss
    exceeds the label_retention loss (mean difference > 0)."""
    df, d, ours, miss = _panel(run_dirs, (a, b), "programming-noise sweep")
    if miss:
        return miss
    m, lab = (pd.Series(_series(df, k, a)) - _series(df, k, b) for k in ("mask_iou", "label_retention"))
    iv = V.paired(m, lab, f"mean over chips of mask_iou loss - label_retention loss, {span}")
    return _judged(d, V.above(iv, 0.0), ours, iv)


def fig8_prog(run_dirs, out_dir) -> dict:
    """Fig. 8(b): "the programming noise mostly affects the masks" ("distorted already at ... sigma = 2.0"): from
    scale 1 to 2 the chip-paired mask_iou loss exceeds the label_retention loss (mean difference > 0)."""
    return _masks_before_labels(run_dirs, 1, 2, "scale 1 -> 2")


def fig8_read(run_dirs, out_dir) -> dict:
    """Fig. 8(c): "the read noise does not seem to have much effect at all": chip-paired det_f1 loss from scale 1
    to 4 < 0.1."""
    df, d, ours, miss = _panel(run_dirs, (1, 4), "read-noise sweep")
    if miss:
        return miss
    iv = _loss(df, "det_f1", 1, 4)
    return _judged(d, V.below(iv, SMALL), ours, iv)


def _drift(run_dirs, a: float, b: float) -> dict:
    """"drift keeps the masks but the labeling weakens over time": chip-paired label_retention loss a -> b > 0 and
    mask_iou loss a -> b < 0.1."""
    df, d, ours, miss = _panel(run_dirs, (a, b), "drift sweep")
    if miss:
        return miss
    labels, masks = _loss(df, "label_retention", a, b), _loss(df, "mask_iou", a, b)
    verdict = V.combine(V.above(labels, 0.0), V.below(masks, SMALL))
    return _judged(d, verdict, f"{masks.text()}; {ours}", labels)


def fig8_drift(run_dirs, out_dir) -> dict:
    """Fig. 8(d), 0 -> 100 s: see :func:`_drift`."""
    return _drift(run_dirs, 0, 100)


def fig9(run_dirs, out_dir) -> dict:
    """Fig. 9, 50 -> 120 s: see :func:`_drift`."""
    return _drift(run_dirs, 50, 120)


def fig10(run_dirs, out_dir) -> dict:
    """Fig. 10: "the segmentation mask is degrading faster than the labeling": from programming noise 1.5 to 2.1 the
    chip-paired mask_iou loss exceeds the label_retention loss (mean difference > 0)."""
    return _masks_before_labels(run_dirs, 1.5, 2.1, "1.5 -> 2.1")

