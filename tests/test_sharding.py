"""Issue 15: the chips of a sweep point sharded over jobs (mc.shard_index / mc.shard_count), launched through
Hydra's joblib launcher, and merged by `aimc report` into exactly the table an unsharded run writes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from aimcbench.report import ReportError, report_dirs

SMALL = ["threads=1", "dataset=synthetic", "hardware=pcm", "mc.chips=8", "eval.n=200", "train.steps=50",
         "sweep.values=[8,3]", "report.html=false", "report.formats=[png]", "progress=off"]


def _aimc(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "AIMC_CACHE_DIR": str(cache), "AIMC_NO_DOWNLOAD": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "aimcbench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An unsharded run and the same sweep as 4 shards through hydra/launcher=joblib (2 processes)."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    root = tmp_path_factory.mktemp("shards")
    cache = tmp_path_factory.getbasetemp() / "aimc-cache"  # conftest's session cache: the model of test_launchers
    from aimcbench.cli import main

    with pytest.MonkeyPatch.context() as mp:  # in this process (no interpreter start): trains the model too
        mp.setenv("AIMC_CACHE_DIR", str(cache))
        mp.setenv("AIMC_NO_DOWNLOAD", "1")
        main(["sweep", *SMALL, f"hydra.run.dir={root / 'full'}"])
    assert json.loads((root / "full" / "meta.json").read_text())["status"] == "complete"
    multi = _aimc(["sweep", "-m", *SMALL, "mc.shard_index=0,1,2,3", "mc.shard_count=4", "hydra/launcher=joblib",
                   "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={root / 'multi'}"], root, cache)
    assert multi.returncode == 0, multi.stderr[-2000:]
    shards = sorted((p for p in (root / "multi").iterdir() if "mc.shard_index=" in p.name),
                    key=lambda p: p.name)
    assert len(shards) == 4
    return root, root / "full", shards


def _report(args: list[str], capsys) -> tuple[int, list[str]]:
    """`aimc report ARGS` in this process: (exit status, stderr lines)."""
    from aimcbench.cli import main

    try:
        main(["report", *args])
        code = 0
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err.strip().splitlines()


def test_each_shard_runs_its_own_chip_range(runs):
    _, _, shards = runs
    for i, path in enumerate(shards):
        chips = pd.read_parquet(path / "chips.parquet")
        assert set(chips["point"]) == {0, 1}
        assert sorted(set(chips["chip"])) == [2 * i, 2 * i + 1]  # 8 chips over 4 shards: [2i, 2i + 2)
        meta = json.loads((path / "meta.json").read_text())
        assert meta["shard"] == {"index": i, "count": 4, "chips": [8, 8], "ranges": [[2 * i, 2 * i + 2]] * 2}


def test_an_incomplete_or_overlapping_shard_set_is_refused(runs, tmp_path, capsys):
    root, _, shards = runs
    # shard 2 left out: one line naming the missing chips, exit 2, nothing merged
    code, lines = _report([str(shards[0]), str(shards[1]), str(shards[3])], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "mc.shard_index:" in lines[0] and "miss chips 4-5 of 8 at point 0" in lines[0]
    assert not any("mc.shard_index=" not in p.name and p.is_dir() for p in (root / "multi").iterdir())
    # shard 1 given twice (a copy in another directory): its chips are named as overlapping
    twin = tmp_path / "copy" / shards[1].name
    shutil.copytree(shards[1], twin)
    with pytest.raises(ReportError, match=r"chips 2-3 at point 0 are in more than one shard"):
        report_dirs([*shards, twin], out=tmp_path / "merged")
    # a shard whose sweep did not finish
    meta = json.loads((twin / "meta.json").read_text())
    (twin / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    with pytest.raises(ReportError, match=r"shard 1 of 4 is not complete"):
        report_dirs([shards[0], twin, shards[2], shards[3]], out=tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
    # out= naming a sweep of its own (the unsharded run) is never overwritten
    _, full, _ = runs
    before = (full / "chips.parquet").read_bytes()
    with pytest.raises(ReportError, match=r"holds a sweep of its own"):
        report_dirs(shards, out=full)
    assert (full / "chips.parquet").read_bytes() == before


def test_merged_shards_equal_the_unsharded_run_bitwise(runs, tmp_path, capsys):
    root, full, shards = runs
    code, lines = _report([str(root / "multi")], capsys)
    assert code == 0, lines
    merged = [p for p in (root / "multi").iterdir() if p.is_dir() and "mc.shard_index=" not in p.name]
    assert len(merged) == 1 and "mc.shard_count=4" in merged[0].name
    merged = merged[0]
    a, b = pd.read_parquet(merged / "chips.parquet"), pd.read_parquet(full / "chips.parquet")
    assert list(a.columns) == list(b.columns) and list(a.dtypes) == list(b.dtypes)
    pd.testing.assert_frame_equal(a, b, check_exact=True)  # same rows, order, dtypes and job columns
    assert np.array_equal(a["value"].to_numpy().view(np.uint64), b["value"].to_numpy().view(np.uint64))
    assert a["value"].nunique() > 1  # the chips differ: a real comparison, not of constants
    for name in ("percentiles.csv", "digital.csv"):
        assert (merged / name).read_bytes() == (full / name).read_bytes(), name
    meta = json.loads((merged / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["merged_shards"]["count"] == 4 and "shard" not in meta
    # Reporting again rewrites the same merged directory (it is not taken for a sweep of its own).
    report_dirs([root / "multi"])
    pd.testing.assert_frame_equal(pd.read_parquet(merged / "chips.parquet"), b, check_exact=True)
    # out= puts the merged sweep there
    report_dirs(shards, out=tmp_path / "one")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one" / "chips.parquet"), b, check_exact=True)


@pytest.mark.parametrize("args, line", [
    (["mc.shard_index=4", "mc.shard_count=4"],
     "aimc: error: mc.shard_index: must be an integer in [0, 3] for mc.shard_count=4 (got 4)"),
    (["mc.chips=2", "mc.shard_count=3"],
     "aimc: error: mc.shard_count: must be at most mc.chips=2, so that every shard runs a chip (got 3)"),
    (["mc.shard_index=-1", "mc.shard_count=2"], "aimc: error: mc.shard_index: "),
])
def test_bad_shard_settings_stop_with_one_line(tmp_path, capsys, args, line):
    from aimcbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(["sweep", *args, f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith(line), err
    assert not (tmp_path / "run").exists()


def test_unsharded_points_hash_as_before_and_shards_as_their_own():
    from aimcbench.runner.contract import point_hash
    from aimcbench.runner.shards import chip_ids, hashable_point, shard_range

    base = {"sweep": {"key": "hardware.adc.bits"}, "eval": {"batch_size": 32}, "mc": {"chips": 10, "seed": 0}}
    plain = {**base, "mc": {**base["mc"], "shard_index": 0, "shard_count": 1}}
    assert point_hash(hashable_point(plain), "w") == point_hash(base, "w")  # points stored before still match
    shards = [{**base, "mc": {**base["mc"], "shard_index": i, "shard_count": 3}} for i in range(3)]
    digests = {point_hash(hashable_point(s), "w") for s in shards}
    assert len(digests) == 3 and point_hash(base, "w") not in digests
    ids = [chip_ids(s["mc"]) for s in shards]
    assert ids == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]] and chip_ids(plain["mc"]) == 10
    for chips in range(1, 30):  # every split covers 0..chips-1 once, contiguously, sizes within one
        for n in range(1, chips + 1):
            spans = [shard_range(chips, i, n) for i in range(n)]
            assert spans[0][0] == 0 and spans[-1][1] == chips
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
            assert max(h - lo for lo, h in spans) - min(h - lo for lo, h in spans) <= 1


def test_merged_rows_follow_the_unsharded_order():
    from aimcbench.report.shards import merged_rows

    def rows(chips):  # one shard's rows as the runner writes them: point, then metric (task order), then chip
        return pd.DataFrame([{"point": p, "axis": "k", "axis_value": float(p), "axis_label": str(p), "chip": c,
                              "metric": m, "value": p + c / 10 + (m == "ssim")}
                             for p in (0, 1) for m in ("psnr", "ssim") for c in chips])

    merged = merged_rows([(Path("a"), {}, rows([0, 1])), (Path("b"), {}, rows([2, 3, 4]))])
    pd.testing.assert_frame_equal(merged, rows([0, 1, 2, 3, 4]), check_exact=True)


def test_shards_on_one_node_spread_over_its_gpus(monkeypatch):
    import torch

    from aimcbench.runner.shards import shard_device

    chosen: list[int] = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    mcs = [{"chips": 8, "shard_index": i, "shard_count": 4} for i in range(4)]
    assert [shard_device("cuda", mc) for mc in mcs] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert chosen == [0, 1, 0, 1]
    assert shard_device("cpu", mcs[1]) == "cpu" and shard_device("cuda", {"chips": 8}) == "cuda"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # under Slurm: the job's own GPU is cuda:0
    assert shard_device("cuda", mcs[1]) == "cuda" and chosen == [0, 1, 0, 1]


@pytest.mark.slow
def test_denoiser_shards_merge_bitwise_on_continuous_metrics(tmp_path):
    """PSNR and SSIM are floats of every chip (not counts like accuracy): bitwise equal rows are a strict test, and
    two metrics per point check the merged order (point, metric, chip). About 40 s on 2 cores."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from aimcbench.cli import main

    small = ["threads=1", "model=dae", "hardware=pcm", "sweep=input_noise", "sweep.values=[0.2,0.6]", "mc.chips=4",
             "eval.n=64", "eval.batch_size=32", "train.steps=50", "eval.recognizer=none", "report.html=false",
             "report.formats=[png]", "progress=off"]
    cache = tmp_path / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIMC_CACHE_DIR", str(cache))
        main(["sweep", *small, f"hydra.run.dir={tmp_path / 'full'}"])
    res = _aimc(["sweep", "-m", *small, "mc.shard_index=0,1", "mc.shard_count=2", "hydra/launcher=joblib",
                 "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 'multi'}"], tmp_path, cache)
    assert res.returncode == 0, res.stderr[-2000:]
    merged = report_dirs([tmp_path / "multi"])[0].parent  # the merged sweep's own report comes first
    a, b = pd.read_parquet(merged / "chips.parquet"), pd.read_parquet(tmp_path / "full" / "chips.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(dict.fromkeys(a["metric"])) == ["psnr", "ssim"] and a["value"].nunique() == len(a)
    assert (merged / "percentiles.csv").read_bytes() == (tmp_path / "full" / "percentiles.csv").read_bytes()
