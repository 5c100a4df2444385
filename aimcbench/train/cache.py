"""Trained-model cache: one state dict per (model, dataset, training config, seed), shared by all sweeps.

The key is the sha256 of the canonical JSON (sorted keys) of the settings that change the weights,
plus a fingerprint of the training images actually used (so the embedded MNIST sample and full MNIST
never share an entry). The data directory, the user checkpoint path, the device and train.threads are not part of it.
Entries are written to a temporary file and moved into place with os.replace under a file lock, so
concurrent jobs that want the same model train it once and never see a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

CACHE_FORMAT = 1  # bump when the training code changes what a given config produces


class CheckpointError(ValueError):
    """A user checkpoint (model.checkpoint) that is missing or does not fit the model; one-line message."""


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
    return {k: v for k, v in model_cfg.items() if k not in ("name", "task", "checkpoint", "input_shape")}


# Train keys that join the cache key only when set (null, "none" or 0 = off), so older entries keep their keys.
_OPTIONAL_TRAIN_KEYS = ("noise_injection", "aware", "augment", "narelu")


def cache_key(model_cfg: dict, dataset_cfg: dict, train_cfg: dict, fingerprint: str) -> str:
    """The cache key of a trained model (see module docstring for what it covers)."""
    return canonical_hash({
        "format": CACHE_FORMAT,
        "model": {k: v for k, v in model_cfg.items() if k != "checkpoint"},
        "dataset": {k: v for k, v in dataset_cfg.items() if k != "data_dir"},
        # threads: speed only; noise_injection, aware and augment only when set, so plain models keep their keys
        "train": {k: v for k, v in train_cfg.items()
                  if k != "threads" and not (k in _OPTIONAL_TRAIN_KEYS and v in (None, "none", 0))},
        "data": fingerprint,
    })


def read_state_dict(path: str | os.PathLike, key: str, error: type[CheckpointError] = CheckpointError) -> dict:
    """A state dict from a user's file (also one saved as {"state_dict": ...}); one-line ``error`` naming ``key``
    when the file is missing, unreadable or holds something else. Shared by model.checkpoint and weights_path."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise error(f"{key}: no file {str(p)!r}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise error(f"{key}: cannot read {str(p)!r} as a torch state dict ({type(err).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise error(f"{key}: {str(p)!r} holds a {type(state).__name__}, not a state dict")
    return state


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a user's state dict into ``model``; raise CheckpointError with one line if it does not fit."""
    p = Path(path).expanduser()
    state = read_state_dict(p, "model.checkpoint")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
        if bad:
            k = bad[0]
            parts.append(f"shape of {k} is {tuple(state[k].shape)}, model has {tuple(own[k].shape)}")
        raise CheckpointError(f"model.checkpoint: {str(p)!r} does not fit the configured model ({'; '.join(parts)})")
    model.load_state_dict(state)


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
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_or_train(model_cfg: dict, dataset_cfg: dict, train_cfg: dict, cache_dir: str | None = None,
                  device: str = "cpu", progress: bool | None = None, log=None) -> tuple[torch.nn.Module, dict]:
    """Return (eval-mode model, info) for plain config sections, training it only if not cached.

    info: {"key", "path", "trained" (bool), "train_s", "source" ("cache"|"trained"|"checkpoint"), "data"}.
    With model_cfg["checkpoint"] set, the user's state dict is loaded instead (no training, no cache).
    """
    from aimcbench.data import load_split
    from aimcbench.models import build_model

    log = log or (lambda msg: print(msg, file=sys.stderr))
    model = build_model(model_cfg["name"], **model_kwargs(model_cfg))
    if model_cfg.get("checkpoint"):
        load_checkpoint(model, model_cfg["checkpoint"])
        return model.eval(), {"key": None, "path": str(model_cfg["checkpoint"]), "trained": False,
                              "train_s": 0.0, "source": "checkpoint"}
    if getattr(model, "aimc_pretrained", False):
        # Builders that load given weights (torchvision ImageNet weights or a weights file) mark the model:
        # it is evaluated as built, never trained or cached; the key identifies config + loaded weights.
        key = canonical_hash({"format": CACHE_FORMAT, "model": model_cfg, "weights": model.aimc_weights_id})
        return model.eval(), {"key": key, "path": model_cfg.get("weights_path"), "trained": False,
                              "train_s": 0.0, "source": "pretrained"}
    if dataset_cfg.get("train_augment") not in (None, "none"):
        train_cfg = {**train_cfg, "augment": dataset_cfg["train_augment"]}
    x, y = load_split(dataset_cfg["name"], "train", data_dir=dataset_cfg.get("data_dir"),
                      limit=train_cfg.get("limit"), seed=int(train_cfg["seed"]))
    fp = data_fingerprint(x, y)
    key = cache_key(model_cfg, dataset_cfg, train_cfg, fp)
    root = cache_root(cache_dir) / "models"
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{model_cfg['name']}-{key[:16]}.pt"
    info = {"key": key, "path": str(path), "trained": False, "train_s": 0.0, "source": "cache", "data": fp}
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            entry = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(entry["state_dict"])
            attach_array_gains(model, entry.get("array_gains"))
            return model.eval(), info
        budget = f"{train_cfg['steps']} steps" if train_cfg.get("steps") else f"{train_cfg['epochs']} epochs"
        aw = train_cfg.get("aware")
        if aw and int(aw.get("level") or 0) >= 1:
            budget = (f"level {aw['level']}: {aw['steps']} steps" if aw.get("steps") else
                      f"level {aw['level']}: {aw['epochs']} epochs") + " from the level below"
        log(f"aimc: training {model_cfg['name']} on {dataset_cfg['name']} ({x.shape[0]} images, {budget}); "
            f"cached at {path}")
        t0 = time.perf_counter()
        from .loop import train_model

        aware = train_cfg.get("aware")
        if aware and int(aware.get("level") or 0) >= 1:
            # Study 002: level N fine-tunes the (cached) level N-1 model, level 1 the float model.
            from .aware import finetune_aware, lower_level_cfg

            base, _ = load_or_train(model_cfg, dataset_cfg, lower_level_cfg(train_cfg), cache_dir, device,
                                    progress, log)
            model.load_state_dict(base.state_dict())
            attach_array_gains(model, collect_array_gains(base))
            log(f"aimc: fine-tuning it for level {aware['level']} ({aware['profiles'][aware['level'] - 1]}, "
                f"injection {train_cfg.get('noise_injection') or 0})")
            stats = finetune_aware(model, x, y, train_cfg, device=device, progress=progress)
            info.update(trained=True, train_s=time.perf_counter() - t0, source="trained", loss=stats["loss"])
            model.to("cpu")
            _atomic_save({"state_dict": model.state_dict(), "array_gains": collect_array_gains(model),
                          "config": {"model": model_cfg, "dataset": dataset_cfg, "train": train_cfg, "data": fp},
                          "stats": stats}, path)
            return model.eval(), info
        inject = train_cfg.get("noise_injection") if isinstance(train_cfg.get("noise_injection"), dict) else {}
        if inject.get("finetune_steps"):
            # Study 004 Fig. 3: start from the plain model of this very config (noise_injection null, cached
            # and shared with the NaBN comparison), then fine-tune finetune_steps mini-batches with noise.
            base, _ = load_or_train(model_cfg, dataset_cfg, {**train_cfg, "noise_injection": None}, cache_dir,
                                    device, progress, log)
            model.load_state_dict(base.state_dict())
            log(f"aimc: fine-tuning it with {inject['kind']} noise injection (eta0 {inject['eta0']}) for "
                f"{inject['finetune_steps']} steps")
            train_cfg = {**train_cfg, "steps": int(inject["finetune_steps"]), "epochs": None,
                         "lr": float(inject.get("finetune_lr") or train_cfg["lr"])}
        if train_cfg.get("narelu"):
            # Study 003: the digital model of this config (narelu null, cached), then noise-aware ReLU epochs.
            from .narelu import finetune_narelu

            base, _ = load_or_train(model_cfg, dataset_cfg, {**train_cfg, "narelu": None}, cache_dir, device,
                                    progress, log)
            model.load_state_dict(base.state_dict())
            stats = finetune_narelu(model, x, y, train_cfg, device=device, progress=progress, log=log)
        else:
            stats = train_model(model, x, y, model_cfg.get("task", "classification"), train_cfg, device=device,
                                progress=progress)
        info.update(trained=True, train_s=time.perf_counter() - t0, source="trained", loss=stats["loss"])
        model.to("cpu")
        _atomic_save({"state_dict": model.state_dict(), "config": {"model": model_cfg, "dataset": dataset_cfg,
                      "train": train_cfg, "data": fp}, "stats": stats}, path)
    return model.eval(), info
