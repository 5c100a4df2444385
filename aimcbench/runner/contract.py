"""The run-directory contract (see notes/contracts.md): column layouts, atomic writes, point files and hashes.

A point is finished when ``points/point_XXX.parquet`` exists (written atomically, after its digital baseline
``points/digital_XXX.csv`` and the task's files). The parquet's schema metadata holds a hash of everything that
determines the point's numbers (the point's config without sweep bookkeeping, data paths, device and batch
size, plus the trained weights' identity) and the seconds it took.
"""
from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path

import pandas as pd

from aimcbench.train import canonical_hash

HASH_KEY = b"aimc_point_hash"
SECONDS_KEY = b"aimc_point_s"
CHIP_COLUMNS = ["point", "axis", "axis_value", "axis_label", "chip", "metric", "value"]
DIGITAL_COLUMNS = ["point", "axis", "axis_value", "axis_label", "metric", "value"]
# Dataset keys added later: left out of the hash while null, so points computed before they existed still match.
_OPTIONAL_DATASET_KEYS = ("normalize", "transform", "_target_")


class ResultsMismatchError(RuntimeError):
    """The run directory holds points computed under a different config (one-line message)."""


class SweepInterrupted(RuntimeError):
    """Raised by the ``stop_after`` test hook after that many points were computed."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and os.replace (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


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
    for key in _OPTIONAL_DATASET_KEYS:
        if cfg.get("dataset", {}).get(key, "unset") is None:
            cfg["dataset"].pop(key)
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
    """chips.parquet and digital.csv from the per-point files (atomically)."""
    chips = pd.concat([pd.read_parquet(run_dir / "points" / f"point_{i:03d}.parquet") for i in range(n_points)],
                      ignore_index=True)[CHIP_COLUMNS]
    chips.to_parquet(run_dir / ".chips.parquet.tmp", index=False)
    os.replace(run_dir / ".chips.parquet.tmp", run_dir / "chips.parquet")
    digital = pd.concat([pd.read_csv(run_dir / "points" / f"digital_{i:03d}.csv") for i in range(n_points)],
                        ignore_index=True)[DIGITAL_COLUMNS]
    atomic_write_text(run_dir / "digital.csv", digital.to_csv(index=False))
