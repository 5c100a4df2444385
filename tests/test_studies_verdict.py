"""The verdict rules of aimcbench.studies.verdict: intervals that cover, and holds / does not hold / inconclusive."""

from __future__ import annotations

import numpy as np
import pytest

from aimcbench.studies import verdict as V
from fabricate_runs import chips, write_run


def test_bootstrap_interval_covers_the_true_mean_at_its_level():
    # 400 data sets of 40 chips from N(0, 1): a 95 % interval should miss the true mean ~5 % of the time;
    # with 400 trials the miss count is Binomial(400, 0.05) (mean 20, sd 4.4). The percentile bootstrap
    # under-covers slightly at n = 40 (about 93-94 %), so accept 5-45 misses: a broken interval (e.g. the
    # chips' spread instead of the mean's) misses far more, or never.
    rng = np.random.default_rng(1)
    misses = sum(not (iv.lo <= 0.0 <= iv.hi) for iv in
                 (V.bootstrap(rng.standard_normal(40), "m", n_boot=1000, seed=k) for k in range(400)))
    assert 5 <= misses <= 45, misses


def test_bootstrap_is_seeded_and_percentiles_work():
    a = chips(0.9, 0.02)
    assert V.bootstrap(a, "m") == V.bootstrap(a, "m")
    p5 = V.bootstrap(a, "p5", stat="p5")
    assert p5.value == pytest.approx(np.percentile(a, 5)) and p5.lo <= p5.value <= p5.hi


def test_paired_difference_is_tighter_than_the_spread_of_chips():
    base = chips(0.9, 0.05, seed=1)
    a, b = dict(enumerate(base)), dict(enumerate(base - 0.01 + chips(0, 0.001, seed=2)))
    iv = V.paired(a, b, "drop")
    assert iv.value == pytest.approx(0.01) and iv.hi - iv.lo < 0.002
    assert V.above(iv, 0.0) == V.HOLDS and V.below(iv, 0.0) == V.FAILS


def test_binomial_matches_clopper_pearson():
    iv = V.binomial(0, 40, "share")
    assert iv.lo == 0.0 and iv.hi == pytest.approx(1 - 0.025 ** (1 / 40), rel=1e-6)


@pytest.mark.parametrize("mean, expected", [(0.02, V.HOLDS), (-0.02, V.FAILS), (0.0005, V.INCONCLUSIVE)])
def test_above_below_within(mean, expected):
    iv = V.bootstrap(chips(mean, 0.01), "x")
    assert V.above(iv, 0.0) == expected
    flipped = {V.HOLDS: V.FAILS, V.FAILS: V.HOLDS, V.INCONCLUSIVE: V.INCONCLUSIVE}[expected]
    assert V.below(iv, 0.0) == flipped
    assert V.within(iv, -1, 1) == V.HOLDS and V.within(iv, 0.5, 1) == V.FAILS


def test_fewer_than_forty_chips_is_never_definite():
    iv = V.bootstrap(chips(0.5, 0.01, n=39), "x")
    assert V.above(iv, 0.0) == V.INCONCLUSIVE and V.below(iv, 0.0) == V.INCONCLUSIVE
    assert V.above(V.bootstrap([], "x"), 0.0) == V.NOT_JUDGED


def test_combine():
    H, F, I, N = V.HOLDS, V.FAILS, V.INCONCLUSIVE, V.NOT_JUDGED
    assert V.combine(H, H) == H and V.combine(H, F) == F and V.combine(H, I) == I
    assert V.combine(N, N) == N and V.combine(H, N) == I and V.combine(I, F) == F


def test_result_carries_the_study_number_and_difference():
    iv = V.bootstrap(chips(0.95, 0.01), "accuracy")
    r = V.result(V.above(iv, 0.9), "ours", iv, study_value=0.9732)
    assert r["verdict"] == V.HOLDS and r["holds"] is True and r["diff"] == pytest.approx(0.95 - 0.9732)
    assert r["n_chips"] == 40 and "[" in r["statistic"]
    with pytest.raises(ValueError, match="verdict"):
        V.result("yes", "x")


def test_chip_values_reads_jobs_and_single_runs(tmp_path):
    pts = [{"x": 8, "chips": {"accuracy": chips(0.9, 0.01)}, "digital": {"accuracy": 0.95}},
           {"x": 4, "chips": {"accuracy": chips(0.5, 0.01)}, "digital": {"accuracy": 0.95}}]
    write_run(tmp_path / "single", "hardware.adc.bits", pts)
    df = V.chip_values(tmp_path / "single", "accuracy")
    assert len(df) == 80 and set(df["job"]) == {""} and (df["digital"] == 0.95).all()
    assert V.at(df, 4).mean() == pytest.approx(0.5)
    for j in range(2):
        write_run(tmp_path / "multi" / str(j), "hardware.adc.bits", pts, config={"job": j})
    df = V.chip_values(tmp_path / "multi", "accuracy")
    assert sorted(set(df["job"])) == ["0", "1"] and V.job_config(tmp_path / "multi", "1") == {"job": 1}
    assert V.chip_values(tmp_path / "none").empty


def test_diff_halfwidth_covers_the_test_set_error_of_a_difference():
    # Two classifiers on the same n images, errors 3 % and 2 %, agreeing on most images (correlated, as an analog
    # chip and its digital model are). Over 2,000 fresh test sets the +-half-width around the observed difference
    # must cover the true difference (0.01) at least 95 % of the time (it is conservative: usually more).
    rng = np.random.default_rng(3)
    n, covered = 2000, 0
    for _ in range(2000):
        u = rng.random(n)
        e_dig, e_ana = u < 0.02, u < 0.03          # the analog errs on every image the digital does, and 1 % more
        d = e_ana.mean() - e_dig.mean()
        covered += abs(d - 0.01) <= V.diff_halfwidth(e_ana.mean(), e_dig.mean(), n)
    assert covered / 2000 >= 0.95
    iv = V.with_test_floor(V.Interval(0.01, 0.01, 0.01, 40, "d"), 0.005)
    assert (iv.lo, iv.hi) == (0.005, 0.015) and "floor" in iv.method
    wide = V.Interval(0.0, -1.0, 1.0, 40, "d")
    assert V.with_test_floor(wide, 0.005) is wide
