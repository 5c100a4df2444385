"""``report.html``: one self-contained page per sweep (and per merged report) that can be mailed.

The page holds the percentile table, every figure (embedded as ``data:`` URIs, so no file beside it is needed),
the configuration and the provenance from meta.json (git revision, versions, device, seeds, timings). It has no
script and no external stylesheet, font or image: it opens the same offline, in a mail client or an archive.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aimcbench.report.sweepdir import atomic_write_text

HTML_FILE = "report.html"

#: meta.json keys shown in the provenance table, in order (the whole meta.json is under "details")
PROVENANCE_KEYS = ("status", "git_rev", "device", "seeds", "model", "dataset", "chips", "task", "timings")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:72em;
     padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}th{background:#f3f3f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.8em;color:#555}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em}
.note{background:#fff6d5;padding:.4em .8em;border-left:4px solid #e0b000}
"""


@dataclass
class Page:
    """What one report page shows."""

    title: str
    table: pd.DataFrame
    figures: list[tuple] = field(default_factory=list)  # (file name, mime type, content[, display width px])
    configs: list[tuple[str, dict | None]] = field(default_factory=list)  # (label, config.yaml)
    metas: list[tuple[str, dict]] = field(default_factory=list)           # (label, meta.json)
    notes: list[str] = field(default_factory=list)


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return '<td class="n">-</td>' if np.isnan(value) else f'<td class="n">{float(value):.4g}</td>'
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f'<td class="n">{int(value)}</td>'
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return f"<td>{_esc('-' if value is None else value)}</td>"


def table_html(df: pd.DataFrame) -> str:
    """An HTML table of ``df`` (numbers to 4 significant digits, text escaped)."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>"
                     for row in df.itertuples(index=False, name=None))
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _figure(name: str, mime: str, content: bytes, width_px: int | None = None) -> str:
    uri = f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"
    size = f' width="{int(width_px)}"' if width_px else ""
    return (f'<figure><img src="{uri}"{size} alt="{_esc(name)}">'
            f"<figcaption>{_esc(name)}</figcaption></figure>")


def _yaml(config: dict | None) -> str:
    if config is None:
        return "(no config.yaml in this directory)"
    import yaml  # PyYAML, installed with OmegaConf

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=100)


def _provenance(metas: list[tuple[str, dict]]) -> str:
    rows = []
    for label, meta in metas:
        row = {"sweep": label or "-"}
        row.update({k: meta.get(k) for k in PROVENANCE_KEYS})
        rows.append(row)
    parts = [table_html(pd.DataFrame(rows, columns=["sweep", *PROVENANCE_KEYS]))]
    versions = [(label, meta.get("versions")) for label, meta in metas if meta.get("versions")]
    if versions and all(v == versions[0][1] for _, v in versions):
        versions = [("every sweep" if len(metas) > 1 else versions[0][0], versions[0][1])]
    for label, v in versions:
        parts.append(f"<p>Versions ({_esc(label or 'this sweep')}): "
                     + ", ".join(f"{_esc(k)} {_esc(x)}" for k, x in v.items()) + "</p>")
    for label, meta in metas:
        parts.append(f"<details><summary>meta.json of {_esc(label or 'this sweep')}</summary>"
                     f"<pre>{_esc(json.dumps(meta, indent=2, sort_keys=True, default=str))}</pre></details>")
    return "\n".join(parts)


def page_html(page: Page) -> str:
    """The whole self-contained HTML document."""
    notes = "".join(f'<p class="note">{_esc(n)}</p>' for n in page.notes if n)
    figures = "\n".join(_figure(*f) for f in page.figures) or "<p>(no figures)</p>"
    configs = "\n".join(
        f"<details{' open' if len(page.configs) == 1 else ''}><summary>{_esc(label or 'config.yaml')}</summary>"
        f"<pre>{_esc(_yaml(cfg))}</pre></details>" for label, cfg in page.configs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_esc(page.title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>{_esc(page.title)}</h1>
{notes}
<h2>Percentiles over chips</h2>
<p>One row per point and metric; p5 ... p95: percentiles of the metric over the simulated chips;
digital: the floating-point model.</p>
{table_html(page.table)}
<h2>Figures</h2>
{figures}
<h2>Configuration</h2>
{configs or "<p>(no config.yaml)</p>"}
<h2>Provenance</h2>
{_provenance(page.metas)}
</body></html>
"""


def write_html(page: Page, path: str | Path) -> Path:
    """Write ``page`` atomically to ``path``."""
    atomic_write_text(Path(path), page_html(page))
    return Path(path)
