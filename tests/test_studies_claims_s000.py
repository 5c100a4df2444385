"""Study 000's claim checks (denoising Figs. 4, 6, 7; Mask R-CNN Figs. 8-10) on fabricated runs: each holds, fails
and is inconclusive when it should, and is "not judged" when results (or the study's weights) are missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aimcbench.studies.s000 import claims as c
from aimcbench.studies.s000 import claims_seg as cs
from tests.fabricate_runs import chips, write_run

HOLDS, FAILS, INC, NJ = "holds", "does not hold", "inconclusive", "not judged"
REFS = {"digit_accuracy": 0.97, "digit_accuracy_noisy_input": 0.75, "digit_accuracy_clean_input": 0.98,
        "psnr": 20.0, "ssim": 0.87}


def _denoise(run_dir: Path, axis: str, acc: dict, psnr: dict | None = None, digital: dict | None = None,
             n_test: int = 500, config: dict | None = None) -> Path:
    """A denoising run: per-chip digit_accuracy (``acc[x]``), psnr and ssim at each axis value x."""
    pts = []
    for i, (x, a) in enumerate(acc.items()):
        p = (psnr or {}).get(x, chips(15.0, 0.5, 40, seed=100 + i))
        pts.append({"x": x, "chips": {"digit_accuracy": a, "psnr": p, "ssim": chips(0.7, 0.02, len(a), seed=i)},
                    "digital": {**REFS, **(digital or {}).get(x, {})}})
    write_run(run_dir, axis, pts, config)
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps({**meta, "n_test": n_test}))
    return run_dir


def _sweep(xs, last, other=0.9):
    """digit_accuracy per chip: ``other`` at every point but the last, ``last`` (an array) there."""
    return {x: (last if x == xs[-1] else chips(other, 0.02, 40, seed=50 + i)) for i, x in enumerate(xs)}


# ---- Fig. 4 ADC: recovery fails completely at 4 bits (mean < 20 %) ----------------------------------------------
@pytest.mark.parametrize("acc4, verdict", [
    (chips(0.10, 0.02), HOLDS), (chips(0.50, 0.05), FAILS), (chips(0.20, 0.05), INC),
    (chips(0.10, 0.02, n=10), INC),           # too few chips for a definite verdict
])
def test_fig4_adc(tmp_path, acc4, verdict):
    run = _denoise(tmp_path / "run0", "hardware.adc.bits", _sweep((12, 8, 6, 4), acc4))
    res = c.fig4_adc([run], tmp_path / "s000_fig4_adc")
    assert res["verdict"] == verdict, res["ours"]
    assert "clean inputs 98.0%" in res["ours"] and "noisy inputs 75.0%" in res["ours"]
    assert res["value"] == pytest.approx(100 * float(np.mean(acc4)))


# ---- Fig. 4 programming noise: most digits recovered at 4x (mean > 50 %) -----------------------------------------
@pytest.mark.parametrize("acc4, verdict", [
    (chips(0.70, 0.05), HOLDS), (chips(0.30, 0.05), FAILS), (chips(0.50, 0.05), INC)])
def test_fig4_prog(tmp_path, acc4, verdict):
    run = _denoise(tmp_path / "run0", "hardware.device.prog_noise_scale", _sweep((1, 2, 3, 4), acc4))
    assert c.fig4_prog([run], tmp_path / "s000_fig4_prog")["verdict"] == verdict


# ---- Fig. 4 read noise: fewer digits than under programming noise at 4x (chip-paired) ------------------------------
@pytest.mark.parametrize("prog4, read4, verdict", [
    (chips(0.7, 0.05, seed=1), chips(0.4, 0.05, seed=2), HOLDS),
    (chips(0.4, 0.05, seed=1), chips(0.7, 0.05, seed=2), FAILS),
    (chips(0.5, 0.05, seed=1), chips(0.5, 0.05, seed=2), INC)])
def test_fig4_read(tmp_path, prog4, read4, verdict):
    xs = (1, 2, 3, 4)
    _denoise(tmp_path / "s000_fig4_prog" / "run0", "hardware.device.prog_noise_scale", _sweep(xs, prog4))
    run = _denoise(tmp_path / "s000_fig4_read" / "run0", "hardware.device.read_noise_scale", _sweep(xs, read4))
    assert c.fig4_read([run], tmp_path / "s000_fig4_read")["verdict"] == verdict


def test_fig4_read_without_the_programming_run_is_not_judged(tmp_path):
    run = _denoise(tmp_path / "s000_fig4_read" / "run0", "k", _sweep((1, 2, 3, 4), chips(0.4, 0.05)))
    res = c.fig4_read([run], tmp_path / "s000_fig4_read")
    assert res["verdict"] == NJ and "s000_fig4_prog" in res["ours"]


# ---- Fig. 4 drift: PSNR falls 20 s -> 10^4 s, digit accuracy keeps (loss < 5 points) -------------------------------
@pytest.mark.parametrize("psnr_last, acc_last, verdict", [
    (chips(13.0, 0.5, seed=9), chips(0.88, 0.02, seed=7), HOLDS),
    (chips(13.0, 0.5, seed=9), chips(0.60, 0.02, seed=7), FAILS),     # shapes lost
    (chips(16.0, 0.5, seed=9), chips(0.88, 0.02, seed=7), FAILS),     # no blur
    (chips(13.0, 0.5, seed=9), chips(0.85, 0.05, seed=8), INC)])      # loss 5 points, interval straddles
def test_fig4_drift(tmp_path, psnr_last, acc_last, verdict):
    xs = (20, 100, 1000, 10000)
    acc = {x: (acc_last if x == 10000 else chips(0.9, 0.02, seed=7)) for x in xs}
    psnr = {x: (psnr_last if x == 10000 else chips(15.0, 0.5, seed=9)) for x in xs}
    run = _denoise(tmp_path / "run0", "hardware.t_inference_s", acc, psnr)
    assert c.fig4_drift([run], tmp_path / "s000_fig4_drift")["verdict"] == verdict


# ---- Fig. 6: 3-bit mu-law acceptable (mean > 50 %); run1 (a bound we chose) printed, never judged -------------------
@pytest.mark.parametrize("acc3, verdict", [
    (chips(0.70, 0.05), HOLDS), (chips(0.12, 0.02), FAILS), (chips(0.50, 0.05), INC)])
def test_fig6(tmp_path, acc3, verdict):
    xs = (5, 4, 3, 2)
    acc = {x: (acc3 if x == 3 else chips(0.5, 0.05, seed=3)) for x in xs}
    run0 = _denoise(tmp_path / "run0", "hardware.adc.bits", acc, config={"hardware": {"adc": {"bound": 12.0}}})
    fitted = {x: chips(0.9, 0.02, seed=4) for x in xs}
    run1 = _denoise(tmp_path / "run1", "hardware.adc.bits", fitted, config={"hardware": {"adc": {"bound": 4.0}}})
    res = c.fig6([run0, run1], tmp_path / "s000_fig6")
    assert res["verdict"] == verdict
    assert "+-12" in res["ours"] and "not judged, full scale +-4" in res["ours"]


# ---- Fig. 7: digital fine at 0.64, fails at 0.80; analog noticeably worse at 0.64 ----------------------------------
SIG = (0.16, 0.32, 0.48, 0.64, 0.8)


@pytest.mark.parametrize("d64, d80, a64, verdict", [
    (0.85, 0.30, chips(0.60, 0.05), HOLDS),
    (0.85, 0.70, chips(0.60, 0.05), FAILS),      # the digital model does not fail at 0.80
    (0.85, 0.30, chips(0.84, 0.01), FAILS),      # the analog is as good as the digital at 0.64
    (0.85, 0.30, chips(0.80, 0.05), INC),        # a gap of exactly 5 points, interval straddles
    (0.52, 0.30, chips(0.40, 0.05), INC)])       # 0.52 of 500 images: the interval reaches below 0.5
def test_fig7(tmp_path, d64, d80, a64, verdict):
    acc = {s: (a64 if s == 0.64 else chips(0.8, 0.02, seed=5)) for s in SIG}
    dig = {0.64: {"digit_accuracy": d64}, 0.8: {"digit_accuracy": d80}}
    run = _denoise(tmp_path / "run0", "eval.noise_sigma", acc, digital=dig)
    res = c.fig7([run], tmp_path / "s000_fig7")
    assert res["verdict"] == verdict, res["ours"]
    assert "500 test images, Clopper-Pearson" in res["ours"]


@pytest.mark.parametrize("fn", [c.fig4_adc, c.fig4_prog, c.fig4_read, c.fig4_drift, c.fig6, c.fig7])
def test_denoising_checks_survive_missing_results(tmp_path, fn):
    assert fn([], tmp_path / "x")["verdict"] == NJ
    res = fn([tmp_path / "nothing"], tmp_path / "x")
    assert res["verdict"] == NJ and res["ours"].startswith("missing")
    # a run without the recognizer (PSNR/SSIM only) has nothing to judge the digits with
    write_run(tmp_path / "old", "k", [{"x": x, "chips": {"psnr": chips(15, 1)}} for x in (1, 2, 3, 4)])
    assert fn([tmp_path / "old"], tmp_path / "x")["verdict"] == NJ


# ---- Mask R-CNN (Figs. 8-10) ---------------------------------------------------------------------------------------
def _seg(run_dir: Path, values: dict, source: str = "torchvision COCO_V1") -> Path:
    """values: {x: {metric: per-chip array}}; meta.json names the weights' source."""
    write_run(run_dir, "k", [{"x": x, "chips": m} for x, m in values.items()])
    (run_dir / "meta.json").write_text(json.dumps({"model_cache": {"source": source}}))
    return run_dir


ONE = np.ones(40)


def _pt(det=ONE, lab=ONE, mask=ONE):
    return {"det_f1": det, "label_retention": lab, "mask_iou": mask}


SEG_CASES = {
    # fig8_adc (12 -> 6 bits): labels lost and masks misplaced (mean IoU < 0.5)
    "fig8_adc": [({12: _pt(), 6: _pt(lab=chips(0.7, 0.05), mask=chips(0.3, 0.05))}, HOLDS),
                 ({12: _pt(), 6: _pt(lab=chips(0.7, 0.05), mask=chips(0.8, 0.05))}, FAILS),
                 ({12: _pt(), 6: _pt(lab=chips(0.7, 0.05), mask=chips(0.5, 0.1))}, INC)],
    # fig8_prog (1 -> 2): mask loss larger than label loss
    "fig8_prog": [({1: _pt(), 2: _pt(lab=chips(0.95, 0.02), mask=chips(0.5, 0.05))}, HOLDS),
                  ({1: _pt(), 2: _pt(lab=chips(0.5, 0.05), mask=chips(0.95, 0.02))}, FAILS),
                  ({1: _pt(), 2: _pt(lab=chips(0.7, 0.05, seed=1), mask=chips(0.7, 0.05, seed=2))}, INC)],
    # fig8_read (1 -> 4): det_f1 loss < 0.1
    "fig8_read": [({1: _pt(), 4: _pt(det=chips(0.95, 0.02))}, HOLDS),
                  ({1: _pt(), 4: _pt(det=chips(0.5, 0.05))}, FAILS),
                  ({1: _pt(), 4: _pt(det=chips(0.9, 0.05))}, INC)],
    # fig8_drift (0 -> 100 s) and fig9 (50 -> 120 s): labels weaken, masks kept (loss < 0.1)
    "fig8_drift": [({0: _pt(), 100: _pt(lab=chips(0.7, 0.05), mask=chips(0.97, 0.01))}, HOLDS),
                   ({0: _pt(), 100: _pt(lab=chips(0.7, 0.05), mask=chips(0.5, 0.05))}, FAILS),
                   ({0: _pt(), 100: _pt(lab=chips(0.7, 0.05), mask=chips(0.9, 0.05))}, INC)],
    "fig9": [({50: _pt(), 120: _pt(lab=chips(0.7, 0.05), mask=chips(0.97, 0.01))}, HOLDS),
             ({50: _pt(), 120: _pt(lab=ONE, mask=chips(0.97, 0.01))}, FAILS),
             ({50: _pt(), 120: _pt(lab=chips(1.0, 0.05, seed=1), mask=chips(0.97, 0.01))}, INC)],
    # fig10 (1.5 -> 2.1): mask loss larger than label loss
    "fig10": [({1.5: _pt(), 2.1: _pt(lab=chips(0.9, 0.02), mask=chips(0.5, 0.05))}, HOLDS),
              ({1.5: _pt(), 2.1: _pt(lab=chips(0.5, 0.05), mask=chips(0.9, 0.02))}, FAILS),
              ({1.5: _pt(), 2.1: _pt(lab=chips(0.6, 0.1, seed=1), mask=chips(0.6, 0.1, seed=2))}, INC)],
}


@pytest.mark.parametrize("name, case", [(n, k) for n in SEG_CASES for k in range(3)])
def test_segmentation_checks_on_coco_runs(tmp_path, name, case):
    values, verdict = SEG_CASES[name][case]
    res = getattr(cs, name)([_seg(tmp_path / "run0", values)], tmp_path / f"s000_{name}")
    assert res["verdict"] == verdict, res["ours"]


@pytest.mark.parametrize("name", list(SEG_CASES))
def test_segmentation_checks_with_random_weights_are_not_judged(tmp_path, name):
    values, _ = SEG_CASES[name][0]
    res = getattr(cs, name)([_seg(tmp_path / "run0", values, "random (seed 0)")], tmp_path / f"s000_{name}")
    assert res["verdict"] == NJ and "random weights" in res["ours"] and res["lo"] is not None
    fn = getattr(cs, name)
    assert fn([], tmp_path)["verdict"] == NJ
    assert fn([tmp_path / "nothing"], tmp_path)["ours"].startswith("missing")


def test_a_chip_that_matches_nothing_has_lost_its_masks(tmp_path):
    mask = chips(0.9, 0.02)
    mask[:30] = np.nan                      # 30 of 40 chips match no detection at 6 bits: IoU 0 for them
    values = {12: _pt(), 6: _pt(lab=chips(0.7, 0.05), mask=mask)}
    res = cs.fig8_adc([_seg(tmp_path / "run0", values)], tmp_path)
    assert res["verdict"] == HOLDS and res["value"] < 0.3
