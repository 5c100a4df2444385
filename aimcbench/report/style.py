"""Figure presets (``report.style``) and writing a figure in several formats (``report.formats``).

A preset is a set of matplotlib rc parameters applied with ``matplotlib.rc_context`` around the building and the
saving of a figure, so nothing changes the process-wide rcParams:

    with figure_style("paper"):
        fig = plots.band_plot(table, "accuracy", axis="hardware.adc.bits")
        save_formats(fig, "band_accuracy.png", ["png", "pdf"])

``paper`` and ``slides`` figures keep their width exactly (3.5 in: a journal's single column; 16:9 slides) and
are cropped only vertically; ``default`` figures are cropped to their contents as before.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from aimcbench.report.errors import ReportError
from aimcbench.report.sweepdir import atomic_write_bytes

FORMATS = ("png", "pdf", "svg")
DEFAULT_FORMATS = ("png", "pdf")


@dataclass(frozen=True)
class Style:
    """A figure preset: rc parameters, and whether saved figures keep the preset's width exactly."""

    name: str
    rc: dict = field(default_factory=dict)
    fixed_width: bool = False

    @property
    def dpi(self) -> float:
        """Resolution of raster output (PNG, and images inside PDF/SVG)."""
        return float(self.rc["savefig.dpi"])


_COMMON = {
    "svg.hashsalt": "aimcbench",   # deterministic element ids: the same figure gives the same SVG bytes
    "pdf.fonttype": 42,            # TrueType in PDFs: text stays text that journals' checkers accept
    "svg.fonttype": "path",        # SVG needs no fonts on the reader's machine (an e-mailed report)
}

STYLES: dict[str, Style] = {
    # today's look: 5.2 x 3.6 in, 150 dpi, 8.5 pt titles, 7.5 pt legends
    "default": Style("default", {**_COMMON, "figure.figsize": (5.2, 3.6), "figure.dpi": 150, "savefig.dpi": 150,
                                 "axes.titlesize": 8.5, "legend.fontsize": 7.5, "lines.markersize": 4}),
    # a journal's single column: 3.5 in wide, 8-9 pt text, 300 dpi raster, matplotlib's default sans
    "paper": Style("paper", {**_COMMON, "figure.figsize": (3.5, 2.6), "figure.dpi": 300, "savefig.dpi": 300,
                             "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7,
                             "ytick.labelsize": 7, "legend.fontsize": 6.5, "lines.linewidth": 1.2,
                             "lines.markersize": 3.5, "axes.linewidth": 0.6}, fixed_width=True),
    # 16:9 slides: 8 x 4.5 in with fonts readable from the back of the room
    "slides": Style("slides", {**_COMMON, "figure.figsize": (8.0, 4.5), "figure.dpi": 200, "savefig.dpi": 200,
                               "font.size": 14, "axes.titlesize": 14, "axes.labelsize": 14, "xtick.labelsize": 12,
                               "ytick.labelsize": 12, "legend.fontsize": 11, "lines.linewidth": 2.0,
                               "lines.markersize": 6}, fixed_width=True),
}


def get_style(style: str | Style | None) -> Style:
    """The preset named ``style`` (None: default); raises ReportError naming report.style otherwise."""
    if isinstance(style, Style):
        return style
    if style is None:
        return STYLES["default"]
    if style not in STYLES:
        raise ReportError(f"report.style: must be one of {', '.join(STYLES)} (got {style!r})")
    return STYLES[style]


def check_formats(formats: Sequence[str] | str | None) -> tuple[str, ...]:
    """``formats`` as a tuple of known formats (None: png and pdf); raises ReportError naming report.formats."""
    if formats is None:
        return DEFAULT_FORMATS
    if isinstance(formats, str):
        formats = [formats]
    out = tuple(dict.fromkeys(str(f).lower().lstrip(".") for f in formats))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise ReportError(f"report.formats: must be a non-empty list of {', '.join(FORMATS)} (got {list(formats)})")
    return out


@contextlib.contextmanager
def figure_style(style: str | Style | None = None) -> Iterator[Style]:
    """Apply a preset's rc parameters for the duration of the block (matplotlib.rc_context)."""
    preset = get_style(style)
    with matplotlib.rc_context(preset.rc):
        yield preset


def _bbox(fig: Figure, fixed_width: bool):
    """bbox_inches for savefig: "tight", or the full width with the height cropped to the contents."""
    if not fixed_width:
        return "tight"
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    tight = fig.get_tightbbox(fig.canvas.get_renderer())
    width, height = fig.get_size_inches()
    # keep the figure's own width (what a journal column asks for); a footer below the axes extends the bottom
    return Bbox.from_extents(0.0, min(0.0, tight.y0 - 0.02), width, max(height, tight.y1))


def render(fig: Figure, fmt: str, style: str | Style | None = None) -> bytes:
    """``fig`` encoded as ``fmt`` (png, pdf or svg) at the style's resolution, without dates (same bytes each run)."""
    preset = get_style(style)
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
    buffer = io.BytesIO()
    with matplotlib.rc_context(preset.rc):
        bbox = _bbox(fig, preset.fixed_width)
        fig.savefig(buffer, format=fmt, dpi=preset.dpi, bbox_inches=bbox,
                    pad_inches=0.0 if preset.fixed_width else 0.1, metadata=metadata)
    return buffer.getvalue()


def save_formats(fig: Figure, path: str | Path, formats: Sequence[str] | None = None,
                 style: str | Style | None = None) -> tuple[list[Path], tuple[str, bytes]]:
    """Write ``fig`` once per format next to ``path`` (its suffix replaced), each file atomically.

    Returns the paths written and a preview for the HTML report: (mime type, bytes) of the PNG, else the SVG,
    else a PNG rendered in memory only.
    """
    path = Path(path)
    written, encoded = [], {}
    for fmt in check_formats(formats):
        encoded[fmt] = render(fig, fmt, style)
        target = path.with_suffix("." + fmt)
        atomic_write_bytes(target, encoded[fmt])
        written.append(target)
    if "png" in encoded:
        preview = ("image/png", encoded["png"])
    elif "svg" in encoded:
        preview = ("image/svg+xml", encoded["svg"])
    else:
        preview = ("image/png", render(fig, "png", style))
    return written, preview
