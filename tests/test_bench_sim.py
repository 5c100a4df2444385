"""scripts/bench_sim.py and scripts/gpu_check.py (issue 15) on the CPU: the bench's fields are consistent, bad
input is one line with exit status 2, and the GPU check's dry run completes every step."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # gpu_check imports bench_sim by name
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench_sim():
    return _script("bench_sim")


def test_bench_row_is_consistent(bench_sim, monkeypatch):
    monkeypatch.setenv("AIMC_NO_DOWNLOAD", "1")
    r = bench_sim.bench("mlp", "pcm", (), chips=2, loop_chips=1, batch=32, images=80, device="cpu", repeat=1)
    assert (r["images"], r["batch"], r["chips"]) == (80, 32, 2)
    assert r["ops2"] == r["ops8"] > 0  # issue 15: operators per forward do not grow with the chips
    for key in ("digital_s", "analog_s", "per_chip_s", "loop_per_chip_s", "ratio", "speedup", "peak_mb"):
        assert math.isfinite(r[key]) and r[key] > 0, (key, r[key])
    assert r["per_chip_s"] == pytest.approx(r["analog_s"] / 2)
    assert r["ratio"] == pytest.approx(r["per_chip_s"] / r["digital_default_s"])
    assert r["chip_img_s"] == pytest.approx(2 * 80 / r["analog_s"])
    assert r["digital_s"] == r["digital_default_s"]  # on a CPU the precisions are one
    assert 1 <= r["chunk"] <= 2 and not r["extrapolated"]
    line = bench_sim.format_row(r)
    assert line.split()[:7] == ["mlp", "pcm", "default", "32", "80", "2", str(r["chunk"])]
    assert len(line.split()) == 18  # one field per column


def test_run_images_batches_and_extrapolates(bench_sim):
    seen = []
    x = torch.zeros(4, 3)
    t, frac = bench_sim.run_images([lambda b: seen.append(len(b))] * 2, x, 10, 4, lambda: None)
    assert seen == [4, 4, 2] * 2 and frac == 1.0 and t >= 0
    slow = []

    def fn(b):
        slow.append(len(b))
        import time

        time.sleep(0.02)

    t, frac = bench_sim.run_images([fn], x, 40, 4, lambda: None, max_seconds=0.05)
    assert 2 <= len(slow) < 10 and frac == pytest.approx(4 * len(slow) / 40)
    assert t == pytest.approx(0.02 * len(slow) / frac, rel=0.5)  # elapsed scaled to all 40 images


def test_precision_switches_are_the_sweeps_own(bench_sim):
    # the bench and a sweep's precision= set the same switches (tests/test_precision.py checks them)
    from aimcbench.sim import precision
    assert bench_sim.set_precision is precision.set_precision and bench_sim.PRECISIONS == precision.PRECISIONS


@pytest.mark.parametrize("args, key", [(["--models", "vgg"], "--models"), (["--chips", "0"], "--chips"),
                                       (["--precision", "bf16"], "--precision"), (["--profile", "nope"], "--profile"),
                                       (["--set", "adc.bits=99"], "adc.bits"), (["--loop-chips", "-1"], "--loop-chips")])
def test_bad_input_is_one_line_exit_2(bench_sim, capsys, args, key):
    with pytest.raises(SystemExit) as exit_:
        bench_sim.parse(args)
    out = capsys.readouterr()
    assert exit_.value.code == 2 and out.out == ""
    assert len(out.err.strip().splitlines()) == 1 and key in out.err, out.err


def test_no_cuda_device_is_bad_input():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_sim.py"), "--device", "cuda"],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "--device" in p.stderr


def test_sync_sites_names_each_synchronizing_line(monkeypatch):
    # The dry run has no CUDA sync debug mode: the capture is checked with warnings and errors shaped like torch's.
    gpu_check = _script("gpu_check")
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", lambda mode: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)

    def forward():
        for _ in range(3):
            warnings.warn("called a synchronizing CUDA operation")
        warnings.warn("something else")

    sites, error = gpu_check.sync_sites(forward, "warn")
    assert error == "" and len(sites) == 1 and sites[0][1] == 3, sites
    assert sites[0][0].startswith("test_bench_sim.py:") and "warnings.warn(" in sites[0][0]

    def strict():
        raise RuntimeError("called a synchronizing CUDA operation\nmore")

    assert gpu_check.sync_sites(strict, "error") == ([], "called a synchronizing CUDA operation")


def test_gpu_check_imports_without_hydra():
    # The GPU machine has torch but no Hydra/OmegaConf: the script and what it loads must not need them.
    code = """
import importlib.abc, importlib.util, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('hydra', 'omegaconf'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
spec = importlib.util.spec_from_file_location('gpu_check', sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
import aimcbench.data, aimcbench.models
m.bench_sim.MODELS['wrn16_8'][0](); m.bench_sim.inputs((3, 32, 32), 2)
print(sorted(k for k in sys.modules if k.split('.')[0] in ('hydra', 'omegaconf')))
"""
    p = subprocess.run([sys.executable, "-c", code, str(ROOT / "scripts" / "gpu_check.py")], capture_output=True,
                       text=True, cwd=ROOT, check=False)
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stderr[-2000:]


@pytest.mark.slow
def test_gpu_check_dry_run_completes(tmp_path):
    env = {"AIMC_NO_DOWNLOAD": "1", "PATH": "/usr/bin:/bin", "OUT": str(tmp_path)}
    import os

    env = {**os.environ, **env}
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--cpu-dry-run"], env=env,
                       capture_output=True, text=True, timeout=600, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = res["steps"]
    assert set(steps) == {"dispatch", "sync", "mc", "adc", "bench", "resnet50"}
    assert not [s for s, r in steps.items() if "error" in r], {s: r.get("error") for s, r in steps.items()}
    assert steps["dispatch"]["ok"], steps["dispatch"]
    rows = steps["bench"]["rows"]
    assert len(rows) == 5 and not steps["bench"]["skipped"]  # 2 models x fp32, tf32; the MLP compiled
    assert [r.get("compiled", False) for r in rows] == [False] * 4 + [True]
    adc = steps["adc"]["cases"]["gaussian_512x512"]["fp32"]
    assert adc["pre_adc_err_rms_lsb"] < 0.01 and adc["code_mismatch"] < 1e-3  # fp32 is far below an LSB
    mc = steps["mc"]["profiles"]["pcm"]
    assert mc["cpu/tf32 - cpu"]["chips_identical"] == steps["mc"]["chips"]  # a CPU has no TF32: the same chips
    assert (tmp_path / "gpu_check.txt").read_text().count("\n") > 10
