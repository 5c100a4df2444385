"""Rules for settings whose allowed values are more than a type and a range (a mapping of known shape, a list
of overrides). Each rule returns None when the value is allowed, else what is allowed (one line), which the
validator turns into ``<key>: must be <what is allowed> (got <value>)``."""

from __future__ import annotations

import math
from typing import Any


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def noise_injection_rule(v: Any) -> str | None:
    """null, a variation fraction in [0, 1] (with train.aware) or {kind: mul|add, eta0: >= 0, ...}."""
    allowed = ("null, a variation fraction in [0, 1] (with train.aware) or {kind: mul|add, eta0: number >= 0, "
               "[spatial_std: >= 0, temporal_rel_std: >= 0, finetune_steps: int >= 1, finetune_lr: > 0]}")
    if v is None or (_num(v) and 0 <= v <= 1):
        return None
    keys = {"kind", "eta0", "spatial_std", "temporal_rel_std", "finetune_steps", "finetune_lr"}
    ok = (isinstance(v, dict) and set(v) <= keys
          and (v.get("finetune_steps") is None or (_int(v["finetune_steps"]) and v["finetune_steps"] >= 1))
          and (v.get("finetune_lr") is None or (_num(v["finetune_lr"]) and v["finetune_lr"] > 0))
          and v.get("kind") in ("mul", "add") and _num(v.get("eta0")) and v["eta0"] >= 0
          and all(_num(v[k]) and v[k] >= 0 for k in ("spatial_std", "temporal_rel_std") if k in v))
    return None if ok else allowed


def aware_rule(v: Any) -> str | None:
    """train.aware: hardware-aware fine-tuning settings (aimcbench/train/aware.py)."""
    if v is None:
        return None
    keys = {"level", "profiles", "hardware", "optimizer", "lr", "momentum", "lr_schedule", "epochs", "steps"}
    sched = v.get("lr_schedule") if isinstance(v, dict) else None
    ok = (isinstance(v, dict) and set(v) == keys and _int(v["level"]) and 0 <= v["level"] <= 3
          and isinstance(v["profiles"], list) and len(v["profiles"]) == 3
          and all(isinstance(p, str) for p in v["profiles"])
          and isinstance(v["hardware"], list) and all(isinstance(h, str) and "=" in h for h in v["hardware"])
          and v["optimizer"] in ("sgd", "adam") and _num(v["lr"]) and v["lr"] > 0
          and _num(v["momentum"]) and v["momentum"] >= 0
          and (sched is None or (isinstance(sched, list) and all(
              isinstance(e, list) and len(e) == 2 and _num(e[0]) and _num(e[1]) and e[1] > 0 for e in sched)))
          and (v["steps"] is None or (_int(v["steps"]) and v["steps"] >= 1))
          and (v["steps"] is not None or (_int(v["epochs"]) and v["epochs"] >= 1)))
    return None if ok else ("null or {level: 0-3, profiles: [3 hardware profiles], hardware: [dotted overrides], "
                            "optimizer: sgd|adam, lr: > 0, momentum: >= 0, lr_schedule: null or [[epoch, lr], ...], "
                            "epochs: int >= 1, steps: int >= 1 or null} (see configs/train/level1.yaml)")


def narelu_rule(v: Any) -> str | None:
    """train.narelu: noise-aware ReLU fine-tuning (aimcbench/train/narelu.py)."""
    if v is None:
        return None
    keys = {"profile", "adc_bits", "optimized", "epochs", "lr", "samples"}
    ok = (isinstance(v, dict) and set(v) == keys and isinstance(v["profile"], str) and _int(v["adc_bits"])
          and 2 <= v["adc_bits"] <= 24 and isinstance(v["optimized"], bool) and _int(v["epochs"])
          and v["epochs"] >= 1 and _num(v["lr"]) and v["lr"] > 0 and _int(v["samples"]) and v["samples"] >= 1)
    return None if ok else ("null or {profile: hardware profile, adc_bits: int 2-24, optimized: bool, epochs: int "
                            ">= 1, lr: > 0, samples: int >= 1}")


def optimize_bits_rule(v: Any) -> str | None:
    ok = v is None or (isinstance(v, list) and len(v) > 0 and all(_int(b) and 2 <= b <= 24 for b in v))
    return None if ok else "null or a non-empty list of integers in [2, 24]"


def sweep_values_rule(v: Any) -> str | None:
    return None if isinstance(v, list) and len(v) > 0 else "a non-empty list"


def sweep_fixed_rule(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(s, str) and "=" in s for s in v)
    return None if ok else "a list of 'dotted.key=value' strings"
