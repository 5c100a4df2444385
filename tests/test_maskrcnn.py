"""Study 000 segmentation (Mask R-CNN): agreement metrics, the detection task of the sweep, pictures.

Random weights (weights=None), a 96-pixel image, few proposals and 1-2 chips keep these fast; the random
model's own detections (scores ~0.5-0.8) are the reference, as the COCO model's are on a machine that has it.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from aimcbench.metrics.detection import (box_iou, detection_agreement, keep, mask_iou, match,
                                         mean_agreement)

SMALL = dict(weights=None, detections_per_img=10, rpn_post_nms_top_n_test=100)


def _pred(boxes, labels, scores, masks=None, size=20):
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if masks is None:  # a mask filling each box
        masks = torch.zeros(len(boxes), 1, size, size)
        for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
            masks[i, 0, y0:y1, x0:x1] = 0.9
    return {"boxes": boxes, "labels": torch.tensor(labels, dtype=torch.int64),
            "scores": torch.tensor(scores, dtype=torch.float32), "masks": masks}


# ------------------------------------------------------------------------------- metric functions
def test_box_and_mask_iou_on_hand_made_shapes():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert box_iou(a, b)[0, 0].item() == pytest.approx(50 / 150)   # 5x10 overlap of two 10x10 boxes
    assert box_iou(a, b)[0, 1].item() == 0.0
    m1, m2 = torch.zeros(4, 4, dtype=torch.bool), torch.zeros(4, 4, dtype=torch.bool)
    m1[:2] = True
    m2[1:3] = True
    assert mask_iou(m1, m2) == pytest.approx(4 / 12)


def test_agreement_counts_matches_labels_and_scores():
    ref = _pred([[0, 0, 10, 10], [10, 10, 20, 20], [0, 10, 5, 20]], [1, 3, 10], [0.9, 0.8, 0.7])
    # analog: first box shifted by 1 px (IoU 90/110 >= 0.5), second relabelled, third gone, one extra, one below 0.5
    pred = _pred([[1, 0, 11, 10], [10, 10, 20, 20], [15, 0, 20, 5], [0, 10, 5, 20]], [1, 8, 2, 10],
                 [0.6, 0.85, 0.7, 0.4])
    m = detection_agreement(ref, pred)
    assert m["det_f1"] == pytest.approx(2 * 1 / (3 + 3))             # one match of 3 digital, 3 analog kept
    assert m["mask_iou"] == pytest.approx(90 / 110)                 # the shifted box's filled mask
    assert m["label_retention"] == pytest.approx(1 / 3)             # relabelled and vanished boxes lose
    assert m["score_change"] == pytest.approx(0.6 - 0.9)
    assert m["detections"] == 3
    assert [(i, j) for i, j, _ in match(keep(ref, 0.5), keep(pred, 0.5))] == [(0, 0)]
    assert [(i, j) for i, j, _ in match(ref, pred)] == [(2, 3), (0, 0)]  # unfiltered: by IoU, best first


def test_identical_predictions_agree_and_empty_sets_are_handled():
    ref = _pred([[0, 0, 10, 10], [2, 2, 18, 18]], [1, 3], [0.9, 0.7])
    m = detection_agreement(ref, ref)
    assert (m["det_f1"], m["mask_iou"], m["label_retention"], m["score_change"]) == (1.0, 1.0, 1.0, 0.0)
    empty = _pred(torch.zeros(0, 4), [], [])
    assert detection_agreement(empty, empty)["det_f1"] == 1.0       # nothing to find, nothing found
    assert math.isnan(detection_agreement(empty, empty)["mask_iou"])
    assert detection_agreement(ref, empty)["det_f1"] == 0.0
    assert detection_agreement(ref, empty)["label_retention"] == 0.0
    both = mean_agreement([ref, empty], [ref, empty])
    assert both["det_f1"] == 1.0 and both["mask_iou"] == 1.0         # NaN of the empty image skipped


# ----------------------------------------------------------------------------------- simulator
@pytest.fixture(scope="module")
def small_model_and_image():
    from aimcbench.data import load_images
    from aimcbench.models import build_model

    torch.set_num_threads(1)
    img = load_images(max_size=96)[0][1]
    return build_model("maskrcnn", **SMALL), img


def test_ideal_chips_reproduce_the_digital_detections(small_model_and_image):
    from aimcbench.metrics.detection import evaluate_chips, predict
    from aimcbench.sim import load_hardware, to_analog

    model, img = small_model_and_image
    refs = predict(model, [img])
    assert int((refs[0]["scores"] >= 0.5).sum()) >= 3               # the reference is not empty
    metrics, firsts, seconds = evaluate_chips(to_analog(model, load_hardware("ideal"), chips=2), [img], refs)
    assert metrics["det_f1"] == [1.0, 1.0]
    assert metrics["mask_iou"] == pytest.approx([1.0, 1.0], abs=1e-3)
    assert metrics["label_retention"] == [1.0, 1.0]
    assert all(abs(s) < 1e-3 for s in metrics["score_change"])
    assert len(seconds) == 2 and len(firsts[0]["scores"]) == metrics["detections"][0]


def test_metrics_fall_when_weight_noise_is_raised(small_model_and_image):
    from aimcbench.metrics.detection import evaluate_chips, predict
    from aimcbench.sim import load_hardware, to_analog

    model, img = small_model_and_image
    refs = predict(model, [img])
    out = {}
    for alpha in (0.0, 0.3):
        hw = load_hardware("weight_noise", [f"weight_noise.alpha={alpha}"])
        out[alpha] = evaluate_chips(to_analog(model, hw, chips=1, seed=3), [img], refs)[0]
    assert out[0.0]["det_f1"] == [1.0] and out[0.0]["label_retention"] == [1.0]
    assert out[0.3]["det_f1"][0] < 0.5 and out[0.3]["label_retention"][0] < 0.5
    assert math.isnan(out[0.3]["mask_iou"][0]) or out[0.3]["mask_iou"][0] < out[0.0]["mask_iou"][0]


def test_missing_weights_file_and_unavailable_coco_are_one_line_errors(tmp_path, monkeypatch):
    from aimcbench.models.maskrcnn import MaskRCNNLoadError, build_maskrcnn

    with pytest.raises(MaskRCNNLoadError, match=r"^model.weights_path: no file"):
        build_maskrcnn(weights_path=str(tmp_path / "nope.pth"))
    monkeypatch.setenv("AIMC_NO_DOWNLOAD", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))                  # an empty hub cache
    with pytest.raises(MaskRCNNLoadError, match=r"^model.weights=coco: .*could not be had") as err:
        build_maskrcnn(weights="coco")
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------ aimc sweep
def _aimc(tmp_path, *args, timeout=300):
    env = {**os.environ, "AIMC_NO_DOWNLOAD": "1", "AIMC_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "aimcbench", "sweep", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=tmp_path)


@pytest.mark.slow  # ~35 s on 2 cores
def test_sweep_records_metrics_that_fall_with_noise_and_draws_the_grid(tmp_path):
    run = tmp_path / "run"
    r = _aimc(tmp_path, "model=maskrcnn", "dataset=images", "hardware=weight_noise", "sweep=weight_noise",
              "sweep.values=[0.0,0.3]", "mc.chips=1", "dataset.max_size=96", "model.weights=null",
              "model.detections_per_img=10", "model.rpn_post_nms_top_n_test=100", "threads=1",
              f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr[-2000:]
    chips = pd.read_parquet(run / "chips.parquet")
    assert set(chips["metric"]) >= {"det_f1", "mask_iou", "label_retention", "score_change", "detections"}
    f1 = chips[chips.metric == "det_f1"].set_index("point")["value"]
    assert f1[0] == 1.0 and f1[1] < 0.5                               # alpha 0: the digital model; 0.3: lost
    digital = pd.read_csv(run / "digital.csv")
    assert (digital[digital.metric == "det_f1"]["value"] == 1.0).all()
    assert (run / "percentiles.csv").is_file() and (run / "segmentation.png").stat().st_size > 10_000
    meta = json.loads((run / "meta.json").read_text())
    assert len(meta["timings"]["seconds_per_chip"]) == 2 and meta["model_cache"]["trained"] is False


def test_missing_image_path_exits_2_with_one_line(tmp_path):
    r = _aimc(tmp_path, "model=maskrcnn", "dataset=images", "dataset.paths=[/no/such/street.jpg]",
              "mc.chips=1", "model.weights=null", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("aimc: error")]
    assert len(lines) == 1 and "dataset.paths[0]" in lines[0] and "/no/such/street.jpg" in lines[0]


# ----------------------------------------------------------------------------------- claim checks
# Study 000's Mask R-CNN claim checks (claims_seg.py) are tested on fabricated per-chip runs in
# tests/test_studies_claims_s000.py (hold, fail, inconclusive, random weights not judged, missing results).
