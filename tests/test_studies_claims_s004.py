"""Study 004's claim checks on fabricated runs: each check holds, does not hold and comes out inconclusive."""

from __future__ import annotations

from pathlib import Path

import pytest
from fabricate_runs import chips, write_run

from aimcbench.studies.s004 import claims

AXIS = "hardware.weight_noise.eta0"
ETAS = [0.02, 0.06, 0.1]


def _job(path: Path, cfg: dict, means: list[float], std: float = 0.02, digital: float = 0.9, n: int = 40,
         etas=ETAS) -> None:
    write_run(path, AXIS, [{"x": e, "chips": {"accuracy": chips(m, std, n, seed=i)}, "digital": {"accuracy": digital}}
                           for i, (e, m) in enumerate(zip(etas, means))], cfg)


def _table(tmp_path: Path, vanilla: list[float], nabn: list[float], **kw) -> Path:
    run = tmp_path / "run0"
    _job(run / "0", {"mitigation": {"nabn": False}}, vanilla, **kw)
    _job(run / "1", {"mitigation": {"nabn": True}}, nabn, **kw)
    return run


@pytest.mark.parametrize("check", [claims.table1, claims.table2])
def test_tables_1_2(tmp_path, check):
    # holds: vanilla 85 -> 15 %, NaBN 89 -> 88 % (digital 90): gain > 0 everywhere, > 5 at 0.1, drop < 5
    run = _table(tmp_path / "h", [0.85, 0.5, 0.15], [0.89, 0.885, 0.88])
    res = check([run], tmp_path / "h")
    assert res["verdict"] == "holds" and Path(res["plot"]).is_file()
    assert res["value"] == pytest.approx(73.0, abs=0.01) and res["study_value"] > 60 and res["n_chips"] == 40
    # does not hold: NaBN worse than vanilla at the smallest eta0 (both chip sets exactly 2 points apart)
    run = _table(tmp_path / "f", [0.89, 0.5, 0.15], [0.87, 0.885, 0.88])
    assert check([run], tmp_path / "f")["verdict"] == "does not hold"
    # does not hold: NaBN beats vanilla but falls 30 points below digital at the largest eta0
    run = _table(tmp_path / "f2", [0.85, 0.5, 0.15], [0.89, 0.8, 0.6])
    assert check([run], tmp_path / "f2")["verdict"] == "does not hold"
    # inconclusive: the gain at 0.02 is 0.2 points with a chip spread of 5 points (independent draws per job)
    run = tmp_path / "i" / "run0"
    _job(run / "0", {"mitigation": {"nabn": False}}, [0.88, 0.5, 0.15], std=0.05)
    _job(run / "1", {"mitigation": {"nabn": True}}, [0.882, 0.885, 0.88], std=0.05,)
    for p in (run / "1" / "points").glob("point_*.parquet"):  # other chip draws than job 0: no pairing help
        import pandas as pd
        df = pd.read_parquet(p)
        df["value"] = df["value"].to_numpy()[::-1]
        df.to_parquet(p, index=False)
    assert check([run], tmp_path / "i")["verdict"] == "inconclusive"
    # fewer than 40 chips: inconclusive even when every interval is on the claim's side
    run = _table(tmp_path / "few", [0.85, 0.5, 0.15], [0.89, 0.885, 0.88], n=10)
    assert check([run], tmp_path / "few")["verdict"] == "inconclusive"
    # missing job: not judged, no exception
    (tmp_path / "m" / "run0").mkdir(parents=True)
    assert check([tmp_path / "m" / "run0"], tmp_path / "m")["verdict"] == "not judged"


@pytest.mark.parametrize("check", [claims.table3, claims.table4])
def test_tables_3_4_two_scales(tmp_path, check):
    etas = [0.05, 0.1]
    run = _table(tmp_path / "h", [0.7, 0.3], [0.88, 0.86], etas=etas)
    res = check([run], tmp_path / "h")
    assert res["verdict"] == "holds" and "study_value" not in res   # other tasks' metrics: not beside ours
    run = _table(tmp_path / "f", [0.7, 0.3], [0.88, 0.32], etas=etas)   # gain 2 points < 5 at the larger scale
    assert check([run], tmp_path / "f")["verdict"] == "does not hold"
    run = _table(tmp_path / "i", [0.7, 0.3], [0.88, 0.86], etas=etas, n=39)
    assert check([run], tmp_path / "i")["verdict"] == "inconclusive"
    assert check([tmp_path / "none"], tmp_path / "x")["verdict"] == "not judged"


def _fig3(tmp_path: Path, ni: list[float], nb: list[float], n: int = 40, std: float = 0.02) -> list[Path]:
    etas = [0.02, 0.06, 0.1, 0.14]
    a, b = tmp_path / "ni", tmp_path / "nabn"
    _job(a, {"train": {"noise_injection": {"eta0": 0.06}}}, ni, etas=etas, n=n, std=std)
    _job(b, {"mitigation": {"nabn": True, "dynamic": True}}, nb, etas=etas, n=n, std=std)
    return [a, b]


def test_fig3(tmp_path):
    res = claims.fig3(_fig3(tmp_path / "h", [0.85, 0.88, 0.7, 0.4], [0.87, 0.87, 0.86, 0.84]), tmp_path / "h")
    assert res["verdict"] == "holds" and Path(res["plot"]).is_file() and res["value"] == pytest.approx(44.0)
    # the noise-injection model does not drop away from 0.06 (3 points < 10)
    res = claims.fig3(_fig3(tmp_path / "f", [0.85, 0.88, 0.87, 0.85], [0.87, 0.87, 0.86, 0.86]), tmp_path / "f")
    assert res["verdict"] == "does not hold"
    res = claims.fig3(_fig3(tmp_path / "i", [0.85, 0.88, 0.7, 0.4], [0.87, 0.87, 0.86, 0.84], n=20), tmp_path / "i")
    assert res["verdict"] == "inconclusive"
    assert claims.fig3([tmp_path / "h" / "ni"], tmp_path / "m")["verdict"] == "not judged"
    # no eta0 0.06 point: not judged
    a = tmp_path / "n" / "ni"
    _job(a, {"train": {"noise_injection": {"eta0": 0.06}}}, [0.8, 0.5], etas=[0.02, 0.1])
    b = tmp_path / "n" / "nabn"
    _job(b, {"mitigation": {"nabn": True}}, [0.8, 0.8], etas=[0.02, 0.1])
    assert claims.fig3([a, b], tmp_path / "n")["verdict"] == "not judged"
