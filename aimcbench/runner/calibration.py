"""Noise-aware batch norm in a sweep (study 004, Algorithm 1): the calibration data and the calibrated chips.

``mitigation`` settings (config/schema.py MitigationConfig): ``calib_batches`` x ``eval.batch_size`` training
images, or one pass over the whole training split (``calib_pass``, the study's "calibration over the training
data"); ``calib_momentum`` (0.999, or null for the cumulative average); ``calib_hardware`` calibrates the chips
once under other hardware settings (study 004 Fig. 3: at eta0 0.06) and every point starts from those statistics
(with ``dynamic`` they keep adapting to the point's own noise, test batch by test batch).
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch

from .shards import chip_ids


class Batches:
    """A re-iterable list of input batches (first item of each (x, y) pair when a loader yields pairs)."""

    def __init__(self, source: Iterable):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self):
        for b in self.source:
            yield b[0] if isinstance(b, tuple) else b


def needs_adc_calibration(cfg: dict) -> bool:
    """True when a layer's ADC full scale is to be set from data in this sweep (study 003's naive mapping:
    ``adc.full_scale: calibrated_max`` without a per-layer ``adc_bound``, at any point of the sweep)."""
    from aimcbench.config.points import point_configs

    for point in (point_configs(cfg) if cfg.get("sweep") else [cfg]):
        hw = point.get("hardware") or {}
        if (hw.get("adc") or {}).get("full_scale") == "calibrated_max":
            per_layer = hw.get("per_layer") or {}
            if not per_layer or any("adc_bound" not in (v or {}) for v in per_layer.values()):
                return True
    return False


def calibration_batches(cfg: dict) -> Optional[Batches]:
    """Training images for noise-aware batch norm and for data-set ADC full scales (``adc.full_scale:
    calibrated_max``) in eval.batch_size batches, or None when neither is asked for.

    calib_pass: the whole training split (ImageNet: decoded one batch at a time); otherwise a seeded random
    subset (seed mc.seed) of calib_batches x eval.batch_size images, the same for every point and chip."""
    from aimcbench.data import load_from_config

    mit = cfg.get("mitigation") or {}
    if not mit.get("nabn") and not needs_adc_calibration(cfg):
        return None
    bs = int(cfg["eval"]["batch_size"])
    limit = None if mit.get("calib_pass") else int(mit.get("calib_batches", 20)) * bs
    ds = cfg["dataset"]
    if ds.get("name") == "imagenet" and not ds.get("_target_"):
        from aimcbench.data.imagenet import iter_imagenet

        return Batches(iter_imagenet("train", bs, data_dir=ds.get("data_dir"), limit=limit,
                                     seed=int(cfg["mc"]["seed"]), resize=ds.get("resize"), crop=ds.get("crop")))
    x, _ = load_from_config(ds, "train", limit=limit, seed=int(cfg["mc"]["seed"]))
    return Batches([x[i:i + bs] for i in range(0, x.shape[0], bs)])


def hardware_overrides(hardware: dict, overrides: list[str]) -> dict:
    """A copy of a hardware section with 'dotted.key=value' overrides (values parsed as YAML)."""
    import yaml
    from omegaconf import OmegaConf

    conf = OmegaConf.create(hardware)
    for item in overrides:
        key, sep, value = str(item).partition("=")
        if not sep:
            raise ValueError(f"mitigation.calib_hardware: {item!r} is not 'dotted.key=value'")
        OmegaConf.update(conf, key.strip().removeprefix("hardware."), yaml.safe_load(value), merge=False)
    return OmegaConf.to_container(conf, resolve=True)


class Calibrator:
    """Calibrates each point's chips (or loads the statistics of one calibration under calib_hardware)."""

    def __init__(self, cfg: dict, batches: Batches, device: torch.device, max_memory_gb: float):
        mit = cfg.get("mitigation") or {}
        self.batches, self.device, self.max_memory_gb = batches, device, max_memory_gb
        self.momentum = mit.get("calib_momentum", 0.999)
        self.fixed_hw = list(mit.get("calib_hardware") or [])
        self._once: dict[tuple, list] = {}  # (hardware, chips, seed) -> calibrated batch norms

    def _run(self, model: torch.nn.Module, hw, chips: int | list[int], seed: int):
        from aimcbench.sim import to_analog

        am = to_analog(model, hw, chips=chips, seed=seed, nabn=True, max_memory_gb=self.max_memory_gb)
        for bn in am.batchnorms:
            bn.momentum = self.momentum
        return am.calibrate(b.to(self.device) for b in self.batches)

    def __call__(self, amodel, model: torch.nn.Module, pcfg: dict) -> None:
        """Calibrate ``amodel`` (built with nabn=True from ``pcfg``) and set its test-time mode."""
        from aimcbench.sim import hardware_from_dict

        dynamic = bool((pcfg.get("mitigation") or {}).get("dynamic", False))
        # this shard's chips (all of mc.chips unsharded): chip k calibrates the same in any set of chips
        chips, seed = chip_ids(pcfg["mc"]), int(pcfg["mc"]["seed"])
        if not self.fixed_hw:  # this point's own noisy chips
            for bn in amodel.batchnorms:
                bn.momentum = self.momentum
            amodel.calibrate((b.to(self.device) for b in self.batches), dynamic=dynamic)
            return
        hw_dict = hardware_overrides(pcfg["hardware"], self.fixed_hw)
        key = (repr(sorted(hw_dict.items())), repr(chips), seed)
        if key not in self._once:
            self._once[key] = self._run(model, hardware_from_dict(hw_dict), chips, seed).batchnorms
        for bn, ref in zip(amodel.batchnorms, self._once[key]):
            bn.load_statistics(ref)
            bn.mode = "dynamic" if dynamic else "fixed"
