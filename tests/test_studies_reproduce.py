"""aimcbench.studies.reproduce (make reproduce-paper-figures): manifests, scale overrides, index page, resume, failures."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import needs_sim

import aimcbench.studies.reproduce as rp

TINY = "dataset=synthetic train=quick hardware=ideal eval.n=64 eval.batch_size=32 mc.chips=3 sweep.values=[8,4]"

CHECK_MODULE = '''
import pandas as pd
from pathlib import Path

def tiny(run_dirs, out_dir):
    """Reads run0's percentiles.csv; holds when 8 bits is at least as accurate as 4 bits (median)."""
    f = Path(run_dirs[0]) / "percentiles.csv"
    if not f.is_file():
        return {"ours": "no results", "holds": None, "plot": None}
    t = pd.read_csv(f)
    t = t[t.metric == "accuracy"].set_index("axis_value")
    return {"ours": f"chips {int(t.n_chips.iloc[0])}; p50 8b {t.p50[8.0]:.3f} 4b {t.p50[4.0]:.3f}",
            "holds": bool(t.p50[8.0] >= t.p50[4.0] - 0.05), "plot": str(Path(run_dirs[0]) / "band_accuracy.png")}

def boom(run_dirs, out_dir):
    raise RuntimeError("check exploded")
'''


def _manifest(tmp_path: Path, entries: str) -> Path:
    mdir = tmp_path / "paper"
    mdir.mkdir(exist_ok=True)
    (mdir / "s999.yaml").write_text(textwrap.dedent(entries))
    return mdir


@pytest.fixture
def check_module(tmp_path, monkeypatch):
    (tmp_path / "claims_tiny.py").write_text(CHECK_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("claims_tiny", None)
    return "claims_tiny"


def test_command_line_scale_overrides_and_run_dirs(tmp_path):
    quick = ["mc.chips=10", "eval.n=500", "train.steps=200", "+model.width_mult=0.5"]
    sweep = rp.command_line("sweep experiment=x", 0, tmp_path / "e", quick)
    assert sweep[-5:-1] == quick and sweep[-1] == f"hydra.run.dir={tmp_path / 'e' / 'run0'}"
    # train takes only keys of its own config: train.*, model.* but not mc.* / eval.*
    train = rp.command_line("train experiment=x", 1, tmp_path / "e", quick)
    assert train == ["train", "experiment=x", "train.steps=200", "+model.width_mult=0.5",
                     f"hydra.run.dir={tmp_path / 'e' / 'run1'}"]
    multi = rp.command_line("sweep x=1 -m 'hardware.layers.indices=[0],[1]'", 2, tmp_path / "e", [])
    assert multi == ["sweep", "-m", "x=1", "hardware.layers.indices=[0],[1]",   # -m first: Hydra needs that
                     f"hydra.sweep.dir={tmp_path / 'e' / 'run2'}"]
    report = rp.command_line("report {run0} {run2} out={out}", 3, tmp_path / "e", quick)
    assert report == ["report", str(tmp_path / "e" / "run0"), str(tmp_path / "e" / "run2"), f"out={tmp_path / 'e'}"]


def test_bad_manifests_give_one_line_errors(tmp_path, capsys):
    mdir = _manifest(tmp_path, "- {id: a, study: '1', figure: F, title: t, runs: [sweep], claim: c, check: m:f}\n"
                               "- {id: a, study: '1', figure: F, title: t, runs: [sweep], claim: c, check: m:f}\n")
    with pytest.raises(rp.ManifestError, match=r"s999.yaml\[1\].id: 'a' already used"):
        rp.load_manifests(mdir)
    (mdir / "s999.yaml").write_text("- {id: a, study: '1', figure: F, title: t, runs: [sweep], claim: c, check: m:f, qick: []}\n")
    assert rp.main(["--manifest-dir", str(mdir), "--list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "qick: unknown key" in err
    (mdir / "s999.yaml").write_text("- {id: a, study: '1', figure: F, title: t, claim: c, check: m:f}\n")
    with pytest.raises(rp.ManifestError, match=r"\[0\].runs: missing"):
        rp.load_manifests(mdir)
    (mdir / "s999.yaml").write_text("- {id: a, study: '1', figure: F, title: t, runs: [sweep], claim: c, check: m:f, "
                                    "departures: bound}\n")
    with pytest.raises(rp.ManifestError, match=r"\[0\].departures: must be a list"):
        rp.load_manifests(mdir)


@needs_sim
def test_reproduce_index_resume_and_failures(tmp_path, check_module, capsys):
    mdir = _manifest(tmp_path, f"""
        - id: tiny_ok
          study: "999"
          figure: "Fig. 1"
          title: "tiny ADC sweep"
          runs: ["sweep {TINY}", "sweep {TINY} sweep.values=[8] -m mc.seed=0,1"]
          quick: ["mc.chips=2"]
          paper: []
          claim: "8 bits no worse than 4"
          departures: ["two chips only"]
          check: "{check_module}:tiny"
        - id: tiny_bad
          study: "999"
          figure: "Fig. 2"
          title: "a run that fails"
          runs: ["sweep {TINY} hardware.adc.bits=banana", "sweep {TINY}"]
          claim: "-"
          check: "{check_module}:boom"
        """)
    out = tmp_path / "results"
    assert rp.main(["--manifest-dir", str(mdir), "--out", str(out), "--set", "threads=1"]) == 0
    rows = {r["id"]: r for r in json.loads((out / "index.json").read_text())}
    ok, bad = rows["tiny_ok"], rows["tiny_bad"]
    assert ok["status"] == "ok" and ok["holds"] is True and ok["ours"].startswith("chips 2;"), ok  # quick override used
    assert (out / "tiny_ok" / "run0" / "percentiles.csv").is_file()
    assert len(list((out / "tiny_ok" / "run1").glob("*/percentiles.csv"))) == 2   # -m run: one dir per job
    assert bad["status"].startswith("failed: run0:") and "adc.bits" in bad["status"]
    assert len(bad["runs"]) == 1                       # the entry's later run is skipped after a failure
    assert bad["holds"] is None and "check exploded" in bad["ours"]
    index = (out / "index.md").read_text()
    row = next(ln for ln in index.splitlines() if "tiny ADC sweep" in ln)
    assert "[plot](tiny_ok/run0/band_accuracy.png)" in row and "| holds |" in row and '"8 bits no worse than 4"' in row
    assert "| two chips only; synthetic: synthetic data" in row and "Verdicts: 1 holds, 0 does not hold, 0 inconclusive, 1 not judged" in index
    assert "failed: run0" in index
    assert "tiny_bad" in capsys.readouterr().out           # the summary names the failed entry

    points = sorted((out / "tiny_ok" / "run0" / "points").glob("point_*.parquet"))
    assert len(points) == 2
    stamps = [p.stat().st_mtime_ns for p in points]
    assert rp.main(["--manifest-dir", str(mdir), "--out", str(out), "--only", "tiny_ok"]) == 0
    assert [p.stat().st_mtime_ns for p in points] == stamps   # rerun: finished points are not recomputed
    rows2 = {r["id"]: r for r in json.loads((out / "index.json").read_text())}
    assert rows2["tiny_ok"]["status"] == "ok"
    assert rows2["tiny_bad"]["status"] == bad["status"]       # rows not rerun are kept from the last index


def _fake_job(path: Path, cfg: dict, values, p50, digital=0.9, metric="accuracy", mean=None) -> None:
    """A job dir with config.yaml and a percentiles.csv whose p50 (and mean) are given per axis value."""
    import pandas as pd
    import yaml

    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    mean = p50 if mean is None else mean
    pd.DataFrame({"axis": "k", "axis_value": values, "axis_label": [str(v) for v in values], "metric": metric,
                  "n_chips": 10, "mean": mean, "p50": p50, "digital": digital}).to_csv(path / "percentiles.csv")


# Claim checks on fabricated results: tests/test_studies_claims_s<NNN>.py (study 001: ..._s001.py, study 004:
# ..._s004.py).
