"""Sharding the chips of a sweep point over jobs (issue 15): shard i of n runs a contiguous range of chip ids.

``mc.shard_index`` = i and ``mc.shard_count`` = n (config/schema.py MCConfig): at a point of ``mc.chips`` = C
chips, shard i runs the chip ids [i C // n, (i + 1) C // n). Chip k draws its devices from (mc.seed, layer, k)
whatever else runs with it, so the shards' rows, put together in chip order, are the rows of the unsharded run
(``aimc report`` does that: aimcbench.report.shards). Each shard is its own job: its own run directory, and its
points hash with the shard keys in them, so a directory never mixes two shards (nor a shard and a whole run).
An unsharded run (n = 1) hashes without the shard keys, as before they existed, so its stored points still match.
"""
from __future__ import annotations

import copy
from typing import Any

import pandas as pd

SHARD_KEYS = ("shard_index", "shard_count")


def shard_of(mc: dict) -> tuple[int, int]:
    """(index, count) of a config's ``mc`` section; (0, 1) when unsharded or written before sharding existed."""
    return int(mc.get("shard_index", 0) or 0), int(mc.get("shard_count", 1) or 1)


def shard_range(chips: int, index: int, count: int) -> tuple[int, int]:
    """[lo, hi) of the chip ids shard ``index`` of ``count`` runs out of ``chips`` (contiguous, balanced: the
    shards' sizes differ by at most one and cover 0..chips-1 once)."""
    if not 0 <= index < count <= chips:
        raise ValueError(f"shard {index} of {count} over {chips} chips: need 0 <= index < count <= chips")
    return index * chips // count, (index + 1) * chips // count


def chip_ids(mc: dict) -> int | list[int]:
    """What to_analog's ``chips`` gets: the count when unsharded (as before), else this shard's chip ids."""
    index, count = shard_of(mc)
    if count == 1:
        return int(mc["chips"])
    lo, hi = shard_range(int(mc["chips"]), index, count)
    return list(range(lo, hi))


def first_chip(mc: dict) -> int:
    """The id of this shard's first chip (0 when unsharded): the offset of its rows' ``chip`` column."""
    index, count = shard_of(mc)
    return shard_range(int(mc["chips"]), index, count)[0] if count > 1 else 0


def shard_device(device: str, mc: dict) -> str:
    """The device a shard runs on: with device=cuda and several GPUs visible (shards launched side by side on one
    node, e.g. by hydra/launcher=joblib), shard i takes GPU i mod (visible GPUs) and makes it the current device;
    otherwise ``device`` (under Slurm each job sees its own GPU as cuda:0)."""
    index, count = shard_of(mc)
    if device != "cuda" or count == 1:
        return device
    import torch

    gpus = torch.cuda.device_count()
    if gpus <= 1:
        return device
    torch.cuda.set_device(index % gpus)  # what "the current device" means to code that asks torch.cuda
    return f"cuda:{index % gpus}"


def hashable_point(point_cfg: dict) -> dict:
    """A point's config as its hash sees it: without the shard keys when unsharded (so points stored before
    the keys existed still match), with them when sharded (so each shard's directory is its own)."""
    mc = point_cfg.get("mc") or {}
    if shard_of(mc)[1] != 1 or not any(k in mc for k in SHARD_KEYS):
        return point_cfg
    out = copy.copy(point_cfg)
    out["mc"] = {k: v for k, v in mc.items() if k not in SHARD_KEYS}
    return out


def offset_rows(df: pd.DataFrame, mc: dict) -> pd.DataFrame:
    """A task's per-chip rows (chip 0..m-1 of this shard) with the chips' own ids."""
    offset = first_chip(mc)
    if offset:
        df = df.assign(chip=df["chip"] + offset)
    return df


def shard_meta(points: list[dict]) -> dict[str, Any] | None:
    """meta.json's ``shard`` entry of a sharded run (None when unsharded): index, count and, per point, the
    point's chip count and this shard's [lo, hi), which the merge checks against the rows."""
    index, count = shard_of(points[0].get("mc") or {})
    if count == 1:
        return None
    chips = [int(p["mc"]["chips"]) for p in points]
    return {"index": index, "count": count, "chips": chips,
            "ranges": [list(shard_range(c, *shard_of(p["mc"]))) for c, p in zip(chips, points)]}
