"""Checks of study 001's claims (Figs. 2-5: MLPs on MNIST, weight noise and weight quantization per layer).

Each run is one ``-m`` grid (hidden size x layer set): a Hydra sweep dir with one job dir per combination. The
study plots the error rate of the mean over 100 repeats, 1 - mean accuracy; a check compares mean error rates
with 95 % bootstrap intervals over the chips (chip k of one job against chip k of another: for noise on two
different layers or networks the draws are independent, and the mean of the differences is the difference of
the means, with the interval of a difference of independent means). All numbers are in percentage points.
Every check draws ``<out_dir>/<fig>.png`` (one panel per hidden size, one line per layer set) and never raises
on partial results.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from aimcbench.studies.verdict import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_JUDGED,
    Interval,
    above,
    below,
    bootstrap,
    chip_values,
    combine,
    diff_halfwidth,
    job_config,
    job_meta,
    missing,
    paired,
    result,
    with_test_floor,
    within,
)

ALPHA = 0.4        # Figs. 2-3: the noise level of the comparisons (our choice; the study compares whole curves)
BITS = 3           # Figs. 4-5: "even 3-bit quantization" (Section IV)
INSENSITIVE = 1.0  # "pretty much insensitive": error increase over the digital network below 1 point (our reading)
DEGRADE = 1.0      # "can degrade": error increase above 1 point (our reading)
SAME = 1.0         # "does not affect": the 3-layer and 2-layer first-layer costs within +-1 point (our reading)
_NAMES = {0: "first", 1: "second", 2: "third", -1: "last"}


def grid_chips(root: Path) -> pd.DataFrame:
    """Rows (job, size, depth, layers, x, chip, error, excess): every chip of every point of every job, in points.

    ``size`` is the first hidden width, ``depth`` the number of Linear layers, ``layers`` the layer-set name
    ("first", "second", "third", "last" or "all"); ``error`` = 100 (1 - accuracy), ``excess`` = the error minus
    the digital network's error at that point."""
    cols = ["job", "size", "depth", "layers", "x", "chip", "error", "excess", "n_test"]
    df = chip_values(Path(root), "accuracy")
    if df.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for job, g in df.groupby("job"):
        cfg = job_config(Path(root), job)
        hidden = (cfg.get("model") or {}).get("hidden") or []
        if not hidden:
            continue
        idx = ((cfg.get("hardware") or {}).get("layers") or {}).get("indices")
        layers = "all" if not idx else "+".join(_NAMES.get(int(i), str(i)) for i in idx)
        depth = len(hidden) + 1
        if layers == _NAMES[depth - 1]:
            layers = "last"  # "second" of a 2-layer net and "third" of a 3-layer one are both its last layer
        rows.append(pd.DataFrame({"job": job, "size": int(hidden[0]), "depth": depth, "layers": layers,
                                  "x": g["axis_value"].astype(float), "chip": g["chip"].astype(int),
                                  "error": 100 * (1 - g["value"].astype(float)),
                                  "excess": 100 * (g["digital"].astype(float) - g["value"].astype(float)),
                                  "n_test": int(job_meta(Path(root), job).get("n_test") or 0)}))
    return pd.concat(rows, ignore_index=True)[cols] if rows else pd.DataFrame(columns=cols)


def grid_errors(chips: pd.DataFrame) -> pd.DataFrame:
    """Rows (size, depth, layers, x, error, digital_error): the mean over chips of each job x point, in points."""
    g = chips.assign(digital_error=chips["error"] - chips["excess"])
    return (g.groupby(["size", "depth", "layers", "x"], as_index=False)[["error", "digital_error"]].mean())


def draw_grid(df: pd.DataFrame, path: Path, xlabel: str, loglog: bool, title: str) -> str:
    """One panel per hidden size, one line per layer set: error rate vs the axis. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(df["size"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.6), squeeze=False, sharey=True)
    for ax, size in zip(axes[0], sizes):
        sub = df[df["size"] == size]
        for (depth, layers), g in sub.groupby(["depth", "layers"]):
            g = g.sort_values("x")
            ax.plot(g["x"], g["error"].clip(lower=1e-2), "o-", ms=3, label=f"{layers} ({depth}-layer)")
        ax.axhline(sub["digital_error"].median(), color="k", ls=":", lw=0.8)
        ax.set_title(f"hidden {size}")
        ax.set_xlabel(xlabel)
        if loglog:
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.invert_xaxis()
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("error rate % (1 - mean accuracy)")
    axes[0][0].legend(title="noisy layers", fontsize=7)
    fig.suptitle(title + " (dotted: digital)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _chips_at(df: pd.DataFrame, size: int, layers: str, x: float, depth: int | None = None,
              col: str = "error") -> pd.Series:
    sel = (df["size"] == size) & (df["layers"] == layers) & np.isclose(df["x"], x)
    if depth is not None:
        sel &= df["depth"] == depth
    return df[sel].set_index("chip")[col].astype(float)


def _diff(df_a, df_b, size, layers_a, layers_b, x, what, col="error", depth_a=None, depth_b=None):
    a = _chips_at(df_a, size, layers_a, x, depth_a, col)
    b = _chips_at(df_b, size, layers_b, x, depth_b, col)
    return paired(a, b, what) if len(a) and len(b) else None


def _judge(parts: list[tuple[str, Interval | None, str]]) -> tuple[str, str, Interval | None]:
    """[(label, interval, verdict)] -> (combined verdict, text, the deciding interval: the first failing one, else
    the first inconclusive one, else the first)."""
    have = [(lab, iv, v) for lab, iv, v in parts if iv is not None]
    verdict = combine(*[v for _, _, v in have]) if have else NOT_JUDGED
    text = "; ".join(f"{lab}: {iv.value:+.2f} [{iv.lo:+.2f}, {iv.hi:+.2f}] -> {v}" for lab, iv, v in have)
    key = next((iv for want in (FAILS, INCONCLUSIVE, HOLDS) for _, iv, v in have if v == want), None)
    return verdict, text, key


def _noise_plot(df, out_dir, fig, n_layers):
    return draw_grid(grid_errors(df), Path(out_dir) / f"{fig}.png", "weight noise alpha", True,
                     f"Study 001 {fig}: {n_layers}-layer MLP, g(w) = (1 + alpha N) w")


def fig2(run_dirs, out_dir) -> dict:
    """Fig. 2 (784-N-10): "the first layer of the network despite having a larger number of parameters is more
    sensitive to noisy weights". Tested at every hidden size at alpha = ALPHA: mean error with noise on the first
    layer only minus mean error with noise on the second only > 0 points (interval over chips). The study's other
    Fig. 2 sentences (500 hidden units do not help; a straight line in log-log) are reported, not judged: the
    fitted log-log slope of the all-layers curve is in the text."""
    df = grid_chips(Path(run_dirs[0]))
    if df.empty:
        return missing("fig2 grid results in run0")
    plot = _noise_plot(df, out_dir, "fig2", 2)
    parts = []
    for size in sorted(df["size"].unique()):
        iv = _diff(df, df, size, "first", "last", ALPHA, "error first-only minus second-only (points)")
        parts.append((f"N={size}", iv, above(iv, 0.0) if iv else None))
    verdict, text, key = _judge(parts)
    if key is None:
        return missing(f"fig2: first-only and second-only jobs at alpha {ALPHA}", plot)
    slopes = ", ".join(f"N={s} {loglog_slope(grid_errors(df), s, 'all'):.2f}" for s in sorted(df["size"].unique()))
    ours = (f"alpha {ALPHA}, error(first only) - error(second only), points: {text}; "
            f"log-log slope of the all-layers curve: {slopes}")
    return result(verdict, ours, key, plot=plot)


def fig3(run_dirs, out_dir) -> dict:
    """Fig. 3 (784-N-N-10 vs 784-N-10): "by increasing the depth of the network, the sensitivity of the last layer
    of the classifier to inaccurate computations gets lower and lower". Tested at every hidden size N at alpha =
    ALPHA: the error increase over the digital network with noise on the last layer only, 3-layer net (run0) minus
    2-layer net (run1), < 0 points (interval over chips)."""
    df3 = grid_chips(Path(run_dirs[0]))
    df2 = grid_chips(Path(run_dirs[1])) if len(run_dirs) > 1 else df3.iloc[0:0]
    if df3.empty:
        return missing("fig3 grid results in run0")
    plot = _noise_plot(pd.concat([df3, df2[df2["layers"] == "last"]]), out_dir, "fig3", 3)
    if df2.empty:
        return missing("fig3: the 2-layer last-layer jobs in run1", plot)
    parts = []
    for size in sorted(df3["size"].unique()):
        iv = _diff(df3, df2, size, "last", "last", ALPHA, "last-layer error increase 3-layer minus 2-layer (points)",
                   col="excess", depth_a=3, depth_b=2)
        parts.append((f"N={size}", iv, below(iv, 0.0) if iv else None))
    verdict, text, key = _judge(parts)
    if key is None:
        return missing(f"fig3: last-layer jobs of both depths at alpha {ALPHA}", plot)
    return result(verdict, f"alpha {ALPHA}, last-layer-only error increase, 3-layer minus 2-layer, points: {text}",
                  key, plot=plot)


def loglog_slope(df: pd.DataFrame, size: int, layers: str) -> float:
    """Slope of log(excess error) vs log(alpha) over the degraded points (error >= 1.2x digital)."""
    g = df[(df["size"] == size) & (df["layers"] == layers)].sort_values("x")
    excess = g["error"] - g["digital_error"]
    use = (g["error"] >= 1.2 * g["digital_error"]) & (excess > 0)
    if use.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log10(g["x"][use]), np.log10(excess[use]), 1)[0])


def _floor(df: pd.DataFrame, size: int, layers: str, depth: int | None = None) -> float:
    """Test-set half-width (points) of one job's error increase over digital at BITS bits: the chips of a
    quantization-only grid are identical, so the test images are the only source of uncertainty (verdict.
    diff_halfwidth: the analog and digital error rates on the same images)."""
    sel = (df["size"] == size) & (df["layers"] == layers) & np.isclose(df["x"], BITS)
    if depth is not None:
        sel &= df["depth"] == depth
    g = df[sel]
    if g.empty or int(g["n_test"].iloc[0]) <= 0:
        return 0.0
    e, d = g["error"].mean() / 100, (g["error"] - g["excess"]).mean() / 100
    return 100 * diff_halfwidth(e, d, int(g["n_test"].iloc[0]))


def quant_parts(df: pd.DataFrame) -> list[tuple[str, Interval | None, str | None]]:
    """The parts of Section IV's claim on one grid at BITS bits, in points (error increase over digital):
    the last layer alone < INSENSITIVE at every size; the first layer alone >= DEGRADE at the smallest size; the
    first layer alone costs less at the largest size than at the smallest. Each interval is at least as wide as
    the test set's sampling error (:func:`_floor`)."""
    sizes = sorted(df["size"].unique())
    parts = []
    for size in sizes:
        a = _chips_at(df, size, "last", BITS, col="excess")
        iv = (with_test_floor(bootstrap(a, f"last layer at {BITS} bits, error increase (points)"),
                              _floor(df, size, "last")) if len(a) else None)
        parts.append((f"last N={size}", iv, below(iv, INSENSITIVE) if iv else None))
    small, large = sizes[0], sizes[-1]
    a = _chips_at(df, small, "first", BITS, col="excess")
    iv = (with_test_floor(bootstrap(a, f"first layer at {BITS} bits, error increase (points)"),
                          _floor(df, small, "first")) if len(a) else None)
    parts.append((f"first N={small}", iv, above(iv, DEGRADE) if iv else None))
    if large != small:
        a, b = (_chips_at(df, n, "first", BITS, col="excess") for n in (large, small))
        iv = paired(a, b, f"first-layer cost N={large} minus N={small} (points)") if len(a) and len(b) else None
        if iv is not None:  # two independent-ish test-set errors: the half-widths add (conservative)
            iv = with_test_floor(iv, _floor(df, large, "first") + _floor(df, small, "first"))
        parts.append((f"first N={large} - N={small}", iv, below(iv, 0.0) if iv else None))
    return parts


def _quant_check(run_dirs, out_dir, fig: str, n_layers: int) -> dict:
    """run0: the study's grid (2^b levels); run1: the same grid with 2^b - 1 levels (aihwkit's grid). The verdict
    is run0's; run1's is reported beside it."""
    df = grid_chips(Path(run_dirs[0]))
    if df.empty:
        return missing(f"{fig} grid results in run0")
    plot = draw_grid(grid_errors(df), Path(out_dir) / f"{fig}.png", "weight bits", False,
                     f"Study 001 {fig}: {n_layers}-layer MLP, per-layer weight quantization (2^b levels)")
    verdict, text, key = _judge(quant_parts(df))
    extra = []
    if n_layers == 3 and len(run_dirs) > 2:
        v_same, t_same = _prior_layers(df, grid_chips(Path(run_dirs[2])))
        verdict = combine(verdict, v_same) if v_same else verdict
        extra.append(f"adding a layer, first-layer cost 3-layer minus 2-layer: {t_same}")
    if key is None:
        return missing(f"{fig}: first- and last-layer jobs at {BITS} bits", plot)
    ours = f"2^b levels: {verdict} ({text})"
    df_odd = grid_chips(Path(run_dirs[1])) if len(run_dirs) > 1 else df.iloc[0:0]
    if not df_odd.empty:
        v_odd, t_odd, _ = _judge(quant_parts(df_odd))
        ours += f" | 2^b - 1 levels: {v_odd} ({t_odd})"
    return result(verdict, "; ".join([ours, *extra]), key, plot=plot)


def _prior_layers(df3: pd.DataFrame, df2: pd.DataFrame) -> tuple[str | None, str]:
    """Fig. 5's "adding more layers to the network does not affect the sensitivity of prior layers": the first
    layer's cost at BITS bits in the 3-layer net minus the 2-layer net within +-SAME points at every size."""
    parts = []
    for size in sorted(df3["size"].unique()):
        iv = _diff(df3, df2, size, "first", "first", BITS, "first-layer cost 3-layer minus 2-layer (points)",
                   col="excess", depth_a=3, depth_b=2) if not df2.empty else None
        if iv is not None:
            iv = with_test_floor(iv, _floor(df3, size, "first", 3) + _floor(df2, size, "first", 2))
        parts.append((f"N={size}", iv, within(iv, -SAME, SAME) if iv else None))
    verdict, text, key = _judge(parts)
    return (verdict if key is not None else None), (text or "2-layer jobs missing")


def fig4(run_dirs, out_dir) -> dict:
    """Fig. 4 (784-N-10), Section IV: "larger networks are more tolerant of coarsely quantized weights. Second,
    the last layer is pretty much insensitive to errors caused by quantization. However, even 3-bit quantization
    of weights in the first layer can degrade the classification performance of small networks." See
    :func:`quant_parts` for the thresholds."""
    return _quant_check(run_dirs, out_dir, "fig4", 2)


def fig5(run_dirs, out_dir) -> dict:
    """Fig. 5 (784-N-N-10): the Fig. 4 parts on the 3-layer nets, and "adding more layers to the network does
    not affect the sensitivity of prior layers to weight quantization" (run2: the 2-layer first-layer jobs)."""
    return _quant_check(run_dirs, out_dir, "fig5", 3)
