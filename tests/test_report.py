"""Tests of aimcbench.report: percentile tables, plots, partial sweeps, merging, the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aimcbench.report import (
    PERCENTILE_COLUMNS, ReportError, find_sweep_dirs, label_sweeps, load_sweep, merge_sweeps,
    percentile_table, report_dirs, write_sweep_report,
)
from aimcbench.report.build import _load_images
from aimcbench.report.sweepdir import split_common

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AXIS = "hardware.adc.bits"


def fake_chips(values=(12, 8, 6, 4), n_chips=40, metrics=("accuracy",), seed=0, nan_every=0):
    """Tidy rows: at point p, metric m, chip values ~ N(mu_pm, sd_pm) with known mu and sd."""
    rng = np.random.default_rng(seed)
    rows, digital = [], []
    for point, value in enumerate(values):
        for k, metric in enumerate(metrics):
            mu, sd = 0.9 - 0.05 * point + k, 0.01 * (point + 1)
            draws = rng.normal(mu, sd, n_chips)
            if nan_every:
                draws[::nan_every] = np.nan
            rows += [dict(point=point, axis=AXIS, axis_value=float(value), axis_label=str(value),
                          chip=c, metric=metric, value=float(x)) for c, x in enumerate(draws)]
            digital.append(dict(point=point, axis=AXIS, axis_value=float(value),
                                axis_label=str(value), metric=metric, value=mu + 0.05))
    return pd.DataFrame(rows), pd.DataFrame(digital)


def write_sweep(path: Path, complete=True, label="", images=False,
                digital_name="digital_{:03d}.csv", data=None, **kw) -> pd.DataFrame:
    """A sweep dir in the runner's layout; returns its chips table."""
    chips, digital = fake_chips(**kw)
    (path / "points").mkdir(parents=True)
    for point, rows in chips.groupby("point"):
        rows.to_parquet(path / "points" / f"point_{point:03d}.parquet")
        digital[digital["point"] == point].to_csv(
            path / "points" / digital_name.format(point), index=False)
        if images:
            rng = np.random.default_rng(point)
            clean = (rng.random((4, 28, 28)) > 0.7).astype(np.float32)
            (path / "images").mkdir(exist_ok=True)
            np.savez(path / "images" / f"point_{point:03d}.npz", clean=clean,
                     noisy=np.clip(clean + 0.3, 0, 1), digital=clean * 0.9, analog=clean * 0.5,
                     axis_label=np.array(str(chips[chips.point == point].axis_label.iloc[0])))
    if complete:
        chips.to_parquet(path / "chips.parquet")
        digital.to_csv(path / "digital.csv", index=False)
    meta = dict(status="complete" if complete else "running", label=label, axis=AXIS,
                axis_title="ADC resolution (bits)",
                axis_log=False, points=sorted(chips.axis_value.unique().tolist()))
    if data is not None:
        meta["data"] = data
    (path / "meta.json").write_text(json.dumps(meta))
    return chips


def test_table_columns_match_numpy():
    chips, digital = fake_chips(metrics=("accuracy", "loss"), n_chips=37)
    table = percentile_table(chips, digital)
    assert list(table.columns) == PERCENTILE_COLUMNS
    assert len(table) == 4 * 2
    assert table["axis_value"].tolist() == [12, 12, 8, 8, 6, 6, 4, 4]  # sorted by point
    for _, row in table.iterrows():
        values = chips[(chips.axis_value == row.axis_value) & (chips.metric == row.metric)].value
        v = values.to_numpy()
        assert row.n_chips == 37
        assert row["mean"] == pytest.approx(v.mean())
        assert row["std"] == pytest.approx(v.std(ddof=1))
        assert row["min"] == v.min() and row["max"] == v.max()
        for name, q in [("p5", 5), ("p25", 25), ("p50", 50), ("p75", 75), ("p95", 95)]:
            assert row[name] == pytest.approx(np.percentile(v, q))
        expected_digital = digital[(digital.axis_value == row.axis_value)
                                   & (digital.metric == row.metric)].value.iloc[0]
        assert row.digital == pytest.approx(expected_digital)


def test_table_recovers_known_distribution():
    """With 4000 chips of N(mu, sd) the percentiles sit where the normal quantiles say."""
    chips, _ = fake_chips(n_chips=4000, values=(8,), seed=3)
    row = percentile_table(chips).iloc[0]
    mu, sd = 0.9, 0.01
    z = {"p5": -1.6449, "p25": -0.6745, "p50": 0.0, "p75": 0.6745, "p95": 1.6449}
    for name, zq in z.items():
        # standard error of a sample quantile is about sd * 2.5 / sqrt(n) here; allow 5x
        assert abs(row[name] - (mu + zq * sd)) < 5 * 2.5 * sd / np.sqrt(4000), name
    assert row["std"] == pytest.approx(sd, rel=0.05)
    assert np.isnan(row["digital"])  # no baseline given


def test_table_ignores_missing_values_and_rejects_bad_input():
    chips, _ = fake_chips(n_chips=10, nan_every=5)  # chips 0 and 5 are NaN
    table = percentile_table(chips)
    assert (table.n_chips == 8).all()
    assert table.p50.notna().all()
    with pytest.raises(ReportError, match="chip"):
        percentile_table(chips.drop(columns="chip"))
    with pytest.raises(ReportError, match="empty"):
        percentile_table(chips.iloc[:0])


def test_write_sweep_report_writes_table_and_plots(tmp_path):
    run = tmp_path / "run"
    chips = write_sweep(run, label="hardware=pcm", images=True)
    written = write_sweep_report(run)
    names = {p.name for p in written}
    assert {"percentiles.csv", "summary.md", "band_accuracy.png", "box_accuracy.png",
            "grid.png"} <= names
    for png in run.glob("*.png"):
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, png
    table = pd.read_csv(run / "percentiles.csv")
    assert list(table.columns) == PERCENTILE_COLUMNS
    expected = percentile_table(chips)
    np.testing.assert_allclose(table.p75, expected.p75)
    assert "| hardware=pcm | 4 | 40 |" in (run / "summary.md").read_text()
    # idempotent, and no temporary files left behind
    before = (run / "percentiles.csv").read_bytes()
    write_sweep_report(run)
    assert (run / "percentiles.csv").read_bytes() == before
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("digital_name", ["digital_{:03d}.csv", "point_{:03d}_digital.csv"])
def test_partial_sweep_is_reportable(tmp_path, digital_name):
    full, partial = tmp_path / "full", tmp_path / "partial"
    write_sweep(full)
    write_sweep(partial, complete=False, images=True, digital_name=digital_name)
    (partial / "points" / "point_003.parquet").unlink()  # interrupted before the last point
    sweep = load_sweep(partial)
    assert sweep.source == "points/" and not sweep.complete
    assert sorted(sweep.chips.point.unique()) == [0, 1, 2]
    # the images of the unfinished point are left out of the grid
    assert [p["axis_label"] for p in _load_images(sweep)] == ["12", "8", "6"]
    assert "grid.png" in {p.name for p in write_sweep_report(partial)}
    got = pd.read_csv(partial / "percentiles.csv")
    want = pd.read_csv(write_sweep_report(full)[0])
    # the finished points agree with the complete sweep, digital baseline from per-point files
    pd.testing.assert_frame_equal(got, want.iloc[:3].reset_index(drop=True))
    assert got.digital.notna().all()


def test_merge_two_jobs_gives_one_table(tmp_path):
    multirun = tmp_path / "multirun"
    write_sweep(multirun / "0", label="hardware=pcm", seed=1)
    write_sweep(multirun / "1", label="hardware=rram", seed=2)
    write_sweep(multirun / "10", label="hardware=ideal", seed=3)
    assert [p.name for p in find_sweep_dirs(multirun)] == ["0", "1", "10"]
    out = tmp_path / "merged"
    written = merge_sweeps([multirun], out)
    for name in ("compare_accuracy.png", "compare_box_accuracy.png"):
        assert out / name in written
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    table = pd.read_csv(out / "percentiles.csv")
    # then the job's identity (aimcbench.report.dataset): job, its directory, its overrides as columns
    assert list(table.columns) == ["label"] + PERCENTILE_COLUMNS + ["job", "run_dir", "hardware"]
    assert table.label.unique().tolist() == ["hardware=pcm", "hardware=rram", "hardware=ideal"]
    assert table.label.tolist() == table.job.tolist() == ("hardware=" + table.hardware).tolist()
    assert table.run_dir.unique().tolist() == ["../multirun/0", "../multirun/1", "../multirun/10"]
    assert (table.groupby("label").size() == 4).all()
    summary = (out / "summary.md").read_text()
    assert "hardware=rram" in summary and "p75" in summary


def test_labels_fall_back_to_overrides_config_and_dir_name(tmp_path):
    for job, hw in [("0", "pcm"), ("1", "rram")]:
        write_sweep(tmp_path / "m" / job, seed=int(job))
        (tmp_path / "m" / job / ".hydra").mkdir()
        (tmp_path / "m" / job / ".hydra" / "overrides.yaml").write_text(
            f"- hardware={hw}\n- sweep=adc_bits\n")
        (tmp_path / "c" / job).parent.mkdir(exist_ok=True)
        write_sweep(tmp_path / "c" / job, seed=int(job))
        (tmp_path / "c" / job / "config.yaml").write_text(
            f"hardware:\n  name: {hw}\n  g_max_uS: {25 + int(job)}\nmc:\n  chips: 40\n")
    sweeps = [load_sweep(p) for p in find_sweep_dirs(tmp_path / "m")]
    assert label_sweeps(sweeps) == ["hardware=pcm", "hardware=rram"]
    sweeps = [load_sweep(p) for p in find_sweep_dirs(tmp_path / "c")]
    assert label_sweeps(sweeps) == ["hardware=pcm", "hardware=rram"]
    # words shared by every job's label are dropped; labels that would collide stay whole
    for job, hw in [("0", "pcm"), ("1", "rram")]:
        write_sweep(tmp_path / "s" / job, label=f"hardware={hw} dataset=synthetic mc.chips=8")
    sweeps = [load_sweep(p) for p in find_sweep_dirs(tmp_path / "s")]
    assert label_sweeps(sweeps) == ["hardware=pcm", "hardware=rram"]
    assert split_common(["a=1 b=2", "a=1 b=2 c=3"]) == (["a=1 b=2", "a=1 b=2 c=3"], "")
    write_sweep(tmp_path / "d" / "a")
    write_sweep(tmp_path / "d" / "b")
    assert label_sweeps([load_sweep(p) for p in find_sweep_dirs(tmp_path / "d")]) == ["a", "b"]


def test_report_dirs_errors_name_the_path(tmp_path):
    with pytest.raises(ReportError, match="nope"):
        report_dirs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="empty.*no sweep results"):
        report_dirs([tmp_path / "empty"])
    write_sweep(tmp_path / "two" / "0", label="a")
    write_sweep(tmp_path / "two" / "1", label="b")
    with pytest.raises(ReportError, match="out: .*sweep directories"):
        report_dirs([tmp_path / "two"], out=tmp_path / "two" / "1")
    bad = tmp_path / "bad"
    write_sweep(bad)
    pd.read_parquet(bad / "chips.parquet").drop(columns="metric").to_parquet(bad / "chips.parquet")
    with pytest.raises(ReportError, match=r"chips.parquet.*metric"):
        load_sweep(bad)


def _run_report(*overrides, cwd, fast=True):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # PNG only keeps these command tests fast; PDF, SVG and report.html have their own tests (test_report_html.py)
    fast = ["report.formats=[png]", "report.html=false"] if fast else []
    return subprocess.run([sys.executable, "-m", "aimcbench", "report", *overrides, *fast],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_command_merges_and_fails_with_status_2(tmp_path):
    write_sweep(tmp_path / "mr" / "0", label="hardware=pcm")
    write_sweep(tmp_path / "mr" / "1", label="hardware=rram", seed=5)
    done = _run_report("dirs=[mr]", cwd=tmp_path)  # relative to the caller's directory
    assert done.returncode == 0, done.stderr
    assert set(pd.read_csv(tmp_path / "mr" / "percentiles.csv").label) == {
        "hardware=pcm", "hardware=rram"}
    assert (tmp_path / "mr" / "0" / "band_accuracy.png").is_file()
    # report.* given on the command line reach every sweep: PNG only, no report.html
    assert not list((tmp_path / "mr").rglob("*.pdf")) and not list((tmp_path / "mr").rglob("report.html"))
    assert not (tmp_path / ".hydra").exists()  # Hydra wrote nothing of its own
    missing = tmp_path / "does_not_exist"
    failed = _run_report(f"dirs=[{missing}]", cwd=tmp_path)
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0]


def test_normalized_p75_divides_each_sweep_by_its_reference(tmp_path):
    """Study 002 Fig. 8b: each level-2 job over the level-1 job of the same training injection, point by point."""
    jobs = {}
    for i, (hw, inj) in enumerate([("rram_l1", 0), ("rram_l2", 0), ("rram_l1", 0.06), ("rram_l2", 0.06)]):
        label = f"hardware={hw} train.noise_injection={inj}"
        jobs[label] = write_sweep(tmp_path / "multi" / str(i), label=label, seed=i)
    written = merge_sweeps([tmp_path / "multi"], tmp_path / "out", normalize_to="hardware:rram_l1")
    norm = pd.read_csv(tmp_path / "out" / "normalized_p75.csv")
    assert (tmp_path / "out" / "normalized_p75_accuracy.png").read_bytes()[:8] == PNG_MAGIC
    assert tmp_path / "out" / "normalized_p75.csv" in written
    assert len(norm) == 2 * 4 and set(norm["label"]) == {"hardware=rram_l2 train.noise_injection=0",
                                                         "hardware=rram_l2 train.noise_injection=0.06"}
    for label, ref in (("0", "0"), ("0.06", "0.06")):
        mine = jobs[f"hardware=rram_l2 train.noise_injection={label}"]
        theirs = jobs[f"hardware=rram_l1 train.noise_injection={ref}"]
        for value in (12, 8, 6, 4):
            expect = (np.percentile(mine[mine.axis_value == value]["value"], 75)
                      / np.percentile(theirs[theirs.axis_value == value]["value"], 75))
            got = norm[(norm["label"].str.endswith(f"={label}")) & (norm["axis_value"] == value)]["value"]
            assert got.item() == pytest.approx(expect, rel=1e-9)
    with pytest.raises(ReportError, match="normalize_to"):
        merge_sweeps([tmp_path / "multi"], tmp_path / "out2", normalize_to="hardware=pcm")


def _png_height(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[20:24], "big")  # IHDR height


SAMPLE = {"name": "mnist", "source": "sample", "n_test": 2000, "n_test_requested": 10000}


def test_plots_and_summary_say_when_the_embedded_sample_was_used(tmp_path):
    write_sweep(tmp_path / "full", data={"name": "mnist", "source": "full", "n_test": 10000})
    write_sweep(tmp_path / "sample", data=SAMPLE)
    write_sweep(tmp_path / "old")  # written before meta.json recorded the data: no note, no error
    for name in ("full", "sample", "old"):
        write_sweep_report(tmp_path / name)
    note = "the embedded MNIST sample (2000 test images, eval.n=10000 asked), not the full set"
    assert note in (tmp_path / "sample" / "summary.md").read_text()
    for name in ("full", "old"):
        assert "sample" not in (tmp_path / name / "summary.md").read_text()
    for png in ("band_accuracy.png", "box_accuracy.png"):  # the footer line makes the sample's figures taller
        assert _png_height(tmp_path / "sample" / png) > _png_height(tmp_path / "full" / png)
        assert _png_height(tmp_path / "old" / png) == _png_height(tmp_path / "full" / png)
    merge_sweeps([tmp_path / "full", tmp_path / "sample"], tmp_path / "merged")
    merged = (tmp_path / "merged" / "summary.md").read_text()
    assert "embedded MNIST sample" in merged and "every sweep" not in merged


def test_report_takes_run_directories_named_like_hydras(tmp_path):
    """`aimc report outputs/sweep/*`: run directories are named after their overrides (key=value,...)."""
    names = ["dataset=synthetic,mc.chips=2,sweep.values=[4,8]", "hardware=rram,mc.chips=2"]
    for i, name in enumerate(names):
        write_sweep(tmp_path / "outputs" / "sweep" / name, label=name, seed=i)
    dirs = sorted(str(p) for p in (tmp_path / "outputs" / "sweep").glob("*"))  # what the shell's glob gives
    done = _run_report(*dirs, "out=merged", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(pd.read_csv(tmp_path / "merged" / "percentiles.csv").label) == set(names)
    # an argument with "=" that is no directory is still an override
    # no report.* given: the sweep's own settings (its config.yaml) are used
    (tmp_path / "outputs" / "sweep" / names[0] / "config.yaml").write_text(
        "report:\n  formats: [svg]\n  style: default\n  html: false\n")
    done = _run_report(str(tmp_path / "outputs" / "sweep" / names[0]), "stat=p50", cwd=tmp_path, fast=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "outputs" / "sweep" / names[0] / "band_accuracy.svg").is_file()
