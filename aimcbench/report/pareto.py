"""Accuracy against energy per inference (issue 17): each point of a sweep at its cost, the Pareto front marked.

A sweep writes ``cost.csv`` (energy, latency, area per inference at every point, :mod:`aimcbench.runner.
cost_columns`); this joins it with the percentiles over chips of the task's first metric and writes
``accuracy_energy.csv`` (one row per point: the cost columns, p5 / p50 / p95 over chips, the digital value and
whether the point is on the front) and ``accuracy_energy.<fmt>``. The front is taken on p5 (what the worst
5 % of chips reach): a point is on it when no other point costs at most as much energy and reaches at least
as high a p5, one of the two strictly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aimcbench.report import plots
from aimcbench.report.sweepdir import Sweep, atomic_write_text

COST_FILE = "cost.csv"
OUT_STEM = "accuracy_energy"
#: the columns of accuracy_energy.csv
COLUMNS = ["axis_value", "axis_label", "metric", "energy_pJ", "latency_ns", "area_mm2", "adc_conversions", "p5",
           "p50", "p95", "digital", "pareto"]


def pareto_front(energy: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mask of the points no other point dominates (lower or equal energy and higher or equal score, one strictly)."""
    e, s = np.asarray(energy, float), np.asarray(score, float)
    dominated = [bool(np.any((e <= e[i]) & (s >= s[i]) & ((e < e[i]) | (s > s[i])))) for i in range(len(e))]
    return ~np.array(dominated, dtype=bool)


def accuracy_energy_table(table: pd.DataFrame, cost: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per point with cost columns and percentiles of ``metric`` (percentiles.csv joined with cost.csv on
    the point's axis label), sorted by energy, with the ``pareto`` flag."""
    rows = table[table["metric"] == metric][["axis_label", "metric", "p5", "p50", "p95", "digital"]]
    cost = cost.astype({"axis_label": str})
    out = cost.merge(rows.astype({"axis_label": str}), on="axis_label", how="inner")
    out = out.sort_values(["energy_pJ", "axis_value"], kind="stable").reset_index(drop=True)
    out["pareto"] = pareto_front(out["energy_pJ"].to_numpy(), out["p5"].to_numpy())
    return out[COLUMNS]


def accuracy_energy_plot(rows: pd.DataFrame, *, axis: str, axis_title: str | None = None,
                         title: str | None = None, ax=None) -> Figure:
    """p50 against energy per inference (log axis) with p5-p95 bars, each point labelled by its axis value, the
    digital value dashed and the p5 Pareto front as a line through its points."""
    fig, ax, owned = plots.new_axes(ax)
    metric = str(rows["metric"].iloc[0])
    top = float(rows["energy_pJ"].max())
    unit, div = next((u, d) for u, d in (("uJ", 1e6), ("nJ", 1e3), ("pJ", 1.0)) if top >= 10 * d or d == 1.0)
    x = rows["energy_pJ"].to_numpy(float) / div  # readable ticks for networks of any size
    yerr = np.vstack([rows["p50"] - rows["p5"], rows["p95"] - rows["p50"]])
    ax.errorbar(x, rows["p50"], yerr=yerr, fmt="o", color="C0", capsize=3, label="median (bars: p5-p95 over chips)")
    front = rows[rows["pareto"]]
    ax.plot(front["energy_pJ"] / div, front["p5"], "s--", color="C3", label="Pareto front (p5)")
    for xi, yi, lab in zip(x, rows["p50"], rows["axis_label"]):
        ax.annotate(str(lab), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize="small")
    if rows["digital"].notna().any():
        ax.axhline(float(rows["digital"].dropna().iloc[0]), color="k", linestyle="--", linewidth=1,
                   label="digital baseline")
    if (x > 0).all() and x.max() > 3 * x.min():
        ax.set_xscale("log")
    ax.set_xlabel(f"energy per inference ({unit}); points: {plots.axis_name(axis, axis_title)}")
    plots._finish(fig, ax, metric, title, owned)
    return fig


def write_pareto(sweep: Sweep, table: pd.DataFrame, out: Path, writer, footer: Callable, note: str,
                 title: str | None = None) -> list[Path]:
    """accuracy_energy.csv and its figure for a sweep with cost.csv (nothing for one without: older runs)."""
    path = sweep.path / COST_FILE
    if not path.is_file() or table.empty:
        return []
    cost = pd.read_csv(path)
    metrics = list(table["metric"].unique())
    metric = "accuracy" if "accuracy" in metrics else metrics[0]
    rows = accuracy_energy_table(table, cost, metric)
    if rows.empty:
        return []
    csv = Path(out) / f"{OUT_STEM}.csv"
    atomic_write_text(csv, rows.to_csv(index=False))
    fig = accuracy_energy_plot(rows, axis=sweep.axis, axis_title=sweep.axis_title, title=title)
    return [csv, *writer.save(footer(fig, note), Path(out) / f"{OUT_STEM}.png")]
