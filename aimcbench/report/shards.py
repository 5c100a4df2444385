"""Merging the shards of a sweep (issue 15): the jobs that each ran a range of every point's chips become one
sweep directory holding exactly what the unsharded run writes.

A shard is a sweep directory whose meta.json has ``shard`` = {index, count, chips, ranges} (the runner writes it
when ``mc.shard_count`` > 1: aimcbench.runner.shards). Shards belong together when their config.yaml is the same
but for ``mc.shard_index`` and the run-only settings (threads, device, ...). Before anything is written, a set
is checked: every shard complete, the same model weights, test data and digital baseline, each shard's rows
holding exactly its recorded chip range, and the ranges covering chips 0..C-1 of every point once (a missing or
overlapping chip is a one-line error naming the chips and the shards). The merged directory then gets:
``chips.parquet`` (the shards' rows in the unsharded order: point, the task's metric order, chip; the job columns
of the overrides without the shard keys), ``digital.csv``, ``config.yaml`` (mc.shard_index 0, mc.shard_count 1),
``.hydra/overrides.yaml``, the config-only files every shard has alike (``cost.csv``), and ``meta.json``
("merged_shards" lists the shard directories), written last. Image files (the denoising grid, Mask R-CNN
pictures) are per shard and are not merged.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd

from aimcbench.report.dataset import run_overrides, with_job_columns, write_parquet
from aimcbench.report.errors import ReportError
from aimcbench.report.sweepdir import (
    CHIPS_FILE, CONFIG_FILE, DIGITAL_FILE, META_FILE, _load_config, _load_meta, atomic_write_text,
)
from aimcbench.report.tables import CHIP_COLUMNS

# config.yaml keys that change how a job runs, never its numbers (as report/dataset.py RUN_ONLY_KEYS)
_RUN_ONLY = ("threads", "device", "cache_dir", "progress", "wait", "log_level", "objective", "report")
_SHARD_OVERRIDE = re.compile(r"^\+*mc\.shard_(index|count)=")
# Per-sweep files that depend on the config alone, never on the chips (issue 17's cost.csv): the same in every
# shard, copied into the merged directory when every shard has it.
SHARED_FILES = ("cost.csv",)


def shard_of(path: Path) -> dict | None:
    """meta.json's ``shard`` entry of a sharded sweep directory, else None."""
    shard = _load_meta(path).get("shard")
    return shard if isinstance(shard, dict) and int(shard.get("count", 1)) > 1 else None


def _identity(path: Path) -> str:
    """What shards of one sweep share: their config without mc.shard_index and the run-only settings."""
    cfg = _load_config(path) or {}
    cfg = {k: v for k, v in cfg.items() if k not in _RUN_ONLY}
    cfg["mc"] = {k: v for k, v in (cfg.get("mc") or {}).items() if k not in ("shard_index", "max_memory_gb")}
    cfg["dataset"] = {k: v for k, v in (cfg.get("dataset") or {}).items() if k != "data_dir"}
    return json.dumps(cfg, sort_keys=True, default=str)


def _ranges(ids) -> str:
    """'0-2, 5' for chip ids [0, 1, 2, 5]."""
    ids, out = sorted(set(int(i) for i in ids)), []
    for i in ids:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in out)


def _read_chips(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path / CHIPS_FILE)[list(CHIP_COLUMNS)]
    except Exception as exc:  # noqa: BLE001 -- pyarrow raises several types: one line
        raise ReportError(f"dirs: {path / CHIPS_FILE}: cannot read the shard's rows ({type(exc).__name__})") from None


def check_shards(paths: list[Path]) -> list[tuple[Path, dict, pd.DataFrame]]:
    """(path, meta, rows) per shard, in shard order, once the set is found whole (see the module docstring);
    ReportError (one line naming what is wrong) otherwise."""
    members = []
    for path in paths:
        meta = _load_meta(path)
        shard = meta["shard"]
        if meta.get("status") != "complete" or not (path / CHIPS_FILE).is_file():
            raise ReportError(f"dirs: {path}: shard {shard['index']} of {shard['count']} is not complete (status "
                              f"{meta.get('status')}); rerun its sweep (it resumes), then report again")
        members.append((path, meta, _read_chips(path)))
    members.sort(key=lambda m: (int(m[1]["shard"]["index"]), str(m[0])))
    first = members[0][1]
    for what, get in (("model weights", lambda m: (m.get("model_weights") or {}).get("sha256")),
                      ("test data", lambda m: (m.get("data") or {}).get("test_sha256"))):
        if len({str(get(m)) for _, m, _ in members}) > 1:
            raise ReportError(f"dirs: the shards {', '.join(str(p) for p, _, _ in members)} ran with different "
                              f"{what}; rerun the odd shard(s) so that all use the same")
    chips_per_point = first["shard"]["chips"]
    owners: list[dict[int, list[Path]]] = [{} for _ in chips_per_point]
    for path, meta, rows in members:
        for p, (lo, hi) in enumerate(meta["shard"]["ranges"]):
            got = set(rows.loc[rows["point"] == p, "chip"].astype(int))
            if got != set(range(lo, hi)):
                raise ReportError(f"dirs: {path}: point {p} holds chips {_ranges(got) or 'none'}, its meta.json says "
                                  f"{lo}-{hi - 1}; rerun this shard into a new directory")
            for k in got:
                owners[p].setdefault(k, []).append(path)
    for p, count in enumerate(chips_per_point):
        missing = [k for k in range(count) if k not in owners[p]]
        twice = {k: v for k, v in owners[p].items() if len(v) > 1}
        if missing:
            given = sorted(int(m["shard"]["index"]) for _, m, _ in members)
            raise ReportError(f"mc.shard_index: the shards given ({', '.join(map(str, given))} of "
                              f"{first['shard']['count']}) miss chips {_ranges(missing)} of {count} at point {p}; "
                              f"run the missing shard(s) and report all of them together")
        if twice:
            dirs = sorted({str(d) for v in twice.values() for d in v})
            raise ReportError(f"mc.shard_index: chips {_ranges(twice)} at point {p} are in more than one shard "
                              f"({', '.join(dirs)}); report each shard once")
    digitals = [_read_digital(path) for path, _, _ in members]
    for (path, _, _), dig in zip(members[1:], digitals[1:]):
        if not dig.equals(digitals[0]):
            raise ReportError(f"dirs: {path}: its digital baseline differs from {members[0][0]}'s; the shards are "
                              "not of one sweep")
    return members


def _read_digital(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path / DIGITAL_FILE)
    except Exception as exc:  # noqa: BLE001
        raise ReportError(f"dirs: {path / DIGITAL_FILE}: cannot read ({type(exc).__name__})") from None


def merged_rows(members: list[tuple[Path, dict, pd.DataFrame]]) -> pd.DataFrame:
    """The shards' rows in the order the unsharded run writes them: point, the task's metric order (first
    appearance), chip."""
    rows = pd.concat([r for _, _, r in members], ignore_index=True)
    order = {m: i for i, m in enumerate(dict.fromkeys(members[0][2]["metric"]))}
    keys = pd.DataFrame({"point": rows["point"], "metric": rows["metric"].map(order), "chip": rows["chip"]})
    rows = rows.loc[keys.sort_values(["point", "metric", "chip"], kind="stable").index].reset_index(drop=True)
    return rows.astype({"axis_value": "float64"})[list(CHIP_COLUMNS)]


def check_dest(dest: Path) -> None:
    """A merged directory may replace an earlier merge, never a sweep of its own (ReportError)."""
    existing = _load_meta(dest) if (dest / META_FILE).is_file() else None
    if (existing is not None and "merged_shards" not in existing) or (dest / "points").is_dir():
        raise ReportError(f"out: {dest} holds a sweep of its own; choose another out= for the merged shards")


def write_merged(members: list[tuple[Path, dict, pd.DataFrame]], dest: Path) -> Path:
    """Write the merged sweep directory ``dest`` (see the module docstring); meta.json says "merging" while the
    files change (a reader takes the directory as partial) and "complete" last."""
    from omegaconf import OmegaConf

    dest = Path(dest)
    check_dest(dest)
    first_path, first_meta, _ = members[0]
    overrides = [o for o in run_overrides(first_path) if not _SHARD_OVERRIDE.match(o)]
    dest.mkdir(parents=True, exist_ok=True)
    if (dest / META_FILE).is_file():  # an earlier merge: not complete until this one is
        atomic_write_text(dest / META_FILE, json.dumps({"status": "merging", "merged_shards": {}}))
    (dest / ".hydra").mkdir(exist_ok=True)
    atomic_write_text(dest / ".hydra" / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(overrides)))
    config = OmegaConf.load(first_path / CONFIG_FILE)
    config.mc.shard_index, config.mc.shard_count = 0, 1
    atomic_write_text(dest / CONFIG_FILE, OmegaConf.to_yaml(config))
    atomic_write_text(dest / DIGITAL_FILE, (first_path / DIGITAL_FILE).read_text())
    for name in SHARED_FILES:
        texts = {(p / name).read_text() if (p / name).is_file() else None for p, _, _ in members}
        if len(texts) == 1 and None not in texts:
            atomic_write_text(dest / name, texts.pop())
    meta = {k: v for k, v in first_meta.items() if k not in ("shard", "timings", "error")}
    meta.update(label=" ".join(overrides), status="complete", timings={
        "shard_total_s": [(m.get("timings") or {}).get("total_s") for _, m, _ in members]},
        merged_shards={"count": len(members), "dirs": [str(p.resolve()) for p, _, _ in members],
                       "ranges": [m["shard"]["ranges"] for _, m, _ in members]})
    chips = with_job_columns(merged_rows(members), dest)  # from .hydra/overrides.yaml, as the runner's
    write_parquet(chips, dest / CHIPS_FILE)
    atomic_write_text(dest / META_FILE, json.dumps(meta, indent=2))
    return dest


def _dest_name(paths: list[Path], key: str) -> str:
    """The shards' directory name without its mc.shard_index part (so the unsharded run's name never collides:
    mc.shard_count stays), else merged_shards~<hash of the sweep>."""
    names = {re.sub(r"(^|,)mc\.shard_index=\d+(?=,|$)", "", p.name).lstrip(",") for p in paths}
    if len(names) == 1 and (name := names.pop()) and name not in {p.name for p in paths}:
        return name
    return "merged_shards~" + hashlib.sha256(key.encode()).hexdigest()[:8]


def merge_shard_sets(found: list[Path], out: str | Path | None = None) -> list[Path]:
    """``found`` sweep directories with every set of two or more shards merged into one directory (checked and
    written, see the module docstring) in place of the first shard; a lone shard is reported as itself.

    The merged directory is ``out`` when the shards of one sweep are all that was found, else beside the shards
    (their name without mc.shard_index). A merged directory that this call writes again is dropped from found."""
    groups: dict[str, list[Path]] = {}
    for path in found:
        if shard_of(path):
            groups.setdefault(_identity(path), []).append(path)
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        return found
    whole = len(groups) == 1 and sum(map(len, groups.values())) == len(found)
    dests = {}
    for key, paths in groups.items():
        members = check_shards(paths)  # every set checked before any is written
        dest = Path(out) if whole and out is not None else paths[0].parent / _dest_name(paths, key)
        check_dest(dest)
        dests[key] = (members, dest)
    written = {key: write_merged(members, dest).resolve() for key, (members, dest) in dests.items()}
    result: list[Path] = []
    firsts = {paths[0]: key for key, paths in groups.items()}
    members_of = {p for paths in groups.values() for p in paths}
    for path in found:
        if path in firsts:
            result.append(Path(dests[firsts[path]][1]))
        elif path not in members_of and path.resolve() not in written.values():
            result.append(path)
    return result
