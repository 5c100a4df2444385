"""Study 003: the convex optimizer on toy instances with known optima, and `aimc optimize` end to end."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from aimcbench.sim import ConfigError, load_hardware
from aimcbench.sim.errormodel import LayerStats, TileStats, optimize_layer

from conftest import aimc


def _toy(y: torch.Tensor, sum_v2: float = 0.0) -> LayerStats:
    """One tile, one column, signal values y [N, 1], unit output weight; sum_v2 sets the programming noise."""
    n = y.shape[0]
    z = torch.zeros(n, 1, dtype=torch.float64)
    return LayerStats("toy", [TileStats(y=y.double(), weight2=torch.ones(n, 1, dtype=torch.float64),
                                        sum_v2=z + sum_v2, sum_absv=z, absv_absw=z, dac_w2=z, rows=1,
                                        sum_absw=torch.zeros(1, 1, dtype=torch.float64))], None)


def _hw(prog_uS: float = 0.0):
    return load_hardware("crossbar", ["column_noise.thermal=false", "column_noise.shot=false",
                                      f"column_noise.prog_noise_uS={prog_uS}"])


def test_noise_free_full_scale_optimum():
    # y = +-1: error(b) = (2b/14)^2/12 + (1 - b)^2 for b < 1 at 4 bits: minimum at b = 588/589.
    y = torch.tensor([[1.0], [-1.0]] * 8)
    ch = optimize_layer(_toy(y), _hw(), 4, 10.0, 100.0)
    assert ch.adc_bound == pytest.approx(588 / 589, rel=1e-3)


def test_conductance_range_goes_to_the_device_bound_without_a_current_limit():
    y = torch.linspace(-2, 2, 41).unsqueeze(1)
    ch = optimize_layer(_toy(y, sum_v2=20.0), _hw(2.0), 6, 10.0, 100.0)
    assert ch.g_min_uS == 10.0
    assert ch.g_max_uS == pytest.approx(100.0, rel=1e-6)


def test_current_limit_binds_and_matches_brute_force():
    # With an ADC current limit b v_read (g_max - g_min) <= fs_max the range and the full scale trade off:
    # compare with a brute-force grid over the same convex objective (sigma frozen at the answer).
    from aimcbench.sim.errormodel import clip_excess

    y = torch.linspace(-2, 2, 41).unsqueeze(1).double()
    hw, bits, fs_max, v = _hw(2.0), 6, 20.0, 0.2
    st = _toy(y, sum_v2=20.0)
    ch = optimize_layer(st, hw, bits, 10.0, 100.0, fs_max_uA=fs_max)
    g_r = ch.g_max_uS - ch.g_min_uS
    assert ch.adc_bound * v * g_r == pytest.approx(fs_max, rel=1e-3)  # on the constraint
    assert g_r < 89.0
    c2 = 2 * (2e-6) ** 2 * 20.0 * 1e12                 # programming noise = c2 / g_range^2 (uS)
    sig = torch.tensor(math.sqrt(c2) / g_r, dtype=torch.float64)
    q = (2.0 / (2**bits - 2)) ** 2 / 12

    def f(gr, b):
        return c2 / gr**2 + q * b * b + float(clip_excess(y, sig, b)[0].mean())

    best = min((f(gr, fs_max / (v * gr)), gr) for gr in torch.linspace(5, 90, 1701).tolist())
    assert f(g_r, ch.adc_bound) <= best[0] * (1 + 1e-4)
    assert g_r == pytest.approx(best[1], rel=0.02)


def test_optimize_writes_profiles_that_sweep_accepts(tmp_path, monkeypatch):
    from aimcbench.cli import main

    monkeypatch.chdir(tmp_path)  # in-process Hydra runs (faster than subprocesses); outputs stay in tmp_path
    out = tmp_path / "opt"
    common = ["model=mlp", "model.hidden=[16]", "dataset=synthetic", "train=quick", "threads=1"]
    main(["optimize", *common, "optimize.adc_bits=[4]", "optimize.samples=32", f"optimize.out_dir={out}",
          f"hydra.run.dir={tmp_path / 'run'}"])
    prof = yaml.safe_load((out / "hardware" / "crossbar_opt_b4.yaml").read_text())
    assert prof["adc"]["bits"] == 4 and set(prof["per_layer"]) == {"1", "3"}
    assert all(10.0 <= v["g_min_uS"] < v["g_max_uS"] <= 100.0 and v["adc_bound"] > 0 for v in prof["per_layer"].values())
    assert (out / "optimize.csv").is_file()
    main(["sweep", "--config-dir", str(out), "hardware=crossbar_opt_b4", *common, "sweep.values=[4]", "mc.chips=2",
          "eval.n=32", f"hydra.run.dir={tmp_path / 'sweep'}"])
    assert (tmp_path / "sweep" / "percentiles.csv").is_file()


def test_bad_input_exits_2_with_one_line_in_a_subprocess(tmp_path):
    r = aimc("optimize", "optimize.adc_bits=[1]", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("aimc: error: optimize.adc_bits"), r.stderr


@pytest.mark.parametrize("args,key", [
    (["hardware=pcm"], "hardware"),
    (["optimize.g_max_hi_uS=5"], "optimize.g_max_hi_uS"),
    (["hardware.per_layer={fc: {gmax: 3}}"], "hardware.per_layer.fc.gmax"),
    (["optimize.fs_max_uA=-1"], "optimize.fs_max_uA"),
])
def test_bad_input_exits_2_with_one_line(args, key, tmp_path, capsys):
    from aimcbench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["optimize", *args, f"hydra.run.dir={tmp_path}"])
    assert exc.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"aimc: error: {key}"), lines


def test_per_layer_overrides_reach_the_layer():
    hw = load_hardware("crossbar", ["per_layer={fc: {g_max_uS: 50.0, adc_bound: 2.5}}"])
    assert hw.for_layer("fc").device.g_max_uS == 50.0 and hw.for_layer("fc").adc.bound == 2.5
    assert hw.for_layer("other") is hw
    with pytest.raises(ConfigError, match="per_layer.fc.g_min_uS"):
        load_hardware("crossbar", ["per_layer={fc: {g_min_uS: 60.0, g_max_uS: 50.0}}"])
