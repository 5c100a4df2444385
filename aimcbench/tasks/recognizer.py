"""The digit recognizer of the denoising task: a fixed classifier whose accuracy on the reconstructions says
whether the digits are still recognizable (what study 000's Figs. 4, 6 and 7 show), beside PSNR/SSIM.

``eval.recognizer`` is a preset name (``aimcbench/configs/recognizer/<name>.yaml``), a mapping of the same
shape (``model``, ``dataset``, ``train`` sections), ``none`` (off) or null: the preset named like the task's
data set (``dataset.name``) when one exists, else off; so MNIST denoising gets ``configs/recognizer/mnist.yaml``
(a 784-256-10 MLP trained on the clean MNIST training digits) and a data set without a preset gets no
``digit_accuracy``. The recognizer is trained and cached like any model (aimcbench.train.load_or_train: seeded,
its cache key covers its config and its training data; the runner hands the task its model cache, since the
engine's layers keep tasks from importing training), digitally, and never simulated: it is the observer,
not part of the chip. It sees the reconstructions clamped to [0, 1] (the range of the images it was trained
on, and what a display shows).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

PRESET_DIR = Path(__file__).resolve().parents[1] / "configs" / "recognizer"
SECTIONS = ("model", "dataset", "train")
# The train section's defaults (aimcbench.config.schema.TrainConfig, which the engine's layers keep tasks from
# importing; tests/test_recognizer.py checks that the two agree). A recognizer's train keys override them.
TRAIN_DEFAULTS = {"steps": 3000, "epochs": None, "batch_size": 128, "lr": 0.002, "alpha_tv": 0.001,
                  "noise_sigma_max": 0.6, "seed": 0, "threads": 1, "limit": None, "noise_injection": None,
                  "aware": None, "narelu": None}


class RecognizerError(ValueError):
    """An unusable ``eval.recognizer``; ``str()`` is one line ``eval.recognizer: <problem>``."""


def presets() -> list[str]:
    """The packaged recognizer presets (configs/recognizer/*.yaml)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def recognizer_config(spec: Any, dataset_cfg: dict) -> dict | None:
    """The recognizer's {model, dataset, train} sections for ``eval.recognizer`` = ``spec`` (see module
    docstring), train filled with the schema's defaults; None when there is none."""
    from omegaconf import OmegaConf

    if spec is None:
        name = str(dataset_cfg.get("name") or "")
        if not name or not (PRESET_DIR / f"{name}.yaml").is_file():
            return None
        spec = name
    if isinstance(spec, str):
        if spec == "none":
            return None
        path = PRESET_DIR / f"{spec}.yaml"
        if not path.is_file():
            raise RecognizerError(f"eval.recognizer: no preset {spec!r}; allowed: {', '.join(presets())}, none, "
                                  "null or a mapping {model, dataset, train}")
        spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    elif not isinstance(spec, dict):
        spec = OmegaConf.to_container(OmegaConf.create(spec), resolve=True)
    if not isinstance(spec, dict) or not {"model", "dataset"} <= set(spec) or not set(spec) <= set(SECTIONS):
        raise RecognizerError("eval.recognizer: a mapping needs model and dataset sections (and may have train)")
    train = {**TRAIN_DEFAULTS, **(spec.get("train") or {})}
    dataset = dict(spec["dataset"])
    if dataset.get("data_dir") is None and dataset.get("name") == dataset_cfg.get("name"):
        dataset["data_dir"] = dataset_cfg.get("data_dir")  # the task's own files, where it found them
    return {"model": dict(spec["model"]), "dataset": dataset, "train": train}


def load_recognizer(spec: Any, dataset_cfg: dict, cache_dir: str | None, device: str,
                    log: Callable[[str], None], load_or_train: Callable | None
                    ) -> tuple[torch.nn.Module | None, dict]:
    """(eval-mode recognizer on ``device``, info for meta.json) or (None, {}) when there is none.
    ``load_or_train``: aimcbench.train.load_or_train (the runner sets it on the task)."""
    from aimcbench.data import dataset_label
    from aimcbench.models import model_label

    cfg = recognizer_config(spec, dataset_cfg)
    if cfg is None:
        return None, {}
    if load_or_train is None:
        raise RecognizerError("eval.recognizer: the digit recognizer is trained through the model cache, which "
                              "the sweep runner provides (aimc sweep or aimcbench.runner.run_sweep)")
    model, info = load_or_train(cfg["model"], cfg["dataset"], cfg["train"], cache_dir=cache_dir, device=device,
                                log=log)
    return model.to(device).eval(), {"spec": spec if isinstance(spec, str) or spec is None else "mapping",
                                     "model": model_label(cfg["model"]), "dataset": dataset_label(cfg["dataset"]),
                                     "cache": info.get("path"), "source": info.get("source"),
                                     "train_seed": int(cfg["train"]["seed"]), "_dataset_cfg": cfg["dataset"]}


@torch.no_grad()
def recognized(recognizer: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
               dataset_cfg: dict | None = None) -> torch.Tensor:
    """Fraction of ``images`` ([K, B, C, H, W] or [B, C, H, W]) that ``recognizer`` labels as ``labels`` [B]:
    [K] (one accuracy per chip) or a scalar, as aimcbench.metrics.accuracy."""
    from aimcbench.data import preprocess
    from aimcbench.metrics import accuracy

    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:]).clamp(0.0, 1.0)
    if dataset_cfg:
        flat = preprocess(flat, dataset_cfg)  # the recognizer's own normalization, if its data set has one
    logits = recognizer(flat)
    return accuracy(logits.reshape(*lead, logits.shape[-1]), labels)
