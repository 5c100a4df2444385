"""Every failure a user can cause at the edges ends in one line ``aimc: error: <key>: ...``, exit 2, before any file
is written: no CUDA device, checkpoints that are missing or do not fit, sweeps too big for the memory, the sweep's
own axis set by hand. And what used to fail although nothing was wrong: a long run-directory name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FAST, aimc, compose

from aimcbench.commands._common import DIRNAME_MAX_BYTES, _dirname


def _fails(args: list[str], tmp: Path, capsys, key: str) -> str:
    """Run ``aimc ARGS`` in-process; assert exit 2, one line naming ``key``, and no run directory."""
    from aimcbench.cli import main

    run = tmp / "run"
    with pytest.raises(SystemExit) as info:
        main([*args, f"hydra.run.dir={run}", f"hydra.sweep.dir={run}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"aimc: error: {key}: "), lines[0]
    assert not run.exists(), sorted(p.name for p in run.iterdir())  # not even .hydra/ or config.yaml
    return lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_cuda_device(tmp_path, capsys):
    line = _fails(["sweep", *FAST, "device=cuda"], tmp_path, capsys, "device")
    assert "device=cpu" in line


def test_checkpoint_problems_stop_before_hydra_writes_anything(tmp_path, capsys):
    from aimcbench.models import build_from_config

    torch.save(build_from_config({"name": "mlp", "hidden": [128]}).state_dict(), tmp_path / "h128.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save([1, 2], tmp_path / "list.pt")
    cases = {"missing.pt": "no file", "junk.pt": "cannot read", "list.pt": "holds a list",
             "h128.pt": "shape of 1.weight is (128, 784), model has (256, 784)"}
    for name, words in cases.items():
        line = _fails(["sweep", *FAST, f"model.checkpoint={tmp_path / name}"], tmp_path, capsys, "model.checkpoint")
        assert words in line, line
    _fails(["train", "model.checkpoint=" + str(tmp_path / "h128.pt")], tmp_path, capsys, "model.checkpoint")


@pytest.mark.parametrize("override, key", [
    ("model.hidden=[100000000]", "model.hidden"),     # ~80e9 weights
    ("eval.n=1000000000", "eval.n"),                  # a billion synthetic test images (MemoryError after 9 GB)
    ("mc.chips=1000000000", "mc.chips"),              # a billion result rows per point
])
def test_sweeps_too_big_for_the_memory_are_refused_up_front(tmp_path, capsys, override, key):
    line = _fails(["sweep", *FAST, override, "mc.max_memory_gb=16"], tmp_path, capsys, key)
    assert "mc.max_memory_gb=16" in line


def test_a_batch_whose_activations_do_not_fit_names_the_batch_size(tmp_path, capsys):
    """One chip's activations alone (a forward never holds more images than eval.n, so a big eval.n too)."""
    line = _fails(["sweep", "model=vgg_block", "dataset=synthetic_cifar", "eval.batch_size=1000",
                   "mc.max_memory_gb=1"], tmp_path, capsys, "eval.batch_size")
    assert "eval.batch_size=1000 need" in line
    from aimcbench.config.resources import estimate

    big = estimate(compose("sweep", [*FAST, "eval.batch_size=100000000"]))["batch"]  # capped at eval.n=64
    assert 0 < big == estimate(compose("sweep", [*FAST, "eval.batch_size=64"]))["batch"]


def test_a_tight_budget_names_the_model_and_the_default_budget_is_the_free_memory(tmp_path, capsys):
    line = _fails(["sweep", *FAST, "mc.max_memory_gb=0.01"], tmp_path, capsys, "model.hidden")
    assert "one programmed chip" in line
    line = _fails(["train", "model.hidden=[100000000]"], tmp_path, capsys, "model.hidden")
    assert "available; mc.max_memory_gb sets the budget" in line
    from aimcbench.config.resources import available_memory_gb

    assert 0.01 < available_memory_gb() < 1e5


def test_the_budget_bounds_the_simulators_chunks_including_programmed_weights():
    from aimcbench.config.resources import estimate, sim_budget_gb
    from aimcbench.models import build_from_config
    from aimcbench.sim import load_hardware, to_analog
    from aimcbench.sim.convert import PROGRAM_BYTES_PER_WEIGHT

    model = build_from_config({"name": "mlp", "hidden": [256]})
    weights = 784 * 256 + 256 * 10
    amodel = to_analog(model, load_hardware("pcm"), chips=40, max_memory_gb=0.05)
    chunks = amodel.chunks(8, torch.zeros(8, 1, 28, 28))
    # activations alone (8 images) would put all 40 chips in one chunk; their programmed weights do not fit
    assert len(chunks) > 1 and max(map(len, chunks)) * PROGRAM_BYTES_PER_WEIGHT * weights <= 0.05 * 2**30
    cfg = compose("sweep", [*FAST, "mc.max_memory_gb=2"])
    est = estimate(cfg)
    assert est["analog_weights"] == weights and est["data"] == 4 * 64 * 784
    assert 1.9 < sim_budget_gb(cfg) < 2.0  # the budget less the data, the model and the result rows


def test_the_sweep_passes_the_budget_to_the_simulator(tmp_path, monkeypatch):
    import aimcbench.sim as sim
    from aimcbench.runner import run_sweep

    seen = []
    real = sim.to_analog

    def spy(*args, **kwargs):
        seen.append(kwargs.get("max_memory_gb"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sim, "to_analog", spy)
    cfg = compose("sweep", [*FAST, "sweep.values=[8]", "mc.max_memory_gb=1.5"])
    run_sweep(cfg, tmp_path / "run", progress=False, report=False)
    assert len(seen) == 1 and seen[0] is not None and 1.4 < seen[0] < 1.5


def test_setting_the_swept_key_yourself_is_refused(tmp_path, capsys):
    line = _fails(["sweep", "sweep=adc_bits", "hardware.adc.bits=6"], tmp_path, capsys, "hardware.adc.bits")
    assert "sweep.values" in line
    _fails(["sweep", "-m", "sweep=drift_time", "hardware.t_inference_s=1,10"], tmp_path, capsys,
           "hardware.t_inference_s")


def test_run_directory_names_are_shortened_with_a_hash():
    short = "hardware=pcm,mc.chips=3"
    assert _dirname(short) == short and _dirname("") == "default"
    long = ",".join(f"hardware.device.key_{i}=value_{i}" for i in range(15))
    name = _dirname(long)
    assert len(name.encode()) <= DIRNAME_MAX_BYTES and name.startswith("hardware.device.key_0=value_0,")
    assert _dirname(long) == name and _dirname(long + "x") != name  # same command, same directory
    wide = "model.checkpoint=/data/" + "é" * 150 + "/w.pt"
    assert "/" not in _dirname(wide) and len(_dirname(wide).encode()) <= DIRNAME_MAX_BYTES


LONG = ["dataset=synthetic", "train=quick", "mc.chips=2", "eval.n=64", "eval.batch_size=32", "sweep.values=[4,8]",
        "hardware.adc.out_noise=0.02", "hardware.dac.bits=8", "hardware.device.prog_noise_scale=1.0",
        "hardware.device.read_noise_scale=1.0", "hardware.device.drift_scale=1.0", "hardware.t_inference_s=3600.0",
        "hardware.device.g_max_uS=25.0", "train.seed=1", "hardware.mapping.tile_rows=256"]


def test_a_realistic_long_command_runs_and_reruns_into_the_same_directory(tmp_path):
    assert len(LONG) == 15 and len(",".join(LONG)) > 340
    first = aimc("sweep", *LONG, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    runs = list((tmp_path / "outputs" / "sweep").iterdir())
    assert len(runs) == 1 and len(runs[0].name.encode()) <= DIRNAME_MAX_BYTES
    assert (runs[0] / "chips.parquet").is_file()
    again = aimc("sweep", *reversed(LONG), cwd=tmp_path)  # Hydra sorts the overrides: the same directory
    assert again.returncode == 0, again.stderr[-2000:]
    assert list((tmp_path / "outputs" / "sweep").iterdir()) == runs


def test_eval_n_above_a_fixed_split_is_a_notice_and_synthetic_sets_are_sized_by_it():
    from aimcbench.config.resources import estimate, notices

    big = compose("sweep", ["eval.n=1000000000", "mc.max_memory_gb=16"])  # mnist: the loader keeps 10000
    assert notices("sweep", big) == ["aimc: eval.n=1000000000 is more than the 10000 test images of mnist: all "
                                     "10000 are evaluated"]
    assert estimate(big)["data"] == 4 * 10000 * 784
    assert notices("sweep", compose("sweep", ["eval.n=500"])) == []
    synthetic = compose("sweep", ["dataset=synthetic", "eval.n=1000000000"])
    assert notices("sweep", synthetic) == [] and estimate(synthetic)["data"] == 4 * 10**9 * 784
