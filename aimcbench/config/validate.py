"""The one validation path of every command's settings, on plain (resolved) containers.

Hydra already checks key names and types while it composes (the schema is the first entry of every defaults
list); :func:`check_config` repeats that on the plain dict (so configs built in Python are checked too) and adds
what a type cannot say: ranges, choices, the shape of mappings, rules that span several keys, and every point of
a sweep. Every problem is a :class:`UsageError` whose ``str()`` is one line ``<dotted key>: <what is allowed>``.
"""

from __future__ import annotations

from typing import Any

from aimcbench.sim.config import ConfigError, _build, hardware_from_dict
from aimcbench.sim.precision import PRECISIONS

from .errors import UsageError
from .points import point_configs
from .schema import SECTIONS

TOP_LEVEL_CHOICES = {"device": ("cpu", "cuda", "auto"), "precision": PRECISIONS, "progress": ("auto", "on", "off"),
                     "log_level": ("DEBUG", "INFO", "WARNING", "ERROR")}
TOP_LEVEL = ("device", "precision", "compile", "cache_dir", "threads", "wait", "progress", "log_level", "dirs", "out", "normalize_to",
             "stat")
# Known keys of the open model section (a builder or a user's _target_ may take others): checked when present.
_MODEL_KEYS = {
    "task": lambda v: v in ("classification", "denoising", "detection") or (isinstance(v, str) and "." in v),
    "hidden": lambda v: isinstance(v, list) and v and all(_int(i) and i >= 1 for i in v),
    "checkpoint": lambda v: v is None or isinstance(v, str),
    "num_classes": lambda v: _int(v) and v >= 2,
    "_target_": lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
}
_MODEL_ALLOWED = {"task": "classification, denoising, detection or a task's dotted path",
                  "hidden": "a list of integers >= 1 (not empty)", "checkpoint": "a file path or null",
                  "num_classes": "an integer >= 2", "_target_": "the dotted path of a callable returning a torch "
                                                                "nn.Module (e.g. mynets.LeNet5)"}


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _suffix(where: str) -> str:
    return f" ({where})" if where else ""


def _section(cls: type, data: Any, key: str, where: str) -> None:
    try:
        _build(cls, data, key)
    except ConfigError as err:
        raise UsageError(err.key, str(err).split(": ", 1)[-1] + _suffix(where)) from None


def check_model(model: Any, where: str = "") -> None:
    """The open model section: a registered ``name`` or a ``_target_``, known keys well-formed."""
    if not isinstance(model, dict):
        raise UsageError("model", f"must be a mapping (got {model!r}){_suffix(where)}")
    for k, ok in _MODEL_KEYS.items():
        if k in model and not ok(model[k]):
            raise UsageError(f"model.{k}", f"must be {_MODEL_ALLOWED[k]} (got {model[k]!r}){_suffix(where)}")
    from aimcbench.models import ModelError, check_model_config

    try:  # a registered name, or a _target_ that imports and takes the section's keys (nothing is built)
        check_model_config(model)
    except ModelError as err:
        key, _, text = str(err).partition(": ")
        raise UsageError(key, text + _suffix(where)) from None
    if model.get("name") == "dae" and model.get("task", "denoising") != "denoising":
        raise UsageError("model.task", "must be denoising for model dae")


def check_dataset(dataset: Any, where: str = "") -> None:
    """The open dataset section: a registered ``name`` or a ``_target_``."""
    if not isinstance(dataset, dict):
        raise UsageError("dataset", f"must be a mapping (got {dataset!r}){_suffix(where)}")
    from aimcbench.data import DATASETS, DataError, check_dataset_config

    names = (*DATASETS, "images")
    if not dataset.get("_target_") and dataset.get("name") not in names:
        raise UsageError("dataset.name", f"must be one of {', '.join(names)} or set dataset._target_ "
                                         f"(got {dataset.get('name')!r}){_suffix(where)}")
    try:  # _target_ (imports, takes the keys), normalize, transform
        check_dataset_config(dataset)
    except DataError as err:
        key, _, text = str(err).partition(": ")
        raise UsageError(key, text + _suffix(where)) from None


def check_config(cfg: dict, where: str = "") -> None:
    """Validate a resolved plain config of any command; raise UsageError on the first problem.

    ``where`` is appended to messages (e.g. "at sweep.values[2]") so a bad sweep point is easy to find."""
    sfx = _suffix(where)
    for key, value in cfg.items():
        if key in SECTIONS:
            _section(SECTIONS[key], value, key, where)
        elif key in TOP_LEVEL_CHOICES and value not in TOP_LEVEL_CHOICES[key]:
            raise UsageError(key, f"must be one of {', '.join(TOP_LEVEL_CHOICES[key])} (got {value!r}){sfx}")
        elif key == "threads" and not (value is None or (_int(value) and value >= 1)):
            raise UsageError(key, f"must be an integer >= 1 or null (got {value!r}){sfx}")
        elif key not in (*SECTIONS, *TOP_LEVEL, "model", "dataset", "hardware"):
            raise UsageError(key, f"unknown key; allowed top-level keys: "
                                  f"{', '.join(sorted({*SECTIONS, *TOP_LEVEL, 'model', 'dataset', 'hardware'}))}{sfx}")
    if "model" in cfg:
        check_model(cfg["model"], where)
    if "dataset" in cfg:
        check_dataset(cfg["dataset"], where)
    train = cfg.get("train")
    if isinstance(train, dict) and not train.get("steps") and train.get("epochs") is None:
        raise UsageError("train.steps", "steps or epochs must be set (both are null)")
    inj = train.get("noise_injection") if isinstance(train, dict) else None
    if isinstance(inj, (int, float)) and not isinstance(inj, bool) and inj > 0 \
            and not (isinstance(train.get("aware"), dict) and train["aware"]["level"] >= 1):
        raise UsageError("train.noise_injection", "a variation fraction needs hardware-aware training "
                                                  f"(train=level1|level2|level3); weight noise uses {{kind, eta0}}{sfx}")
    mit = cfg.get("mitigation")
    if isinstance(mit, dict) and mit.get("dynamic") and not mit.get("nabn"):
        raise UsageError("mitigation.dynamic", f"needs mitigation.nabn=true (dynamic calibration is part of NaBN){sfx}")
    if isinstance(cfg.get("mc"), dict):
        check_shard(cfg["mc"], sfx)
    rec = (cfg.get("eval") or {}).get("recognizer") if isinstance(cfg.get("eval"), dict) else None
    if isinstance(rec, str) and rec != "none":  # a preset name must name a packaged preset (study 000's recognizer)
        from aimcbench.tasks.recognizer import presets

        if rec not in presets():
            raise UsageError("eval.recognizer", f"must be one of {', '.join(presets())}, none, null or a mapping "
                                                f"{{model, dataset, train}} (got {rec!r}){sfx}")
    if "hardware" in cfg:
        try:
            from aimcbench.sim.circuit import check_device_circuit

            check_device_circuit(hardware_from_dict(cfg["hardware"]))
        except ConfigError as err:
            raise UsageError(err.key, str(err).split(": ", 1)[-1] + sfx) from None


def check_shard(mc: dict, sfx: str = "") -> None:
    """mc.shard_index / mc.shard_count (issue 15): shard i of n, every shard holding at least one chip."""
    index, count, chips = mc.get("shard_index", 0), mc.get("shard_count", 1), mc.get("chips")
    if not (_int(index) and _int(count) and _int(chips)):
        return  # a wrong type is the section check's to report
    if not 0 <= index < count:
        raise UsageError("mc.shard_index", f"must be an integer in [0, {count - 1}] for mc.shard_count={count} "
                                           f"(got {index}){sfx}")
    if count > chips:
        raise UsageError("mc.shard_count", f"must be at most mc.chips={chips}, so that every shard runs a chip "
                                           f"(got {count}){sfx}")


def check_sweep_config(cfg: dict) -> None:
    """Validate a sweep config and each of its points (so a bad value in sweep.values fails up front)."""
    check_config(cfg)
    sw = cfg["sweep"]
    for i, point in enumerate(point_configs(cfg)):
        check_config(point, where=f"at {sw['key']}={sw['values'][i]!r}, sweep.values[{i}]")
