"""Trained-model cache: one state dict per (model, dataset, training config, seed), shared by all sweeps.

The key is the sha256 of the canonical JSON (sorted keys) of the settings that change the weights,
plus a fingerprint of the training images actually used (so the embedded MNIST sample and full MNIST
never share an entry). The data directory, the user checkpoint path, the device and train.threads are not part of it.
Entries are written to a temporary file (fsynced) and moved into place with os.replace under a file lock, so
concurrent jobs that want the same model train it once and never see a half-written file. An entry that cannot
be read (truncated, corrupted) or does not hold what its key says (missing or misshapen tensors) is renamed to
``<name>.corrupt-<UTC timestamp>`` beside it, with a one-line notice naming both files, and retrained.

Training is seeded from ``train.seed`` (the initial weights included, see aimcbench.train.seeding), so a
retrained entry equals the lost one bit for bit on the same machine and the same torch build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from aimcbench.models import (
    CheckpointError,
    builder_kwargs,
    load_checkpoint,
    read_state_dict,
)

from .seeding import seeded, training_scope

logger = logging.getLogger(__name__)

# CheckpointError, load_checkpoint and read_state_dict live in aimcbench.models; re-exported for older imports.
__all__ = ["CACHE_FORMAT", "CheckpointError", "attach_array_gains", "cache_key", "cache_root", "canonical_hash",
           "collect_array_gains", "data_fingerprint", "load_checkpoint", "load_or_train", "model_kwargs",
           "quarantine", "read_state_dict"]

# Bump when the training code changes what a given config produces. 2: seeded initialization (entries of
# format 1 were initialized from the process's random seed, so their keys must not match any more).
CACHE_FORMAT = 2


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: the argument, else $AIMC_CACHE_DIR, else ~/.cache/aimcbench."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("AIMC_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "aimcbench"


def canonical_hash(obj: Any) -> str:
    """sha256 hex digest of the canonical JSON of ``obj`` (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def data_fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """Short digest of a training set (images quantized to 8 bits, labels)."""
    h = hashlib.sha256()
    h.update(str(tuple(x.shape)).encode())
    h.update((x * 255).round().to(torch.uint8).numpy().tobytes())
    h.update(y.to(torch.int64).numpy().tobytes())
    return h.hexdigest()[:16]


def model_kwargs(model_cfg: dict) -> dict:
    """Builder keyword arguments of a model config (everything except name, task, checkpoint, input_shape)."""
    return builder_kwargs(model_cfg)


# Train keys that join the cache key only when set (null, "none" or 0 = off), so older entries keep their keys.
_OPTIONAL_TRAIN_KEYS = ("noise_injection", "aware", "augment", "narelu")
_OPTIONAL_DATASET_KEYS = ("normalize", "transform", "_target_")


def cache_key(model_cfg: dict, dataset_cfg: dict, train_cfg: dict, fingerprint: str) -> str:
    """The cache key of a trained model (see module docstring for what it covers)."""
    return canonical_hash({
        "format": CACHE_FORMAT,
        "model": {k: v for k, v in model_cfg.items() if k != "checkpoint"},
        # data_dir: location only; normalize/transform/_target_ only when set, so older entries keep their keys
        "dataset": {k: v for k, v in dataset_cfg.items()
                    if k != "data_dir" and not (k in _OPTIONAL_DATASET_KEYS and v is None)},
        # threads: speed only; noise_injection, aware and augment only when set, so plain models keep their keys
        "train": {k: v for k, v in train_cfg.items()
                  if k != "threads" and not (k in _OPTIONAL_TRAIN_KEYS and v in (None, "none", 0))},
        "data": fingerprint,
    })


def collect_array_gains(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Trained per-array scalers (study 002 level 3) of a model's layers, by module name."""
    from aimcbench.sim.convert import ARRAY_GAIN_ATTR

    return {name: getattr(m, ARRAY_GAIN_ATTR) for name, m in model.named_modules()
            if getattr(m, ARRAY_GAIN_ATTR, None) is not None}


def attach_array_gains(model: torch.nn.Module, gains: dict[str, torch.Tensor] | None) -> None:
    """Put saved per-array scalers back on the layers (the simulator reads them when it programs chips)."""
    from aimcbench.sim.convert import ARRAY_GAIN_ATTR

    for name, gain in (gains or {}).items():
        setattr(model.get_submodule(name), ARRAY_GAIN_ATTR, gain.clone())


def _atomic_save(state: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def quarantine(path: Path, reason: str, log) -> Path:
    """Move a damaged cache entry aside (``<name>.corrupt-<UTC timestamp>``) and say so in one line."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():  # two damaged versions within one second keep both
        target, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    os.replace(path, target)
    log(f"aimc: cached model {path} is damaged ({reason}); moved to {target.name} beside it, retraining")
    return target


def _load_entry(model: torch.nn.Module, path: Path) -> str | None:
    """Load a cache entry into ``model``; None when it fits, else why it is damaged (one short phrase)."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated zip, bad pickle, I/O error: all mean "damaged"
        return f"unreadable: {type(err).__name__}: {' '.join(str(err).split())[:120]}"
    if not isinstance(entry, dict) or not isinstance(entry.get("state_dict"), dict):
        return "no state dict in it"
    try:
        model.load_state_dict(entry["state_dict"])  # strict: missing, unexpected or misshapen tensors raise
        attach_array_gains(model, entry.get("array_gains"))
    except Exception as err:  # noqa: BLE001 - content is not what the key says
        return f"does not fit the model: {type(err).__name__}: {' '.join(str(err).split())[:120]}"
    return None


def load_or_train(model_cfg: dict, dataset_cfg: dict, train_cfg: dict, cache_dir: str | None = None,
                  device: str = "cpu", progress: bool | None = None, log=None) -> tuple[torch.nn.Module, dict]:
    """Return (eval-mode model, info) for plain config sections, training it only if not cached.

    info: {"key", "path", "trained" (bool), "train_s", "source" ("cache"|"trained"|"checkpoint"|"pretrained"),
    "seed", "data"}. With model_cfg["checkpoint"] set, the user's state dict is loaded instead (no training, no
    cache). How a model is trained is the first recipe of aimcbench.train.recipes that applies to ``train_cfg``.
    The initial weights are drawn inside a forked RNG scope seeded with ``train_cfg["seed"]``, and so is the
    recipe's training, so the same config gives bitwise-identical weights (module docstring); a damaged entry
    is quarantined and retrained.
    """
    from aimcbench.data import load_from_config, preprocess
    from aimcbench.models import build_from_config, model_label

    from .recipes import pick_recipe

    log = log or (lambda msg: logger.info(msg.removeprefix("aimc: ")))
    seed = int(train_cfg["seed"])

    def build() -> torch.nn.Module:
        with seeded(seed):  # the initialization is part of what the config (and so the key) determines
            return build_from_config(model_cfg)

    model = build()
    if model_cfg.get("checkpoint"):
        load_checkpoint(model, model_cfg["checkpoint"])
        return model.eval(), {"key": None, "path": str(model_cfg["checkpoint"]), "trained": False,
                              "train_s": 0.0, "source": "checkpoint", "seed": seed}
    if getattr(model, "aimc_pretrained", False):
        # Builders that load given weights (torchvision ImageNet weights or a weights file) mark the model:
        # it is evaluated as built, never trained or cached; the key identifies config + loaded weights.
        key = canonical_hash({"format": CACHE_FORMAT, "model": model_cfg, "weights": model.aimc_weights_id})
        return model.eval(), {"key": key, "path": model_cfg.get("weights_path"), "trained": False,
                              "train_s": 0.0, "source": "pretrained", "seed": seed}
    if dataset_cfg.get("train_augment") not in (None, "none"):
        train_cfg = {**train_cfg, "augment": dataset_cfg["train_augment"]}
    # The fingerprint is of the images as stored (before dataset.normalize/transform, which the key holds).
    x, y = load_from_config(dataset_cfg, "train", limit=train_cfg.get("limit"), seed=seed,
                            preprocessed=False)
    fp = data_fingerprint(x, y)
    x = preprocess(x, dataset_cfg)
    key = cache_key(model_cfg, dataset_cfg, train_cfg, fp)
    root = cache_root(cache_dir) / "models"
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{model_label(model_cfg)}-{key[:16]}.pt"
    info = {"key": key, "path": str(path), "trained": False, "train_s": 0.0, "source": "cache", "seed": seed,
            "data": fp}
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            damage = _load_entry(model, path)
            if damage is None:
                return model.eval(), info
            quarantine(path, damage, log)
            model = build()  # a failed load may have filled some tensors: start again from the seeded init
        recipe = pick_recipe(train_cfg)
        log(f"aimc: training {model_label(model_cfg)} on {dataset_cfg.get('name', dataset_cfg.get('_target_'))} "
            f"({x.shape[0]} images, {recipe.budget(train_cfg)}); cached at {path}")
        t0 = time.perf_counter()
        start = recipe.start_config(train_cfg)
        if start is not None:  # fine-tuning: start from that config's (cached) model
            base, _ = load_or_train(model_cfg, dataset_cfg, start, cache_dir, device, progress, log)
            model.load_state_dict(base.state_dict())
            if recipe.keeps_array_gains:
                attach_array_gains(model, collect_array_gains(base))
        with training_scope(seed, device):  # also seeds what a user's recipe draws from the global RNGs
            stats, stored_cfg = recipe.run(model, x, y, model_cfg.get("task", "classification"), train_cfg,
                                           device, progress, log)
        info.update(trained=True, train_s=time.perf_counter() - t0, source="trained", loss=stats["loss"])
        model.to("cpu")
        entry = {"state_dict": model.state_dict()}
        if recipe.keeps_array_gains:
            entry["array_gains"] = collect_array_gains(model)
        entry.update(config={"model": model_cfg, "dataset": dataset_cfg, "train": stored_cfg, "data": fp},
                     stats=stats)
        _atomic_save(entry, path)
    return model.eval(), info
