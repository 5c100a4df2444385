"""Pictures like study 000 Figs. 8-10: masks and labels drawn over the image, one panel per sweep point.

The runner writes, per detection sweep (``images/`` of the run directory):

* ``det_digital.npz``: the first test image (``image`` [3,H,W] float16) and the digital model's detections;
* ``det_point_XXX.npz``: the median chip's detections at point XXX (plus ``axis_label`` and ``chip``).

Detections are stored at ``eval.score_threshold``: ``boxes`` [N,4] xyxy, ``labels`` [N], ``scores`` [N],
``masks`` [N,H,W] bool (bit-packed). :func:`write_segmentation_grid` draws ``segmentation.png``: the digital
panel first, then one panel per point, with the study's colours (cars/trucks/buses green, persons red,
traffic lights purple, motorcycles yellow, bicycles cyan, everything else black).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

IMAGES_DIR = "images"
GRID_FILE = "segmentation.png"
# Study 000 Fig. 8 caption, COCO category ids of torchvision's detection models.
STUDY_COLOURS = {3: "#00b000", 8: "#00b000", 6: "#00b000",  # car, truck, bus: green
                 1: "#e00000",                              # person: red
                 10: "#8000c0",                             # traffic light: purple
                 4: "#f0d000",                              # motorcycle: yellow
                 2: "#00d0d0"}                              # bicycle: cyan
OTHER_COLOUR = "#000000"


def colour(label: int) -> str:
    """The study's colour of a COCO category id."""
    return STUDY_COLOURS.get(int(label), OTHER_COLOUR)


def _atomic_npz(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def save_prediction(run_dir, name: str, pred: dict, image=None, **extra) -> Path:
    """Write one compact prediction (see module docstring) as ``images/<name>.npz``; returns the path."""
    from aimcbench.metrics.detection import prediction_arrays

    out = Path(run_dir) / IMAGES_DIR
    out.mkdir(parents=True, exist_ok=True)
    arrays = prediction_arrays(pred, image, **extra)
    path = out / f"{name}.npz"
    _atomic_npz(path, **arrays)
    return path


def load_prediction(path) -> dict:
    """Read a file written by :func:`save_prediction` (masks unpacked to bool [N,H,W])."""
    with np.load(path, allow_pickle=False) as data:
        d = {k: data[k] for k in data.files}
    shape = tuple(int(s) for s in d.pop("mask_shape"))
    d["masks"] = np.unpackbits(d["masks"])[:int(np.prod(shape))].reshape(shape).astype(bool)
    return d


def draw(ax, image: np.ndarray, pred: dict, names: list[str] | None = None, title: str = "",
         alpha: float = 0.5) -> None:
    """Masks (translucent), boxes and 'label score' texts of one prediction over ``image`` [3,H,W]."""
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Rectangle

    rgb = np.clip(np.transpose(image.astype(np.float32), (1, 2, 0)), 0, 1).copy()
    for m, lab in zip(pred["masks"], pred["labels"]):
        if m.shape == rgb.shape[:2]:
            rgb[m] = (1 - alpha) * rgb[m] + alpha * np.array(to_rgb(colour(lab)))
    ax.imshow(rgb)
    for (x0, y0, x1, y1), lab, sc in zip(pred["boxes"], pred["labels"], pred["scores"]):
        c = colour(lab)
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=c, linewidth=0.8))
        name = names[int(lab)] if names and 0 <= int(lab) < len(names) else str(int(lab))
        ax.text(x0, y0, f"{name} {sc:.2f}", color="white", fontsize=5, va="bottom",
                bbox=dict(facecolor=c, alpha=0.7, pad=0.5, linewidth=0))
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def _coco_names() -> list[str] | None:
    try:
        from aimcbench.models.maskrcnn import coco_names

        return coco_names()
    except Exception:  # noqa: BLE001 - labels then show as ids
        return None


def write_segmentation_grid(run_dir, out_dir=None, axis_title: str | None = None, max_cols: int = 4,
                            writer=None) -> list[Path]:
    """Draw ``segmentation.png`` (digital first, then each finished point's median chip); [] if no files.

    ``writer`` (the report's FigureWriter) saves it in every report.formats; without one, PNG only."""
    from matplotlib.figure import Figure

    run_dir = Path(run_dir)
    img_dir = run_dir / IMAGES_DIR
    ref_path = img_dir / "det_digital.npz"
    if not ref_path.is_file():
        return []
    ref = load_prediction(ref_path)
    points = sorted(img_dir.glob("det_point_[0-9]*.npz"))
    if axis_title is None:
        try:
            import json

            meta = json.loads((run_dir / "meta.json").read_text())
            axis_title = meta.get("axis_title") or meta.get("axis", "")
        except (OSError, ValueError):
            axis_title = ""
    names = _coco_names()
    panels = [("digital", ref)] + [(f"{axis_title} = {str(p['axis_label'])} (chip {int(p['chip'])})", p)
                                   for p in map(load_prediction, points)]
    cols = min(max_cols, len(panels))
    rows = (len(panels) + cols - 1) // cols
    h, w = ref["image"].shape[-2:]
    fig = Figure(figsize=(3.2 * cols, 3.2 * rows * h / w + 0.4))  # no pyplot: no global figure to close
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (title, pred) in zip(axes.flat, panels):
        draw(ax, ref["image"], pred, names, title)
    fig.tight_layout()
    out = Path(out_dir) if out_dir is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / GRID_FILE
    if writer is not None:
        return writer.save(fig, path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=150)
    os.replace(tmp, path)
    return [path]
