"""One analysis table: every job's per-chip rows with the job's identity as columns.

A sweep's ``chips.parquet`` holds the runner's columns (``point, axis, axis_value, axis_label, chip, metric,
value``: ``axis`` is the swept key, ``axis_value`` its numeric value, the one to sort and plot by; ``axis_label`` is
only the text shown) followed by ``job`` (the job's identity: its overrides, sorted, joined by ",", or "default")
and one column per override, named by its dotted key (``hardware``, ``mc.chips``, ``train.noise_injection``),
typed: numbers as numbers, strings as strings, null as null. Run-only keys (thread count, device, cache, progress,
waiting, ``report.*``) change no number and are left out, so a rerun with another thread count is the same job.

``aimc report DIR...`` over several jobs concatenates them into ``<out>/chips.parquet`` (plus ``run_dir``, the job's
directory relative to ``out``; an override a job did not give is null there), marked in the parquet metadata so
that the merged file is never mistaken for a sweep of its own.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from aimcbench.report.tables import CHIP_COLUMNS

JOB_COLUMN = "job"
RUN_DIR_COLUMN = "run_dir"
MERGED_KEY = b"aimc_merged_chips"
# Keys that change how a run runs, never its numbers: kept out of the job's identity as out of its directory name
# (the same list as hydra.job.config.override_dirname.exclude_keys in configs/sweep.yaml).
RUN_ONLY_KEYS = frozenset({"threads", "device", "cache_dir", "progress", "wait", "log_level", "mc.max_memory_gb",
                           "dataset.data_dir", "objective"})
RUN_ONLY_PREFIXES = ("report.", "objective.", "hydra.", "hydra/")


def _plain(value: Any) -> Any:
    """An override's parsed value as a scalar column value: lists/dicts as JSON text (a cell holds one value)."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _parse(override: str) -> tuple[str, Any] | None:
    """(dotted key, typed value) of one Hydra override; None for a deletion (``~key``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_override(override)
    except Exception:  # noqa: BLE001 -- an unparsable label word: keep its text as a string
        key, _, value = override.lstrip("+").partition("=")
        return (key, value) if key else None
    if parsed.is_delete():
        return None
    key = parsed.key_or_group + (f"@{parsed.package}" if parsed.package else "")
    if parsed.is_sweep_override():  # not a single job (e.g. a label copied from the multirun command)
        return key, parsed.get_value_element_as_str()
    return key, _plain(parsed.value())


def job_identity(overrides: Iterable[str]) -> tuple[str, dict[str, Any]]:
    """(job id, {dotted key: typed value}) of a job's overrides, run-only keys left out, in key order."""
    values: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for override in overrides:
        item = _parse(str(override))
        if item is None:
            continue
        key, value = item
        if key in RUN_ONLY_KEYS or key.startswith(RUN_ONLY_PREFIXES):
            continue
        values[key], texts[key] = value, str(override).lstrip("+")
    # the id sorts the override texts like Hydra's override_dirname, so it reads like the job's directory name
    return (",".join(sorted(texts.values())) or "default"), {k: values[k] for k in sorted(values)}


def run_overrides(run_dir: str | os.PathLike) -> list[str]:
    """A run directory's overrides: Hydra's ``.hydra/overrides.yaml`` (one item per override), else the words of
    meta.json's ``label`` (runs started from Python), else none."""
    run_dir = Path(run_dir)
    hydra_file = run_dir / ".hydra" / "overrides.yaml"
    listed = None
    if hydra_file.is_file():
        from omegaconf import OmegaConf

        try:
            listed = OmegaConf.to_container(OmegaConf.load(hydra_file))
        except Exception:  # noqa: BLE001 -- a damaged file: fall back to meta.json
            listed = None
    if isinstance(listed, list):
        return [str(o) for o in listed]
    try:
        meta = json.loads((run_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return []
    return str(meta.get("label") or "").split() if isinstance(meta, dict) else []


def _override_column(key: str, leading: Iterable[str] = CHIP_COLUMNS) -> str:
    """The column an override key gets (a key that is already a column name is prefixed, never overwritten)."""
    return f"override.{key}" if key in {*leading, JOB_COLUMN, RUN_DIR_COLUMN} else key


def with_job_columns(chips: pd.DataFrame, run_dir: str | os.PathLike) -> pd.DataFrame:
    """``chips`` with ``job`` and the override columns of ``run_dir`` appended (kept when already there)."""
    if JOB_COLUMN in chips.columns:
        return chips
    job, values = job_identity(run_overrides(run_dir))
    out = chips.copy()
    out[JOB_COLUMN] = job
    for key, value in values.items():
        out[_override_column(key)] = pd.Series([value] * len(out), index=out.index, dtype=object).astype(_dtype([value]))
    return out


def _dtype(values: list) -> str:
    """One column type for override values across jobs: int, float, bool or string; null stays null."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and pd.isna(v))]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "Int64"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float64"
    return "string"


def merged_table(frames: list[tuple[pd.DataFrame, Path]], root: str | os.PathLike,
                 leading: Iterable[str] = CHIP_COLUMNS) -> pd.DataFrame:
    """Concatenate per-job tables (each with its run directory) into one: ``leading`` columns, ``job``,
    ``run_dir`` (relative to ``root``), then every job's override columns (null where a job did not give one),
    each with one type across jobs (see :func:`_dtype`)."""
    root = Path(root).resolve()
    leading = list(dict.fromkeys(leading))
    parts, keys = [], {}
    for df, run_dir in frames:
        job, values = job_identity(run_overrides(run_dir))
        cols = {_override_column(k, leading): v for k, v in values.items()}
        keys.update(dict.fromkeys(cols))
        rel = os.path.relpath(Path(run_dir).resolve(), root)
        base = df[[c for c in df.columns if c in set(leading)]].copy()
        base[JOB_COLUMN] = df[JOB_COLUMN].astype(str) if JOB_COLUMN in df.columns else job
        base[RUN_DIR_COLUMN] = Path(rel).as_posix()
        parts.append((base, cols))
    merged = pd.concat([p for p, _ in parts], ignore_index=True)
    lengths = [len(p) for p, _ in parts]
    for key in keys:
        per_job = [cols.get(key) for _, cols in parts]
        cells = [v for v, n in zip(per_job, lengths) for _ in range(n)]
        dtype = _dtype(per_job)
        cells = [str(v) if dtype == "string" and v is not None else v for v in cells]
        merged[key] = pd.Series(cells, index=merged.index, dtype=object).astype(dtype)
    order = [c for c in leading if c in merged.columns] + [JOB_COLUMN, RUN_DIR_COLUMN] + list(keys)
    return merged[order]


def write_parquet(df: pd.DataFrame, path: Path, merged: bool = False) -> Path:
    """Write ``df`` to ``path`` atomically (temporary file + os.replace); ``merged`` marks a merged table."""
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    if merged:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), MERGED_KEY: b"1"})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_merged_chips(sweeps, out: str | os.PathLike) -> Path:
    """``<out>/chips.parquet``: every sweep's (``.path``, ``.chips``) rows as one table (see :func:`merged_table`)."""
    out = Path(out)
    table = merged_table([(s.chips, s.path) for s in sweeps], out)
    return write_parquet(table, out / "chips.parquet", merged=True)


def is_merged_file(path: str | os.PathLike) -> bool:
    """True for a chips.parquet that ``aimc report`` merged from several jobs (not a sweep's own results)."""
    import pyarrow.parquet as pq

    try:
        return MERGED_KEY in (pq.read_schema(path).metadata or {})
    except Exception:  # noqa: BLE001 -- unreadable: not a merged table; the sweep reader says what is wrong
        return False
