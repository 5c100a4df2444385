"""Publication plots of Monte Carlo sweeps (matplotlib, Agg, no pyplot global state).

Figures are built with ``matplotlib.figure.Figure`` directly, so importing this module
never changes the process-wide backend and figures are freed when they go out of scope.
Sizes and fonts come from the rc parameters in force (``report.style`` presets, see
:mod:`aimcbench.report.style`). Every plot function takes an optional ``ax=`` to draw into a
figure of your own (then the figure's layout is left to you) and returns the Figure drawn in.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from aimcbench.report.sweepdir import atomic_write_bytes

DPI = 150  # save_figure's resolution (the default style's)
FIGSIZE = (5.2, 3.6)  # the default style's figure size

#: readable x-axis names for the keys a sweep can vary; other keys show as the dotted key
AXIS_NAMES = {
    "hardware.adc.bits": "ADC resolution (bits)",
    "hardware.adc.quantizer": "ADC quantizer",
    "hardware.device.prog_noise_scale": "programming-noise scale",
    "hardware.device.read_noise_scale": "read-noise scale",
    "hardware.t_inference_s": "time after programming (s)",
    "hardware.drift_compensation": "drift compensation",
    "hardware.device.variation": "programming variation",
    "hardware.device.on_off_ratio": "on/off ratio",
    "hardware.weight_noise.alpha": r"weight-noise $\alpha$",
}
#: readable y-axis names for metrics; other metrics show as their name
METRIC_NAMES = {"accuracy": "top-1 accuracy", "psnr": "PSNR (dB)", "ssim": "SSIM"}


def axis_name(axis: str, axis_title: str | None = None) -> str:
    """Human-readable name of a dotted sweep key (``axis_title``, e.g. meta.json's, wins)."""
    return axis_title or AXIS_NAMES.get(axis, axis)


def metric_name(metric: str) -> str:
    """Human-readable name (with unit) of a metric."""
    return METRIC_NAMES.get(metric, metric)


def is_categorical(table: pd.DataFrame) -> bool:
    """True when some axis_label is not the number axis_value (e.g. "uniform", "mulaw").

    The contract stores a categorical point's position in axis_value; such axes are drawn
    at those positions with the labels as ticks and never on a log scale.
    """
    for value, label in zip(table["axis_value"], table["axis_label"]):
        try:
            if not math.isclose(float(label), float(value), rel_tol=1e-6, abs_tol=1e-12):
                return True
        except ValueError:
            return True
    return False


def _points(table: pd.DataFrame) -> pd.DataFrame:
    """One row per point (axis_value, axis_label), ordered along the axis."""
    return (
        table[["axis_value", "axis_label"]]
        .drop_duplicates("axis_value")
        .sort_values("axis_value")
        .reset_index(drop=True)
    )


def _setup_x(ax, table: pd.DataFrame, axis: str, axis_log: bool, axis_title: str | None) -> None:
    """Scale, ticks and label of a line plot's x axis."""
    points = _points(table)
    xs = points["axis_value"].to_numpy(float)
    if axis_log and not is_categorical(table):
        if (xs > 0).all():
            ax.set_xscale("log")
        else:  # a zero on a log axis (drift from t=0): linear near zero, log beyond
            positive = xs[xs > 0]
            ax.set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 1.0)
    if len(xs) <= 12:
        # label exactly the swept values; minor log ticks would add unlabelled clutter
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels(points["axis_label"].tolist())
    if is_categorical(table) and len(xs):
        ax.set_xlim(xs.min() - 0.5, xs.max() + 0.5)  # room around the first and last category
    ax.set_xlabel(axis_name(axis, axis_title))


def new_axes(ax: Axes | None = None, dw_in: float = 0.0, dh_in: float = 0.0, width_in: float | None = None,
             height_in: float | None = None) -> tuple[Figure, Axes, bool]:
    """(figure, axes, owned): ``ax`` and its figure, or a new figure of the rc figure size (plus dw/dh inches,
    widened in proportion to the style's width) and its one axes; owned is True for a new figure."""
    if ax is not None:
        return ax.figure, ax, False
    w0, h0 = matplotlib.rcParams["figure.figsize"]
    scale = w0 / FIGSIZE[0]  # extra room scales with the style (a paper column is narrower)
    w = width_in * scale if width_in is not None else w0 + dw_in * scale
    h = height_in * scale if height_in is not None else h0 + dh_in * scale
    if w0 != FIGSIZE[0]:
        w = w0  # the paper and slides styles keep their width (a journal column, a slide); only the height grows
    fig = Figure(figsize=(w, h), dpi=matplotlib.rcParams["figure.dpi"])
    return fig, fig.add_subplot(), True


def _finish(fig: Figure, ax, metric: str, title: str | None, owned: bool = True) -> None:
    ax.set_ylabel(metric_name(metric))
    ax.grid(True, which="major", alpha=0.3, linewidth=0.6)
    if title:
        # long titles wrap at about the figure's width instead of running off it
        size = matplotlib.rcParams["axes.titlesize"]
        size = size if isinstance(size, (int, float)) else matplotlib.rcParams["font.size"]
        chars = max(30, int(fig.get_figwidth() * 72 / (0.55 * size)))
        ax.set_title(textwrap.fill(title, chars))
    ax.legend(frameon=False, loc="best")
    if owned:
        fig.tight_layout()


def band_plot(table: pd.DataFrame, metric: str, *, axis: str, axis_log: bool = False,
              title: str | None = None, axis_title: str | None = None, ax: Axes | None = None) -> Figure:
    """Median with p25-p75 and p5-p95 bands and the dashed digital baseline against the axis."""
    rows = table[table["metric"] == metric].sort_values("axis_value")
    x = rows["axis_value"].to_numpy(float)
    fig, ax, owned = new_axes(ax)
    ax.fill_between(x, rows["p5"], rows["p95"], color="C0", alpha=0.15, linewidth=0,
                    label="5th-95th percentile")
    ax.fill_between(x, rows["p25"], rows["p75"], color="C0", alpha=0.35, linewidth=0,
                    label="25th-75th percentile")
    n = int(rows["n_chips"].max()) if len(rows) else 0
    ax.plot(x, rows["p50"], "o-", color="C0", label=f"median of {n} chips")
    if rows["digital"].notna().any():
        ax.plot(x, rows["digital"], "--", color="k", linewidth=1.2, label="digital baseline")
    _setup_x(ax, rows, axis, axis_log, axis_title)
    _finish(fig, ax, metric, title, owned)
    return fig


def box_plot(chips: pd.DataFrame, table: pd.DataFrame, metric: str, *, axis: str,
             axis_log: bool = False, title: str | None = None,
             axis_title: str | None = None, ax: Axes | None = None) -> Figure:
    """One box per point: box p25-p75, median line, whiskers p5-p95, chips outside as dots.

    Boxes sit at evenly spaced categorical positions labelled with axis_label, in axis
    order; for log-spaced sweeps this reads better than boxes of unequal width on a log
    axis, and the tick labels carry the actual values.
    """
    rows = table[table["metric"] == metric].sort_values("axis_value").reset_index(drop=True)
    data = chips[chips["metric"] == metric]
    by_value = {v: g["value"].dropna().to_numpy(float) for v, g in data.groupby("axis_value")}
    samples = [by_value.get(v, np.array([])) for v in rows["axis_value"]]
    pos = np.arange(len(rows))
    fig, ax, owned = new_axes(ax)
    ax.boxplot(
        samples, positions=pos, widths=0.55, whis=(5, 95), patch_artist=True,
        boxprops=dict(facecolor="C0", alpha=0.35, edgecolor="C0"),
        medianprops=dict(color="C0", linewidth=1.8), whiskerprops=dict(color="C0"),
        capprops=dict(color="C0"), flierprops=dict(marker=".", markersize=3, alpha=0.6,
                                                   markeredgecolor="C0"),
    )
    # proxy artists so the legend says what the glyphs mean
    ax.plot([], [], "s", color="C0", alpha=0.35, markersize=8, label="25th-75th percentile")
    ax.plot([], [], "-", color="C0", linewidth=1.8, label="median")
    ax.plot([], [], "|", color="C0", markersize=8, label="whiskers: 5th-95th percentile")
    ax.plot([], [], ".", color="C0", label="chips outside 5th-95th")
    if rows["digital"].notna().any():
        ax.hlines(rows["digital"], pos - 0.35, pos + 0.35, colors="k", linestyles="--",
                  linewidth=1.2, label="digital baseline")
    ax.set_xticks(pos, rows["axis_label"].tolist())
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xlabel(axis_name(axis, axis_title) + (" (log-spaced points)" if axis_log else ""))
    n = int(rows["n_chips"].max()) if len(rows) else 0
    _finish(fig, ax, metric, f"{title}, {n} chips per point" if title else f"{n} chips per point", owned)
    return fig


def grouped_box_plot(chips: dict[str, pd.DataFrame], metric: str, *, axis: str,
                     axis_title: str | None = None, title: str | None = None,
                     ax: Axes | None = None) -> Figure:
    """Study 002 Fig. 5 style: at each point, one box per job label (whiskers p5-p95).

    Args:
        chips: label -> that sweep's tidy chip rows (all on the same axis).
    """
    data = {lab: c[c["metric"] == metric] for lab, c in chips.items()}
    data = {lab: c for lab, c in data.items() if not c.empty}
    points = _points(pd.concat(data.values())) if data else pd.DataFrame(
        {"axis_value": [], "axis_label": []})
    n_labels = max(len(data), 1)
    step = 0.8 / n_labels
    fig, ax, owned = new_axes(ax, width_in=max(FIGSIZE[0], 1.2 + 0.35 * n_labels * len(points)), dh_in=0.3)
    for j, (label, rows) in enumerate(data.items()):
        color = f"C{j % 10}"
        by_value = {v: g["value"].dropna().to_numpy(float) for v, g in rows.groupby("axis_value")}
        pos = np.arange(len(points)) + (j - (n_labels - 1) / 2) * step
        present = [i for i, v in enumerate(points["axis_value"]) if v in by_value]
        ax.boxplot(
            [by_value[points["axis_value"][i]] for i in present], positions=pos[present],
            widths=step * 0.8, whis=(5, 95), patch_artist=True, manage_ticks=False,
            boxprops=dict(facecolor=color, alpha=0.45, edgecolor=color),
            medianprops=dict(color=color, linewidth=1.8), whiskerprops=dict(color=color),
            capprops=dict(color=color),
            flierprops=dict(marker=".", markersize=3, alpha=0.6, markeredgecolor=color),
        )
        ax.plot([], [], "s", color=color, alpha=0.45, markersize=8, label=label)
    ax.plot([], [], " ", label="box 25th-75th, whiskers 5th-95th pct.")
    ax.set_xticks(np.arange(len(points)), points["axis_label"].tolist())
    ax.set_xlim(-0.6, len(points) - 0.4)
    ax.set_xlabel(axis_name(axis, axis_title))
    _finish(fig, ax, metric, title, owned)
    return fig


def comparison_plot(tables: dict[str, pd.DataFrame], metric: str, *, axis: str,
                    axis_log: bool = False, title: str | None = None,
                    axis_title: str | None = None, ax: Axes | None = None) -> Figure:
    """One median line with a p25-p75 band (and dashed digital baseline) per job label."""
    fig, ax, owned = new_axes(ax, dw_in=0.6, dh_in=0.3)
    markers = "osD^vP*X"
    all_rows = []
    for i, (label, table) in enumerate(tables.items()):
        rows = table[table["metric"] == metric].sort_values("axis_value")
        if rows.empty:
            continue
        all_rows.append(rows)
        x = rows["axis_value"].to_numpy(float)
        color = f"C{i % 10}"
        ax.fill_between(x, rows["p25"], rows["p75"], color=color, alpha=0.2, linewidth=0)
        ax.plot(x, rows["p50"], "-", marker=markers[i % len(markers)], color=color, label=label)
        if rows["digital"].notna().any():
            ax.plot(x, rows["digital"], "--", color=color, linewidth=1.0, alpha=0.8)
    _setup_x(ax, pd.concat(all_rows) if all_rows else pd.DataFrame(
        {"axis_value": [], "axis_label": []}), axis, axis_log, axis_title)
    ax.plot([], [], "-", color="0.4", label="median, band: 25th-75th pct.")
    ax.plot([], [], "--", color="0.4", label="digital baseline")
    _finish(fig, ax, metric, title, owned)
    return fig


def _as_images(array) -> np.ndarray:
    """[N,H,W] float images from [N,H,W] or [N,1,H,W] arrays."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3:
        raise ValueError(f"expected images of shape [N,H,W] or [N,1,H,W], got {array.shape}")
    return array


def image_grid(points: list[dict], *, axis: str, row_notes: list[str] | None = None,
               max_images: int = 8, axis_title: str | None = None, ax: Axes | None = None) -> Figure:
    """Study 000 Fig. 4-style grid: rows clean, noisy, digital, then the median chip per point.

    Args:
        points: one dict per sweep point in axis order, with keys clean, noisy, digital,
            analog ([N,H,W] arrays) and axis_label. The clean/noisy/digital rows come from the
            first point; if the noisy inputs differ between points (an input-noise sweep)
            the row labels say which point they show.
        axis: dotted sweep key, used in the row labels.
        row_notes: optional extra text per point row (e.g. the median PSNR).
        ax: draw the grid inside this Axes (hidden; one inset axes per image) instead of a new figure.
    """
    first = points[0]
    same_inputs = all(np.array_equal(p["noisy"], first["noisy"]) for p in points)
    at = "" if same_inputs else f"\n({first['axis_label']})"
    rows = [("clean", first["clean"]), ("noisy" + at, first["noisy"]),
            ("digital" + at, first["digital"])]
    short = axis_name(axis, axis_title)
    for i, p in enumerate(points):
        note = f"\n{row_notes[i]}" if row_notes and row_notes[i] else ""
        rows.append((f"{short}\n= {p['axis_label']}{note}", p["analog"]))
    rows = [(name, _as_images(imgs)[:max_images]) for name, imgs in rows]
    n_cols = max(len(imgs) for _, imgs in rows)
    label_pt = matplotlib.rcParams["legend.fontsize"]
    label_pt = label_pt if isinstance(label_pt, (int, float)) else 7.5
    w0 = matplotlib.rcParams["figure.figsize"][0]
    label_w = 1.9 * label_pt / 7.5  # room for the row names at the style's font size
    # the default style grows with the images; paper and slides keep their width and shrink the cells
    cell = 0.85 if w0 == FIGSIZE[0] else min(0.85 * w0 / FIGSIZE[0], (w0 - label_w) / n_cols)
    width = label_w + cell * n_cols
    if ax is None:
        fig = Figure(figsize=(width, 0.15 + cell * len(rows)), dpi=matplotlib.rcParams["figure.dpi"])
        axes = fig.subplots(len(rows), n_cols, squeeze=False)
        fig.subplots_adjust(left=(label_w - 0.1) / width, right=0.995, top=0.99, bottom=0.01,
                            wspace=0.04, hspace=0.06)
    else:
        fig = ax.figure
        ax.set_axis_off()
        n_rows = len(rows)
        axes = [[ax.inset_axes([c / n_cols, 1 - (r + 1) / n_rows, 0.96 / n_cols, 0.94 / n_rows])
                 for c in range(n_cols)] for r in range(n_rows)]
    for r, (name, imgs) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(imgs):
                ax.imshow(np.clip(imgs[c], 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0,
                          interpolation="nearest")
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=label_pt,
                              labelpad=4)
    return fig


def save_figure(fig: Figure, path: str | Path, tight: bool = True) -> Path:
    """Render ``fig`` to PNG at DPI and write it atomically to ``path`` (the report itself writes every
    ``report.formats`` with :func:`aimcbench.report.style.save_formats`)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)
