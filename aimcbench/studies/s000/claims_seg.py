"""Checks of study 000's Mask R-CNN claims (Figs. 8-10) on our sweep outputs (configs/paper/s000_seg.yaml).

The study shows pictures only; we check its words with the annotation-free agreement metrics of
aimcbench.metrics.detection (medians over chips, p50 of percentiles.csv). The claims are about the COCO
model: on runs with random weights (no COCO file on the machine) the numbers are reported but ``holds`` is
None. Every check returns ``{"ours", "holds", "plot"}`` and never raises on partial results.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .claims import load_table, metric_at, missing


def _weights(run_dir: Path) -> str:
    """'coco', 'file', 'random' or 'unknown': what the run's model was loaded from (meta.json)."""
    try:
        src = json.loads((Path(run_dir) / "meta.json").read_text())["model_cache"]["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"
    return "coco" if "COCO" in src else ("file" if src.startswith("file") else "random")


def _meds(run_dir: Path, metric: str, values) -> list[float]:
    """Median (p50) of ``metric`` at each axis value. mask_iou is NaN where a chip matched nothing; where the
    point exists (det_f1 present) that counts as mask agreement 0 (the masks are lost)."""
    table = load_table(Path(run_dir))
    meds = [metric_at(table, metric, v) for v in values]
    if metric == "mask_iou":
        meds = [0.0 if math.isnan(m) and not math.isnan(metric_at(table, "det_f1", v)) else m
                for m, v in zip(meds, values)]
    return meds


def _fmt(values, meds, unit: str = "") -> str:
    return ", ".join(f"{v:g}{unit}: {m:.2f}" for v, m in zip(values, meds))


def _verdict(run_dirs, ok: bool) -> bool | None:
    """The check's result, or None when the model was not the study's (random weights)."""
    return ok if all(_weights(d) in ("coco", "file") for d in run_dirs) else None


def _grid(run_dir: Path) -> str | None:
    p = Path(run_dir) / "segmentation.png"
    return str(p) if p.is_file() else None


def _ends(run_dir: Path, metric: str, first: float, last: float) -> tuple[float, float]:
    """Median ``metric`` at the panel's first and last axis value (NaN where missing)."""
    a, b = _meds(run_dir, metric, [first, last])
    return a, b


def _panel(run_dirs, values: list[float], unit: str, what: str) -> tuple[Path | None, str, dict | None]:
    """(run dir, 'ours' text of det_f1/mask_iou/label_retention over ``values``, or a missing-answer)."""
    if not run_dirs:
        return None, "", missing("the sweep run")
    d = Path(run_dirs[0])
    table = load_table(d)
    if table is None:
        return d, "", missing(f"{what}: run0/percentiles.csv", _grid(d))
    parts = []
    for metric in ("det_f1", "mask_iou", "label_retention"):
        meds = [metric_at(table, metric, v) for v in values]
        shown = [(v, m) for v, m in zip(values, meds) if not math.isnan(m)]
        parts.append(f"{metric} " + _fmt([v for v, _ in shown], [m for _, m in shown], unit))
    return d, "; ".join(parts) + f" [{_weights(d)} weights]", None


def fig8_adc(run_dirs, out_dir) -> dict:
    """Fig. 8(a): fewer ADC bits hurt labels and masks: det_f1 and mask_iou at 4 bits below 12 bits."""
    d, ours, miss = _panel(run_dirs, [12, 8, 6, 4], " b", "ADC sweep")
    if miss:
        return miss
    f12, f4 = _ends(d, "det_f1", 12, 4)
    m12, m4 = _ends(d, "mask_iou", 12, 4)
    if math.isnan(f12) or math.isnan(f4):
        return missing("det_f1 at 12 and 4 bits in run0/percentiles.csv", _grid(d))
    ok = f4 < f12 and (math.isnan(m4) or math.isnan(m12) or m4 < m12)
    return {"ours": ours, "holds": _verdict([d], ok), "plot": _grid(d)}


def fig8_prog(run_dirs, out_dir) -> dict:
    """Fig. 8(b): programming noise mostly affects the masks: mask_iou at scale 4 below scale 1 (a chip
    that keeps no matched detection counts as a lost mask)."""
    d, ours, miss = _panel(run_dirs, [1, 2, 3, 4], "x", "programming-noise sweep")
    if miss:
        return miss
    m1, m4 = _ends(d, "mask_iou", 1, 4)
    if math.isnan(m1):
        return missing("mask_iou at scale 1 in run0/percentiles.csv", _grid(d))
    ok = math.isnan(m4) or m4 < m1
    return {"ours": ours, "holds": _verdict([d], ok), "plot": _grid(d)}


def fig8_read(run_dirs, out_dir) -> dict:
    """Fig. 8(c): read noise barely matters: its det_f1 loss from scale 1 to 4 is smaller than programming
    noise's (the s000_fig8_prog entry's run0, when it has run) and det_f1 at 4 keeps >= 80 % of scale 1."""
    d, ours, miss = _panel(run_dirs, [1, 2, 3, 4], "x", "read-noise sweep")
    if miss:
        return miss
    r1, r4 = _ends(d, "det_f1", 1, 4)
    if math.isnan(r1) or math.isnan(r4):
        return missing("det_f1 at read-noise scale 1 and 4 in run0/percentiles.csv", _grid(d))
    ok = r4 >= 0.8 * r1
    prog = Path(out_dir).parent / "s000_fig8_prog" / "run0"
    p1, p4 = _ends(prog, "det_f1", 1, 4)
    if not (math.isnan(p1) or math.isnan(p4)):
        ours += f"; programming noise det_f1 loss {p1 - p4:.2f} vs read {r1 - r4:.2f}"
        ok = ok and (r1 - r4) < (p1 - p4)
    return {"ours": ours, "holds": _verdict([d], ok), "plot": _grid(d)}


def fig8_drift(run_dirs, out_dir) -> dict:
    """Fig. 8(d): drift 0-100 s: label_retention at 100 s not above 0 s (labels weaken, masks kept)."""
    d, ours, miss = _panel(run_dirs, [0, 20, 50, 100], " s", "drift sweep")
    if miss:
        return miss
    l0, l100 = _ends(d, "label_retention", 0, 100)
    if math.isnan(l0) or math.isnan(l100):
        return missing("label_retention at 0 and 100 s in run0/percentiles.csv", _grid(d))
    return {"ours": ours, "holds": _verdict([d], l100 <= l0), "plot": _grid(d)}


def fig9(run_dirs, out_dir) -> dict:
    """Fig. 9: drift keeps the masks but the labeling weakens: label_retention at 120 s below 50 s while the
    matched masks keep most of their IoU (>= 0.8 of the 50 s value)."""
    if not run_dirs:
        return missing("the drift run")
    d = Path(run_dirs[0])
    values = [50, 70, 100, 120]
    lab, msk = _meds(d, "label_retention", values), _meds(d, "mask_iou", values)
    ours_l = [(v, x) for v, x in zip(values, lab) if not math.isnan(x)]
    ours_m = [(v, x) for v, x in zip(values, msk) if not math.isnan(x)]
    if any(math.isnan(v) for v in (lab[0], lab[3], msk[0], msk[3])):
        return missing("label_retention and mask_iou at 50 and 120 s in run0/percentiles.csv", _grid(d))
    ours = (f"label_retention {_fmt(*zip(*ours_l), ' s')}; mask_iou {_fmt(*zip(*ours_m), ' s')} "
            f"[{_weights(d)} weights]")
    ok = lab[3] < lab[0] and msk[3] >= 0.8 * msk[0]
    return {"ours": ours, "holds": _verdict([d], ok), "plot": _grid(d)}


def fig10(run_dirs, out_dir) -> dict:
    """Fig. 10: under programming noise 1.5-2.1 the masks degrade faster than the labels:
    mask_iou loss from 1.5 to 2.1 larger than label_retention loss."""
    if not run_dirs:
        return missing("the programming-noise run")
    d = Path(run_dirs[0])
    values = [1.5, 1.8, 2.0, 2.1]
    lab, msk = _meds(d, "label_retention", values), _meds(d, "mask_iou", values)
    ours_l = [(v, x) for v, x in zip(values, lab) if not math.isnan(x)]
    ours_m = [(v, x) for v, x in zip(values, msk) if not math.isnan(x)]
    if any(math.isnan(v) for v in (lab[0], lab[3], msk[0], msk[3])):
        return missing("label_retention and mask_iou at 1.5 and 2.1 in run0/percentiles.csv", _grid(d))
    ours = f"mask_iou {_fmt(*zip(*ours_m))}; label_retention {_fmt(*zip(*ours_l))} [{_weights(d)} weights]"
    ok = (msk[0] - msk[3]) > (lab[0] - lab[3])
    return {"ours": ours, "holds": _verdict([d], ok), "plot": _grid(d)}
