"""Digital training of the benchmark models and the trained-model cache.

Public API::

    model, info = load_or_train(model_cfg, dataset_cfg, train_cfg, cache_dir=None)  # plain dicts
    train_model(model, x, y, task, train_cfg) ; evaluate_digital(model, x, y, task, noise_sigma=0.3)
    CheckpointError  # model.checkpoint does not exist or does not fit
"""

from .cache import CheckpointError, cache_key, cache_root, canonical_hash, load_checkpoint, load_or_train, model_kwargs
from .recipes import RECIPES, Recipe, pick_recipe, register_recipe
from .loop import corrupt, evaluate_digital, noisy_parameters, total_variation, train_model

__all__ = ["RECIPES", "Recipe", "pick_recipe", "register_recipe", "CheckpointError", "cache_key", "cache_root", "canonical_hash", "corrupt", "evaluate_digital",
           "load_checkpoint", "load_or_train", "model_kwargs", "noisy_parameters", "total_variation", "train_model"]
