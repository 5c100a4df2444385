"""reproduce_paper.py --plan: what the manifests' runs evaluate, composed by Hydra without running anything."""

from __future__ import annotations

from aimcbench.studies import plan as P
from aimcbench.studies import reproduce as rp


def test_expand_multirun_is_hydras_cartesian_product():
    jobs = P.expand_multirun(["a=1", "b=x,y", "c=[1],[2],null"])
    assert len(jobs) == 6 and jobs[0] == ["a=1", "b=x", "c=[1]"] and jobs[-1] == ["a=1", "b=y", "c=null"]


def test_run_plan_counts_points_chips_and_images():
    rows = P.run_plan(["sweep", "-m", "dataset=synthetic", "hardware=pcm", "sweep=adc_bits", "mc.chips=7",
                       "eval.n=50", "mc.seed=0,1"])
    assert len(rows) == 2 and rows[0]["model"] == "mlp" and rows[0]["hardware"] == "pcm"
    assert rows[0]["chips"] == 7 and rows[0]["points"] >= 2
    assert rows[0]["chip_images"] == rows[0]["points"] * 7 * 50
    assert P.run_plan(["tiles", "model=wrn16_8"])[0]["command"] == "tiles"


def test_plan_of_the_studies_composes_every_sweep(tmp_path, capsys):
    entries = [e for e in rp.load_manifests() if e["id"] in ("s001_fig2", "s004_table1")]
    rows = P.plan(entries, "paper", tmp_path, [], rp.command_line)
    assert rows and not [r for r in rows if "error" in r]
    assert {r["id"] for r in rows} == {"s001_fig2", "s004_table1"}
    assert rp.main(["--plan", "--only", "s001_fig2", "--out", str(tmp_path)]) == 0
    assert "chip-images" in capsys.readouterr().out
