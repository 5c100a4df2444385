"""The run-directory contract (see notes/contracts.md): column layouts, atomic writes, point files and hashes.

A point is finished when its manifest ``points/point_XXX.json`` exists (written atomically, last) and every file
it lists (``points/point_XXX.parquet``, ``points/digital_XXX.csv``, the task's files) has the listed size and
sha256 (aimcbench.runner.rundir). The manifest and the parquet's schema metadata hold a hash of everything that
determines the point's numbers: the point's config without sweep bookkeeping, data paths and device, including
``eval.batch_size``; the trained weights' content hash (:func:`model_digest`); the test data's fingerprint.
"""
from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from aimcbench.train import canonical_hash

HASH_KEY = b"aimc_point_hash"
SECONDS_KEY = b"aimc_point_s"
# chips.parquet: these first (``axis`` the swept key, ``axis_value`` numeric: sort and plot by it, ``axis_label`` is
# its text), then ``job`` and the job's overrides as typed columns (merge_points); the point files hold these only.
CHIP_COLUMNS = ["point", "axis", "axis_value", "axis_label", "chip", "metric", "value"]
DIGITAL_COLUMNS = ["point", "axis", "axis_value", "axis_label", "metric", "value"]
# Dataset keys added later: left out of the hash while null, so points computed before they existed still match.
_OPTIONAL_DATASET_KEYS = ("normalize", "transform", "_target_")


class RunDirError(RuntimeError):
    """A run directory cannot be used as asked (one-line message naming the directory or file): a user error."""


class ResultsMismatchError(RunDirError):
    """The run directory holds points computed under a different config, model or test data (one-line message)."""


class RunDirBusyError(RunDirError):
    """Another sweep holds the run directory's lock (one-line message naming the holder)."""


class DiskFullError(RunDirError):
    """A write failed because the disk (or quota) is full (one-line message naming the file)."""


class SweepInterrupted(RuntimeError):
    """Raised by the ``stop_after`` test hook after that many points were computed."""


def tmp_path(path: Path) -> Path:
    """The temporary name a file is written under before os.replace moves it into place."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and os.replace (readers never see half a file; a failed
    write, e.g. a full disk, leaves neither a partial file nor the temporary one)."""
    tmp = tmp_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def model_digest(model: torch.nn.Module) -> str:
    """sha256 of a model's content: every state-dict entry (name, dtype, shape, bytes) in sorted name order, then
    the per-array gains a tiled hardware-aware training attaches (aimcbench.sim.convert.ARRAY_GAIN_ATTR).

    Unlike a cache key or a file path this changes whenever the weights do (a retrained model, an edited file)."""
    from aimcbench.sim.convert import ARRAY_GAIN_ATTR

    h = hashlib.sha256()

    def add(name: str, value) -> None:
        h.update(name.encode() + b"\0")
        if isinstance(value, torch.Tensor):
            t = value.detach().to("cpu").contiguous().reshape(-1)
            h.update(f"{t.dtype}{tuple(value.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
        else:  # e.g. a module's extra state
            h.update(repr(value).encode())

    state = model.state_dict()
    for name in sorted(state):
        add(name, state[name])
    for name, mod in sorted(model.named_modules(), key=lambda item: item[0]):
        gain = getattr(mod, ARRAY_GAIN_ATTR, None)
        if gain is not None:
            add(f"{ARRAY_GAIN_ATTR}:{name}", gain)
    return h.hexdigest()


def hash_parts(point_cfg: dict, weights: str, data: str | None) -> dict[str, Any]:
    """What a point's numbers depend on, in named parts (a manifest stores them, so that a mismatch can say
    which part changed): the simulator's numbers version, the config hash, eval.batch_size, the weights' content
    hash, the test data's hash."""
    from aimcbench.sim import NUMBERS_VERSION

    return {"sim": NUMBERS_VERSION, "config": _config_hash(point_cfg),
            "batch_size": int(point_cfg["eval"]["batch_size"]), "weights": weights, "data": data}


def point_hash(point_cfg: dict, weights: str, data: str | None = None) -> str:
    """Hash of what determines a point's numbers (see module docstring and :func:`hash_parts`)."""
    return canonical_hash(hash_parts(point_cfg, weights, data))


def _config_hash(point_cfg: dict) -> str:
    """Hash of a point's config without sweep bookkeeping, paths, device, the memory budget and eval.batch_size (a
    part of its own)."""
    cfg = copy.deepcopy(point_cfg)
    sw = cfg.pop("sweep")
    for key in ("cache_dir", "device", "threads", "wait", "progress", "objective", "log_level"):  # run-only settings
        cfg.pop(key, None)
    cfg.get("dataset", {}).pop("data_dir", None)
    cfg.get("model", {}).pop("checkpoint", None)
    cfg.get("eval", {}).pop("batch_size", None)
    cfg.get("mc", {}).pop("max_memory_gb", None)  # the memory budget changes chunking, never the numbers
    # Defaults added later must not invalidate points computed before they existed.
    if not cfg.get("mitigation", {}).get("nabn", False):
        cfg.pop("mitigation", None)
    if cfg.get("precision", "default") == "default":
        cfg.pop("precision", None)
    if not cfg.get("compile", False):
        cfg.pop("compile", None)
    if cfg.get("train", {}).get("noise_injection", "unset") is None:
        cfg["train"].pop("noise_injection")
    for key in _OPTIONAL_DATASET_KEYS:
        if cfg.get("dataset", {}).get(key, "unset") is None:
            cfg["dataset"].pop(key)
    return canonical_hash({"cfg": cfg, "axis": sw["key"]})


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
    tmp = tmp_path(path)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha(path: str) -> str:
    """sha256 of a file (the identity of weights that are not in the training cache)."""
    return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()


def point_rows(point: int, axis: str, value: float, axis_label: str, chip_metrics: dict, digital: dict
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One point's tidy per-chip table (CHIP_COLUMNS) and digital table (DIGITAL_COLUMNS)."""
    rows = [{"point": point, "axis": axis, "axis_value": value, "axis_label": axis_label, "chip": k,
             "metric": m, "value": float(vals[k])}
            for m, vals in chip_metrics.items() for k in range(len(vals))]
    ddf = pd.DataFrame([{"point": point, "axis": axis, "axis_value": value, "axis_label": axis_label,
                         "metric": m, "value": v} for m, v in digital.items()], columns=DIGITAL_COLUMNS)
    return pd.DataFrame(rows, columns=CHIP_COLUMNS), ddf


def merge_points(run_dir: Path, n_points: int) -> None:
    """chips.parquet and digital.csv from the per-point files (atomically).

    chips.parquet: CHIP_COLUMNS, then the job's identity (aimcbench.report.dataset: ``job`` and one typed column
    per override, from .hydra/overrides.yaml or meta.json's label), so that jobs concatenate into one table.
    The point files keep CHIP_COLUMNS only: their manifests and hashes do not depend on how a job was named."""
    from aimcbench.report.dataset import with_job_columns

    chips = pd.concat([pd.read_parquet(run_dir / "points" / f"point_{i:03d}.parquet") for i in range(n_points)],
                      ignore_index=True)[CHIP_COLUMNS]
    chips = with_job_columns(chips.astype({"axis_value": "float64"}), run_dir)
    tmp = tmp_path(run_dir / "chips.parquet")
    try:
        chips.to_parquet(tmp, index=False)
        os.replace(tmp, run_dir / "chips.parquet")
    finally:
        tmp.unlink(missing_ok=True)
    digital = pd.concat([pd.read_csv(run_dir / "points" / f"digital_{i:03d}.csv") for i in range(n_points)],
                        ignore_index=True)[DIGITAL_COLUMNS]
    atomic_write_text(run_dir / "digital.csv", digital.to_csv(index=False))
