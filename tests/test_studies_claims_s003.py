"""Study 003's claim checks on fabricated runs: each check holds, does not hold and is inconclusive where it
should, and is "not judged" without results. Accuracies in the runs are fractions; the checks work in percent."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from aimcbench.studies.s003 import claims
from aimcbench.studies.verdict import FAILS, HOLDS, INCONCLUSIVE, NOT_JUDGED

sys.path.insert(0, str(Path(__file__).parent))
from fabricate_runs import chips, write_run  # noqa: E402

DIGITAL = 0.9845
BITS = (3, 4, 8)


def fabricate(root: Path, accs: dict[str, dict[int, np.ndarray]]) -> list[Path]:
    """The s003_table entry's run dirs under root/s003_table: single sweeps over bits for naive and the worst
    case, one job per resolution (-m) for the others, as the manifest writes them."""
    runs = [root / "s003_table" / f"run{i}" for i in range(len(claims.RUNS))]
    for name, run in zip(claims.RUNS, runs):
        run.mkdir(parents=True, exist_ok=True)
        if name not in accs:
            continue
        pts = [{"x": b, "chips": {"accuracy": v}, "digital": {"accuracy": DIGITAL}} for b, v in accs[name].items()]
        if name in ("naive", "naive_worst"):
            write_run(run, "hardware.adc.bits", pts)
        else:
            for p in pts:
                write_run(run / f"b{p['x']}", "hardware.adc.bits", [p])
    return runs


def accs(full8=0.973, naive8=DIGITAL - 0.0674, full3=0.938, narelu8=None, opt8=None, sd=0.003, n=40):
    """Per-variant per-chip accuracies; chips(..., seed=0) shares the chip pattern, so paired differences are the
    differences of the means exactly."""
    c = lambda m, s=sd: np.clip(chips(m, s, n), 0, 1)  # noqa: E731
    return {"naive": {b: c(naive8 - 0.02 * (8 - b)) for b in BITS},
            "narelu": {b: c((narelu8 if narelu8 is not None else full8 - 0.01) - 0.02 * (8 - b)) for b in BITS},
            "optimized": {b: c((opt8 if opt8 is not None else full8 - 0.005) - 0.01 * (8 - b)) for b in BITS},
            "optimized+narelu": {3: c(full3), 4: c(full8 - 0.01), 8: c(full8)},
            "naive_worst": {3: c(0.1135, 0.0), 4: c(0.1135, 0.0), 8: c(0.88)}}


CASES = {
    # check: (holds, does not hold, inconclusive) settings of accs()
    "table": ({}, {"full8": 0.95}, {"full8": 0.9632, "sd": 0.015}),
    "naive_loss": ({}, {"naive8": 0.975}, {"naive8": DIGITAL - 0.0574, "sd": 0.01}),
    "gap": ({"full8": DIGITAL - 0.0089}, {"full8": DIGITAL - 0.03}, {"full8": DIGITAL - 0.0189, "sd": 0.01}),
    "three_bit": ({"full3": 0.976}, {"full3": 0.90}, {"full3": 0.928, "sd": 0.015}),  # one-sided: >= 92.8
}


@pytest.mark.parametrize("check", sorted(CASES))
def test_number_checks(tmp_path, check):
    fn = getattr(claims, check)
    for kwargs, want in zip(CASES[check], (HOLDS, FAILS, INCONCLUSIVE)):
        root = tmp_path / f"{want.replace(' ', '_')}"
        runs = fabricate(root, accs(**kwargs))
        r = fn(runs, root / "s003_table")
        assert r["verdict"] == want, (check, kwargs, r)
        assert r["n_chips"] == 40 and r["study_value"] == claims.STUDY[{"table": "accuracy"}.get(check, check)]
        assert r["lo"] <= r["value"] <= r["hi"]
        assert Path(r["plot"]).is_file()


def test_numbers_and_units(tmp_path):
    """The statistics are in percent / points, the same units as the study's numbers."""
    runs = fabricate(tmp_path, accs())
    out = tmp_path / "s003_table"
    assert claims.table(runs, out)["value"] == pytest.approx(97.3, abs=1e-6)
    loss = claims.naive_loss(runs, out)
    assert loss["value"] == pytest.approx(6.74, abs=1e-6)
    assert "worst-case full scale (128): 10.45 at 8 bits, 87.10 at 3 bits" in loss["ours"]
    assert claims.gap(runs, out)["value"] == pytest.approx(100 * DIGITAL - 97.3, abs=1e-6)
    assert (out / "s003_table.csv").is_file() and "| ADC bits |" in (out / "s003_table.md").read_text()


def test_derived_entries_read_the_sibling_table_runs(tmp_path):
    fabricate(tmp_path, accs())
    own = [tmp_path / "s003_gap" / "run0"]  # the entry's own run: a report of the naive sweep
    r = claims.gap(own, tmp_path / "s003_gap")
    assert r["verdict"] == HOLDS or r["verdict"] == FAILS  # judged: the sibling runs were found
    assert (tmp_path / "s003_gap" / "s003_accuracy.png").is_file()


@pytest.mark.parametrize("kwargs,want", [
    ({"full8": 0.975, "narelu8": 0.970, "opt8": 0.972}, HOLDS),
    ({"full8": 0.975, "narelu8": 0.970, "opt8": 0.978}, FAILS),      # the NA-ReLU costs accuracy on top
    ({"full8": 0.975, "narelu8": 0.975, "opt8": 0.972}, INCONCLUSIVE),  # noise below: see the paired noise
])
def test_ablation(tmp_path, kwargs, want):
    a = accs(**kwargs)
    if want == INCONCLUSIVE:  # NA-ReLU alone as good as the full method on average, chip by chip noisy
        a["narelu"][8] = a["optimized+narelu"][8] + chips(0.0, 0.005, 40, seed=3)
    r = claims.ablation(fabricate(tmp_path, a), tmp_path / "s003_table")
    assert r["verdict"] == want, r
    assert "drop without the convex optimization" in r["ours"] and "drop without the NA-ReLU" in r["ours"]


def test_fewer_than_40_chips_is_inconclusive(tmp_path):
    r = claims.table(fabricate(tmp_path, accs(n=10)), tmp_path / "s003_table")
    assert r["verdict"] == INCONCLUSIVE and r["n_chips"] == 10


@pytest.mark.parametrize("check", ["table", "naive_loss", "gap", "three_bit", "ablation"])
def test_missing_results_are_not_judged(tmp_path, check):
    r = getattr(claims, check)(fabricate(tmp_path, {}), tmp_path / "s003_table")
    assert r["verdict"] == NOT_JUDGED and r["ours"].startswith("missing")
    a = accs()
    del a["optimized+narelu"], a["naive"]
    r = getattr(claims, check)(fabricate(tmp_path / "part", a), tmp_path / "part" / "s003_table")
    assert r["verdict"] == NOT_JUDGED
