"""What the report step needs around the plots: the report settings, figure titles, saving every figure in each
``report.formats`` (remembering a preview for ``report.html``), and the pages of a sweep and of a merged report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd
from matplotlib.figure import Figure

from aimcbench.report.html import HTML_FILE, Page, write_html
from aimcbench.report.style import check_formats, get_style, save_formats
from aimcbench.report.sweepdir import Sweep

DEFAULT_SETTINGS = {"formats": ["png", "pdf"], "style": "default", "html": True}


def settings(sweep: Sweep | None = None, formats: Sequence[str] | None = None, style: str | None = None,
             html: bool | None = None, config: dict | None = None) -> dict:
    """The report settings: those given, else the sweep's own (``report`` in its config.yaml), else the defaults.

    A sweep's report step passes nothing, so it draws what its ``report.*`` settings asked for; ``aimc report``
    passes its own ``report.*`` settings."""
    config = sweep.config if sweep is not None else config  # config: a config.yaml read without its sweep
    own = (config or {}).get("report") or {}
    own = own if isinstance(own, dict) else {}
    out = {}
    for key, given in (("formats", formats), ("style", style), ("html", html)):
        out[key] = given if given is not None else own.get(key, DEFAULT_SETTINGS[key])
    out["formats"] = check_formats(out["formats"])
    out["style"] = get_style(out["style"]).name
    out["html"] = bool(out["html"])
    return out


def profile(sweep: Sweep) -> str | None:
    """The hardware profile's name (config.yaml's hardware.name, else a hardware=NAME word of the job label)."""
    hardware = (sweep.config or {}).get("hardware")
    if isinstance(hardware, dict) and hardware.get("name"):
        return str(hardware["name"])
    words = [w.split("=", 1)[1] for w in sweep.label.split() if w.startswith("hardware=")]
    return words[0] if words else None


def sweep_title(sweep: Sweep) -> str:
    """A figure title from the swept key and the profile only (never run-only overrides such as threads=1)."""
    name = profile(sweep)
    return (f"{name} profile, " if name else "") + f"sweep of {sweep.axis}"


def merged_title(sweeps: list[Sweep], axis: str) -> str:
    """The title of a comparison over ``axis``: the key, and the profile when every sweep shares one."""
    names = {profile(s) for s in sweeps if s.axis == axis}
    shared = names.pop() if len(names) == 1 else None
    return (f"{shared} profile, " if shared else "") + f"sweep of {axis}"


@dataclass
class FigureWriter:
    """Saves figures in every format and keeps, in order, the preview each one shows in report.html."""

    formats: tuple[str, ...]
    style: str
    previews: list[tuple[str, str, bytes, int | None]] = field(default_factory=list)

    def save(self, fig: Figure, path: str | os.PathLike) -> list[Path]:
        """Write ``fig`` as ``path`` with each format's suffix; the paths written."""
        written, (mime, content) = save_formats(fig, path, self.formats, self.style)
        width = None
        if mime == "image/png":  # shown at 1.5x its printed size whatever the dpi (an SVG carries its own size)
            width = round(int.from_bytes(content[16:20], "big") / get_style(self.style).dpi * 144)
        self.previews.append((Path(path).stem, mime, content, width))
        return written


def _table_for_page(table: pd.DataFrame) -> pd.DataFrame:
    cols = ["label"] if "label" in table.columns else []
    cols += [c for c in ("axis_label", "metric", "n_chips", "mean", "std", "p5", "p25", "p50", "p75", "p95",
                         "digital") if c in table.columns]
    return table[cols].rename(columns={"axis_label": "point"})


def write_sweep_page(sweep: Sweep, table: pd.DataFrame, writer: FigureWriter, out: Path, title: str,
                     notes: list[str]) -> Path:
    """report.html of one sweep."""
    page = Page(title=title, table=_table_for_page(table), figures=writer.previews,
                configs=[(sweep.label, sweep.config)], metas=[(sweep.label, sweep.meta)], notes=notes)
    return write_html(page, out / HTML_FILE)


def write_merged_page(sweeps: list[Sweep], labels: list[str], merged: pd.DataFrame, writer: FigureWriter,
                      out: Path, title: str, notes: list[str]) -> Path:
    """report.html of a merged report: the merged table, the comparison figures, every job's config and meta."""
    page = Page(title=title, table=_table_for_page(merged), figures=writer.previews,
                configs=list(zip(labels, (s.config for s in sweeps))),
                metas=list(zip(labels, (s.meta for s in sweeps))), notes=notes)
    return write_html(page, out / HTML_FILE)
