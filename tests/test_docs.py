"""The documentation's code works: the walk-through's aimcbench blocks run, in order, on a tiny data set.

docs/walkthrough.md marks the blocks to run with the fence title "aimcbench"; the aihwkit blocks beside them are
shown, not run (aihwkit is not a dependency). The docs build itself (`mkdocs build --strict`) runs in .ci/run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
import torch

from aimcbench.sim.config import ADCConfig

ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGH = ROOT / "docs" / "walkthrough.md"
FENCE = re.compile(r'^```python title="([^"]*)"\n(.*?)^```$', re.DOTALL | re.MULTILINE)
# The page's sizes, made small so the test takes seconds (the code is the page's, only these numbers change).
SMALL = [("N_TRAIN, N_TEST, EPOCHS = 4000, 1000, 5", "N_TRAIN, N_TEST, EPOCHS = 400, 100, 1"),
         ("chips=40", "chips=4"), ("[40, N_TEST, 10]", "[4, N_TEST, 10]")]


def blocks(title: str) -> list[str]:
    return [code for t, code in FENCE.findall(WALKTHROUGH.read_text()) if t == title]


def test_walkthrough_marks_its_blocks():
    run, shown = blocks("aimcbench"), blocks("aihwkit (shown, not run)")
    assert len(run) >= 7 and len(shown) == len(run), (len(run), len(shown))  # one aihwkit block beside each step
    titles = {t for t, _ in FENCE.findall(WALKTHROUGH.read_text())}
    assert titles == {"aimcbench", "aihwkit (shown, not run)"}, titles  # no block escapes both kinds
    for page_text, _ in SMALL:
        assert page_text in "\n".join(run), page_text  # the test still shrinks what the page runs


def test_walkthrough_aimcbench_blocks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # step 7 writes myconf/hardware/mychip.yaml
    code = "\n".join(blocks("aimcbench"))
    for page_text, small in SMALL:
        code = code.replace(page_text, small)
    ns: dict = {}
    exec(compile(code, str(WALKTHROUGH), "exec"), ns)  # noqa: S102 - the page's own code
    out = capsys.readouterr().out
    # What the page says each step gives.
    assert ns["logits"].shape == (4, 100, 10)
    assert ns["acc"].shape == ns["acc_1h"].shape == ns["acc_mine"].shape == (4,)
    assert not torch.equal(ns["logits_1h"], ns["logits"])  # drift changed the read-out of the same chips
    assert ns["hw"].adc.bits == 8 and ns["hw_1h"].t_inference_s == 3600.0
    assert [r["arrays"] for r in ns["plan"]] == [2, 1]  # 784x128 on 512x512 tiles: 2 arrays; 128x10: 1
    mine = ns["mine"]
    assert (mine.name, mine.adc.bits, mine.device.drift_scale, mine.device.model) == ("mychip", 6, 0.5, "pcm")
    for bits in (8, 6, 4, 3):
        assert f"ADC {bits} bits: median" in out
    assert "mychip after 1 day" in out


@pytest.mark.parametrize("page", ["index.md", "walkthrough.md", "devices.md"])
def test_pages_in_nav(page):
    """Every page is in mkdocs.yml's nav (the strict build warns about, and so fails on, pages left out)."""
    assert f": {page}" in (ROOT / "mkdocs.yml").read_text()


def test_settings_fields_are_documented_on_the_api_pages():
    """The griffe extension of the docs build (docs/_griffe_fields.py) turns each settings field's _f(doc, ...)
    into a row of its class's Attributes table, with the allowed values, the range and the default."""
    griffe = pytest.importorskip("griffe")  # the [docs] extra

    spec = importlib.util.spec_from_file_location("_griffe_fields", ROOT / "docs" / "_griffe_fields.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    mod = griffe.load("aimcbench.sim.config", search_paths=[str(ROOT)], docstring_parser="google",
                      extensions=griffe.load_extensions(ext.SchemaFieldDocs()))
    adc = mod["ADCConfig"]
    sections = {s.kind.value: s for s in adc.docstring.parsed}
    rows = {a.name: a for a in sections["attributes"].value}
    assert "ADC resolution in bits" in rows["bits"].description
    assert "Range: `[1, 24]`" in rows["bits"].description and "Default: `None`" in rows["bits"].description
    assert "Allowed: `'uniform'`, `'mulaw'`" in rows["quantizer"].description
    assert set(rows) == {f.name for f in dataclasses.fields(ADCConfig)}  # every field, nothing else
