"""Hydra launchers (joblib, submitit local) run whole sweeps as jobs; an interrupted multirun resumes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SMALL = ["threads=1", "dataset=synthetic", "mc.chips=2", "eval.n=200", "train.steps=50", "sweep.values=[8,4]"]


def _multirun(tmp_path: Path, out: Path, extra: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIMC_CACHE_DIR": str(tmp_path / "cache"), "AIMC_NO_DOWNLOAD": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "aimcbench", "sweep", "-m", *extra, *SMALL, "hardware=ideal,pcm",
           f"hydra.sweep.dir={out}"]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def _jobs(out: Path) -> dict[str, Path]:
    return {("pcm" if "hardware=pcm" in p.name else "ideal"): p for p in out.iterdir() if p.is_dir()
            and "hardware=" in p.name}


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_launcher_runs_one_sweep_per_job(tmp_path, launcher):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher" if launcher == "joblib"
                        else "hydra_plugins.hydra_submitit_launcher")
    extra = [f"hydra/launcher={launcher}"] + (["hydra.launcher.n_jobs=2"] if launcher == "joblib" else [])
    res = _multirun(tmp_path, tmp_path / "multi", extra)
    assert res.returncode == 0, res.stderr[-2000:]
    jobs = _jobs(tmp_path / "multi")
    assert set(jobs) == {"ideal", "pcm"}
    for job in jobs.values():
        chips = pd.read_parquet(job / "chips.parquet")
        assert sorted(chips["point"].unique()) == [0, 1] and sorted(chips["chip"].unique()) == [0, 1]
    # Both jobs needed the same model at once: one cache entry, trained once under the file lock.
    assert len(list((tmp_path / "cache" / "models").glob("*.pt"))) == 1


def test_interrupted_multirun_recomputes_only_missing_points(tmp_path):
    out = tmp_path / "multi"
    first = _multirun(tmp_path, out, [], {"AIMC_STOP_AFTER_POINTS": "1"})
    assert first.returncode != 0  # the first job dies after its first point; the multirun stops there
    jobs = _jobs(out)
    done = jobs["ideal"] / "points" / "point_000.parquet"
    assert done.is_file() and not (jobs["ideal"] / "points" / "point_001.parquet").exists()
    stamp = done.stat().st_mtime_ns
    second = _multirun(tmp_path, out, [])
    assert second.returncode == 0, second.stderr[-2000:]
    assert done.stat().st_mtime_ns == stamp  # the finished point was not recomputed
    for job in _jobs(out).values():
        assert len(pd.read_parquet(job / "chips.parquet")) == 2 * 2
