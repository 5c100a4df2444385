"""The sweep loop: load (or train) the model and the task's test data once, then for each point program
``mc.chips`` simulated chips and let the task evaluate them; resumable (see aimcbench.runner.contract)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from aimcbench.train import load_or_train

from .contract import (
    ResultsMismatchError,
    SweepInterrupted,
    atomic_write_bytes,
    atomic_write_text,
    file_sha,
    merge_points,
    point_hash,
    point_rows,
    stored_point_meta,
    write_point,
)
from .points import axis_entries, point_configs
from .provenance import device_text, git_rev, pick_device, versions


def calibration_batches(cfg: dict) -> list[torch.Tensor] | None:
    """Training images for noise-aware batch norm: mitigation.calib_batches x eval.batch_size, or None when off.

    A seeded random subset of the training split (seed mc.seed), the same for every point and chip."""
    from aimcbench.data import load_from_config

    mit = cfg.get("mitigation") or {}
    if not mit.get("nabn"):
        return None
    bs = int(cfg["eval"]["batch_size"])
    x, _ = load_from_config(cfg["dataset"], "train", limit=int(mit.get("calib_batches", 20)) * bs,
                            seed=int(cfg["mc"]["seed"]))
    return [x[i:i + bs] for i in range(0, x.shape[0], bs)]


def has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def run_sweep(cfg: dict, run_dir: str | os.PathLike, label: str = "", progress: bool | None = None,
              stop_after: int | None = None, report: bool = True,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) one sweep into ``run_dir``; return the final meta.json contents.

    ``cfg["threads"]`` (if set) is the torch thread count for the whole run.
    ``stop_after`` (tests): raise SweepInterrupted once that many points were computed in this call.
    The environment variable AIMC_STOP_AFTER_POINTS=N does the same but exits the process abruptly
    (os._exit(3)), to mimic a killed job.
    """
    saved = torch.get_num_threads()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    try:
        return _run_sweep(cfg, Path(run_dir), label, progress, stop_after, report, log)
    finally:
        torch.set_num_threads(saved)


def _load_model(cfg: dict, task, device: str, progress: bool, log) -> tuple[torch.nn.Module, str, dict]:
    """(model, weights identity, info) for the sweep: given weights for tasks that never train, else the cache."""
    if not task.trained:
        return task.load_model(cfg["model"])
    model, info = load_or_train(cfg["model"], cfg["dataset"], cfg["train"], cache_dir=cfg.get("cache_dir"),
                                device=device, progress=progress, log=log)
    return model, info["key"] or file_sha(info["path"]), info


def _run_sweep(cfg: dict, run_dir: Path, label: str, progress: bool | None, stop_after: int | None, report: bool,
               log: Callable[[str], None] | None) -> dict[str, Any]:
    """The body of run_sweep (thread count already set)."""
    from omegaconf import OmegaConf

    from aimcbench.data import dataset_label
    from aimcbench.models import model_label
    from aimcbench.sim import hardware_from_dict, to_analog
    from aimcbench.tasks import PointContext, get_task

    t_start = time.perf_counter()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    progress = sys.stderr.isatty() if progress is None else progress
    env_stop = os.environ.get("AIMC_STOP_AFTER_POINTS")
    (run_dir / "points").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(cfg), run_dir / "config.yaml")

    device = pick_device(cfg.get("device", "cpu"))
    task_name = cfg["model"].get("task", "classification")
    task = get_task(task_name)
    sweep, mc, ev = cfg["sweep"], cfg["mc"], cfg["eval"]
    entries = axis_entries(sweep)
    meta: dict[str, Any] = {
        "git_rev": git_rev(), "versions": versions(), "device": device_text(device),
        "seeds": {"mc": mc["seed"], "train": cfg["train"]["seed"]}, "status": "running", "label": label,
        "axis": sweep["key"], "axis_log": bool(sweep["log"]), "axis_title": sweep["label"], "task": task_name,
        "model": model_label(cfg["model"]), "dataset": dataset_label(cfg["dataset"]), "chips": mc["chips"],
        "points": [{"point": i, "axis_value": v, "axis_label": lab} for i, (v, lab) in enumerate(entries)],
        "timings": {},
    }
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=2))

    t0 = time.perf_counter()
    model, weights_id, info = _load_model(cfg, task, device, progress, log)
    model.to(device).eval()
    meta["model_cache"] = {k: info[k] for k in ("path", "source", "trained")}
    meta["timings"]["model_s"] = round(time.perf_counter() - t0, 3)
    data, files = task.eval_data(model, cfg, device, meta, log)
    _write_files(run_dir, files)
    meta["n_test"] = len(data[0]) if isinstance(data, tuple) else len(data)
    calib = calibration_batches(cfg)
    if calib is not None and not has_batchnorm(model):
        log(f"aimc: mitigation.nabn: model {model_label(cfg['model'])} has no batch norm; evaluated without "
            "calibration")
        calib = None
    meta["mitigation"] = {**(cfg.get("mitigation") or {}), "applied": calib is not None}

    point_times: list[float] = []
    computed = 0
    points = point_configs(cfg)
    bar = tqdm(list(enumerate(points)), desc="points", disable=not progress, unit="point")
    for i, pcfg in bar:
        value, axis_label = entries[i]
        path = run_dir / "points" / f"point_{i:03d}.parquet"
        digest = point_hash(pcfg, weights_id)
        if path.is_file():
            old, seconds = stored_point_meta(path)
            if old != digest:
                raise ResultsMismatchError(
                    f"{path}: computed under a different config (e.g. edited defaults or another model); "
                    f"use a new hydra.run.dir or delete {run_dir / 'points'}")
            point_times.append(seconds)
            continue
        tp = time.perf_counter()
        bar.set_postfix_str(f"{sweep['key']}={axis_label}")
        hw = hardware_from_dict(pcfg["hardware"])
        pmc = pcfg["mc"]  # a sweep may vary mc.* too (e.g. a seed sweep)
        amodel = to_analog(model, hw, chips=int(pmc["chips"]), seed=int(pmc["seed"]), nabn=calib is not None)
        if calib is not None:  # study 004 Algorithm 1, per chip, on this point's noisy chips
            amodel.calibrate([b.to(device) for b in calib], dynamic=bool(pcfg["mitigation"].get("dynamic", False)))
        ctx = PointContext(point=i, axis_label=axis_label, batch_size=int(ev["batch_size"]), device=device,
                           progress=progress, images=int(ev.get("images") or 0),
                           desc=f"point {i}: {pmc['chips']} chips")
        res = task.evaluate(model, amodel, data, pcfg, ctx)
        if res.seconds_per_chip is not None:
            meta["timings"].setdefault("seconds_per_chip", []).extend(round(t, 3) for t in res.seconds_per_chip)
            log(f"aimc: point {i} ({sweep['key']}={axis_label}): {np.mean(res.seconds_per_chip):.2f} s per chip")
        df, ddf = point_rows(i, sweep["key"], value, axis_label, res.chip_metrics, res.digital)
        atomic_write_text(run_dir / "points" / f"digital_{i:03d}.csv", ddf.to_csv(index=False))
        _write_files(run_dir, res.files)
        del amodel
        seconds = time.perf_counter() - tp
        write_point(path, df, digest, seconds)
        point_times.append(seconds)
        computed += 1
        if stop_after is not None and computed >= stop_after:
            raise SweepInterrupted(f"stopped after {computed} point(s) (test hook)")
        if env_stop and computed >= int(env_stop):
            sys.stderr.flush()
            os._exit(3)

    merge_points(run_dir, len(points))
    meta["timings"].update(points_s=[round(t, 3) for t in point_times], computed_points=computed,
                           total_s=round(time.perf_counter() - t_start, 3))
    meta["status"] = "complete"
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=2))
    if report:
        _report(run_dir, sweep, task, log)
    return meta


def _write_files(run_dir: Path, files: dict[str, bytes]) -> None:
    """A task's files, each written atomically under the run directory."""
    for rel, content in files.items():
        path = run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, content)


def _report(run_dir: Path, sweep: dict, task, log: Callable[[str], None]) -> None:
    """Tables and plots (aimcbench.report); the log-log error-rate fit when sweep.loglog asks for it."""
    try:
        from aimcbench.report import write_sweep_report
    except ImportError:
        log("aimc: aimcbench.report.write_sweep_report is not available; tables and plots not written")
    else:
        write_sweep_report(run_dir)  # also draws segmentation.png for detection sweeps
    if sweep.get("loglog") and task.loglog:  # a power law: error rate vs the axis in log-log
        from aimcbench.report.loglog import write_loglog

        fit = write_loglog(run_dir)
        log(f"aimc: log-log error-rate slope {fit['slope']:.3f} over alpha {fit['range']} ({run_dir})"
            if fit.get("slope") is not None else f"aimc: log-log fit: {fit.get('note')}")
