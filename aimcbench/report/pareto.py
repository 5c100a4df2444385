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
    digital value dashed and the p5 Pareto front as a line through its points. With a ``label`` column (several
    sweeps), one colour per label and the front over all of them."""
    fig, ax, owned = plots.new_axes(ax)
    metric = str(rows["metric"].iloc[0])
    top = float(rows["energy_pJ"].max())
    unit, div = next((u, d) for u, d in (("uJ", 1e6), ("nJ", 1e3), ("pJ", 1.0)) if top >= 10 * d or d == 1.0)
    groups = rows.groupby("label", sort=False) if "label" in rows.columns else [("", rows)]
    for k, (lab, part) in enumerate(groups):
        x = part["energy_pJ"].to_numpy(float) / div  # readable ticks for networks of any size
        yerr = np.vstack([part["p50"] - part["p5"], part["p95"] - part["p50"]])
        ax.errorbar(x, part["p50"], yerr=yerr, fmt="o", color=f"C{k % 10}", capsize=3,
                    label=f"{lab}: median" if lab else "median (bars: p5-p95 over chips)")
        for xi, yi, text in zip(x, part["p50"], part["axis_label"]):
            ax.annotate(str(text), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize="small")
    front = rows[rows["pareto"]].sort_values("energy_pJ")
    ax.plot(front["energy_pJ"] / div, front["p5"], "s--", color="k", alpha=0.6, label="Pareto front (p5)")
    if rows["digital"].notna().any():
        ax.axhline(float(rows["digital"].dropna().iloc[0]), color="k", linestyle=":", linewidth=1,
                   label="digital baseline")
    x = rows["energy_pJ"].to_numpy(float)
    if (x > 0).all() and x.max() > 3 * x.min():
        ax.set_xscale("log")
    ax.set_xlabel(f"energy per inference ({unit}); points: {plots.axis_name(axis, axis_title)}")
    plots._finish(fig, ax, metric, title, owned)
    return fig


def accuracy_and_energy_plot(rows: pd.DataFrame, *, axis: str, axis_title: str | None = None,
                             log: bool = False, title: str | None = None) -> Figure:
    """The sweep's own axis across: p50 with p5-p95 bars on the left, energy per inference on a second axis on the
    right (study 002's array-size trade: accuracy and what a chip pays, point by point)."""
    fig, ax, owned = plots.new_axes(None)
    metric = str(rows["metric"].iloc[0])
    part = rows.sort_values("axis_value", kind="stable")
    x = part["axis_value"].to_numpy(float)
    yerr = np.vstack([part["p50"] - part["p5"], part["p95"] - part["p50"]])
    ax.errorbar(x, part["p50"], yerr=yerr, fmt="o-", color="C0", capsize=3, label="median (bars: p5-p95 over chips)")
    if part["digital"].notna().any():
        ax.axhline(float(part["digital"].dropna().iloc[0]), color="C0", linestyle=":", linewidth=1,
                   label="digital baseline")
    right = ax.twinx()
    top = float(part["energy_pJ"].max())
    unit, div = next((u, d) for u, d in (("uJ", 1e6), ("nJ", 1e3), ("pJ", 1.0)) if top >= 10 * d or d == 1.0)
    right.plot(x, part["energy_pJ"] / div, "s--", color="C3", label="energy per inference")
    right.set_ylabel(f"energy per inference ({unit})", color="C3")
    if log:
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:g}" for v in x])  # the swept values themselves, not 6x10^1 and its minor ticks
        ax.minorticks_off()
    if (part["energy_pJ"] > 0).all() and part["energy_pJ"].max() > 10 * part["energy_pJ"].min():
        right.set_yscale("log")
    ax.set_xlabel(plots.axis_name(axis, axis_title))
    handles = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    plots._finish(fig, ax, metric, title, owned)
    ax.legend(handles[0] + more[0], handles[1] + more[1], frameon=False, loc="best")
    return fig


def _metric(table: pd.DataFrame) -> str:
    metrics = list(table["metric"].unique())
    return "accuracy" if "accuracy" in metrics else metrics[0]


def write_pareto(sweep: Sweep, table: pd.DataFrame, out: Path, writer, footer: Callable, note: str,
                 title: str | None = None) -> list[Path]:
    """accuracy_energy.csv and its figure for a sweep with cost.csv (nothing for one without: older runs)."""
    path = sweep.path / COST_FILE
    if not path.is_file() or table.empty:
        return []
    rows = accuracy_energy_table(table, pd.read_csv(path), _metric(table))
    if rows.empty:
        return []
    csv = Path(out) / f"{OUT_STEM}.csv"
    atomic_write_text(csv, rows.to_csv(index=False))
    fig = accuracy_energy_plot(rows, axis=sweep.axis, axis_title=sweep.axis_title, title=title)
    written = [csv, *writer.save(footer(fig, note), Path(out) / f"{OUT_STEM}.png")]
    if pd.api.types.is_numeric_dtype(rows["axis_value"]) and rows["axis_value"].notna().all():
        fig = accuracy_and_energy_plot(rows, axis=sweep.axis, axis_title=sweep.axis_title,
                                       log=sweep.axis_log, title=title)
        written += writer.save(footer(fig, note), Path(out) / "accuracy_and_energy.png")
    return written


def write_merged_pareto(sweeps: list[Sweep], labels: list[str], tables: list[pd.DataFrame], out: Path, writer,
                        footer: Callable, note: str, title: str | None = None) -> list[Path]:
    """The sweeps with cost.csv on one accuracy-energy figure (a colour per sweep) and one accuracy_energy.csv with
    a leading label column; the front is taken over every sweep's points (e.g. -m hardware=pcm,rram)."""
    parts = []
    for sweep, label, table in zip(sweeps, labels, tables):
        path = sweep.path / COST_FILE
        if path.is_file() and not table.empty:
            rows = accuracy_energy_table(table, pd.read_csv(path), _metric(table))
            parts.append(rows.assign(label=label)[["label", *COLUMNS]])
    if not parts or len({p["metric"].iloc[0] for p in parts if len(p)}) > 1:
        return []  # nothing priced, or sweeps of different metrics (no common accuracy axis)
    rows = pd.concat(parts, ignore_index=True).sort_values("energy_pJ", kind="stable").reset_index(drop=True)
    if rows.empty:
        return []
    rows["pareto"] = pareto_front(rows["energy_pJ"].to_numpy(), rows["p5"].to_numpy())
    csv = Path(out) / f"{OUT_STEM}.csv"
    atomic_write_text(csv, rows.to_csv(index=False))
    axis = sweeps[0].axis
    fig = accuracy_energy_plot(rows, axis=axis, axis_title=sweeps[0].axis_title, title=title)
    return [csv, *writer.save(footer(fig, note), Path(out) / f"{OUT_STEM}.png")]
