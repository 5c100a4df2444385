"""Study 001's claim checks (Figs. 2-5) on fabricated grids: each holds, fails and is inconclusive when it should."""

from pathlib import Path

import pytest

from aimcbench.studies.s001 import claims
from tests.fabricate_runs import chips, write_run

DIGITAL = 0.98


def _grid(root: Path, depth: int, sizes, layer_sets, xs, err, n=40, std=0.2, axis="k", n_test=None):
    """One -m grid: a job per (size, layer set); ``err(size, layers, x)`` is the mean error increase in points
    (over DIGITAL), each chip drawn with ``std`` points around it."""
    k = 0
    for size in sizes:
        for idx in layer_sets:
            name = "all" if idx is None else {0: "first"}.get(idx[0], "last")
            pts = [{"x": x, "chips": {"accuracy": DIGITAL - chips(err(size, name, x), std, n, seed=k) / 100},
                    "digital": {"accuracy": DIGITAL}} for x in xs]
            cfg = {"model": {"hidden": [size] * (depth - 1)}, "hardware": {"layers": {"indices": idx}}}
            write_run(root / str(k), axis, pts, cfg, n_test=n_test)
            k += 1
    return root


ALPHAS = [0.1, 0.4, 0.8]


def _noise(root, depth, first, last, n=40, std=0.2, sizes=(100, 500)):
    sets = [[0], [depth - 1], None]
    return _grid(root, depth, sizes, sets, ALPHAS,
                 lambda s, layers, x: {"first": first, "last": last, "all": first + last}[layers] * x / 0.4, n, std)


@pytest.mark.parametrize("first, last, n, std, verdict", [
    (6.0, 2.0, 40, 0.5, "holds"),            # the study: the first layer costs more
    (2.0, 6.0, 40, 0.5, "does not hold"),    # our measurements before the fix: the second costs more
    (3.0, 2.9, 40, 2.0, "inconclusive"),     # the interval straddles zero
    (6.0, 2.0, 20, 0.5, "inconclusive"),     # too few chips for a definite verdict
])
def test_fig2(tmp_path, first, last, n, std, verdict):
    run = _noise(tmp_path / "run0", 2, first, last, n, std)
    res = claims.fig2([run], tmp_path / "out")
    assert res["verdict"] == verdict and Path(res["plot"]).is_file()
    assert res["n_chips"] == n and "N=500" in res["ours"] and "slope" in res["ours"]
    assert claims.fig2([tmp_path / "nothing"], tmp_path / "out")["verdict"] == "not judged"


@pytest.mark.parametrize("last3, last2, n, std, verdict", [
    (1.0, 3.0, 40, 0.5, "holds"),            # the deeper net's last layer is less sensitive
    (3.0, 1.0, 40, 0.5, "does not hold"),
    (2.0, 2.1, 40, 2.0, "inconclusive"),
])
def test_fig3_compares_the_last_layer_of_both_depths(tmp_path, last3, last2, n, std, verdict):
    run0 = _noise(tmp_path / "run0", 3, 5.0, last3, n, std)
    run1 = _grid(tmp_path / "run1", 2, (100, 500), [[1]], ALPHAS, lambda s, layers, x: last2 * x / 0.4, n, std)
    res = claims.fig3([run0, run1], tmp_path / "out")
    assert res["verdict"] == verdict and Path(res["plot"]).is_file()
    assert res["value"] == pytest.approx(last3 - last2, abs=0.5 if std < 1 else 2.0)
    assert claims.fig3([run0, tmp_path / "nothing"], tmp_path / "out")["verdict"] == "not judged"
    assert claims.fig3([run0], tmp_path / "out")["verdict"] == "not judged"


BITS = [8, 4, 3, 2]


def _quant(root, depth, last, first_small, first_large, n=40, std=0.0, sizes=(100, 500), n_test=None):
    def err(size, layers, bits):
        if bits > 3:
            return 0.0
        scale = 1.0 if bits == 3 else 3.0
        first = first_small if size == min(sizes) else first_large
        return scale * {"first": first, "last": last, "all": first + last}[layers]
    return _grid(root, depth, sizes, [[0], [depth - 1], None], BITS, err, n, std, n_test=n_test)


@pytest.mark.parametrize("last, small, large, n, std, verdict", [
    (0.3, 3.0, 1.5, 40, 0.0, "holds"),        # last layer insensitive, first hurts N=100, N=500 more tolerant
    (4.0, 3.0, 1.5, 40, 0.0, "does not hold"),  # the last layer costs 4 points at 3 bits
    (0.3, 0.5, 0.2, 40, 0.0, "does not hold"),  # 3 bits on the first layer does not degrade the small net
    (0.3, 3.0, 3.5, 40, 0.0, "does not hold"),  # the larger net is less tolerant
    (0.9, 3.0, 1.5, 40, 0.5, "inconclusive"),   # last layer 0.9 +- spread: straddles 1 point
    (0.3, 3.0, 1.5, 10, 0.0, "inconclusive"),   # too few chips
])
def test_fig4(tmp_path, last, small, large, n, std, verdict):
    run0 = _quant(tmp_path / "run0", 2, last, small, large, n, std)
    run1 = _quant(tmp_path / "run1", 2, 4.0, small, large, n, std)     # the 2^b - 1 grid: last layer +4 points
    res = claims.fig4([run0, run1], tmp_path / "out")
    assert res["verdict"] == verdict and Path(res["plot"]).is_file()
    assert res["ours"].startswith(f"2^b levels: {verdict}")
    assert "2^b - 1 levels: does not hold" in res["ours"] or n < 40
    alone = claims.fig4([run0], tmp_path / "out")
    assert alone["verdict"] == verdict and "2^b - 1" not in alone["ours"]
    assert claims.fig4([tmp_path / "nothing"], tmp_path / "out")["verdict"] == "not judged"


@pytest.mark.parametrize("first2_small, std, verdict", [
    (3.0, 0.0, "holds"),           # the first layer costs the same in the 2-layer net
    (0.5, 0.0, "does not hold"),   # 2.5 points apart: adding a layer changed it
    (2.0, 3.0, "inconclusive"),    # 1 point apart with a wide spread: straddles the +-1 band
])
def test_fig5_adds_the_prior_layer_comparison(tmp_path, first2_small, std, verdict):
    run0 = _quant(tmp_path / "run0", 3, 0.3, 3.0, 1.5)
    run1 = _quant(tmp_path / "run1", 3, 4.0, 3.0, 1.5)
    run2 = _grid(tmp_path / "run2", 2, (100, 500), [[0]], BITS,
                 lambda s, layers, b: 0.0 if b > 3 else (first2_small if s == 100 else 1.5) * (1 if b == 3 else 3),
                 40, std)
    res = claims.fig5([run0, run1, run2], tmp_path / "out")
    assert res["verdict"] == verdict and "adding a layer" in res["ours"]
    assert claims.fig5([run0, run1], tmp_path / "out")["verdict"] == "holds"   # without run2: Fig. 4's parts only


@pytest.mark.parametrize("n_test, verdict", [(None, "does not hold"), (2000, "inconclusive"), (200000, "does not hold")])
def test_fig4_identical_chips_get_the_test_sets_sampling_error(tmp_path, n_test, verdict):
    """Quantization alone makes 40 identical chips: the chip interval has zero width, so the interval's floor is
    the test set's sampling error. +1.2 points at 3 bits on the last layer (bound < 1): on 2,000 images that is
    within sampling error (half-width ~1.0 point), on 200,000 it is not."""
    run0 = _quant(tmp_path / "run0", 2, 1.2, 3.0, 1.5, n_test=n_test)
    res = claims.fig4([run0], tmp_path / "out")
    assert res["verdict"] == verdict, res["ours"]
    if n_test == 2000:
        assert res["hi"] - res["lo"] > 1.5
