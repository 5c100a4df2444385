"""Study 003: the closed-form column error model against the Monte Carlo simulator.

For every analog layer of the trained MLP (configs/model/mlp3.yaml on MNIST, the cached model `aimc sweep` uses),
at each ADC resolution, over a grid of g_max (the optimizer's feasible range, g_min at the device minimum) and ADC
full scale (0.5x, 1x, 2x the optimizer's choice for that layer), the predicted and the simulated output MSE of the
layer (pre-activation, against x W^T) are written to <out>/errormodel.csv, with a scatter plot
<out>/errormodel.png and a one-line summary (largest relative deviation).

    python scripts/s003_errormodel.py --out results/s003_errormodel [--bits 4 6] [--samples 256] [--chips 16]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def load_model(model: str = "mlp3", dataset: str = "mnist"):
    """The cached trained model of configs/model/<model>.yaml with the default training (as `aimc sweep`)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from aimcbench.commands._common import config_dir
    from aimcbench.train import load_or_train

    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name="s003"):
        cfg = OmegaConf.to_container(compose("sweep", [f"model={model}", f"dataset={dataset}"]), resolve=True)
    net, _ = load_or_train(cfg["model"], cfg["dataset"], cfg["train"], cache_dir=cfg.get("cache_dir"))
    return net, cfg


def validate(net, profile: str, bits_list, g_max_grid, fs_factors, samples: int, chips: int) -> list[dict]:
    """Rows: bits, layer, g_max_uS, adc_bound, predicted, simulated, ratio (predicted / simulated)."""
    from aimcbench.data import load_split
    from aimcbench.sim import load_hardware, select_layers
    from aimcbench.sim.errormodel import layer_inputs, layer_stats, optimize_layer, predict, simulate_layer

    x, _ = load_split("mnist", "test", limit=samples, seed=0)
    rows = []
    for bits in bits_list:
        hw = load_hardware(profile, [f"adc.bits={bits}"])
        layers = select_layers(net, hw)
        acts = layer_inputs(net, x, list(layers))
        for name, mod in layers.items():
            st = layer_stats(name, mod.weight, acts[name], hw)
            b_opt = optimize_layer(st, hw, bits, hw.g_min_uS, hw.device.g_max_uS).adc_bound
            for g_max in g_max_grid:
                for f in fs_factors:
                    b = b_opt * f
                    pred = predict(st, hw, hw.g_min_uS, g_max, b, bits)
                    hw_p = load_hardware(profile, [f"adc.bits={bits}", f"per_layer={{'{name}': {{g_max_uS: {g_max}, "
                                                                       f"adc_bound: {b}}}}}"])
                    # the output layer has few columns: more chips for the same statistical accuracy
                    k = chips if mod.weight.shape[0] >= 100 else chips * 4
                    sim = simulate_layer(name, mod.weight, acts[name], hw_p, chips=k)
                    rows.append({"adc_bits": bits, "layer": name, "g_max_uS": g_max, "adc_bound": b, "fs_factor": f,
                                 "fs_uA": pred["fs_uA"], "predicted": pred["total"], "simulated": sim,
                                 "ratio": pred["total"] / sim, **{f"term_{t}": pred[t] for t in
                                                                  ("prog", "thermal", "shot", "dac", "quant", "clip",
                                                                   "cross")}})
                    print(f"bits {bits} layer {name} g_max {g_max:5.1f} b {b:7.3f}: predicted {pred['total']:.4g} "
                          f"simulated {sim:.4g} ratio {pred['total'] / sim:.3f}", flush=True)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    layers = sorted({r["layer"] for r in rows})
    for i, layer in enumerate(layers):
        sel = [r for r in rows if r["layer"] == layer]
        ax.scatter([r["simulated"] for r in sel], [r["predicted"] for r in sel], s=14, label=f"layer {layer}",
                   color=f"C{i}")
    lo = min(min(r["simulated"], r["predicted"]) for r in rows) * 0.8
    hi = max(max(r["simulated"], r["predicted"]) for r in rows) * 1.2
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.plot([lo, hi], [lo * 1.1, hi * 1.1], "k:", lw=0.8, label="+-10 %")
    ax.plot([lo, hi], [lo / 1.1, hi / 1.1], "k:", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="Monte Carlo output MSE", ylabel="closed-form output MSE",
           title="Study 003: error model vs simulator")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/s003_errormodel")
    ap.add_argument("--profile", default="crossbar")
    ap.add_argument("--bits", type=int, nargs="+", default=[4, 6])
    ap.add_argument("--g-max", type=float, nargs="+", default=[40.0, 70.0, 100.0])
    ap.add_argument("--fs-factors", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--chips", type=int, default=16)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net, _ = load_model()
    rows = validate(net, args.profile, args.bits, args.g_max, args.fs_factors, args.samples, args.chips)
    pd.DataFrame(rows).to_csv(out / "errormodel.csv", index=False)
    plot(rows, out / "errormodel.png")
    worst = max(abs(r["ratio"] - 1) for r in rows)
    summary = {"points": len(rows), "max_rel_dev": worst, "within_10pct": worst <= 0.10}
    (out / "errormodel.json").write_text(json.dumps(summary, indent=2))
    print(f"{len(rows)} grid points: largest |predicted/simulated - 1| = {worst:.3f} "
          f"({'within' if worst <= 0.10 else 'NOT within'} 10 %): {out / 'errormodel.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
