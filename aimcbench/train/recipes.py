"""Training recipes: how a cached model is made from its training config.

A recipe says whether it applies to a training config (:meth:`Recipe.applies`), which training config its
starting model has (:meth:`Recipe.start_config`: ``None`` = a fresh initialization, else that config's model,
itself cached, is loaded first) and runs (:meth:`Recipe.run`). :func:`pick_recipe` takes the first registered
recipe that applies, so ``aimcbench.train.cache`` knows no study: hardware-aware fine-tuning (study 002),
noise-injection fine-tuning (study 004) and noise-aware ReLUs (study 003) are recipes like plain training.
Another package adds its own with :func:`register_recipe` (ahead of plain training).
"""
from __future__ import annotations

from typing import Any, Callable

import torch


class Recipe:
    """Plain digital training from a fresh initialization (the base class is the default recipe)."""

    name = "plain"
    keeps_array_gains = False  # trained per-array scalers are inherited from the start model and saved

    def applies(self, train_cfg: dict[str, Any]) -> bool:
        return True

    def start_config(self, train_cfg: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def budget(self, train_cfg: dict[str, Any]) -> str:
        """The training budget as log text."""
        return f"{train_cfg['steps']} steps" if train_cfg.get("steps") else f"{train_cfg['epochs']} epochs"

    def run(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, train_cfg: dict[str, Any],
            device: str, progress: bool | None, log: Callable[[str], None]) -> tuple[dict, dict[str, Any]]:
        """Train ``model`` in place; returns (stats with "loss", the training config to store with the entry)."""
        from .loop import train_model

        return train_model(model, x, y, task, train_cfg, device=device, progress=progress), train_cfg


class AwareRecipe(Recipe):
    """Study 002: level N fine-tunes the (cached) level N-1 model through the level-N pipeline (train/aware.py)."""

    name = "aware"
    keeps_array_gains = True

    def applies(self, train_cfg):
        aware = train_cfg.get("aware")
        return bool(aware) and int(aware.get("level") or 0) >= 1

    def start_config(self, train_cfg):
        from .aware import lower_level_cfg

        return lower_level_cfg(train_cfg)

    def budget(self, train_cfg):
        aw = train_cfg["aware"]
        return (f"level {aw['level']}: {aw['steps']} steps" if aw.get("steps") else
                f"level {aw['level']}: {aw['epochs']} epochs") + " from the level below"

    def run(self, model, x, y, task, train_cfg, device, progress, log):
        from .aware import finetune_aware

        aware = train_cfg["aware"]
        log(f"aimc: fine-tuning it for level {aware['level']} ({aware['profiles'][aware['level'] - 1]}, "
            f"injection {train_cfg.get('noise_injection') or 0})")
        return finetune_aware(model, x, y, train_cfg, device=device, progress=progress), train_cfg


def _injection(train_cfg: dict[str, Any]) -> dict:
    return train_cfg.get("noise_injection") if isinstance(train_cfg.get("noise_injection"), dict) else {}


class NoiseInjectionFinetune(Recipe):
    """Study 004 Fig. 3: the plain model of this very config (noise_injection null, cached and shared with the
    NaBN comparison), fine-tuned ``finetune_steps`` mini-batches with noise injected into the weights."""

    name = "noise_injection_finetune"

    def applies(self, train_cfg):
        return bool(_injection(train_cfg).get("finetune_steps"))

    def start_config(self, train_cfg):
        return {**train_cfg, "noise_injection": None}

    def run(self, model, x, y, task, train_cfg, device, progress, log):
        inject = _injection(train_cfg)
        log(f"aimc: fine-tuning it with {inject['kind']} noise injection (eta0 {inject['eta0']}) for "
            f"{inject['finetune_steps']} steps")
        tuned = {**train_cfg, "steps": int(inject["finetune_steps"]), "epochs": None,
                 "lr": float(inject.get("finetune_lr") or train_cfg["lr"])}
        if tuned.get("narelu"):  # both set: noise-aware ReLUs after the injected steps (as before recipes)
            return NoiseAwareReluRecipe().run(model, x, y, task, tuned, device, progress, log)
        return Recipe.run(self, model, x, y, task, tuned, device, progress, log)


class NoiseAwareReluRecipe(Recipe):
    """Study 003: the digital model of this config (narelu null, cached), then noise-aware ReLU epochs."""

    name = "narelu"

    def applies(self, train_cfg):
        return bool(train_cfg.get("narelu"))

    def start_config(self, train_cfg):
        return {**train_cfg, "narelu": None}

    def run(self, model, x, y, task, train_cfg, device, progress, log):
        from .narelu import finetune_narelu

        return finetune_narelu(model, x, y, train_cfg, device=device, progress=progress, log=log), train_cfg


RECIPES: list[Recipe] = [AwareRecipe(), NoiseInjectionFinetune(), NoiseAwareReluRecipe()]
"""Recipes tried in order; plain training (:class:`Recipe`) when none applies."""


def register_recipe(recipe: Recipe, first: bool = False) -> None:
    """Add a recipe (tried before plain training; ``first``: before every registered one)."""
    RECIPES.insert(0, recipe) if first else RECIPES.append(recipe)


def pick_recipe(train_cfg: dict[str, Any]) -> Recipe:
    """The first registered recipe that applies to ``train_cfg``, else plain training."""
    return next((r for r in RECIPES if r.applies(train_cfg)), Recipe())
