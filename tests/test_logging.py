"""Logging, progress and run-directory names (issue 16): every notice and one line per point go to Python's
``logging`` (Hydra's job log ``<run dir>/sweep.log``); ``progress=off`` leaves nothing but log lines and the final
summary; run-only overrides stay out of directory names (a rerun with other threads resumes) and file paths
become ``name~hash`` instead of nested folders."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, aimc, compose, needs_metrics, needs_sim

from aimcbench.commands._common import _dirname, check_sweep_config
from aimcbench.runner.sweep import point_line, show_progress

SWEEP = ["hardware=weight_noise", "sweep=weight_noise", "sweep.values=[0.05,0.5]"]
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]\[[\w.]+\]\[(INFO|WARNING)\] - ")
POINT = re.compile(r"point \d+ \((\d+)/(\d+)\) (\S+)=(\S+): accuracy p5 ([\d.]+) p50 ([\d.]+) p95 ([\d.]+) "
                   r"\(digital ([\d.]+)\); (\d+) chips, ([\d.]+) s")
EXCLUDE = ["threads", "device", "progress", "report.*", "objective.*"]


def test_point_line_has_the_percentiles_of_the_chips_and_the_seconds():
    vals = [0.5, 0.9, 0.7, 0.8, 0.6]
    line = point_line(2, 5, "hardware.adc.bits", "6", {"accuracy": vals}, {"accuracy": 0.95}, 1.234, [0.2, 0.4])
    p5, p50, p95 = np.percentile(vals, [5, 50, 95])
    assert line == (f"point 2 (3/5) hardware.adc.bits=6: accuracy p5 {p5:.4f} p50 {p50:.4f} p95 {p95:.4f} "
                    "(digital 0.9500); 5 chips, 1.23 s (0.300 s per chip)")
    assert POINT.fullmatch(line.split(" (0.300")[0])


def test_progress_setting():
    assert show_progress("on") is True and show_progress("off") is False and show_progress(False) is False
    assert show_progress("auto") is False  # pytest's stderr is not a terminal


def test_run_only_keys_and_paths_stay_out_of_directory_names():
    base = ["hardware=pcm", "sweep=adc_bits"]
    name = _dirname(base, EXCLUDE)
    assert name == "hardware=pcm,sweep=adc_bits"
    assert _dirname([*base, "threads=4", "device=auto", "progress=off", "report.formats=[pdf]",
                     "objective.stat=p50"], EXCLUDE) == name
    ckpt = _dirname([*base, "model.checkpoint=/a/b/c.pt"], EXCLUDE)
    assert "/" not in ckpt and re.fullmatch(r"hardware=pcm,model\.checkpoint=c\.pt~[0-9a-f]{8},sweep=adc_bits", ckpt)
    assert _dirname([*base, "model.checkpoint=/x/b/c.pt"], EXCLUDE) != ckpt  # another path, another directory
    assert _dirname(["+model.checkpoint=/a/b/c.pt"], EXCLUDE).startswith("+model.checkpoint=c.pt~")
    assert _dirname([], EXCLUDE) == "default" and _dirname(["threads=2"], EXCLUDE) == "default"


def test_the_packaged_run_dir_uses_the_exclusions_and_hashes_paths(tmp_path):
    res = aimc("sweep", "--cfg", "hydra", "-p", "hydra.run.dir", "hardware=pcm", "threads=2", "progress=off",
               "model.checkpoint=/a/b/c.pt", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert re.fullmatch(r"outputs/sweep/hardware=pcm,model\.checkpoint=c\.pt~[0-9a-f]{8}\s*", res.stdout), res.stdout


@needs_sim
@needs_metrics
def test_run_sweep_logs_one_line_per_point_to_its_logger_and_to_log(tmp_path, caplog):
    cfg = compose("sweep", FAST + SWEEP + ["mc.chips=5"])
    check_sweep_config(cfg)
    from aimcbench.runner import run_sweep

    with caplog.at_level(logging.INFO, logger="aimcbench"):
        run_sweep(cfg, tmp_path / "a", report=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "aimcbench.runner.sweep"]
    points = [POINT.match(m) for m in lines if POINT.match(m)]
    assert [(m[1], m[2]) for m in points] == [("1", "2"), ("2", "2")], lines
    chips = pd.read_parquet(tmp_path / "a" / "chips.parquet")
    for m, (_, g) in zip(points, chips.groupby("point")):  # the logged p5 is the percentile of the stored chips
        assert float(m[5]) == pytest.approx(np.percentile(g["value"], 5), abs=5e-5)
        assert int(m[9]) == 5
    # run-only settings are not part of what a point is: a rerun with other threads and progress resumes
    meta = run_sweep({**cfg, "threads": 2, "progress": "off"}, tmp_path / "a", report=False)
    assert meta["timings"]["computed_points"] == 0
    notes: list[str] = []  # a log= callable still receives every notice and point line (and nothing is logged)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="aimcbench"):
        run_sweep({**cfg, "mc": {**cfg["mc"], "chips": 4}}, tmp_path / "b", report=False, log=notes.append)
    assert sum(bool(POINT.match(n)) for n in notes) == 2, notes
    assert not [r for r in caplog.records if r.name == "aimcbench.runner.sweep"]


@pytest.mark.slow  # two command-line sweeps with their reports: about a minute on a busy machine
@needs_sim
@needs_metrics
def test_progress_off_output_is_log_lines_and_a_rerun_with_other_threads_resumes(tmp_path):
    args = ["sweep", "-m", *FAST, *SWEEP, "progress=off"]
    out = tmp_path / "out.txt"
    first = aimc(*args, "threads=1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    out.write_text(first.stdout + first.stderr)
    runs = [p for p in (tmp_path / "multirun" / "sweep").iterdir() if p.is_dir()]
    assert len(runs) == 1 and "threads" not in runs[0].name and "progress" not in runs[0].name
    log = (runs[0] / "sweep.log").read_text().splitlines()
    assert log and all(LOG_LINE.match(ln) for ln in log), log
    point_lines = [ln for ln in log if POINT.search(ln)]
    assert len(point_lines) == 2, log
    text = out.read_text().splitlines()
    summary = next(i for i, ln in enumerate(text) if ln.startswith("sweep hardware.weight_noise.alpha over 2 points"))
    head = [ln for ln in text[:summary] if "][HYDRA] " not in ln]  # Hydra's own multirun banner
    assert head and all(LOG_LINE.match(ln) for ln in head), head  # no tqdm bar, nothing printed
    assert not any("it/s" in ln or "%|" in ln for ln in text)
    again = aimc(*args, "threads=2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [p for p in (tmp_path / "multirun" / "sweep").iterdir() if p.is_dir()] == runs  # the same directory ...
    meta = json.loads((runs[0] / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["timings"]["computed_points"] == 0  # ... resumed, nothing computed
    assert "resuming: points 0-1 done" in (runs[0] / "sweep.log").read_text()
