"""Shared pieces of the ``aimc`` commands: where the configs live, config validation, error reporting.

Validation works on plain containers (no Hydra), so ``aimcbench.cli`` can check a composed config before
Hydra starts a job and the job itself can re-check it. Every problem is raised as :class:`UsageError`,
whose ``str()`` is one line ``<dotted key>: <what is allowed>``.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path
from typing import Any, Callable

from omegaconf import OmegaConf


class UsageError(ValueError):
    """A bad setting or argument; ``key`` is the dotted key, ``str()`` is one line naming it."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


def config_dir() -> Path:
    """The packaged configs directory (``aimcbench/configs``)."""
    from aimcbench.configs import CONFIG_DIR

    return CONFIG_DIR


def _dirname(override_dirname: str) -> str:
    """Run-directory name for a job: its overrides joined (Hydra's override_dirname), or 'default'."""
    return override_dirname or "default"


# Registered at import so Hydra (and launchers that import the task module in a worker) can resolve
# ``${aimc_dirname:...}`` in hydra.run.dir; deterministic run dirs are what make reruns resume.
if not OmegaConf.has_resolver("aimc_dirname"):
    OmegaConf.register_new_resolver("aimc_dirname", _dirname)


# --------------------------------------------------------------------------------------- schema
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _int(lo: int | None = None, null: bool = False) -> tuple[Callable[[Any], bool], str]:
    desc = "an integer" + (f" >= {lo}" if lo is not None else "") + (" or null" if null else "")
    return (lambda v: (null and v is None) or (_is_int(v) and (lo is None or v >= lo))), desc


def _num(lo: float | None = None, lo_open: bool = False, null: bool = False) -> tuple[Callable[[Any], bool], str]:
    op = ">" if lo_open else ">="
    desc = "a number" + (f" {op} {lo:g}" if lo is not None else "") + (" or null" if null else "")
    return (lambda v: (null and v is None) or (_is_num(v) and (lo is None or v > lo or (not lo_open and v == lo)))), desc


def _choice(*names: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in names), "one of " + ", ".join(names)


def _str(null: bool = False) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: (null and v is None) or isinstance(v, str)), "a string" + (" or null" if null else "")


def _bool() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, bool)), "true or false"


def _int_list(lo: int = 1, empty: bool = True) -> tuple[Callable[[Any], bool], str]:
    ok = lambda v: isinstance(v, list) and (empty or v) and all(_is_int(i) and i >= lo for i in v)  # noqa: E731
    return ok, f"a list of integers >= {lo}" + ("" if empty else " (not empty)")


def _noise_injection_ok(v: Any) -> bool:
    """train.noise_injection: {kind: mul|add, eta0: >= 0} (study 004 noise-injection fine-tuning)."""
    keys = {"kind", "eta0", "spatial_std", "temporal_rel_std", "finetune_steps", "finetune_lr"}
    return (isinstance(v, dict) and set(v) <= keys
            and (v.get("finetune_steps") is None or (_is_int(v["finetune_steps"]) and v["finetune_steps"] >= 1))
            and (v.get("finetune_lr") is None or (_is_num(v["finetune_lr"]) and v["finetune_lr"] > 0))
            and v.get("kind") in ("mul", "add") and _is_num(v.get("eta0")) and v["eta0"] >= 0
            and all(_is_num(v[k]) and v[k] >= 0 for k in ("spatial_std", "temporal_rel_std") if k in v))


def _aware_ok(v: Any) -> bool:
    """train.aware: study 002 architecture-aware fine-tuning settings (aimcbench/train/aware.py)."""
    keys = {"level", "profiles", "hardware", "optimizer", "lr", "momentum", "lr_schedule", "epochs", "steps"}
    sched = v.get("lr_schedule") if isinstance(v, dict) else None
    return (isinstance(v, dict) and set(v) == keys and _is_int(v["level"]) and 0 <= v["level"] <= 3
            and isinstance(v["profiles"], list) and len(v["profiles"]) == 3
            and all(isinstance(p, str) for p in v["profiles"])
            and isinstance(v["hardware"], list) and all(isinstance(h, str) and "=" in h for h in v["hardware"])
            and v["optimizer"] in ("sgd", "adam") and _is_num(v["lr"]) and v["lr"] > 0
            and _is_num(v["momentum"]) and v["momentum"] >= 0
            and (sched is None or (isinstance(sched, list) and all(
                isinstance(e, list) and len(e) == 2 and _is_num(e[0]) and _is_num(e[1]) and e[1] > 0 for e in sched)))
            and (v["steps"] is None or (_is_int(v["steps"]) and v["steps"] >= 1))
            and (v["steps"] is not None or (_is_int(v["epochs"]) and v["epochs"] >= 1)))


def _narelu_ok(v: Any) -> bool:
    """train.narelu: study 003 noise-aware ReLU fine-tuning (see aimcbench/train/narelu.py)."""
    keys = {"profile", "adc_bits", "optimized", "epochs", "lr", "samples"}
    return (isinstance(v, dict) and set(v) == keys and isinstance(v["profile"], str) and _is_int(v["adc_bits"])
            and 2 <= v["adc_bits"] <= 24 and isinstance(v["optimized"], bool) and _is_int(v["epochs"])
            and v["epochs"] >= 1 and _is_num(v["lr"]) and v["lr"] > 0 and _is_int(v["samples"]) and v["samples"] >= 1)


def _registry(module: str, name: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    """Names registered by helper packages (models, data), so new entries need no change here."""
    try:
        return tuple(getattr(__import__(module, fromlist=[name]), name))
    except (ImportError, AttributeError):
        return fallback


MODELS = _registry("aimcbench.models", "MODELS", ("mlp", "dae"))
DATASETS = _registry("aimcbench.data", "DATASETS", ("mnist", "fashion_mnist", "synthetic"))

# Section -> key -> (check, description). Sections listed here are closed: other keys are typos.
# The model section is open (a builder may take extra keyword arguments), only its known keys are checked.
SCHEMA: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "model": {
        "name": _choice(*MODELS),
        "task": _choice("classification", "denoising", "detection"),
        "hidden": _int_list(1, empty=False),
        "checkpoint": _str(null=True),
        "num_classes": _int(2),
    },
    "dataset": {"name": _choice(*DATASETS, "images"), "data_dir": _str(null=True),
                "shape": _int_list(1, empty=False),
                "train_augment": _choice("none", "crop_flip"),
                # dataset=images (detection): image files, resize, optional COCO val2017
                "paths": (lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v), "a list of file paths"),
                "max_size": _int(16, null=True), "coco_images": _str(null=True), "coco_annotations": _str(null=True)},
    "train": {
        "steps": _int(1, null=True), "epochs": _int(0, null=True), "batch_size": _int(1), "lr": _num(0, lo_open=True), "alpha_tv": _num(0),
        "noise_sigma_max": _num(0), "seed": _int(0), "limit": _int(1, null=True),
        "threads": _int(1, null=True),
        "noise_injection": (lambda v: v is None or _noise_injection_ok(v) or (_is_num(v) and 0 <= v <= 1),
                            "null, a variation fraction in [0, 1] (study 002, with train.aware) or {kind: mul|add, "
                            "eta0: number >= 0, [finetune_steps: int >= 1, finetune_lr: > 0]} (study 004)"),
        "narelu": (lambda v: v is None or _narelu_ok(v), "null or {profile: hardware profile, adc_bits: int 2-24, "
                   "optimized: bool, epochs: int >= 1, lr: > 0, samples: int >= 1} (study 003 noise-aware ReLU)"),
        "aware": (lambda v: v is None or _aware_ok(v), "null or {level: 0-3, profiles: [3 hardware profiles], "
                  "hardware: [dotted overrides], optimizer: sgd|adam, lr: > 0, momentum: >= 0, lr_schedule: null or "
                  "[[epoch, lr], ...], epochs: int >= 1, steps: int >= 1 or null} (see configs/train/level1.yaml)"),
    },
    "mitigation": {"nabn": _bool(), "dynamic": _bool(), "calib_batches": _int(1)},
    # study 003: aimc optimize (configs/optimize.yaml)
    "optimize": {"adc_bits": (lambda v: v is None or (isinstance(v, list) and len(v) > 0 and all(
                     _is_int(b) and 2 <= b <= 24 for b in v)), "null or a non-empty list of integers in [2, 24]"),
                 "samples": _int(1), "g_min_lo_uS": _num(0, null=True), "g_max_hi_uS": _num(0, lo_open=True, null=True),
                 "g_range_min_uS": _num(0, lo_open=True), "fs_max_uA": _num(0, lo_open=True, null=True),
                 "name": _str(), "out_dir": _str(null=True)},
    "mc": {"chips": _int(1), "seed": _int(0)},
    "eval": {"n": _int(1, null=True), "batch_size": _int(1), "noise_sigma": _num(0), "images": _int(0),
             "score_threshold": _num(0)},  # detection: predictions kept for the metrics
    "sweep": {
        "key": _str(), "values": (lambda v: isinstance(v, list) and len(v) > 0, "a non-empty list"),
        "log": _bool(), "label": _str(), "loglog": _bool(), "fixed": (lambda v: isinstance(v, list) and all(
            isinstance(s, str) and "=" in s for s in v), "a list of 'dotted.key=value' strings"),
    },
}
TOP_LEVEL = {"device": _choice("cpu", "cuda", "auto"), "cache_dir": _str(null=True), "threads": _int(1, null=True)}
OPEN_SECTIONS = {"model", "hardware"}


def check_config(cfg: dict, where: str = "") -> None:
    """Validate a resolved plain config (any of the command configs); raise UsageError on the first problem.

    ``where`` is appended to messages (e.g. "at sweep.values[2]") so a bad sweep point is easy to find.
    """
    suffix = f" ({where})" if where else ""
    for key, value in cfg.items():
        if key in SCHEMA or key == "hardware":
            continue
        if key in TOP_LEVEL:
            ok, desc = TOP_LEVEL[key]
            if not ok(value):
                raise UsageError(key, f"must be {desc} (got {value!r}){suffix}")
        elif key not in ("dirs",):
            allowed = ", ".join(sorted(set(SCHEMA) | set(TOP_LEVEL) | {"hardware"}))
            raise UsageError(key, f"unknown key; allowed top-level keys: {allowed}{suffix}")
    for section, fields in SCHEMA.items():
        if section not in cfg:
            continue
        data = cfg[section]
        if not isinstance(data, dict):
            raise UsageError(section, f"must be a mapping (got {data!r}){suffix}")
        for k, v in data.items():
            if k not in fields:
                if section in OPEN_SECTIONS:
                    continue
                raise UsageError(f"{section}.{k}", f"unknown key; allowed: {', '.join(fields)}{suffix}")
            ok, desc = fields[k]
            if not ok(v):
                raise UsageError(f"{section}.{k}", f"must be {desc} (got {v!r}){suffix}")
    train = cfg.get("train")
    if isinstance(train, dict) and "steps" in train and not train.get("steps") and train.get("epochs") is None:
        raise UsageError("train.steps", "steps or epochs must be set (both are null)")
    if isinstance(train, dict) and _is_num(train.get("noise_injection")) and train["noise_injection"] > 0 \
            and not (isinstance(train.get("aware"), dict) and train["aware"]["level"] >= 1):
        raise UsageError("train.noise_injection", "a variation fraction needs architecture-aware training "
                                                  f"(train=level1|level2|level3); study 004 uses {{kind, eta0}}{suffix}")
    mit = cfg.get("mitigation")
    if isinstance(mit, dict) and mit.get("dynamic") and not mit.get("nabn"):
        raise UsageError("mitigation.dynamic", f"needs mitigation.nabn=true (dynamic calibration is part of NaBN){suffix}")
    if "model" in cfg:
        if "name" not in cfg["model"]:
            raise UsageError("model.name", f"missing; must be one of {', '.join(MODELS)}")
        if cfg["model"]["name"] == "dae" and cfg["model"].get("task", "denoising") != "denoising":
            raise UsageError("model.task", "must be denoising for model dae")
    if "hardware" in cfg:
        from aimcbench.sim import ConfigError, hardware_from_dict

        try:
            hardware_from_dict(cfg["hardware"])
        except ConfigError as err:
            raise UsageError(err.key, str(err).split(": ", 1)[-1] + suffix) from None


def set_dotted(cfg: dict, key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested plain dict; the key must already exist (typos are errors)."""
    node = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            allowed = ", ".join(map(str, node)) if isinstance(node, dict) else "(not a mapping)"
            raise UsageError(".".join(parts[: i + 1]), f"unknown key; allowed: {allowed}")
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def parse_fixed(item: str) -> tuple[str, Any]:
    """Split a sweep 'fixed' entry 'dotted.key=value' and parse the value like YAML."""
    import yaml

    key, text = item.split("=", 1)
    return key.strip(), (yaml.safe_load(text) if text.strip() else "")


def point_configs(cfg: dict) -> list[dict]:
    """One plain config per sweep point: a copy with ``sweep.fixed`` applied and the axis key set."""
    import copy

    sw = cfg["sweep"]
    out = []
    for value in sw["values"]:
        point = copy.deepcopy(cfg)
        for item in sw.get("fixed", []):
            set_dotted(point, *parse_fixed(item))
        set_dotted(point, sw["key"], value)
        out.append(point)
    return out


def check_sweep_config(cfg: dict) -> None:
    """Validate a sweep config and each of its points (so a bad value in sweep.values fails up front)."""
    check_config(cfg)
    sw = cfg["sweep"]
    for i, point in enumerate(point_configs(cfg)):
        check_config(point, where=f"at {sw['key']}={sw['values'][i]!r}, sweep.values[{i}]")


def fail(message: str, status: int = 2) -> None:
    """Print ``aimc: error: <message>`` (one line) to stderr and exit with ``status``."""
    print(f"aimc: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(status)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that are the user's input problem (exit 2, one line) rather than a bug."""
    errs: list[type[BaseException]] = [UsageError]
    for mod, name in (("aimcbench.sim", "ConfigError"), ("aimcbench.data", "DataError"),
                      ("aimcbench.train", "CheckpointError"), ("aimcbench.runner", "ResultsMismatchError"),
                      ("aimcbench.report", "ReportError")):
        try:
            errs.append(getattr(__import__(mod, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


def exits_on_user_error(fn: Callable) -> Callable:
    """Decorate a Hydra task function: user errors print one line and exit 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        errors = user_errors()
        try:
            return fn(*args, **kwargs)
        except errors as err:
            fail(str(err))

    return wrapper


def plain(cfg: Any) -> dict:
    """A resolved plain-dict copy of a DictConfig without Hydra's own section."""
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    return data
