"""``aimc train``: train one model digitally (or load it from the cache) and print its test metrics."""

from __future__ import annotations

import json

from omegaconf import DictConfig

from ._common import UsageError, check_config, exits_on_user_error, plain


@exits_on_user_error
def run(cfg: DictConfig) -> None:
    """Hydra task: load_or_train, evaluate the float model on the test split, write train.json."""
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from aimcbench.data import dataset_label, load_from_config
    from aimcbench.models import model_label
    from aimcbench.runner import pick_device
    from aimcbench.train import evaluate_digital, load_or_train

    data = plain(cfg)
    check_config(data)
    if data["model"].get("task") == "detection":
        raise UsageError("model", f"{model_label(data['model'])} is a detection model with given weights (COCO, "
                                  "model.weights_path or random); aimc train has nothing to train: use aimc sweep")
    device = pick_device(data.get("device", "cpu"))
    model, info = load_or_train(data["model"], data["dataset"], data["train"], cache_dir=data.get("cache_dir"),
                                device=device)
    x, y = load_from_config(data["dataset"], "test")
    metrics = evaluate_digital(model, x, y, data["model"].get("task", "classification"), device=device)
    aware = data["train"].get("aware")
    if aware and aware.get("level"):
        # Also through the level's own pipeline (noise-free): what the fine-tuning optimized.
        from aimcbench.train.aware import aware_hardware
        from aimcbench.train.hwaware import HardwareAware

        patch = HardwareAware(model, aware_hardware(aware, int(aware["level"])))
        try:
            pipe = evaluate_digital(model, x, y, data["model"].get("task", "classification"), device=device)
        finally:
            patch.remove()
        metrics.update({f"level{aware['level']}_{k}": v for k, v in pipe.items()})
    out = {"model": data["model"], "dataset": dataset_label(data["dataset"]), "train": data["train"], **info,
           "test": metrics}
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "train.json").write_text(json.dumps(out, indent=2, default=str))
    how = {"cache": "loaded from cache", "trained": f"trained in {info['train_s']:.1f} s",
           "checkpoint": "loaded from checkpoint"}[info["source"]]
    print(f"{model_label(data['model'])} on {dataset_label(data['dataset'])}: {how}: {info['path']}")
    print("test " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) + f" ({x.shape[0]} images)")

