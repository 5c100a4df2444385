"""``aimc optimize``: study 003's per-layer convex choice of [g_min, g_max] and ADC full scale.

For every analog layer of the trained model, the closed-form error model (aimcbench/sim/errormodel.py) is fitted to
the layer's inputs for ``optimize.samples`` training images, and ``optimize_layer`` solves the convex program. The
answer is written as a complete hardware profile (the composed base profile with ``per_layer`` filled in and
``adc.bits`` set) per ADC resolution, under ``<out_dir>/hardware/``, so that
``aimc sweep --config-dir <out_dir> hardware=<name>_b<bits>`` runs it. ``optimize.json`` and ``optimize.csv`` list,
per resolution and layer, the chosen values and the predicted output MSE of the naive and the optimized mapping.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from ._common import UsageError, check_config, exits_on_user_error, plain

HEADER = "# Written by `aimc optimize` (study 003): the {base} profile with per-layer [g_min, g_max] and ADC full scale\n" \
         "# {how} at adc.bits = {bits}. Full scales in uA: {fs}\n"
HOW = {"fixed": "minimizing the closed-form output MSE",
       "calibrated_max": "naive: g range at the device limits, full scale at the largest output on the calibration inputs"}


def check_optimize(data: dict, hw) -> list:
    """Validate the optimize section; return the ADC resolutions to optimize for."""
    o = data["optimize"]
    bits = o["adc_bits"] if o["adc_bits"] is not None else [hw.adc.bits]
    if not isinstance(bits, list) or not bits or not all(isinstance(b, int) and not isinstance(b, bool)
                                                         and 2 <= b <= 24 for b in bits):
        raise UsageError("optimize.adc_bits", f"must be null or a non-empty list of integers in [2, 24] (got {bits!r}; "
                                              "with null, hardware.adc.bits must be set)")
    if hw.device.model not in ("rram", "ideal") or hw.mapping.differential != "combined" or \
            hw.dac.noise_management != "abs_max" or hw.adc.range_uA is not None:
        raise UsageError("hardware", f"the error model covers conductance devices (rram, ideal) with combined "
                                     f"differential pairs, an abs_max DAC and adc.bound (e.g. hardware=crossbar); got "
                                     f"{hw.name!r}")
    lo = o["g_min_lo_uS"] if o["g_min_lo_uS"] is not None else hw.g_min_uS
    hi = o["g_max_hi_uS"] if o["g_max_hi_uS"] is not None else hw.device.g_max_uS
    if hi - lo < o["g_range_min_uS"]:
        raise UsageError("optimize.g_max_hi_uS", f"must exceed g_min_lo_uS + g_range_min_uS = "
                                                 f"{lo + o['g_range_min_uS']} (got {hi})")
    return bits


def optimize_model(model, hw, x, bits_list: list, o: dict) -> list[dict]:
    """Rows (bits, layer, chosen values, predicted naive and optimized MSE) for every resolution and layer."""
    import dataclasses

    from aimcbench.sim import select_layers
    from aimcbench.sim.errormodel import layer_inputs, layer_stats, optimize_layer, predict

    layers = select_layers(model, hw)
    acts = layer_inputs(model, x, list(layers))
    lo = o["g_min_lo_uS"] if o["g_min_lo_uS"] is not None else hw.g_min_uS
    hi = o["g_max_hi_uS"] if o["g_max_hi_uS"] is not None else hw.device.g_max_uS
    rows = []
    for bits in bits_list:
        hw_b = dataclasses.replace(hw, adc=dataclasses.replace(hw.adc, bits=bits), per_layer=None)
        for name, mod in layers.items():
            st = layer_stats(name, mod.weight, acts[name], hw_b)
            naive = predict(st, hw_b, hw_b.g_min_uS, hw_b.device.g_max_uS, hw_b.adc.bound, bits)
            ch = optimize_layer(st, hw_b, bits, lo, hi, o["g_range_min_uS"], o["fs_max_uA"])
            rows.append({"adc_bits": bits, "layer": name, "g_min_uS": ch.g_min_uS, "g_max_uS": ch.g_max_uS,
                         "adc_bound": ch.adc_bound, "fs_uA": ch.predicted["fs_uA"],
                         "naive_fs_uA": naive["fs_uA"], "mse_naive": naive["total"], "mse_opt": ch.predicted["total"],
                         **{f"opt_{k}": v for k, v in ch.predicted.items() if k not in ("total", "gain_uA", "fs_uA")}})
    return rows


def write_profiles(base: dict, rows: list[dict], out_dir: Path, name: str) -> list[Path]:
    """One profile per resolution: ``base`` with adc.bits and per_layer; returns the written paths."""
    import yaml

    from aimcbench.sim import hardware_from_dict

    (out_dir / "hardware").mkdir(parents=True, exist_ok=True)
    paths = []
    for bits in sorted({r["adc_bits"] for r in rows}):
        sel = [r for r in rows if r["adc_bits"] == bits]
        prof = {**base, "name": f"{name}_b{bits}", "adc": {**base["adc"], "bits": bits},
                "per_layer": {r["layer"]: {"g_min_uS": round(r["g_min_uS"], 6), "g_max_uS": round(r["g_max_uS"], 6),
                                           "adc_bound": round(r["adc_bound"], 6)} for r in sel}}
        hardware_from_dict(prof)  # what we write must load
        path = out_dir / "hardware" / f"{name}_b{bits}.yaml"
        fs = ", ".join(f"{r['layer']} {r['fs_uA']:.2f}" for r in sel)
        how = HOW.get((base.get("adc") or {}).get("full_scale", "fixed"), HOW["fixed"])
        path.write_text(HEADER.format(base=base["name"], bits=bits, fs=fs, how=how) + yaml.safe_dump(prof, sort_keys=False))
        paths.append(path)
    return paths


@exits_on_user_error
def run(cfg: DictConfig) -> None:
    """Hydra task: train or load the model, optimize every layer, write the profiles and a table."""
    import pandas as pd
    import torch
    from hydra.core.hydra_config import HydraConfig

    from aimcbench.data import load_from_config
    from aimcbench.sim import hardware_from_dict
    from aimcbench.train import load_or_train

    data = plain(cfg)
    check_config(data)
    hw = hardware_from_dict(data["hardware"])
    bits_list = check_optimize(data, hw)
    o = data["optimize"]
    if data.get("threads"):
        torch.set_num_threads(int(data["threads"]))
    model, _ = load_or_train(data["model"], data["dataset"], data["train"], cache_dir=data.get("cache_dir"))
    x, _ = load_from_config(data["dataset"], "train", limit=int(o["samples"]), seed=0)
    rows = optimize_model(model, hw, x, bits_list, o)
    out_dir = Path(o["out_dir"] or HydraConfig.get().runtime.output_dir)
    paths = write_profiles(data["hardware"], rows, out_dir, o["name"])
    table = pd.DataFrame(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "optimize.csv", index=False)
    (out_dir / "optimize.json").write_text(json.dumps({"rows": rows, "profiles": [str(p) for p in paths]}, indent=2))
    cols = ["adc_bits", "layer", "g_min_uS", "g_max_uS", "adc_bound", "fs_uA", "naive_fs_uA", "mse_naive", "mse_opt"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    model_name = HydraConfig.get().runtime.choices.get("model", data["model"].get("name"))
    print(f"wrote {len(paths)} profile(s) under {out_dir / 'hardware'}; run one with:\n"
          f"  aimc sweep --config-dir {out_dir} hardware={paths[0].stem} model={model_name} ...")
    sys.stdout.flush()

