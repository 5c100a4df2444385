"""Checks of study 001's claims (Figs. 2-5: MLPs on MNIST, weight noise and weight quantization per layer).

Each figure is one ``-m`` grid (hidden size x layer set) in run0 (a Hydra sweep dir with one job dir per
combination). The study averages 100 repeats, so the error rate here is 1 - mean chip accuracy. Every check
draws ``<out_dir>/<fig>.png`` (one panel per hidden size, one line per layer set) and never raises on
partial results.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from aimcbench.studies.s000.claims import find_tables, missing


def grid_errors(sweep_dir: Path) -> pd.DataFrame:
    """Rows (size, layers, x, error, digital_error): one per job x point, from each job's percentiles.csv.

    ``size`` is the first hidden width, ``layers`` the layer-set name ("first", "second", "third", "all").
    """
    names = {0: "first", 1: "second", 2: "third"}
    rows = []
    for table_path in find_tables(sweep_dir):
        job = table_path.parent
        try:
            cfg = yaml.safe_load((job / "config.yaml").read_text())
            table = pd.read_csv(table_path)
        except (OSError, ValueError, yaml.YAMLError):
            continue
        idx = (cfg.get("hardware", {}).get("layers", {}) or {}).get("indices")
        layers = "all" if not idx else "+".join(names.get(int(i), str(i)) for i in idx)
        acc = table[table["metric"] == "accuracy"]
        for _, r in acc.iterrows():
            rows.append({"size": int(cfg["model"]["hidden"][0]), "depth": len(cfg["model"]["hidden"]) + 1,
                         "layers": layers, "x": float(r["axis_value"]), "error": 1.0 - float(r["mean"]),
                         "digital_error": 1.0 - float(r["digital"])})
    return pd.DataFrame(rows, columns=["size", "depth", "layers", "x", "error", "digital_error"])


def draw_grid(df: pd.DataFrame, path: Path, xlabel: str, loglog: bool, title: str) -> str:
    """One panel per hidden size, one line per layer set: error rate vs the axis. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(df["size"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.6), squeeze=False, sharey=True)
    for ax, size in zip(axes[0], sizes):
        sub = df[df["size"] == size]
        for layers, g in sub.groupby("layers"):
            g = g.sort_values("x")
            ax.plot(g["x"], g["error"].clip(lower=1e-4), "o-", ms=3, label=layers)
        ax.axhline(sub["digital_error"].median(), color="k", ls=":", lw=0.8)
        ax.set_title(f"hidden {size}")
        ax.set_xlabel(xlabel)
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.invert_xaxis()
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("error rate (1 - mean accuracy)")
    axes[0][0].legend(title="noisy layers", fontsize=8)
    fig.suptitle(title + " (dotted: digital)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _at(df: pd.DataFrame, size: int, layers: str, x: float) -> float:
    r = df[(df["size"] == size) & (df["layers"] == layers) & np.isclose(df["x"], x)]
    return float(r["error"].iloc[0]) if len(r) else math.nan


def loglog_slope(df: pd.DataFrame, size: int, layers: str) -> float:
    """Slope of log(excess error) vs log(alpha) over the degraded points (error >= 1.2x digital)."""
    g = df[(df["size"] == size) & (df["layers"] == layers)].sort_values("x")
    excess = g["error"] - g["digital_error"]
    use = (g["error"] >= 1.2 * g["digital_error"]) & (excess > 0)
    if use.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log10(g["x"][use]), np.log10(excess[use]), 1)[0])


def _noise_check(run_dirs, out_dir, fig: str, n_layers: int) -> dict:
    df = grid_errors(Path(run_dirs[0]))
    if df.empty:
        return missing(f"{fig} grid results in run0")
    plot = draw_grid(df, Path(out_dir) / f"{fig}.png", "weight noise alpha", True,
                     f"Study 001 {fig}: {n_layers}-layer MLP, g(w) = (1 + alpha N) w")
    degraded = [a for a in sorted(df["x"].unique()) if a >= 0.2]
    wins, total, parts = 0, 0, []
    for size in sorted(df["size"].unique()):
        for a in degraded:
            e1, e2 = _at(df, size, "first", a), _at(df, size, "second", a)
            if not (math.isnan(e1) or math.isnan(e2)):
                wins, total = wins + (e1 > e2), total + 1
        a_show = 0.8 if 0.8 in degraded else (degraded[-1] if degraded else math.nan)
        parts.append(f"N={size} a={a_show:g}: 1st {_at(df, size, 'first', a_show):.3f} "
                     f"2nd {_at(df, size, 'second', a_show):.3f} all {_at(df, size, 'all', a_show):.3f} "
                     f"(slope all {loglog_slope(df, size, 'all'):.2f})")
    if total == 0:
        return {"ours": "; ".join(parts) + "; first/second-only jobs missing", "holds": None, "plot": plot}
    ours = f"first layer worse than second in {wins}/{total} (size, alpha>=0.2) points; " + "; ".join(parts)
    return {"ours": ours, "holds": bool(wins > total / 2), "plot": plot}


def fig2(run_dirs, out_dir) -> dict:
    """Fig. 2 (784-N-10): noise on the first layer alone costs more than on the second alone; log-log line."""
    return _noise_check(run_dirs, out_dir, "fig2", 2)


def fig3(run_dirs, out_dir) -> dict:
    """Fig. 3 (784-N-N-10): the same comparison for the 3-layer networks (the study: like Fig. 2)."""
    return _noise_check(run_dirs, out_dir, "fig3", 3)


def _quant_check(run_dirs, out_dir, fig: str, n_layers: int) -> dict:
    """Figs. 4-5: last layer nearly insensitive to quantization (<= 1 point above digital at 3 bits);
    3-bit first-layer quantization hurts the smallest network more than the largest."""
    df = grid_errors(Path(run_dirs[0]))
    if df.empty:
        return missing(f"{fig} grid results in run0")
    plot = draw_grid(df, Path(out_dir) / f"{fig}.png", "weight bits", False,
                     f"Study 001 {fig}: {n_layers}-layer MLP, per-layer uniform weight quantization")
    last = {2: "second", 3: "third"}[n_layers]
    sizes = sorted(df["size"].unique())
    parts, last_ok = [], []
    for size in sizes:
        dig = df[df["size"] == size]["digital_error"].median()
        e_first, e_last = _at(df, size, "first", 3), _at(df, size, last, 3)
        last_ok.append(e_last - dig <= 0.01 if not math.isnan(e_last) else None)
        parts.append(f"N={size} 3 bits: 1st {e_first:.3f} last {e_last:.3f} all {_at(df, size, 'all', 3):.3f} "
                     f"(digital {dig:.3f})")
    small, large = _at(df, sizes[0], "first", 3), _at(df, sizes[-1], "first", 3)
    if None in last_ok or math.isnan(small) or math.isnan(large) or len(sizes) < 2:
        return {"ours": "; ".join(parts) + "; some jobs missing", "holds": None, "plot": plot}
    return {"ours": "; ".join(parts), "holds": bool(all(last_ok) and small > large), "plot": plot}


def fig4(run_dirs, out_dir) -> dict:
    """Fig. 4 (784-N-10) weight quantization per layer."""
    return _quant_check(run_dirs, out_dir, "fig4", 2)


def fig5(run_dirs, out_dir) -> dict:
    """Fig. 5 (784-N-N-10) weight quantization per layer."""
    return _quant_check(run_dirs, out_dir, "fig5", 3)
