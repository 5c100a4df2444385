"""Study 001's log-log view: classification error rate (1 - accuracy) against the weight-noise alpha.

Study 001 reports that, once the network is degraded by the noise, the error rate grows as a power of alpha:
a straight line in log-log. :func:`fit_loglog` fits that line by least squares on log10 values over the
degraded range only, i.e. the points whose median-chip error rate is clearly above the digital error rate
(``floor_factor`` times it) and still clearly below chance (``ceiling`` of the chance error), where the
curve is neither flat at the digital error nor saturated.

    fit = fit_loglog(alpha, error_rate, digital_error=0.02, num_classes=10)  # {"slope", "intercept", ...}
    fits = write_loglog(["run_a", "run_b"], out_dir="cmp")   # loglog_accuracy.png + loglog_fit.json
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd


def fit_loglog(alpha: Sequence[float], error_rate: Sequence[float], digital_error: float = 0.0,
               num_classes: int = 10, floor_factor: float = 1.2, ceiling: float = 0.8) -> dict:
    """Least-squares line log10(error) = slope * log10(alpha) + intercept over the degraded range.

    Points used: alpha > 0, error > max(floor_factor * digital_error, 1e-12) and error < ceiling * (1 - 1/C)
    (C classes: 1 - 1/C is the error of guessing).
    Returns {"slope", "intercept", "r2", "used" (list of bools), "range" [alpha_min, alpha_max]}; slope is None
    (with a "note") when fewer than two points qualify.
    """
    a = np.asarray(alpha, dtype=float)
    e = np.asarray(error_rate, dtype=float)
    if a.shape != e.shape:
        raise ValueError(f"fit_loglog: alpha and error_rate differ in length ({a.size} vs {e.size})")
    chance = 1.0 - 1.0 / num_classes
    used = (a > 0) & (e > max(floor_factor * digital_error, 1e-12)) & (e < ceiling * chance)
    out: dict = {"used": used.tolist(), "slope": None, "intercept": None, "r2": None, "range": None}
    if used.sum() < 2:
        out["note"] = (f"fewer than 2 degraded points (error between {floor_factor:g} x digital error and "
                       f"{ceiling:g} x chance error)")
        return out
    lx, ly = np.log10(a[used]), np.log10(e[used])
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + intercept)
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    out.update(slope=float(slope), intercept=float(intercept),
               r2=float(1.0 - (resid ** 2).sum() / ss_tot) if ss_tot > 0 else 1.0,
               range=[float(a[used].min()), float(a[used].max())])
    return out


def error_table(run_dir: str | os.PathLike) -> tuple[pd.DataFrame, float, dict]:
    """Per point: axis_value, p50 / p25 / p75 error rate of the chips; plus the digital error rate and meta."""
    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    chips = pd.read_parquet(run_dir / "chips.parquet")
    acc = chips[chips["metric"] == "accuracy"]
    g = acc.groupby("axis_value")["value"]
    table = pd.DataFrame({"p50": 1.0 - g.median(), "p25": 1.0 - g.quantile(0.75), "p75": 1.0 - g.quantile(0.25)})
    table = table.reset_index().sort_values("axis_value")
    digital = pd.read_csv(run_dir / "digital.csv")
    dig_err = 1.0 - float(digital[digital["metric"] == "accuracy"]["value"].median())
    return table, dig_err, meta


def write_loglog(run_dirs: str | os.PathLike | Sequence[str | os.PathLike], out_dir: str | os.PathLike | None = None,
                 num_classes: int = 10, formats: Sequence[str] | None = None, style: str | None = None) -> dict:
    """Plot p50 error rate vs alpha (log-log) for one or more sweeps, with their fitted lines; save the fits.

    Writes ``loglog_accuracy.png`` and ``loglog_fit.json`` ({label: fit}) into ``out_dir`` (default: the first
    run dir), the plot in every ``formats`` in ``style`` (None: the first sweep's report.* settings, else png and
    pdf in the default style). Returns the fit of a single sweep, or {label: fit} for several.
    """
    from aimcbench.report import pages, plots
    from aimcbench.report.style import figure_style
    from aimcbench.report.sweepdir import _load_config

    single = isinstance(run_dirs, (str, os.PathLike))
    dirs = [Path(run_dirs)] if single else [Path(d) for d in run_dirs]
    out = Path(out_dir) if out_dir else dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    fits: dict[str, dict] = {}
    loaded = [(d, *error_table(d)) for d in dirs]
    labels = [meta.get("label") or d.name for d, _, _, meta in loaded]
    common = set.intersection(*(set(lab.split()) for lab in labels)) if len(labels) > 1 else set()
    opts = pages.settings(None, formats, style, config=_load_config(dirs[0]))
    with figure_style(opts["style"]):
        fig, ax, _ = plots.new_axes(width_in=6.5, height_in=5.0)
        _draw(ax, loaded, labels, common, fits, num_classes)
        fig.tight_layout()
        pages.FigureWriter(opts["formats"], opts["style"]).save(fig, out / "loglog_accuracy.png")
    (out / "loglog_fit.json").write_text(json.dumps(fits, indent=2))
    return next(iter(fits.values())) if single else fits


def _draw(ax, loaded, labels, common, fits: dict, num_classes: int) -> None:
    """The median-chip error rate of each sweep against alpha with its fitted line; fills ``fits``."""
    for (d, table, dig_err, meta), full in zip(loaded, labels):
        # Drop override words shared by all sweeps so the legend names what differs.
        label = " ".join(w for w in full.split() if w not in common) or full
        fit = fit_loglog(table["axis_value"], table["p50"], dig_err, num_classes)
        # The noise-induced part alone (error - digital error), fitted over the same degraded points.
        used = np.array(fit["used"])
        excess = (table["p50"].to_numpy() - dig_err)[used]
        ok = excess > 0
        fit["excess_slope"] = (float(np.polyfit(np.log10(table["axis_value"].to_numpy()[used][ok]),
                                                np.log10(excess[ok]), 1)[0]) if ok.sum() >= 2 else None)
        fit.update(alpha=table["axis_value"].tolist(), p50_error=table["p50"].tolist(), digital_error=dig_err)
        fits[label] = fit
        pos = table["p50"] > 0  # zero errors cannot be drawn on a log axis
        line, = ax.plot(table["axis_value"][pos], table["p50"][pos], "o-",
                        label=label + (f" (slope {fit['slope']:.2f})" if fit["slope"] is not None else ""))
        if fit["slope"] is not None:
            xs = np.array(fit["range"])
            ax.plot(xs, 10 ** (fit["slope"] * np.log10(xs) + fit["intercept"]), "--", color=line.get_color())
        if dig_err > 0:
            ax.axhline(dig_err, color=line.get_color(), lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weight noise alpha")
    ax.set_ylabel("error rate (1 - accuracy), median chip")
    ax.set_title("error rate vs alpha (dotted: digital)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
