"""One analysis table (issue 16): every sweep's chips.parquet carries the job's overrides as typed columns, and
`aimc report MULTIRUN_DIR` writes one merged chips.parquet + percentiles.csv that pandas reads in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import aimc
from pandas.api import types

from aimcbench.report.dataset import job_identity
from aimcbench.report.sweepdir import find_sweep_dirs
from aimcbench.runner import CHIP_COLUMNS

# A tiny real multirun: 2 jobs (hardware), 2 points, 2 chips, one metric.
SMALL = ["threads=1", "dataset=synthetic", "train=quick", "mc.chips=2", "eval.n=64", "eval.batch_size=32",
         "sweep.values=[12,4]", "train.lr=0.005"]
FAST_REPORT = ["report.formats=[png]", "report.html=false"]  # run-only: also kept out of the job's identity


def test_job_identity_types_and_run_only_keys():
    overrides = ["hardware=pcm", "mc.chips=4", "train.noise_injection=0.1", "threads=1", "device=cpu",
                 "report.formats=[png]", "+experiment=x", "mitigation.nabn=true", "train.aware=null",
                 "sweep.values=[1,2]"]
    job, values = job_identity(overrides)
    assert values == {"experiment": "x", "hardware": "pcm", "mc.chips": 4, "mitigation.nabn": True,
                      "sweep.values": "[1, 2]", "train.aware": None, "train.noise_injection": 0.1}
    assert type(values["mc.chips"]) is int and type(values["train.noise_injection"]) is float
    # run-only keys change no number: the same job whatever the thread count
    assert job == job_identity(["threads=8", *reversed(overrides[4:]), *overrides[:3]])[0]
    assert job.startswith("experiment=x,hardware=pcm,mc.chips=4,") and "threads" not in job
    assert job_identity([]) == ("default", {})


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("multi")
    out = tmp / "multirun" / "sweep"
    res = aimc("sweep", "-m", *SMALL, *FAST_REPORT, "hardware=ideal,pcm", f"hydra.sweep.dir={out}", cwd=tmp)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def test_each_sweep_writes_its_job_columns(multirun):
    for job in find_sweep_dirs(multirun):
        chips = pd.read_parquet(job / "chips.parquet")
        assert list(chips.columns)[:len(CHIP_COLUMNS)] == CHIP_COLUMNS  # existing readers keep working
        assert list(chips.columns)[len(CHIP_COLUMNS):] == [
            "job", "dataset", "eval.batch_size", "eval.n", "hardware", "mc.chips", "sweep.values", "train",
            "train.lr"]
        hw = chips["hardware"].iloc[0]
        assert hw in ("ideal", "pcm") and f"hardware={hw}" in chips["job"].iloc[0]
        assert "threads" not in chips.columns and "threads=" not in chips["job"].iloc[0]
        assert not any(c.startswith("report.") for c in chips.columns)
        assert types.is_float_dtype(chips["axis_value"])
        # the per-point files stay as the manifests verified them: CHIP_COLUMNS only
        assert list(pd.read_parquet(job / "points" / "point_000.parquet").columns) == CHIP_COLUMNS


def test_report_merges_jobs_into_one_table(multirun):
    res = aimc("report", str(multirun), *FAST_REPORT)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"pandas.read_parquet({str(multirun / 'chips.parquet')!r})" in res.stdout
    merged = pd.read_parquet(multirun / "chips.parquet")  # the one-liner the README shows
    # one row per job x point x chip x metric
    assert len(merged) == 2 * 2 * 2 * merged["metric"].nunique()
    assert not merged.duplicated(["job", "point", "chip", "metric"]).any()
    assert list(merged.columns)[:len(CHIP_COLUMNS)] == CHIP_COLUMNS
    assert {"job", "run_dir", "hardware", "mc.chips", "train.lr"} <= set(merged.columns)
    assert sorted(merged["hardware"].unique()) == ["ideal", "pcm"]
    assert types.is_string_dtype(merged["hardware"])
    assert types.is_integer_dtype(merged["mc.chips"]) and set(merged["mc.chips"]) == {2}
    assert types.is_float_dtype(merged["train.lr"]) and set(merged["train.lr"]) == {0.005}
    # axis_value is numeric: 4 sorts before 12 (as text "12" < "4")
    assert types.is_float_dtype(merged["axis_value"])
    order = merged.sort_values("axis_value")["axis_label"].drop_duplicates().tolist()
    assert order == ["4", "12"]
    for run_dir, rows in merged.groupby("run_dir"):  # each row's run_dir is its job's own directory
        assert (multirun / run_dir / "chips.parquet").is_file()
        assert rows["hardware"].iloc[0] in run_dir
    # the merged percentiles carry the same job columns: one row per job x point x metric
    pct = pd.read_csv(multirun / "percentiles.csv")
    assert len(pct) == 2 * 2 * merged["metric"].nunique()
    assert {"label", "job", "hardware", "mc.chips", "p5", "p50"} <= set(pct.columns)
    # the merged file is no sweep of its own: reporting again still finds the two jobs, and rebuilds the same table
    assert len(find_sweep_dirs(multirun)) == 2
    from aimcbench.report import load_sweep
    from aimcbench.report.dataset import write_merged_chips

    write_merged_chips([load_sweep(p) for p in find_sweep_dirs(multirun)], multirun)
    pd.testing.assert_frame_equal(pd.read_parquet(multirun / "chips.parquet"), merged)


def test_missing_overrides_are_null_and_types_stay(tmp_path):
    """Jobs with different override sets: an override a job did not give is null in its rows."""
    from aimcbench.report.dataset import merged_table

    chips = pd.DataFrame({"point": [0], "axis": ["hardware.adc_bits"], "axis_value": [4.0], "axis_label": ["4"],
                          "chip": [0], "metric": ["accuracy"], "value": [0.9]})
    dirs = []
    for name, label in (("a", "hardware=pcm mc.chips=2"), ("b", "hardware=rram train.noise_injection=0.1")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(json.dumps({"label": label}))
        dirs.append((chips, tmp_path / name))
    merged = merged_table(dirs, tmp_path)
    assert merged["mc.chips"].tolist()[0] == 2 and pd.isna(merged["mc.chips"].tolist()[1])
    assert types.is_integer_dtype(merged["mc.chips"])
    assert pd.isna(merged["train.noise_injection"].iloc[0]) and merged["train.noise_injection"].iloc[1] == 0.1
    assert merged["run_dir"].tolist() == ["a", "b"]
    assert merged["job"].tolist() == ["hardware=pcm,mc.chips=2", "hardware=rram,train.noise_injection=0.1"]
