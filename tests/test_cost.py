"""The cost model (issue 17): hand counts, the ADC figure of merit, units, ISAAC's published figures, the command,
the sweep's cost columns and the accuracy-energy report."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from torch import nn

from aimcbench.sim import ConfigError, HardwareConfig, load_hardware
from aimcbench.sim.config_cost import load_cost_table
from aimcbench.sim.cost import (
    COST_COLUMNS,
    adc_energy_pJ,
    cell_energy_pJ,
    layer_shapes,
    model_cost,
    probe_input,
    published_totals,
)

TABLE = load_cost_table()

# ISAAC's IMA as a profile: 128x128 arrays, 16-bit weights on 8 slices of 2-bit cells side by side on the columns,
# 16-bit inputs one bit per cycle, 8-bit ADCs each shared by 128 columns, one signed column per output (ISAAC's
# biased encoding). ISAAC gives no conductances: g and v_read are set so that a full-input read of one array
# dissipates its 2.4 mW / 8 arrays over 100 ns (30 pJ); that term is calibrated, not checked.
ISAAC = ("device.model=rram_signed", "device.g_max_uS=0.146484375", "device.v_read_V=0.5",
         "mapping.tile_rows=128", "mapping.tile_cols=128", "mapping.weight_slices=8", "device.bits_per_cell=2",
         "dac.bits=16", "dac.signed=false", "dac.input_bits_per_cycle=1", "adc.bits=8", "adc.columns_per_adc=128")


def test_isaac_table_totals_reproduce_the_published_tile_and_chip():
    """ISAAC Table 2: IMA x 12 = 289 mW / 0.157 mm^2, tile 330 mW / 0.372 mm^2, chip 65.8 W / 85.4 mm^2."""
    got, pub = published_totals(TABLE.raw), TABLE.raw["published"]
    assert got["ima_mW"] * 12 == pytest.approx(pub["ima_total_mW_x12"], rel=0.002)
    assert got["ima_mm2"] * 12 == pytest.approx(pub["ima_total_mm2_x12"], rel=0.005)
    assert got["tile_mW"] == pytest.approx(pub["tile_mW"], rel=0.002)
    assert got["tile_mm2"] == pytest.approx(pub["tile_mm2"], rel=0.002)
    assert got["chip_W"] == pytest.approx(pub["chip_W"], rel=0.002)
    assert got["chip_mm2"] == pytest.approx(pub["chip_mm2"], rel=0.002)


def test_one_isaac_ima_at_full_rate_draws_its_published_power_and_area():
    """A Linear(1024 -> 16) fills one IMA (8 row arrays x 16 outputs x 8 slices = 128 columns). From per-event
    energies and our counts, its power (energy / latency) is ISAAC's 289 mW / 12 IMAs = 24.08 mW within 3 %
    (we get 23.7 mW: ISAAC's 128 conversions per ADC take 106.7 ns, not its nominal 100 ns cycle) and its area
    the IMA's 0.157 / 12 mm^2 within 1 %."""
    hw = HardwareConfig().replace(*ISAAC)
    total = model_cost(nn.Sequential(nn.Linear(1024, 16)), hw, (1024,))[-1]
    assert (total["arrays"], total["adc_conversions"], total["dac_conversions"]) == (8, 16 * 8 * 128, 16 * 1024)
    assert total["latency_ns"] == pytest.approx(16 * 128 / 1.2)  # 16 cycles of 128 conversions at 1.2 GS/s
    power_mW = total["energy_pJ"] / total["latency_ns"]
    assert power_mW == pytest.approx(289 / 12, rel=0.03)
    assert total["area_mm2"] == pytest.approx(0.157 / 12, rel=0.01)
    assert total["energy_adc_pJ"] / total["energy_pJ"] > 0.6  # ISAAC: the ADCs are 2/3 of an IMA's power


def test_doubling_adc_bits_changes_adc_energy_by_the_walden_factor():
    """E = FOM * 2^bits per conversion: 4 -> 8 bits multiplies the ADC energy by 2^4, the counts unchanged."""
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    base = load_hardware("rram")
    lo = model_cost(model, base.replace(adc__bits=4), (64,))[-1]
    hi = model_cost(model, base.replace(adc__bits=8), (64,))[-1]
    assert hi["adc_conversions"] == lo["adc_conversions"]
    assert hi["energy_adc_pJ"] / lo["energy_adc_pJ"] == pytest.approx(2 ** 8 / 2 ** 4, rel=1e-12)
    assert hi["energy_dac_pJ"] == lo["energy_dac_pJ"] and hi["energy_array_pJ"] == lo["energy_array_pJ"]
    assert adc_energy_pJ(8, TABLE) == pytest.approx(16e-3 / (8 * 1.2e9) * 1e12)  # ISAAC's ADC: 1.667 pJ


def test_counts_equal_hand_counts_for_a_small_mlp():
    """Linear(300 -> 100) on 128x64 arrays, separate ADCs (2 columns per output), 8-bit inputs in 2 cycles of 4
    bits, 2 weight slices: rows split 128+128+44 (3 row arrays); 64 / (2 x 2) = 16 outputs per array -> 7 column
    arrays; 21 arrays read 2 cycles each; ADC: 2 cycles x 3 row arrays x 100 outputs x 2 columns x 2 slices."""
    hw = HardwareConfig().replace("device.model=rram", "mapping.tile_rows=128", "mapping.tile_cols=64",
                                  "mapping.differential=separate_adc", "dac.bits=8", "dac.input_bits_per_cycle=4",
                                  "adc.bits=6", "mapping.weight_slices=2", "device.bits_per_cell=4")
    row = model_cost(nn.Sequential(nn.Linear(300, 100)), hw, (300,))[0]
    assert row["arrays"] == 3 * 7
    assert row["array_reads"] == 2 * 21
    assert row["dac_conversions"] == 2 * 300 * 7
    assert row["adc_conversions"] == 2 * 3 * 100 * 2 * 2
    assert row["macs"] == 300 * 100
    assert row["latency_ns"] == pytest.approx(2 * TABLE.array.read_time_ns)  # 1 ADC per column: the read is longer


def test_counts_equal_hand_counts_for_a_conv_with_shared_adcs():
    """Conv 3->8, 3x3, padding 1 on 8x8: 64 output pixels, 27 rows, 8 outputs, one 64x64 array (combined pair,
    one column per output); 64 reads; an ADC shared by 4 columns converts them in 4 x 0.833 ns, < 100 ns; shared by
    256 columns it takes 213 ns per read."""
    hw = HardwareConfig().replace("mapping.tile_rows=64", "mapping.tile_cols=64", "adc.bits=8", "dac.bits=8",
                                  "adc.columns_per_adc=4")
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
    shape = layer_shapes(model, hw, (3, 8, 8))[0]
    assert (shape.n_in, shape.n_out, shape.vectors) == (27, 8, 64)
    row = model_cost(model, hw, (3, 8, 8))[0]
    assert (row["arrays"], row["array_reads"], row["dac_conversions"], row["adc_conversions"]) == (1, 64, 64 * 27,
                                                                                                      64 * 8)
    assert row["latency_ns"] == pytest.approx(64 * 100.0)
    wide = hw.replace(mapping__tile_cols=256)
    slow = model_cost(model, wide.replace(adc__columns_per_adc=256), (3, 8, 8))[0]  # 256 x 0.833 ns > 100 ns
    assert slow["latency_ns"] == pytest.approx(64 * 256 / 1.2)
    fast = model_cost(model, wide.replace(adc__columns_per_adc=1), (3, 8, 8))[0]
    assert fast["latency_ns"] == pytest.approx(64 * 100.0) and fast["adc_conversions"] == slow["adc_conversions"]
    assert fast["area_mm2"] - slow["area_mm2"] == pytest.approx(255 * (0.0012 + 3e-5))  # 256 ADCs vs 1


def test_unsigned_adc_reads_negative_inputs_in_a_second_phase():
    """rram's ADC is unsigned (range_uA): inputs that go negative (after a Tanh) take a second read phase."""
    hw = load_hardware("rram")
    tanh = model_cost(nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 4)), hw, (16,))
    relu = model_cost(nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)), hw, (16,))
    assert tanh[1]["array_reads"] == 2 * relu[1]["array_reads"] > 0
    assert tanh[0]["array_reads"] == relu[0]["array_reads"]  # uniform [0, 1) images: one phase
    normalized = probe_input((16,), {"mean": [0.5], "std": [0.25]})  # a data set's normalize: inputs go negative
    assert model_cost(nn.Sequential(nn.Linear(16, 4)), hw, (16,), example=normalized)[0]["array_reads"] == 2
    assert model_cost(nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 4)), load_hardware("pcm"),
                      (16,))[1]["array_reads"] == 1  # a signed ADC reads both signs at once


def test_units_cell_energy_and_columns():
    """V^2 G t: 0.2 V, 12.5 uS mean, 100 ns -> 0.05 pJ; every cost column names its unit or is a count."""
    hw = load_hardware("pcm")  # g 0..25 uS, 0.2 V
    assert cell_energy_pJ(hw, TABLE) == pytest.approx(0.2 ** 2 * 12.5e-6 * 100e-9 * 1e12)
    for col in COST_COLUMNS[7:]:
        assert col.endswith(("_pJ", "_ns", "_mm2")), col
    rows = model_cost(nn.Sequential(nn.Linear(20, 5)), hw, (20,))
    assert rows[-1]["energy_pJ"] == pytest.approx(sum(rows[-1][k] for k in COST_COLUMNS if k.startswith("energy_")
                                                      and k != "energy_pJ"))


def test_bad_settings_name_their_key():
    with pytest.raises(ConfigError, match="hardware.dac.input_bits_per_cycle"):
        load_hardware("pcm").replace(dac__input_bits_per_cycle=0)
    with pytest.raises(ConfigError, match="hardware.device.bits_per_cell"):
        load_hardware("pcm").replace(device__bits_per_cell=0)
    with pytest.raises(ConfigError, match="mapping.weight_slices"):  # 40 slices x 2 columns > 64 columns
        model_cost(nn.Sequential(nn.Linear(8, 8)), load_hardware("rram").replace(mapping__weight_slices=16)
                   .replace(mapping__tile_cols=16), (8,))


def _aimc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aimcbench", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_aimc_cost_wrn16_8_rram_l3_prints_layers_and_total():
    res = _aimc("cost", "model=wrn16_8", "hardware=rram_l3")
    assert res.returncode == 0, res.stderr[-2000:]
    for col in ("energy_pJ", "latency_ns", "area_mm2", "adc_conversions", "array_reads"):
        assert col in res.stdout
    total = [line for line in res.stdout.splitlines() if line.startswith("total ")][0].split()
    assert total[2] == "1,447"  # study 002 Table 1's arrays


def test_aimc_cost_bad_table_exits_2():
    res = _aimc("cost", "cost_table.adc.walden_fom_fJ=-1")
    assert res.returncode == 2 and res.stderr.strip() == ("aimc: error: cost_table.adc.walden_fom_fJ: must be a "
                                                          "number in [0.0, inf] (got -1.0)")


def test_pareto_front_keeps_the_undominated_points():
    from aimcbench.report.pareto import pareto_front

    mask = pareto_front(np.array([1.0, 2.0, 3.0, 4.0, 4.0]), np.array([0.5, 0.9, 0.8, 0.95, 0.9]))
    assert mask.tolist() == [True, True, False, True, False]


def test_report_draws_accuracy_against_energy_with_the_front(tmp_path):
    """A run with cost.csv gets accuracy_energy.csv (cost beside p5/p50/p95) and its figure from aimc report."""
    from fabricate_runs import chips, write_run

    from aimcbench.report import report_dirs

    run = write_run(tmp_path / "run", "hardware.adc.bits", [
        {"x": b, "chips": {"accuracy": chips(m, 0.01, n=10, seed=b)}, "digital": {"accuracy": 0.97}}
        for b, m in ((8, 0.96), (6, 0.95), (4, 0.80))])
    pd.DataFrame({"point": [0, 1, 2], "axis_value": [8.0, 6.0, 4.0], "axis_label": ["8", "6", "4"],
                  "energy_pJ": [300.0, 120.0, 90.0], "latency_ns": [1.0] * 3, "area_mm2": [1.0] * 3,
                  "adc_conversions": [5] * 3}).to_csv(run / "cost.csv", index=False)
    report_dirs([run], formats=["png"], html=False)
    table = pd.read_csv(run / "accuracy_energy.csv")
    assert table["axis_label"].tolist() == [4, 6, 8]  # by energy
    assert table["pareto"].tolist() == [True, True, True]
    assert (table["p5"] <= table["p50"]).all() and (table["p50"] <= table["p95"]).all()
    assert (run / "accuracy_energy.png").stat().st_size > 5000


def test_sweep_writes_cost_columns_per_point(tmp_path):
    """The sweep's hook: one cost.csv row per point, ADC energy scaling with 2^bits between the points."""
    from conftest import compose

    from aimcbench.runner.cost_columns import write_cost_columns

    cfg = compose("sweep", ["sweep=adc_bits_energy", "sweep.values=[8,4]"])
    from aimcbench.config import point_configs
    from aimcbench.models import build_from_config
    from aimcbench.runner.points import axis_entries

    points = point_configs(cfg)
    path = write_cost_columns(tmp_path, build_from_config(cfg["model"]), points, axis_entries(cfg["sweep"]), print)
    cost = pd.read_csv(path)
    assert cost["point"].tolist() == [0, 1] and {"energy_pJ", "latency_ns", "area_mm2", "adc_conversions"} <= set(cost)
    assert cost["energy_adc_pJ"][0] / cost["energy_adc_pJ"][1] == pytest.approx(2 ** 4)
    assert cost["adc_conversions"][0] == cost["adc_conversions"][1] > 0


def test_merged_report_puts_every_priced_sweep_on_one_front(tmp_path):
    """Two sweeps (say two profiles) with cost.csv: one accuracy_energy.csv with a label column, the front over both."""
    from fabricate_runs import chips, write_run

    from aimcbench.report import report_dirs

    for name, means, energy in (("a", (0.96, 0.75), [300.0, 100.0]), ("b", (0.86, 0.80), [50.0, 20.0])):
        run = write_run(tmp_path / "mr" / name, "hardware.adc.bits", [
            {"x": b, "chips": {"accuracy": chips(m, 0.005, n=10, seed=b)}, "digital": {"accuracy": 0.97}}
            for b, m in zip((8, 4), means)])
        pd.DataFrame({"point": [0, 1], "axis_value": [8.0, 4.0], "axis_label": ["8", "4"], "energy_pJ": energy,
                      "latency_ns": [1.0] * 2, "area_mm2": [1.0] * 2, "adc_conversions": [5] * 2}
                     ).to_csv(run / "cost.csv", index=False)
    report_dirs([tmp_path / "mr"], out=tmp_path / "merged", formats=["png"], html=False)
    table = pd.read_csv(tmp_path / "merged" / "accuracy_energy.csv")
    assert len(table) == 4 and table["label"].nunique() == 2
    assert table["energy_pJ"].tolist() == sorted(table["energy_pJ"])
    # b's points (0.80 at 20 pJ, 0.86 at 50 pJ) and a's 8-bit point (0.96 at 300 pJ) are on the front; a's 4-bit
    # point (0.75 at 100 pJ) is not: b's are cheaper and better
    front = table[table["pareto"]]
    assert sorted(zip(front["label"], front["axis_label"])) == [("a", 8), ("b", 4), ("b", 8)]
    assert (tmp_path / "merged" / "accuracy_energy.png").is_file()
