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

from .claims_s000 import load_table, metric_at, missing


def _weights(run_dir: Path) -> str:
    """'coco', 'file', 'random' or 'unknown': what the run's model was loaded from (meta.json)."""
    try:
        src = json.loads((Path(run_dir) / "meta.json").read_text())["model_cache"]["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"
    return "coco" if "COCO" in src else ("file" if src.startswith("file") else "random")


def _meds(run_dir: Path, metric: str, values) -> list[float]:
    table = load_table(Path(run_dir))
    return [metric_at(table, metric, v) for v in values]


def _fmt(values, meds, unit: str = "") -> str:
    return ", ".join(f"{v:g}{unit}: {m:.2f}" for v, m in zip(values, meds))


def _verdict(run_dirs, ok: bool) -> bool | None:
    """The check's result, or None when the model was not the study's (random weights)."""
    return ok if all(_weights(d) in ("coco", "file") for d in run_dirs) else None


def _grid(run_dir: Path) -> str | None:
    p = Path(run_dir) / "segmentation.png"
    return str(p) if p.is_file() else None


def _stack(pngs: list[str], out: Path) -> str | None:
    """The runs' segmentation grids one under the other (Fig. 8's four panels), drawn into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pngs = [p for p in pngs if p]
    if not pngs:
        return None
    imgs = [plt.imread(p) for p in pngs]
    height = 12 * sum(i.shape[0] / i.shape[1] for i in imgs)  # each grid at the full 12-inch width
    fig, axes = plt.subplots(len(imgs), 1, figsize=(12, height), squeeze=False)
    for ax, img in zip(axes[:, 0], imgs):
        ax.imshow(img)
        ax.set_axis_off()
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "fig8.png", dpi=120)
    plt.close(fig)
    return str(out / "fig8.png")


def fig8(run_dirs, out_dir) -> dict:
    """Fig. 8: ADC resolution hurts labels and masks (4 bits below 12 bits); read noise barely matters,
    less than programming noise (F1 loss from scale 1 to 4: read < programming)."""
    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) < 4:
        return missing("four runs (adc, prog, read, drift)")
    plot = _stack([_grid(d) for d in run_dirs], Path(out_dir))
    adc = _meds(run_dirs[0], "det_f1", [12, 8, 6, 4])
    adc_m = _meds(run_dirs[0], "mask_iou", [12, 8, 6, 4])
    prog = _meds(run_dirs[1], "det_f1", [1, 2, 3, 4])
    read = _meds(run_dirs[2], "det_f1", [1, 2, 3, 4])
    drift = _meds(run_dirs[3], "label_retention", [0, 20, 50, 100])
    needed = [adc[0], adc[3], prog[0], prog[3], read[0], read[3]]
    if any(math.isnan(v) for v in needed):
        return missing("det_f1 at ADC 12/4 bits, prog and read noise 1/4 in run0-2/percentiles.csv", plot)
    ours = (f"det_f1 ADC {_fmt([12, 8, 6, 4], adc, ' b')}; mask_iou ADC {_fmt([12, 8, 6, 4], adc_m, ' b')}; "
            f"det_f1 prog {_fmt([1, 2, 3, 4], prog)}; read {_fmt([1, 2, 3, 4], read)}; "
            f"label_retention drift {_fmt([0, 20, 50, 100], drift, ' s')} [{_weights(run_dirs[0])} weights]")
    ok = adc[3] < adc[0] and (read[0] - read[3]) < (prog[0] - prog[3])
    return {"ours": ours, "holds": _verdict(run_dirs, ok), "plot": plot}


def fig9(run_dirs, out_dir) -> dict:
    """Fig. 9: drift keeps the masks but the labeling weakens: label_retention at 120 s below 50 s while the
    matched masks keep most of their IoU (>= 0.8 of the 50 s value)."""
    if not run_dirs:
        return missing("the drift run")
    d = Path(run_dirs[0])
    values = [50, 70, 100, 120]
    lab, msk = _meds(d, "label_retention", values), _meds(d, "mask_iou", values)
    if any(math.isnan(v) for v in (lab[0], lab[3], msk[0], msk[3])):
        return missing("label_retention and mask_iou at 50 and 120 s in run0/percentiles.csv", _grid(d))
    ours = f"label_retention {_fmt(values, lab, ' s')}; mask_iou {_fmt(values, msk, ' s')} [{_weights(d)} weights]"
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
    if any(math.isnan(v) for v in (lab[0], lab[3], msk[0], msk[3])):
        return missing("label_retention and mask_iou at 1.5 and 2.1 in run0/percentiles.csv", _grid(d))
    ours = f"mask_iou {_fmt(values, msk)}; label_retention {_fmt(values, lab)} [{_weights(d)} weights]"
    ok = (msk[0] - msk[3]) > (lab[0] - lab[3])
    return {"ours": ours, "holds": _verdict([d], ok), "plot": _grid(d)}
