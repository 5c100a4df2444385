"""Monte Carlo sweep runner: points x chips -> tidy per-chip metrics, resumable.

``run_sweep(cfg, run_dir)`` takes a plain, resolved sweep config (the ``aimc sweep`` config without
Hydra's section). It loads (or trains) the model and the test images once, then for each sweep point
sets the axis key, programs ``mc.chips`` simulated chips with :func:`aimcbench.sim.to_analog` and
evaluates ``eval.n`` test images on all of them. The layout it writes is the team contract (see
notes/contracts.md): config.yaml, meta.json, points/point_XXX.parquet, chips.parquet, digital.csv,
images/point_XXX.npz (denoising), then the report (percentiles.csv and plots) via aimcbench.report.

Resume: a point is finished when ``points/point_XXX.parquet`` exists (written atomically, after its
digital baseline ``points/digital_XXX.csv`` and, for the DAE, its images). The parquet's schema
metadata holds a hash of everything that determines the point's numbers (the point's config without
sweep bookkeeping, data paths, device and batch size, plus the trained weights' identity). A rerun
skips points whose hash matches and refuses, with ResultsMismatchError, to mix in points computed
under another config: use a fresh hydra.run.dir (or delete the old points) in that case.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from aimcbench.commands._common import point_configs
from aimcbench.train import canonical_hash, load_or_train

HASH_KEY = b"aimc_point_hash"
SECONDS_KEY = b"aimc_point_s"
CHIP_COLUMNS = ["point", "axis", "axis_value", "axis_label", "chip", "metric", "value"]
DIGITAL_COLUMNS = ["point", "axis", "axis_value", "axis_label", "metric", "value"]


class ResultsMismatchError(RuntimeError):
    """The run directory holds points computed under a different config (one-line message)."""


class SweepInterrupted(RuntimeError):
    """Raised by the ``stop_after`` test hook after that many points were computed."""


# ----------------------------------------------------------------------------------- helpers
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and os.replace (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def axis_entries(sweep: dict) -> list[tuple[float, str]]:
    """(axis_value, axis_label) per sweep value; non-numeric values use their position on the axis."""
    out = []
    for i, v in enumerate(sweep["values"]):
        numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
        out.append((float(v) if numeric else float(i), f"{v:g}" if numeric else str(v)))
    return out


def git_rev() -> str:
    """The repository's HEAD commit (with '+dirty' when tracked files changed), or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (rev + ("+dirty" if dirty else "")) if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("aimcbench", "torch", "torchvision", "numpy", "hydra-core", "omegaconf", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def pick_device(name: str) -> str:
    """'auto' -> cuda when available, else cpu."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def device_text(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def point_hash(point_cfg: dict, weights_id: str) -> str:
    """Hash of what determines a point's numbers (see module docstring)."""
    cfg = copy.deepcopy(point_cfg)
    sw = cfg.pop("sweep")
    for key in ("cache_dir", "device", "threads"):
        cfg.pop(key, None)
    cfg.get("dataset", {}).pop("data_dir", None)
    cfg.get("model", {}).pop("checkpoint", None)
    cfg.get("eval", {}).pop("batch_size", None)
    # Defaults added later must not invalidate points computed before they existed.
    if not cfg.get("mitigation", {}).get("nabn", False):
        cfg.pop("mitigation", None)
    if cfg.get("train", {}).get("noise_injection", "unset") is None:
        cfg["train"].pop("noise_injection")
    return canonical_hash({"cfg": cfg, "axis": sw["key"], "weights": weights_id})


def stored_point_meta(path: Path) -> tuple[str | None, float]:
    """(config hash, seconds it took) stored in a point file's parquet schema metadata."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return meta.get(HASH_KEY, b"").decode() or None, float(meta.get(SECONDS_KEY, b"0"))


def write_point(path: Path, df: pd.DataFrame, digest: str, seconds: float) -> None:
    """Write one point's rows as parquet, atomically, with its config hash in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df[CHIP_COLUMNS], preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), HASH_KEY: digest.encode(),
                                           SECONDS_KEY: f"{seconds:.3f}".encode()})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _file_sha(path: str) -> str:
    import hashlib

    return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_point(model: torch.nn.Module, amodel: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str,
                   eps: torch.Tensor | None, noise_sigma: float, batch_size: int, device: str,
                   progress: bool, desc: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-chip metrics {metric: [chips]} of the analog model and digital metrics {metric: float}."""
    from aimcbench.metrics import accuracy, psnr, ssim

    sums: dict[str, torch.Tensor] = {}
    dsums: dict[str, float] = {}
    n = x.shape[0]
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, leave=False, unit="batch"):
        xb = x[start:start + batch_size].to(device)
        if task == "denoising":
            inp = (xb + noise_sigma * eps[start:start + batch_size].to(device)).clamp(0.0, 1.0)
            out, dout = amodel(inp), model(inp)
            vals = {"psnr": psnr(out, xb), "ssim": ssim(out, xb)}
            dvals = {"psnr": psnr(dout, xb), "ssim": ssim(dout, xb)}
        else:
            yb = y[start:start + batch_size].to(device)
            vals = {"accuracy": accuracy(amodel(xb), yb)}
            dvals = {"accuracy": accuracy(model(xb), yb)}
        w = xb.shape[0]
        for k, v in vals.items():  # metrics are means over the batch's images: weight by batch size
            sums[k] = sums.get(k, 0.0) + v.detach().double().cpu() * w
        for k, v in dvals.items():
            dsums[k] = dsums.get(k, 0.0) + float(v) * w
    return {k: (v / n).numpy() for k, v in sums.items()}, {k: v / n for k, v in dsums.items()}


@torch.no_grad()
def median_chip_images(model: torch.nn.Module, amodel: torch.nn.Module, x: torch.Tensor, eps: torch.Tensor,
                       noise_sigma: float, chip: int, device: str) -> dict[str, np.ndarray]:
    """clean/noisy/digital/analog [N, H, W] float32 for the first N test images (analog: one chip)."""
    clean = x.to(device)
    noisy = (clean + noise_sigma * eps.to(device)).clamp(0.0, 1.0)
    analog = amodel(noisy)[chip]
    to_np = lambda t: t.detach().float().cpu().reshape(t.shape[0], *t.shape[-2:]).numpy()  # noqa: E731
    return {"clean": to_np(clean), "noisy": to_np(noisy), "digital": to_np(model(noisy)), "analog": to_np(analog)}


def calibration_batches(cfg: dict) -> list[torch.Tensor] | None:
    """Training images for noise-aware batch norm: mitigation.calib_batches x eval.batch_size, or None when off.

    A seeded random subset of the training split (seed mc.seed), the same for every point and chip."""
    from aimcbench.data import load_split

    mit = cfg.get("mitigation") or {}
    if not mit.get("nabn"):
        return None
    bs = int(cfg["eval"]["batch_size"])
    x, _ = load_split(cfg["dataset"]["name"], "train", data_dir=cfg["dataset"].get("data_dir"),
                      limit=int(mit.get("calib_batches", 20)) * bs, seed=int(cfg["mc"]["seed"]))
    return [x[i:i + bs] for i in range(0, x.shape[0], bs)]


def has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


# ------------------------------------------------------------------------------------ sweep
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


def _run_sweep(cfg: dict, run_dir: Path, label: str, progress: bool | None, stop_after: int | None, report: bool,
               log: Callable[[str], None] | None) -> dict[str, Any]:
    """The body of run_sweep (thread count already set)."""
    from aimcbench.data import load_split
    from aimcbench.sim import hardware_from_dict, to_analog

    t_start = time.perf_counter()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    progress = sys.stderr.isatty() if progress is None else progress
    env_stop = os.environ.get("AIMC_STOP_AFTER_POINTS")
    (run_dir / "points").mkdir(parents=True, exist_ok=True)
    from omegaconf import OmegaConf

    OmegaConf.save(OmegaConf.create(cfg), run_dir / "config.yaml")

    device = pick_device(cfg.get("device", "cpu"))
    task = cfg["model"].get("task", "classification")
    sweep, mc, ev = cfg["sweep"], cfg["mc"], cfg["eval"]
    entries = axis_entries(sweep)
    meta: dict[str, Any] = {
        "git_rev": git_rev(), "versions": versions(), "device": device_text(device),
        "seeds": {"mc": mc["seed"], "train": cfg["train"]["seed"]}, "status": "running", "label": label,
        "axis": sweep["key"], "axis_log": bool(sweep["log"]), "axis_title": sweep["label"], "task": task,
        "model": cfg["model"]["name"], "dataset": cfg["dataset"]["name"], "chips": mc["chips"],
        "points": [{"point": i, "axis_value": v, "axis_label": lab} for i, (v, lab) in enumerate(entries)],
        "timings": {},
    }
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=2))

    t0 = time.perf_counter()
    if task == "detection":  # given weights (COCO, a file or random), never trained: aimcbench.models.maskrcnn
        from aimcbench.models.maskrcnn import load_detection_model

        model, weights_id, source = load_detection_model(cfg["model"])
        info = {"path": cfg["model"].get("weights_path"), "source": source, "trained": False}
    else:
        model, info = load_or_train(cfg["model"], cfg["dataset"], cfg["train"], cache_dir=cfg.get("cache_dir"),
                                    device=device, progress=progress, log=log)
        weights_id = info["key"] or _file_sha(info["path"])
    model.to(device).eval()
    meta["model_cache"] = {k: info[k] for k in ("path", "source", "trained")}
    meta["timings"]["model_s"] = round(time.perf_counter() - t0, 3)
    if task == "detection":  # a list of images; the digital predictions are the reference at every point
        from aimcbench.metrics.detection import detection_reference

        x, det_targets, det_refs, det_map = detection_reference(model, cfg, run_dir, device, meta, log)
        y = None
    else:
        x, y = load_split(cfg["dataset"]["name"], "test", data_dir=cfg["dataset"].get("data_dir"), limit=ev["n"],
                          seed=int(mc["seed"]))
    # One fixed noise draw for the whole run: every chip and every point sees the same noisy inputs
    # (an input_noise sweep scales the same draw).
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(int(mc["seed"]) + 7919)) \
        if task == "denoising" else None
    meta["n_test"] = len(x)
    calib = calibration_batches(cfg)
    if calib is not None and not has_batchnorm(model):
        log(f"aimc: mitigation.nabn: model {cfg['model']['name']} has no batch norm; evaluated without calibration")
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
        sigma = float(pcfg["eval"]["noise_sigma"])
        if task == "detection":
            from aimcbench.metrics.detection import evaluate_detection_point

            chip_metrics, digital, chip_s = evaluate_detection_point(
                amodel, x, det_refs, det_targets, det_map, float(pcfg["eval"]["score_threshold"]),
                int(ev["batch_size"]), device, run_dir, i, axis_label)
            meta["timings"].setdefault("seconds_per_chip", []).extend(round(t, 3) for t in chip_s)
            log(f"aimc: point {i} ({sweep['key']}={axis_label}): {np.mean(chip_s):.2f} s per chip")
        else:
            chip_metrics, digital = evaluate_point(model, amodel, x, y, task, eps, sigma, int(ev["batch_size"]),
                                                   device, progress, f"point {i}: {pmc['chips']} chips")
        rows = [{"point": i, "axis": sweep["key"], "axis_value": value, "axis_label": axis_label, "chip": k,
                 "metric": m, "value": float(vals[k])}
                for m, vals in chip_metrics.items() for k in range(len(vals))]
        df = pd.DataFrame(rows, columns=CHIP_COLUMNS)
        ddf = pd.DataFrame([{"point": i, "axis": sweep["key"], "axis_value": value, "axis_label": axis_label,
                             "metric": m, "value": v} for m, v in digital.items()], columns=DIGITAL_COLUMNS)
        atomic_write_text(run_dir / "points" / f"digital_{i:03d}.csv", ddf.to_csv(index=False))
        if task == "denoising" and int(ev["images"]) > 0:
            order = np.argsort(chip_metrics["psnr"], kind="stable")
            chip = int(order[(len(order) - 1) // 2])  # the median chip by PSNR (lower middle for even counts)
            n_img = min(int(ev["images"]), x.shape[0])
            imgs = median_chip_images(model, amodel, x[:n_img], eps[:n_img], sigma, chip, device)
            (run_dir / "images").mkdir(exist_ok=True)
            import io

            buf = io.BytesIO()
            np.savez_compressed(buf, **imgs, axis_label=np.array(axis_label), chip=np.array(chip))
            atomic_write_bytes(run_dir / "images" / f"point_{i:03d}.npz", buf.getvalue())
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

    chips = pd.concat([pd.read_parquet(run_dir / "points" / f"point_{i:03d}.parquet") for i in range(len(points))],
                      ignore_index=True)[CHIP_COLUMNS]
    chips.to_parquet(run_dir / ".chips.parquet.tmp", index=False)
    os.replace(run_dir / ".chips.parquet.tmp", run_dir / "chips.parquet")
    digital = pd.concat([pd.read_csv(run_dir / "points" / f"digital_{i:03d}.csv") for i in range(len(points))],
                        ignore_index=True)[DIGITAL_COLUMNS]
    atomic_write_text(run_dir / "digital.csv", digital.to_csv(index=False))
    meta["timings"].update(points_s=[round(t, 3) for t in point_times], computed_points=computed,
                           total_s=round(time.perf_counter() - t_start, 3))
    meta["status"] = "complete"
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=2))
    if report:
        try:
            from aimcbench.report import write_sweep_report
        except ImportError:
            log("aimc: aimcbench.report.write_sweep_report is not available; tables and plots not written")
        else:
            write_sweep_report(run_dir)  # also draws segmentation.png for detection sweeps
        if sweep.get("loglog") and task == "classification":  # a power law: error rate vs the axis in log-log
            from aimcbench.report.loglog import write_loglog

            fit = write_loglog(run_dir)
            log(f"aimc: log-log error-rate slope {fit['slope']:.3f} over alpha {fit['range']} ({run_dir})"
                if fit.get("slope") is not None else f"aimc: log-log fit: {fit.get('note')}")
    return meta
