"""Writing reports: per-sweep tables and plots, merged multi-sweep tables and comparisons.

Every file is written atomically (temporary file + os.replace) and rebuilt from the
results alone, so running a report twice gives the same files and a reader never sees a
half-written one, even while a sweep is still adding points.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from aimcbench.report import pages, plots
from aimcbench.report.errors import ReportError
from aimcbench.report.sweepdir import (
    IMAGES_DIR, Sweep, atomic_write_text, find_sweep_dirs, label_sweeps, load_sweep, split_common,
)
from aimcbench.report.style import figure_style
from aimcbench.report.tables import percentile_table

PERCENTILES_FILE = "percentiles.csv"
SUMMARY_FILE = "summary.md"


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{float(value):.4g}"


def _safe(name: str) -> str:
    """A metric or key name usable in a file name."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))


def data_note(meta: dict | None) -> str:
    """A one-line note when meta.json says the embedded MNIST sample stood in for the full data set (its
    ``data.source`` is "sample"); "" otherwise, also for runs written before meta.json recorded the data."""
    data = meta.get("data") if isinstance(meta, dict) else None
    if not isinstance(data, dict) or data.get("source") != "sample":
        return ""
    n, asked = data.get("n_test"), data.get("n_test_requested")
    counts = f"{n} test images" if isinstance(n, int) else "its test images"
    if isinstance(n, int) and isinstance(asked, int) and asked != n:
        counts += f", eval.n={asked} asked"
    if data.get("name") not in (None, "mnist"):  # e.g. dataset=images: the packaged default picture
        return f"data: the packaged sample of {data['name']} ({counts}), not data of your own"
    return f"data: the embedded MNIST sample ({counts}), not the full set"


def _footer(fig, note: str):
    """The data note under a figure (saved with its height cropped to the contents, so text below the axes is
    kept), wrapped to the figure's width."""
    if note:
        import textwrap

        import matplotlib

        size = matplotlib.rcParams["legend.fontsize"]  # the style's small text
        size = size if isinstance(size, (int, float)) else 7.5
        fig.text(0.01, -0.01, textwrap.fill(note, max(40, int(fig.get_figwidth() * 72 / (0.55 * size)))),
                 fontsize=size, color="0.35", ha="left", va="top")
    return fig


def summary_markdown(table: pd.DataFrame, title: str = "aimcbench report", notes: list[str] = ()) -> str:
    """Markdown tables (one per metric) of median and 75th percentile per point and label.

    ``table`` is a percentile table, optionally with a leading ``label`` column; ``notes`` (e.g. the data note)
    are quoted under the title.
    """
    table = table if "label" in table.columns else table.assign(label="")
    lines = [f"# {title}", ""]
    lines += [f"> **Note** - {note}" for note in notes if note] + ([""] if any(notes) else [])
    for (axis, metric), rows in table.groupby(["axis", "metric"], sort=False):
        lines += [f"## {metric} vs {axis}", "",
                  "| label | point | chips | p50 | p75 | digital |",
                  "|---|---|---:|---:|---:|---:|"]
        for _, row in rows.iterrows():
            lines.append(f"| {row['label'] or '-'} | {row['axis_label']} | {row['n_chips']} | "
                         f"{_fmt(row['p50'])} | {_fmt(row['p75'])} | {_fmt(row['digital'])} |")
        lines.append("")
    lines.append("p50: median over chips; p75: 75th percentile over chips (the figure of merit "
                 "of study 002); digital: the float model.")
    return "\n".join(lines) + "\n"


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    atomic_write_text(path, table.to_csv(index=False))
    return path


def _load_images(sweep: Sweep) -> list[dict]:
    """The DAE image files images/point_XXX.npz of a sweep, in point order."""
    files = sorted((sweep.path / IMAGES_DIR).glob("point_[0-9]*.npz"))
    finished = set(sweep.chips["point"].astype(int))
    points = []
    for f in files:
        # images are written just before their point's parquet: skip unfinished points
        if int(f.stem.split("_")[1]) not in finished:
            continue
        try:
            with np.load(f, allow_pickle=False) as data:
                entry = {k: data[k] for k in ("clean", "noisy", "digital", "analog")}
                entry["axis_label"] = str(data["axis_label"]) if "axis_label" in data else f.stem
        except KeyError as exc:
            raise ReportError(f"{f}: missing key {exc}; expected clean, noisy, digital, analog, "
                              "axis_label") from None
        except (OSError, ValueError) as exc:
            raise ReportError(f"{f}: cannot read npz ({exc})") from None
        points.append(entry)
    return points


def write_sweep_report(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                       sweep: Sweep | None = None, formats=None, style: str | None = None,
                       html: bool | None = None) -> list[Path]:
    """Write percentiles.csv, summary.md, band_/box_<metric>.<fmt>, (DAE) grid.<fmt> and report.html.

    Args:
        run_dir: a sweep directory (complete, or partial with points/ only).
        out_dir: where to write; default the sweep directory itself.
        sweep: an already loaded sweep (skips reading run_dir again).
        formats: ``report.formats``; None: the sweep's own (its config.yaml), else the default (png and pdf).
        style: ``report.style``; None: the sweep's own, else the default style.
        html: ``report.html``; None: the sweep's own, else true (report.html written).

    Returns:
        The paths written.
    """
    sweep = sweep or load_sweep(run_dir)
    opts = pages.settings(sweep, formats, style, html)
    out = Path(out_dir) if out_dir is not None else sweep.path
    out.mkdir(parents=True, exist_ok=True)
    table = percentile_table(sweep.chips, sweep.digital)
    written = [_write_csv(table, out / PERCENTILES_FILE)]
    state = ""
    if sweep.meta and not sweep.complete:
        planned = sweep.meta.get("points") or []
        done = sweep.chips["point"].nunique()
        state = f" (partial: {done} of {len(planned)} points)" if planned else " (partial)"
    title = pages.sweep_title(sweep) + state  # the key and the profile, not every override (threads=1, ...)
    note = data_note(sweep.meta)
    written.append(out / SUMMARY_FILE)
    heading = f"{sweep.path.name}: {(sweep.label or '') + state}".rstrip(": ")
    atomic_write_text(written[-1], summary_markdown(table.assign(label=sweep.label), title=heading, notes=[note]))
    figs = pages.FigureWriter(opts["formats"], opts["style"])
    with figure_style(opts["style"]):
        for metric in table["metric"].unique():
            fig = plots.band_plot(table, metric, axis=sweep.axis, axis_log=sweep.axis_log,
                                  title=title, axis_title=sweep.axis_title)
            written += figs.save(_footer(fig, note), out / f"band_{_safe(metric)}.png")
            fig = plots.box_plot(sweep.chips, table, metric, axis=sweep.axis,
                                 axis_log=sweep.axis_log, title=title, axis_title=sweep.axis_title)
            written += figs.save(_footer(fig, note), out / f"box_{_safe(metric)}.png")
        images = _load_images(sweep)
        if images:
            notes = None
            if "psnr" in set(table["metric"]):
                psnr = table[table["metric"] == "psnr"].set_index("axis_label")["p50"]
                notes = [f"PSNR {psnr[p['axis_label']]:.1f} dB" if p["axis_label"] in psnr.index
                         else "" for p in images]
            fig = plots.image_grid(images, axis=sweep.axis, row_notes=notes, axis_title=sweep.axis_title)
            written += figs.save(_footer(fig, note), out / "grid.png")
        from .segmentation import write_segmentation_grid  # detection sweeps (study 000 Figs. 8-10)

        written += write_segmentation_grid(sweep.path, out, axis_title=sweep.axis_title, writer=figs)
        from .pareto import write_pareto  # issue 17: accuracy against energy per inference (the sweep's cost.csv)

        written += write_pareto(sweep, table, out, figs, _footer, note, title=title)
    if opts["html"]:
        written.append(pages.write_sweep_page(sweep, table, figs, out, heading, [note]))
    return written


def find_sweeps(dirs) -> list[Path]:
    """Sweep directories under each of ``dirs``, in the order given; errors name the path."""
    found: list[Path] = []
    for d in dirs:
        here = find_sweep_dirs(d)
        if not here:
            raise ReportError(f"{d}: no sweep results found (expected chips.parquet or "
                              "points/point_XXX.parquet in it or in its job subdirectories)")
        found += [p for p in here if p.resolve() not in {f.resolve() for f in found}]
    return found


def merge_sweeps(dirs, out_dir: str | os.PathLike, normalize_to: str | None = None,
                 stat: str = "p75", formats=None, style: str | None = None, html: bool | None = None) -> list[Path]:
    """Merge all sweeps found under ``dirs`` into one labelled table and comparison plots.

    Writes out_dir/percentiles.csv (a leading ``label`` column, then the percentiles.csv
    columns), out_dir/summary.md, out_dir/compare_<metric>.png (median lines and p25-p75
    bands per label) and out_dir/compare_box_<metric>.png (one box per label at each point,
    like study 002 Fig. 5); with sweeps over different axes, one of each per axis and metric,
    named compare_<metric>__<axis>.png. With ``normalize_to`` (key=value), also normalized_<stat>.csv and
    normalized_<stat>_<metric>.png: each sweep's ``stat`` over its reference's (study 002 Figs. 8b/9b). Each
    figure is written in every ``formats`` (None: the first sweep's report.formats, else png and pdf) in
    ``style``, and with ``html`` (default true) out_dir/report.html shows them with the table, every config and
    the provenance.
    """
    sweeps = [load_sweep(p) for p in find_sweeps(dirs)]
    opts = pages.settings(sweeps[0] if sweeps else None, formats, style, html)
    labels = label_sweeps(sweeps)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = [percentile_table(s.chips, s.digital).assign(label=lab)
              for s, lab in zip(sweeps, labels)]
    # the job's overrides as columns; chips.parquet: one row per job x point x chip x metric
    from .dataset import merged_table, write_merged_chips

    merged = merged_table([(t, s.path) for t, s in zip(tables, sweeps)], out, leading=["label", *tables[0].columns])
    written = [_write_csv(merged, out / PERCENTILES_FILE), write_merged_chips(sweeps, out)]
    written.append(out / SUMMARY_FILE)
    shared = split_common([s.label for s in sweeps])[1]
    title = f"merged report: {len(sweeps)} sweeps" + (f" (all with {shared})" if shared else "")
    sampled = [lab for s, lab in zip(sweeps, labels) if data_note(s.meta)]
    note = ("" if not sampled else "data: the embedded MNIST sample, not the full set, in "
            + ("every sweep" if len(sampled) == len(sweeps) else ", ".join(sampled)))
    atomic_write_text(written[-1], summary_markdown(merged, title=title, notes=[note]))

    axes = list(dict.fromkeys(s.axis for s in sweeps))
    figs = pages.FigureWriter(opts["formats"], opts["style"])
    with figure_style(opts["style"]):
        for axis in axes:
            chosen = [(lab, t, s) for lab, t, s in zip(labels, tables, sweeps) if s.axis == axis]
            axis_log = any(s.axis_log for _, _, s in chosen)
            suffix = "" if len(axes) == 1 else f"__{_safe(axis)}"
            heading = pages.merged_title(sweeps, axis)  # the key and a shared profile, not every override
            for metric in dict.fromkeys(m for _, t, _ in chosen for m in t["metric"]):
                fig = plots.comparison_plot({lab: t for lab, t, _ in chosen}, metric, axis=axis,
                                            axis_log=axis_log, axis_title=chosen[0][2].axis_title, title=heading)
                written += figs.save(_footer(fig, note), out / f"compare_{_safe(metric)}{suffix}.png")
                fig = plots.grouped_box_plot({lab: s.chips for lab, _, s in chosen}, metric,
                                             axis=axis, axis_title=chosen[0][2].axis_title, title=heading)
                written += figs.save(_footer(fig, note), out / f"compare_box_{_safe(metric)}{suffix}.png")
    from .pareto import write_merged_pareto  # issue 17: every priced sweep's accuracy against its energy

    with figure_style(opts["style"]):
        written += write_merged_pareto(sweeps, labels, tables, out, figs, _footer, note, title=title)
    if normalize_to:
        from .normalize import normalized_plot, normalized_table, reference_pairs

        normalize_to = normalize_to if "=" in normalize_to else normalize_to.replace(":", "=", 1)
        norm = normalized_table(tables, labels, reference_pairs(sweeps, normalize_to), stat)
        written.append(_write_csv(norm, out / f"normalized_{stat}.csv"))
        for axis in axes:
            suffix = "" if len(axes) == 1 else f"__{_safe(axis)}"
            chosen = [s for s in sweeps if s.axis == axis]
            for metric in norm.loc[norm["axis"] == axis, "metric"].unique():
                with figure_style(opts["style"]):
                    fig = normalized_plot(norm, metric, axis=axis, axis_log=any(s.axis_log for s in chosen),
                                          stat=stat, normalize_to=normalize_to, axis_title=chosen[0].axis_title)
                    written += figs.save(fig, out / f"normalized_{stat}_{_safe(metric)}{suffix}.png")
    if opts["html"]:
        written.append(pages.write_merged_page(sweeps, labels, merged, figs, out, title, [note]))
    return written


def report_dirs(dirs, out: str | os.PathLike | None = None, normalize_to: str | None = None,
                stat: str = "p75", formats=None, style: str | None = None, html: bool | None = None) -> list[Path]:
    """What ``aimc report DIR...`` does.

    Rebuilds every sweep's own table and plots in its directory; then, with one sweep and
    ``out`` given, also writes that sweep's report to ``out``; with several sweeps, merges
    them into ``out`` (default: the single directory given, else ./report). ``formats``, ``style`` and
    ``html`` are the report.* settings (None: each sweep's own, else the defaults).
    """
    kw = dict(formats=formats, style=style, html=html)
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise ReportError("dirs: no directories given; pass dirs=[DIR,...] (aimc report DIR...)")
    found = find_sweeps(dirs)
    from .shards import merge_shard_sets  # issue 15: the shards of one sweep become one sweep directory

    found = merge_shard_sets(found, out)
    written: list[Path] = []
    for path in found:
        written += write_sweep_report(path, **kw)
    if len(found) == 1:
        if out is not None and Path(out).resolve() != found[0].resolve():
            written += write_sweep_report(found[0], out_dir=out, **kw)
        return written
    if out is None:
        out = dirs[0] if len(dirs) == 1 else Path("report")
    if Path(out).resolve() in {p.resolve() for p in found}:
        # the merged table would overwrite that sweep's own percentiles.csv
        raise ReportError(f"out: {out} is one of the sweep directories being merged; "
                          "choose another directory")
    return written + merge_sweeps(found, out, normalize_to=normalize_to, stat=stat, **kw)
