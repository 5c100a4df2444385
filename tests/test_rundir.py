"""A run directory owns its results (issue 13): the lock, the hash over what the numbers depend on (weights'
content, eval.batch_size), per-point manifests that catch damaged files, the data provenance in meta.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import FAST, REPO, compose, needs_metrics, needs_sim

from aimcbench.commands._common import check_sweep_config
from aimcbench.runner import (
    ResultsMismatchError,
    RunDirBusyError,
    SweepInterrupted,
    model_digest,
    run_sweep,
)
from aimcbench.runner.rundir import HOLDER_NAME, RunDirLock

pytestmark = [needs_sim, needs_metrics]
SWEEP = ["hardware=pcm", "sweep=read_noise", "sweep.values=[1,2,4]"]


def sweep_cfg(*overrides: str) -> dict:
    cfg = compose("sweep", FAST + SWEEP + list(overrides))
    check_sweep_config(cfg)
    return cfg


def test_model_digest_is_the_weights_content():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    same = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    same.load_state_dict(model.state_dict())
    assert model_digest(model) == model_digest(same)
    with torch.no_grad():
        same[0].weight[0, 0] += 1e-7  # one weight, one ulp-ish: another model
    assert model_digest(model) != model_digest(same)
    same.load_state_dict(model.state_dict())
    same[0].aimc_array_gain = torch.tensor([1.5])  # per-array gains of hardware-aware training count too
    assert model_digest(model) != model_digest(same)


def test_second_sweep_is_refused_while_the_first_holds_the_directory(tmp_path):
    with RunDirLock(tmp_path, label="hardware=pcm mc.chips=2"), pytest.raises(RunDirBusyError) as err:
        run_sweep(sweep_cfg(), tmp_path, report=False)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path}: in use by pid {os.getpid()} on host ")
    assert "(started with hardware=pcm mc.chips=2); wait for it or set wait=true" in msg and "\n" not in msg
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "meta.json").exists()
    assert not (tmp_path / HOLDER_NAME).exists()  # released with the lock


def test_resume_on_different_weights_or_batch_size_refuses(tmp_path, _isolated_cache):
    cfg = sweep_cfg()
    with pytest.raises(SweepInterrupted):
        run_sweep(cfg, tmp_path, report=False, stop_after=1)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["status"] == "failed"
    # Another eval.batch_size changes the numbers (summation order): refused, saying so.
    with pytest.raises(ResultsMismatchError, match=r"eval.batch_size \(32, now 16\)"):
        run_sweep(sweep_cfg("eval.batch_size=16"), tmp_path, report=False)
    # The cache entry replaced by other weights (e.g. deleted and retrained): refused, not mixed.
    entry_path = Path(meta["model_weights"]["path"])
    entry = torch.load(entry_path, weights_only=True)
    backup = entry_path.read_bytes()
    try:
        first = next(iter(entry["state_dict"]))
        entry["state_dict"][first] = entry["state_dict"][first] + 1e-3
        torch.save(entry, entry_path)
        with pytest.raises(ResultsMismatchError) as err:
            run_sweep(cfg, tmp_path, report=False)
        assert str(err.value).startswith(f"{tmp_path}: point 0 was computed with different model weights")
    finally:
        entry_path.write_bytes(backup)
    assert json.loads((tmp_path / "meta.json").read_text())["status"] == "failed"  # refusals leave it alone
    out = run_sweep(cfg, tmp_path, report=False)
    assert out["status"] == "complete" and out["timings"]["computed_points"] == 2


def test_damaged_point_files_are_recomputed_with_a_notice(tmp_path):
    cfg = sweep_cfg()
    run_sweep(cfg, tmp_path, report=False)
    want_digital = (tmp_path / "digital.csv").read_bytes()
    want_chips = pd.read_parquet(tmp_path / "chips.parquet")
    csv, parquet = tmp_path / "points" / "digital_001.csv", tmp_path / "points" / "point_002.parquet"
    csv.write_bytes(csv.read_bytes()[:-3])  # three bytes short: once a silently wrong digital baseline
    parquet.write_bytes(parquet.read_bytes()[:100])  # truncated: once an ArrowInvalid traceback
    notes: list[str] = []
    meta = run_sweep(cfg, tmp_path, report=False, log=notes.append)
    assert meta["timings"]["computed_points"] == 2
    assert any(n.startswith(f"aimc: {csv}: ") and n.endswith("recomputing point 1") for n in notes), notes
    assert any(n.startswith(f"aimc: {parquet}: ") and n.endswith("recomputing point 2") for n in notes), notes
    assert "aimc: resuming: points 0 done, computing 1-2" in notes
    assert (tmp_path / "digital.csv").read_bytes() == want_digital
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "chips.parquet"), want_chips)
    manifest = json.loads((tmp_path / "points" / "point_001.json").read_text())
    assert set(manifest["files"]) == {"points/digital_001.csv", "points/point_001.parquet"}
    assert manifest["files"]["points/digital_001.csv"]["size"] == csv.stat().st_size


def test_meta_records_the_data_and_weights_actually_used(tmp_path, monkeypatch):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("AIMC_DATA_DIR", str(empty))
    monkeypatch.setenv("AIMC_NO_DOWNLOAD", "1")
    from aimcbench.data.loaders import find_idx_pair

    if find_idx_pair("mnist", "test", str(empty)) is not None:
        pytest.skip("full MNIST installed system-wide")
    cfg = compose("sweep", ["dataset=mnist", f"dataset.data_dir={empty}", "train=quick", "mc.chips=2",
                            "eval.batch_size=32", "hardware=ideal", "sweep=variation", "sweep.values=[0.0]"])
    check_sweep_config(cfg)
    assert cfg["eval"]["n"] == 10000  # what the config says ...
    notes: list[str] = []
    meta = run_sweep(cfg, tmp_path / "run", report=False, log=notes.append)
    data = json.loads((tmp_path / "run" / "meta.json").read_text())["data"]
    assert data == meta["data"]
    assert data["source"] == "sample" and data["n_test"] == 2000 and data["n_test_requested"] == 10000
    assert len(data["test_sha256"]) == 64 and data["path"].endswith("mnist_sample.npz")
    assert any("embedded MNIST sample was evaluated (2000 test images" in n for n in notes), notes
    weights = meta["model_weights"]
    assert len(weights["sha256"]) == 64 and weights["source"] in ("cache", "trained")


def test_synthetic_provenance_and_fingerprint_follow_the_inputs(tmp_path):
    a = run_sweep(sweep_cfg(), tmp_path / "a", report=False)
    b = run_sweep(sweep_cfg("eval.n=48"), tmp_path / "b", report=False)
    assert a["data"]["source"] == "synthetic" and a["data"]["n_test"] == 64 and b["data"]["n_test"] == 48
    assert a["data"]["test_sha256"] != b["data"]["test_sha256"]
    assert a["model_weights"]["sha256"] == b["model_weights"]["sha256"]


def test_data_source_names_every_kind_of_data():
    from aimcbench.data import data_source, inputs_fingerprint

    assert data_source({"name": "synthetic_cifar"})["source"] == "synthetic"
    assert data_source({"_target_": "mypkg.data.Dataset", "name": None}) == {
        "source": "user", "path": None, "target": "mypkg.data.Dataset"}
    assert data_source({"name": "images", "paths": ["street.jpg"]})["path"] == ["street.jpg"]
    assert data_source({"name": "images", "paths": []})["path"].endswith("astronaut.png")
    x = torch.arange(6.0).reshape(2, 3)
    assert inputs_fingerprint((x, torch.tensor([0, 1]))) != inputs_fingerprint((x, torch.tensor([1, 0])))
    assert inputs_fingerprint((x, object())) is None  # no stable bytes: no fingerprint rather than a wrong one


def _aimc(run_dir: Path, *overrides: str, env: dict | None = None, stdout=subprocess.PIPE,
          stderr=subprocess.PIPE) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "aimcbench", "sweep", *FAST, *SWEEP, "eval.n=32",
                             f"hydra.run.dir={run_dir}", *overrides], cwd=str(REPO), env=full_env,
                            stdout=stdout, stderr=stderr, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    end = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.1)


def test_concurrent_sweeps_never_mix_and_wait_computes_nothing_twice(tmp_path):
    run = tmp_path / "run"
    # A holds the directory: it sleeps at its second write (config.yaml, lock taken) until the test releases it,
    # so a slow machine cannot let A finish before the others have met its lock.
    release = tmp_path / "release"
    a = _aimc(run, env={"AIMC_FAULT_AT": "2", "AIMC_FAULT_KIND": "sleep", "AIMC_FAULT_SLEEP_S": "300",
                        "AIMC_FAULT_RELEASE": str(release)})
    _wait_for(run / HOLDER_NAME, a)
    other = _aimc(run, "hardware.adc.out_noise=0.2")  # another config: refused, nothing written
    waiter_err = tmp_path / "waiter.err"
    with open(waiter_err, "w") as fh:  # the same config: waits, then resumes (its log lines and errors, in one file)
        waiter = _aimc(run, "wait=true", stdout=fh, stderr=subprocess.STDOUT)
    _, err = other.communicate(timeout=300)
    assert other.returncode == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("aimc: error:")]
    assert lines == [f"aimc: error: {run}: in use by pid {a.pid} on host {os.uname().nodename} since "
                     + lines[0].split(" since ", 1)[1]]
    assert lines[0].endswith("); wait for it or set wait=true") and "(started with" in lines[0]
    end = time.time() + 300  # the waiter has met the lock before A goes on
    while "waiting for it" not in waiter_err.read_text() and time.time() < end:
        assert waiter.poll() is None, waiter_err.read_text()
        time.sleep(0.2)
    release.write_text("go")
    assert a.wait(timeout=300) == 0, a.communicate()
    waiter.communicate(timeout=300)
    err = waiter_err.read_text()
    assert waiter.returncode == 0, err
    assert "waiting for it (wait=true)" in err and "resuming: points 0-2 done, rewriting" in err
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["timings"]["computed_points"] == 0
    assert "out_noise: 0.2" not in (run / "config.yaml").read_text()
    chips = pd.read_parquet(run / "chips.parquet")
    assert len(chips) == 3 * 2 and sorted(chips["point"].unique()) == [0, 1, 2]


def test_a_killed_holder_does_not_block_the_next_sweep(tmp_path):
    run = tmp_path / "run"
    a = _aimc(run, env={"AIMC_FAULT_AT": "2", "AIMC_FAULT_KIND": "sleep", "AIMC_FAULT_SLEEP_S": "120"})
    _wait_for(run / HOLDER_NAME, a)
    os.kill(a.pid, signal.SIGKILL)  # kill -9: the kernel releases the OS lock; the holder file stays behind
    a.wait(timeout=30)
    assert (run / HOLDER_NAME).exists()
    b = _aimc(run)
    _, err = b.communicate(timeout=180)
    assert b.returncode == 0, err
    assert json.loads((run / "meta.json").read_text())["status"] == "complete"
    assert not (run / HOLDER_NAME).exists()
