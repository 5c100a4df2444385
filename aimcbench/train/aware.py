"""Study 002's architecture-aware fine-tuning: level N fine-tunes the level N-1 model through the level-N pipeline.

The settings live in ``train.aware`` (configs/train/level1.yaml ...):
  level         1, 2 or 3: the pipeline trained for (0 or a null block: plain float training)
  profiles      the hardware profile of each level, [rram_l1, rram_l2, rram_l3]
  hardware      dotted overrides applied to those profiles (e.g. [device.on_off_ratio=1000])
  optimizer     sgd (momentum) or adam; lr, momentum
  lr_schedule   null, or [[epoch, lr], ...]: from that epoch on, that learning rate (study 002's WRN schedule)
  epochs/steps  the fine-tuning budget of each level (steps, when set, wins: CPU-sized runs)
``train.noise_injection`` (a number) is the programming variation injected at every mini-batch of the last level,
relative to the range as the level's profile defines it (level 1: 2 max|W|; levels 2-3: the cell range I_on - I_off);
the lower levels are trained without injection and shared (cached) by every injection level.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .hwaware import HardwareAware
from .loop import augment_batch
from .seeding import training_scope

logger = logging.getLogger(__name__)


def aware_hardware(aware: dict, level: int):
    """The validated HardwareConfig that level ``level`` trains for."""
    from aimcbench.sim import load_hardware

    return load_hardware(aware["profiles"][level - 1], list(aware.get("hardware") or []))


def lr_at(aware: dict, epoch: float) -> float:
    """The learning rate in effect at (fractional) ``epoch``: the schedule's last entry at or before it."""
    lr = float(aware["lr"])
    for start, value in aware.get("lr_schedule") or []:
        if epoch >= float(start):
            lr = float(value)
    return lr


def finetune_aware(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, train_cfg: dict[str, Any],
                   device: str = "cpu", progress: bool | None = None) -> dict[str, float]:
    """Fine-tune ``model`` (already holding the level N-1 weights) in place through the level-N pipeline.

    Per-array scalers are trained when the level's profile is tiled or has an ADC (level 3); they end up on the
    layers as ``aimc_array_gain`` (see :func:`aimcbench.sim.convert.apply_array_gain`). Returns loss/steps/epochs.
    """
    if progress is None:
        progress = sys.stderr.isatty()
    aware = train_cfg["aware"]
    level = int(aware["level"])
    hw = aware_hardware(aware, level)
    injection = float(train_cfg.get("noise_injection") or 0.0)
    threads = train_cfg.get("threads")
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        seed = int(train_cfg["seed"]) + 1000 * level
        # Global draws (the GPU's injected variation, dropout) come from a forked RNG seeded for this level.
        with training_scope(seed, device):
            gen = torch.Generator().manual_seed(seed + 1)
            noise_gen = torch.Generator().manual_seed(seed + 2)
            model.to(device).train()
            tiled = hw.mapping.tile_rows is not None or hw.adc.bits is not None
            patch = HardwareAware(model, hw, injection=injection, train_gains=tiled,
                                  generator=noise_gen if device == "cpu" else None)
            params = list(model.parameters()) + patch.parameters()
            if aware["optimizer"] == "sgd":
                opt = torch.optim.SGD(params, lr=lr_at(aware, 0), momentum=float(aware["momentum"]))
            else:
                opt = torch.optim.Adam(params, lr=lr_at(aware, 0))
            n, bs = x.shape[0], int(train_cfg["batch_size"])
            per_epoch = -(-n // bs)
            steps = int(aware["steps"]) if aware.get("steps") else int(aware["epochs"]) * per_epoch
            augment = train_cfg.get("augment") or "none"
            recent: list[float] = []
            done = 0
            bar = tqdm(total=steps, desc=f"level {level}", disable=not progress, leave=False, unit="step")
            try:
                while done < steps:
                    order = torch.randperm(n, generator=gen)
                    for start in range(0, n, bs):
                        if done >= steps:
                            break
                        # A schedule in epochs also works for step budgets (a step is 1/per_epoch of an epoch).
                        for group in opt.param_groups:
                            group["lr"] = lr_at(aware, done / per_epoch)
                        idx = order[start:start + bs]
                        xb = augment_batch(x[idx], augment, gen).to(device)
                        # Mixed precision on a GPU for the digital parts (batch norm, pooling); analog layers stay fp32.
                        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=str(device).startswith("cuda")):
                            logits = model(xb)
                        loss = F.cross_entropy(logits.float(), y[idx].to(device))
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                        recent = (recent + [float(loss.detach())])[-per_epoch:]
                        done += 1
                        bar.update(1)
            finally:
                bar.close()
                patch.remove()
            model.eval()
            mean_loss = sum(recent) / max(len(recent), 1)
            logger.info(f"level {level}: {done} steps ({done / per_epoch:.1f} epochs), loss {mean_loss:.4f}")
            return {"loss": mean_loss, "steps": done, "epochs": done / per_epoch}
    finally:
        torch.set_num_threads(saved)


def lower_level_cfg(train_cfg: dict[str, Any]) -> dict[str, Any]:
    """The training config of the model that level N fine-tunes: level N-1 without injection (level 0: float)."""
    aware = train_cfg["aware"]
    level = int(aware["level"])
    if level <= 1:
        return {**train_cfg, "aware": None, "noise_injection": None}
    return {**train_cfg, "aware": {**aware, "level": level - 1}, "noise_injection": None}
