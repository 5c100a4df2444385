"""Study 002 Figs. 8b and 9b: a percentile of every sweep divided by that of its reference sweep, point by point.

The reference of a sweep is the sweep whose job overrides are the same except one key, set to a given value:
``normalize_to="hardware:rram_l1"`` (or ``hardware=rram_l1``) divides each level-2 sweep (hardware=rram_l2 train.noise_injection=0.0624 ...)
by the level-1 sweep with the same training injection, as Fig. 8b does; ``normalize_to="train:level3_wrn"``
compares learning-rate choices as Fig. 9b. The 75th percentile over chips is the study's figure of merit.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from aimcbench.report import plots
from aimcbench.report.errors import ReportError
from aimcbench.report.sweepdir import Sweep, _hydra_overrides


def _terms(sweep: Sweep) -> dict[str, str]:
    """The sweep's job overrides as key -> 'key=value' (Hydra's record, else meta.json's label words)."""
    words = _hydra_overrides(sweep.path) or (sweep.label or "").split()
    return {w.split("=", 1)[0].lstrip("+~"): w for w in words if "=" in w}


def reference_pairs(sweeps: list[Sweep], normalize_to: str) -> list[tuple[int, int]]:
    """(sweep index, reference index) for every sweep that has a reference other than itself."""
    if "=" not in normalize_to and ":" in normalize_to:
        # key:value spares the shell quoting Hydra needs for an '=' inside a value
        normalize_to = normalize_to.replace(":", "=", 1)
    if "=" not in normalize_to:
        raise ReportError(f"normalize_to: must look like key:value, e.g. hardware:rram_l1 (got {normalize_to!r})")
    key = normalize_to.split("=", 1)[0]
    terms = [_terms(s) for s in sweeps]
    index = {frozenset(t.values()): i for i, t in enumerate(terms)}
    pairs = []
    for i, t in enumerate(terms):
        if t.get(key) == normalize_to:
            continue                       # a reference itself
        ref = index.get(frozenset({**t, key: normalize_to}.values()))
        if ref is not None:
            pairs.append((i, ref))
    if not pairs:
        found = sorted({t.get(key, f"{key} not set") for t in terms})
        raise ReportError(f"normalize_to: no sweep has a reference with {normalize_to} (the sweeps have: "
                          f"{', '.join(found)})")
    return pairs


def normalized_table(tables: list[pd.DataFrame], labels: list[str], pairs: list[tuple[int, int]],
                     stat: str = "p75") -> pd.DataFrame:
    """Rows label, reference, axis, axis_value, axis_label, metric, value = stat / reference stat, and both stats."""
    rows = []
    for i, ref in pairs:
        a = tables[i][["axis", "axis_value", "axis_label", "metric", stat]]
        b = tables[ref][["axis", "axis_value", "metric", stat]].rename(columns={stat: "reference_" + stat})
        m = a.merge(b, on=["axis", "axis_value", "metric"], how="inner")
        m["value"] = m[stat] / m["reference_" + stat]
        rows.append(m.assign(label=labels[i], reference=labels[ref]))
    out = pd.concat(rows, ignore_index=True)
    return out[["label", "reference", "axis", "axis_value", "axis_label", "metric", "value", stat, "reference_" + stat]]


def normalized_plot(table: pd.DataFrame, metric: str, *, axis: str, axis_log: bool = False, stat: str = "p75",
                    normalize_to: str = "", axis_title: str | None = None, ax=None) -> Figure:
    """One line per sweep: its ``stat`` divided by its reference's, at every point (1 = as good as the reference)."""
    fig, ax, owned = plots.new_axes(ax, dw_in=0.6, dh_in=0.3)
    rows = table[(table["metric"] == metric) & (table["axis"] == axis)]
    for j, (label, g) in enumerate(rows.groupby("label", sort=False)):
        g = g.sort_values("axis_value")
        ax.plot(g["axis_value"], g["value"], "-o", color=f"C{j % 10}", label=label)
    ax.axhline(1.0, color="0.4", linestyle="--", linewidth=1.0, label=f"reference ({normalize_to})")
    plots._setup_x(ax, rows, axis, axis_log, axis_title)
    ax.set_ylabel(f"{stat} {plots.metric_name(metric)} / reference {stat}")
    ax.legend(loc="best")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"normalized {stat} (study 002 Figs. 8b/9b)")
    if owned:
        fig.tight_layout()
    return fig
