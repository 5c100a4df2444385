"""report.* settings: figures in every format and style (PDFs that open, paper figures 3.5 in wide), plot
functions drawing into the caller's Axes, and report.html rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from aimcbench.report import ReportError, load_sweep, merge_sweeps, percentile_table, plots, write_sweep_report
from aimcbench.report.build import _load_images
from aimcbench.report.pages import sweep_title
from aimcbench.report.style import figure_style, render
from test_report import AXIS, PNG_MAGIC, write_sweep

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _media_box_pt(pdf: Path) -> list[float]:
    """The first page's MediaBox [x0 y0 x1 y1] in points (matplotlib writes it uncompressed)."""
    found = re.search(rb"/MediaBox\s*\[\s*([-\d.\s]+)\]", pdf.read_bytes())
    assert found, f"{pdf}: no /MediaBox"
    return [float(v) for v in found.group(1).split()]


def _pdf_opens(pdf: Path, tmp: Path) -> None:
    """pdftoppm renders the page (poppler-utils); without it, matplotlib's PDF must at least be complete."""
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF"), pdf
    if shutil.which("pdftoppm"):
        done = subprocess.run(["pdftoppm", "-r", "30", "-png", "-singlefile", str(pdf), str(tmp / pdf.stem)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert (tmp / f"{pdf.stem}.png").read_bytes().startswith(PNG_MAGIC)


def test_formats_write_pdfs_that_open_and_paper_figures_are_a_column_wide(tmp_path):
    run = tmp_path / "run"
    write_sweep(run, label="hardware=pcm threads=1", images=True)
    written = {p.name for p in write_sweep_report(run, formats=["png", "pdf"], style="paper")}
    stems = ("band_accuracy", "box_accuracy", "grid")
    assert {f"{s}.{ext}" for s in stems for ext in ("png", "pdf")} <= written
    assert not list(run.glob("*.svg"))
    for stem in stems:
        _pdf_opens(run / f"{stem}.pdf", tmp_path)
        x0, _, x1, height = _media_box_pt(run / f"{stem}.pdf")
        assert x1 - x0 == pytest.approx(252.0, abs=0.01), stem  # 3.5 in: a journal's single column
        assert 100 < height < 400, stem
        png = (run / f"{stem}.png").read_bytes()  # 300 dpi: 3.5 in is 1050 pixels
        assert int.from_bytes(png[16:20], "big") == 1050, stem
    # default style: today's size (wider than a column); slides: 8 in (16:9); no date in a PDF, so rebuilding
    # gives the same bytes
    table = percentile_table(load_sweep(run).chips)
    for style, width_pt in (("default", 5.2 * 72), ("slides", 8 * 72)):
        with figure_style(style):
            fig = plots.band_plot(table, "accuracy", axis=AXIS)
        pdf = render(fig, "pdf", style)
        assert pdf == render(fig, "pdf", style)
        (tmp_path / f"{style}.pdf").write_bytes(pdf)
        width = _media_box_pt(tmp_path / f"{style}.pdf")[2]
        assert width == pytest.approx(width_pt, abs=0.01) if style == "slides" else width > 300, style
    assert render(fig, "svg", "slides").lstrip().startswith(b"<?xml")


def test_sweep_report_uses_the_sweeps_own_settings_and_rejects_bad_ones(tmp_path):
    run = tmp_path / "run"
    write_sweep(run, label="hardware=rram threads=1")
    (run / "config.yaml").write_text("hardware:\n  name: rram\nreport:\n  formats: [svg]\n  style: paper\n"
                                     "  html: false\n")
    names = {p.name for p in write_sweep_report(run)}  # what a sweep's own report step does
    assert "band_accuracy.svg" in names and not {"band_accuracy.png", "report.html"} & names
    assert 'width="252pt"' in (run / "band_accuracy.svg").read_text()[:2000]
    # the title names the profile and the swept key, not the run-only override threads=1
    assert sweep_title(load_sweep(run)) == f"rram profile, sweep of {AXIS}"
    with pytest.raises(ReportError, match=r"report\.formats"):
        write_sweep_report(run, formats=["gif"])
    with pytest.raises(ReportError, match=r"report\.style"):
        write_sweep_report(run, style="poster")
    from aimcbench.config import UsageError, check_config

    with pytest.raises(UsageError, match=r"report\.formats"):
        check_config({"report": {"formats": ["gif"], "style": "paper", "html": True}})
    check_config({"report": {"formats": ["png", "svg"], "style": "slides", "html": False}})


def test_plot_functions_draw_into_the_callers_axes(tmp_path):
    run = tmp_path / "run"
    chips = write_sweep(run, images=True)
    sweep = load_sweep(run)
    table = percentile_table(sweep.chips, sweep.digital)
    fig = Figure(figsize=(10, 3))
    left, middle, right = fig.subplots(1, 3)
    assert plots.band_plot(table, "accuracy", axis=AXIS, ax=left) is fig
    assert plots.box_plot(chips, table, "accuracy", axis=AXIS, ax=middle) is fig
    assert plots.comparison_plot({"a": table}, "accuracy", axis=AXIS, ax=right) is fig
    assert len(left.lines) >= 2 and len(middle.get_xticklabels()) == 4 and right.get_legend() is not None
    grid_fig = Figure()
    host = grid_fig.add_subplot()
    assert plots.image_grid(_load_images(sweep), axis=AXIS, ax=host) is grid_fig
    assert len(host.child_axes) == 7 * 4  # one inset per image: 3 input rows + 4 points, 4 images each


def _render(html: Path, tmp: Path) -> tuple[str, str]:
    """Chromium's DOM after load (with a hook that counts loaded images and records errors) and its log."""
    hook = ("<script>addEventListener('error',function(e){document.documentElement.setAttribute('data-errors',"
            "(document.documentElement.getAttribute('data-errors')||'')+'|'+(e.message||e.target.tagName))},true);"
            "addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
            "document.body.setAttribute('data-images',i.length);document.body.setAttribute('data-loaded',"
            "i.filter(function(x){return x.complete&&x.naturalWidth>0}).length)});</script>")
    probe = tmp / f"probe_{html.parent.name}.html"
    probe.write_text(html.read_text().replace("<head>", "<head>" + hook, 1))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", f"--user-data-dir={tmp / 'ud'}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_html_renders_in_headless_chromium_with_every_figure(tmp_path):
    run = tmp_path / "run"
    write_sweep(run, label="hardware=pcm", images=True)
    meta = load_sweep(run).meta
    meta.update(git_rev="0123abc", device="cpu", seeds={"mc": 0, "train": 0}, versions={"torch": "2.x"},
                timings={"total_s": 12.5})
    (run / "meta.json").write_text(__import__("json").dumps(meta))
    (run / "config.yaml").write_text("hardware:\n  name: pcm\nmc:\n  chips: 40\n")
    write_sweep_report(run, formats=["svg", "pdf"])  # no PNG asked: SVG previews are embedded
    write_sweep(tmp_path / "multi" / "0", label="hardware=pcm", seed=1)
    write_sweep(tmp_path / "multi" / "1", label="hardware=rram", seed=2)
    merge_sweeps([tmp_path / "multi"], tmp_path / "merged")
    for page, n_figures in ((run / "report.html", 3), (tmp_path / "merged" / "report.html", 2)):
        text = page.read_text()
        # self-contained: every image a data: URI, nothing fetched from elsewhere, no script
        assert not re.search(r'(?:src|href)="(?!data:)', text) and "<script" not in text and "<link" not in text
        assert "p75" in text and "Provenance" in text and "Configuration" in text
        dom, log = _render(page, tmp_path)
        assert f'data-images="{n_figures}"' in dom and f'data-loaded="{n_figures}"' in dom, page
        assert 'data-errors="' not in dom, re.findall(r'data-errors="[^"]*"', dom)
        assert not re.search(r"Uncaught|ERROR:CONSOLE|Failed to load resource", log), log[-2000:]
    # the probe sees a broken figure and a script error (so the checks above can fail)
    broken = tmp_path / "broken" / "report.html"
    broken.parent.mkdir()
    page = (run / "report.html").read_text()
    broken.write_text(page.replace("data:image/svg+xml;base64,", "data:image/png;base64,A", 1)
                      .replace("</body>", "<script>undefinedFunction()</script></body>"))
    dom, log = _render(broken, tmp_path)
    assert 'data-loaded="2"' in dom and 'data-errors="' in dom
    assert re.search(r"(Uncaught|ERROR:CONSOLE).*undefinedFunction", log), log[-2000:]
    text = (run / "report.html").read_text()
    assert "0123abc" in text and "total_s" in text and "torch 2.x" in text and "chips: 40" in text
    assert text.count("data:image/svg+xml;base64,") == 3
    merged = (tmp_path / "merged" / "report.html").read_text()
    assert "hardware=rram" in merged and merged.count("data:image/png;base64,") == 2
    assert len(re.findall(r'<img src="data:image/png;base64,[^"]*" width="\d+"', merged)) == 2  # shown at 1.5x


def test_loglog_plot_follows_the_report_settings(tmp_path):
    from aimcbench.report.loglog import write_loglog

    alpha = [0.1, 0.2, 0.4, 0.8]
    rows = [{"point": i, "axis": "hardware.weight_noise.alpha", "axis_value": a, "axis_label": f"{a:g}", "chip": k,
             "metric": "accuracy", "value": 1 - 0.02 * (a / 0.1) ** 1.5 * (1 + 0.01 * k)}
            for i, a in enumerate(alpha) for k in range(3)]
    import pandas as pd

    pd.DataFrame(rows).to_parquet(tmp_path / "chips.parquet")
    (tmp_path / "config.yaml").write_text("report:\n  formats: [pdf]\n  style: paper\n")
    (tmp_path / "meta.json").write_text('{"label": "hardware=weight_noise"}')
    pd.DataFrame([{"point": 0, "metric": "accuracy", "value": 0.995}]).to_csv(tmp_path / "digital.csv")
    write_loglog(tmp_path)  # what the runner calls: the sweep's own report.* settings
    assert not (tmp_path / "loglog_accuracy.png").exists()
    assert _media_box_pt(tmp_path / "loglog_accuracy.pdf")[2] == pytest.approx(252.0, abs=0.01)
