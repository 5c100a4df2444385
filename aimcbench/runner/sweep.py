"""The sweep loop: load (or train) the model and the task's test data once, then for each point program
``mc.chips`` simulated chips and let the task evaluate them; resumable (see aimcbench.runner.contract).

Order, so that a refused or failed run never leaves its mark on results it does not own: take the run directory's
lock (aimcbench.runner.rundir), load the model and the data, check every stored point against this run (refuse
to mix, recompute damaged ones), and only then write config.yaml and meta.json ("running"), the points, the
tables and the report; meta.json says "complete" after the last output exists, "failed" (with the error) when
anything raised.

Messages go to the module loggers (``logging``): under ``aimc`` Hydra's job logging writes them to
``<run_dir>/sweep.log`` and the console, one line per computed point with its percentiles and seconds.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from aimcbench.sim.allocator import retain_freed_memory
from aimcbench.sim.compiled import set_compiled
from aimcbench.sim.precision import set_precision
from aimcbench.train import load_or_train

from .contract import (
    DiskFullError,
    ResultsMismatchError,
    RunDirError,
    SweepInterrupted,
    atomic_write_bytes,
    atomic_write_text,
    hash_parts,
    merge_points,
    model_digest,
    point_hash,
    point_rows,
    stored_point_meta,
    write_point,
)
from .calibration import Calibrator, calibration_batches, needs_adc_calibration
from .points import axis_entries, point_configs
from .shards import chip_ids, hashable_point, offset_rows, shard_device, shard_meta
from .provenance import (
    data_provenance,
    device_text,
    git_rev,
    pick_device,
    versions,
    weights_provenance,
)
from .rundir import (
    RunDirLock,
    clean_temp_files,
    damaged_file,
    fault_event,
    install_fault_hook,
    mismatch_reason,
    ranges,
    read_manifest,
    write_manifest,
)

logger = logging.getLogger(__name__)


def log_notice(msg: str) -> None:
    """The default ``log`` of the runner: an INFO record (the "aimc: " prefix is for callers that print)."""
    logger.info(msg.removeprefix("aimc: "))


def show_progress(setting: Any) -> bool:
    """progress=auto|on|off (or a bool, or None = auto): whether to draw tqdm bars; auto = stderr is a terminal."""
    if isinstance(setting, bool):
        return setting
    if setting in (None, "auto"):
        return sys.stderr.isatty()
    return setting == "on"


def point_line(i: int, n: int, key: str, axis_label: str, chip_metrics: dict, digital: dict, seconds: float,
               per_chip_s: list[float] | None) -> str:
    """The log line of one computed point: its index (as in points/point_XXX) and place (i + 1 of n) on the axis,
    p5/p50/p95 over chips of each metric (numpy's linear percentiles, as percentiles.csv), the digital value and
    the seconds."""
    stats = []
    for metric, vals in chip_metrics.items():
        p5, p50, p95 = np.percentile(np.asarray(vals, dtype=float), [5, 50, 95])
        dig = digital.get(metric)
        stats.append(f"{metric} p5 {p5:.4f} p50 {p50:.4f} p95 {p95:.4f}"
                     + (f" (digital {float(dig):.4f})" if dig is not None else ""))
    chips = len(next(iter(chip_metrics.values()), []))
    timing = f"{seconds:.2f} s" + (f" ({np.mean(per_chip_s):.3f} s per chip)" if per_chip_s else "")
    return f"point {i} ({i + 1}/{n}) {key}={axis_label}: {'; '.join(stats)}; {chips} chips, {timing}"


def has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def run_sweep(cfg: dict, run_dir: str | os.PathLike, label: str = "", progress: bool | None = None,
              stop_after: int | None = None, report: bool = True,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) one sweep into ``run_dir``; return the final meta.json contents.

    ``cfg["threads"]`` (if set) is the torch thread count for the whole run; ``cfg["wait"]``: wait for a sweep
    that holds the run directory instead of raising RunDirBusyError. ``progress`` (None: ``cfg["progress"]``,
    auto|on|off): tqdm bars. ``log``: where notices and the per-point lines go (default: this module's logger).
    ``label``: the command's overrides (meta.json and the lock's holder file).
    ``stop_after`` (tests): raise SweepInterrupted once that many points were computed in this call.
    The environment variable AIMC_STOP_AFTER_POINTS=N does the same but exits the process abruptly
    (os._exit(3)), to mimic a killed job; AIMC_FAULT_AT (aimcbench.runner.rundir) kills or fails it at any write.
    """
    run_dir = Path(run_dir)
    log = log or log_notice
    saved = torch.get_num_threads()
    saved_tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    set_precision(cfg.get("precision") or "default")  # GPU products: TF32 or not (sim/precision.py)
    compiled_before = set_compiled(bool(cfg.get("compile")))  # compiled kernels (sim/compiled.py)
    install_fault_hook()
    claimed: dict[str, Any] = {}  # {"meta": ...} once this run has started writing the directory
    try:
        with RunDirLock(run_dir, label, wait=bool(cfg.get("wait")), log=log):
            try:
                return _run_sweep(cfg, run_dir, label, progress, stop_after, report, log, claimed)
            except BaseException as err:
                _record_failure(run_dir, claimed.get("meta"), err)
                raise
    except OSError as err:
        full = err.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(err)  # (pyarrow)
        if full:
            why = "the disk quota is exceeded" if err.errno == errno.EDQUOT else "the disk is full"
            raise DiskFullError(f"{_written_name(err.filename, run_dir)}: {why}; free space (or choose another "
                                "hydra.run.dir) and rerun: the sweep resumes") from err
        raise
    finally:
        torch.set_num_threads(saved)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved_tf32  # the caller's own
        set_compiled(compiled_before)


def _written_name(filename, run_dir: Path) -> str:
    """The file a failed write was for: a temporary '.NAME.<pid or random>.tmp' names NAME."""
    if not filename:
        return str(run_dir)
    path = Path(os.fsdecode(filename))
    match = re.fullmatch(r"\.(.+)\.[^.]+\.tmp", path.name)
    return str(path.with_name(match.group(1)) if match else path)


def _record_failure(run_dir: Path, meta: dict | None, err: BaseException) -> None:
    """meta.json status "failed" with the error's one line: for this run's meta once it wrote the directory,
    else for an unfinished earlier run's; a refusal (RunDirError) before that leaves the directory untouched."""
    path = run_dir / "meta.json"
    if meta is None:
        if isinstance(err, RunDirError):
            return
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(meta, dict) or meta.get("status") == "complete":
            return
    meta["status"] = "failed"
    meta["error"] = f"{type(err).__name__}: {' '.join(str(err).split())}"[:500]
    try:
        atomic_write_text(path, json.dumps(meta, indent=2))
    except OSError:  # e.g. the disk is still full: the status stays "running", never "complete"
        pass


def _load_model(cfg: dict, task, device: str, progress: bool, log) -> tuple[torch.nn.Module, dict]:
    """(model, info) for the sweep: given weights for tasks that never train, else the cache."""
    if not task.trained:
        model, _ident, info = task.load_model(cfg["model"])
        return model, info
    return load_or_train(cfg["model"], cfg["dataset"], cfg["train"], cache_dir=cfg.get("cache_dir"),
                         device=device, progress=progress, log=log)


def _plan(run_dir: Path, points: list[dict], weights: str, data_sha: str | None,
          log: Callable[[str], None]) -> tuple[list[int], dict[int, float]]:
    """(points to compute, {done point: its seconds}) from the stored points, which must belong to this run:
    ResultsMismatchError (saying what differs) otherwise; a damaged or partial point is recomputed (a notice)."""
    todo, done = [], {}
    for i, pcfg in enumerate(points):
        parts = hash_parts(pcfg, weights, data_sha)
        digest = point_hash(pcfg, weights, data_sha)
        manifest = read_manifest(run_dir, i)
        parquet = run_dir / "points" / f"point_{i:03d}.parquet"
        if manifest is None:
            if parquet.is_file():
                try:
                    old, _ = stored_point_meta(parquet)
                except Exception:  # noqa: BLE001 -- any unreadable parquet is a damaged point
                    old = digest
                    log(f"aimc: {parquet}: unreadable and not in a manifest; recomputing point {i}")
                if old != digest:
                    raise ResultsMismatchError(
                        f"{run_dir}: point {i} was computed under a different config or by an older aimcbench; "
                        f"use a new hydra.run.dir or delete {run_dir / 'points'}")
            todo.append(i)
        elif manifest.get("hash") != digest:
            raise ResultsMismatchError(
                f"{run_dir}: point {i} was computed with {mismatch_reason(manifest.get('parts'), parts)}; "
                f"refusing to mix: use a new hydra.run.dir or delete {run_dir / 'points'}")
        elif (damage := damaged_file(run_dir, manifest)) is not None:
            log(f"aimc: {damage}; recomputing point {i}")
            todo.append(i)
        else:
            done[i] = float(manifest.get("seconds", 0.0))
    if done:
        log(f"aimc: resuming: points {ranges(list(done))} done, "
            + (f"computing {ranges(todo)}" if todo else "rewriting the tables and the report"))
    return todo, done


def _run_sweep(cfg: dict, run_dir: Path, label: str, progress: bool | None, stop_after: int | None, report: bool,
               log: Callable[[str], None], claimed: dict) -> dict[str, Any]:
    """The body of run_sweep (lock held, thread count set); ``claimed["meta"]`` is set once it writes."""
    from omegaconf import OmegaConf

    from aimcbench.config.resources import sim_budget_gb
    from aimcbench.data import dataset_label
    from aimcbench.models import model_label
    from aimcbench.sim import hardware_from_dict, to_analog
    from aimcbench.tasks import PointContext, get_task

    t_start = time.perf_counter()
    progress = show_progress(cfg.get("progress") if progress is None else progress)
    env_stop = os.environ.get("AIMC_STOP_AFTER_POINTS")
    clean_temp_files(run_dir)

    device = shard_device(pick_device(cfg.get("device", "cpu")), cfg["mc"])  # shards on one node: one GPU each
    retain_freed_memory()  # batched chips on a CPU: 30-40 % faster without re-faulting freed pages (sim/allocator.py)
    task_name = cfg["model"].get("task", "classification")
    task = get_task(task_name)
    sweep, mc, ev = cfg["sweep"], cfg["mc"], cfg["eval"]
    entries = axis_entries(sweep)
    meta: dict[str, Any] = {
        "git_rev": git_rev(), "versions": versions(), "device": device_text(device), "precision": cfg.get("precision") or "default",
        "compile": bool(cfg.get("compile")),
        "seeds": {"mc": mc["seed"], "train": cfg["train"]["seed"]}, "status": "running", "label": label,
        "axis": sweep["key"], "axis_log": bool(sweep["log"]), "axis_title": sweep["label"], "task": task_name,
        "model": model_label(cfg["model"]), "dataset": dataset_label(cfg["dataset"]), "chips": mc["chips"],
        "points": [{"point": i, "axis_value": v, "axis_label": lab} for i, (v, lab) in enumerate(entries)],
        "timings": {},
    }

    t0 = time.perf_counter()
    model, info = _load_model(cfg, task, device, progress, log)
    weights = model_digest(model)
    model.to(device).eval()
    meta["model_cache"] = {k: info.get(k) for k in ("path", "source", "trained")}
    meta["model_weights"] = weights_provenance(weights, info)
    meta["timings"]["model_s"] = round(time.perf_counter() - t0, 3)
    task.load_or_train = load_or_train  # the model cache, for tasks that train helper models (a digit recognizer)
    data, files = task.eval_data(model, cfg, device, meta, log)
    meta["data"] = data_provenance(cfg, data, meta.get("dataset_used"), log)
    meta["n_test"] = meta["data"]["n_test"]
    calib = calibration_batches(cfg)
    adc_calib = calib if needs_adc_calibration(cfg) else None  # study 003 naive mapping: full scales from data
    calib = calib if (cfg.get("mitigation") or {}).get("nabn") else None
    if calib is not None and not has_batchnorm(model):
        log(f"aimc: mitigation.nabn: model {model_label(cfg['model'])} has no batch norm; evaluated without "
            "calibration")
        calib = None
    meta["mitigation"] = {**(cfg.get("mitigation") or {}), "applied": calib is not None}
    points = [hashable_point(p) for p in point_configs(cfg)]  # a shard's points are its own (runner/shards.py)
    if shard_meta(points):
        meta["shard"] = shard_meta(points)
    todo, done = _plan(run_dir, points, weights, meta["data"]["test_sha256"], log)

    # From here on this run owns the directory's contents.
    (run_dir / "points").mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(cfg)))
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=2))
    claimed["meta"] = meta
    _write_files(run_dir, files)

    point_times = dict(done)
    computed = 0
    calibrator = None
    # With bars, log lines go above them (tqdm.write) instead of through them.
    with logging_redirect_tqdm() if progress else contextlib.nullcontext():
        bar = tqdm(todo, desc="points", disable=not progress, unit="point")
        for i in bar:
            pcfg = points[i]
            fault_event(f"point {i} start")
            value, axis_label = entries[i]
            digest = point_hash(pcfg, weights, meta["data"]["test_sha256"])
            tp = time.perf_counter()
            bar.set_postfix_str(f"{sweep['key']}={axis_label}")
            hw = hardware_from_dict(pcfg["hardware"])
            pmc = pcfg["mc"]  # a sweep may vary mc.* too (e.g. a seed sweep)
            with warnings.catch_warnings():  # the uncalibrated-full-scale notice: calibrated right below
                warnings.filterwarnings("ignore", message=".*adc.full_scale calibrated_max")
                amodel = to_analog(model, hw, chips=chip_ids(pmc), seed=int(pmc["seed"]),
                                   nabn=calib is not None,
                                   max_memory_gb=sim_budget_gb(pcfg))  # mc.max_memory_gb less data, model and rows
            if adc_calib is not None and hw.adc.full_scale == "calibrated_max":
                # same bounds for every chip; a generator, so a pass over a whole training split stays streamed
                amodel.calibrate_adc(x.to(device) for x in adc_calib)
            if calib is not None:  # study 004 Algorithm 1, per chip (runner/calibration.py)
                calibrator = calibrator or Calibrator(cfg, calib, device, sim_budget_gb(pcfg))
                calibrator(amodel, model, pcfg)
            ctx = PointContext(point=i, axis_label=axis_label, batch_size=int(ev["batch_size"]), device=device,
                               progress=progress, images=int(ev.get("images") or 0),
                               desc=f"point {i}: {pmc['chips']} chips")
            res = task.evaluate(model, amodel, data, pcfg, ctx)
            if res.seconds_per_chip is not None:
                meta["timings"].setdefault("seconds_per_chip", []).extend(round(t, 3) for t in res.seconds_per_chip)
            df, ddf = point_rows(i, sweep["key"], value, axis_label, res.chip_metrics, res.digital)
            df = offset_rows(df, pmc)  # a shard's rows carry its chips' own ids
            digital_rel = f"points/digital_{i:03d}.csv"
            atomic_write_text(run_dir / digital_rel, ddf.to_csv(index=False))
            _write_files(run_dir, res.files)
            del amodel
            seconds = time.perf_counter() - tp
            write_point(run_dir / "points" / f"point_{i:03d}.parquet", df, digest, seconds)
            write_manifest(run_dir, i, digest, hash_parts(pcfg, weights, meta["data"]["test_sha256"]),
                           [digital_rel, *res.files, f"points/point_{i:03d}.parquet"], seconds)
            fault_event(f"point {i} done")
            point_times[i] = seconds
            log(point_line(i, len(points), sweep["key"], axis_label, res.chip_metrics, res.digital, seconds,
                           res.seconds_per_chip))
            computed += 1
            if stop_after is not None and computed >= stop_after:
                raise SweepInterrupted(f"stopped after {computed} point(s) (test hook)")
            if env_stop and computed >= int(env_stop):
                sys.stderr.flush()
                os._exit(3)

    merge_points(run_dir, len(points))
    from .cost_columns import write_cost_columns  # issue 17: energy, latency, area per point

    write_cost_columns(run_dir, model, points, entries, log)
    if report:
        _report(run_dir, sweep, task, log)
    meta["timings"].update(points_s=[round(point_times[i], 3) for i in range(len(points))],
                           computed_points=computed, total_s=round(time.perf_counter() - t_start, 3))
    meta["status"] = "complete"  # last: every output above exists
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=2))
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
        from aimcbench.report import load_sweep, write_sweep_report
    except ImportError:
        log("aimc: aimcbench.report.write_sweep_report is not available; tables and plots not written")
    else:
        # Every point is done; meta.json turns "complete" only after the report, which is part of the run, so
        # the report is told here (else it would title the plots "partial").
        sweep_dir = load_sweep(run_dir)
        sweep_dir.meta = {**sweep_dir.meta, "status": "complete"}
        write_sweep_report(run_dir, sweep=sweep_dir)  # also draws segmentation.png for detection sweeps
    if sweep.get("loglog") and task.loglog:  # a power law: error rate vs the axis in log-log
        from aimcbench.report.loglog import write_loglog

        fit = write_loglog(run_dir)
        log(f"aimc: log-log error-rate slope {fit['slope']:.3f} over alpha {fit['range']} ({run_dir})"
            if fit.get("slope") is not None else f"aimc: log-log fit: {fit.get('note')}")
