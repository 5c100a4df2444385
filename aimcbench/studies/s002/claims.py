"""Checks of study 002's claims (tiled RRAM, architecture-aware training, programming variation) on our sweeps.

Every run dir is a sweep (or a -m sweep dir of job dirs) whose config.yaml says the pipeline (hardware.name), the
training level (train.aware.level), the injection (train.noise_injection) and the rest; :func:`jobs` reads each job's
per-chip accuracies (verdict.chip_values). The study's figure of merit is the 75th percentile of accuracy over the
40 chips of a point ("the top 25 percentile in the accuracy distribution is more representative than the average or
the median"), so the checks compare p75 between two settings with a bootstrap interval over chips
(verdict.compare: chip-paired where the two runs are the same chips of the same model, independent otherwise).
Without variation every chip is the same chip, so comparisons at variation 0 use the binomial spread over test
images instead (:func:`image_diff`). Thresholds the study leaves to words are ours, stated in each docstring and in
the manifest's departures. Figs. 7-10 (comparisons of curves) are in claims_curves.py. Each check draws
``<out_dir>/<name>.png`` and never raises on partial results.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from aimcbench.studies.verdict import (
    FAILS,
    HOLDS,
    Interval,
    above,
    at,
    below,
    chip_values,
    combine,
    compare,
    job_config,
    missing,
    result,
)

HIGH_VARIATION = (0.0624, 0.1248)  # the study's "high variation levels (> 4 %)" on its grid
PTS = 100.0                        # fractions -> percentage points
MINIMAL_PTS = 2.0                  # ours: "minimal accuracy drop" / "similar accuracy" = within 2 points
SEVERE_PTS = 5.0                   # ours: "severe" / "unacceptable" / "significant" = a loss of more than 5 points
FLOAT_ACC = {"cifar10_vgg": 83.73, "cifar10_wrn": 95.11, "cifar100_wrn": 74.74}  # study Fig. 4 caption (%)
Z95 = 1.959963984540054


# ---- reading the runs ------------------------------------------------------------------------------------------

def jobs(run_dir: Path) -> list[dict]:
    """Every job below ``run_dir``: {name, config, chips (chip_values rows of the accuracy)}."""
    df = chip_values(Path(run_dir), "accuracy")
    return [{"name": name, "config": job_config(Path(run_dir), name), "chips": g.reset_index(drop=True)}
            for name, g in df.groupby("job", sort=True)]


def _get(cfg: dict, dotted: str, default=None):
    for key in dotted.split("."):
        if not isinstance(cfg, dict) or key not in cfg:
            return default
        cfg = cfg[key]
    return default if cfg is None else cfg


def inj(cfg: dict) -> float:
    """The training injection (0 when none)."""
    v = _get(cfg, "train.noise_injection", 0.0)
    return float(v) if isinstance(v, (int, float)) else 0.0


def values(job: dict | None, variation: float) -> pd.Series:
    """Per-chip accuracies of a job at one variation (empty when absent)."""
    return pd.Series(dtype=float) if job is None else at(job["chips"], variation)


def no_variation_acc(job: dict | None) -> tuple[float, int]:
    """(accuracy, test images) at variation 0, where every chip is the same chip (median over chips)."""
    v = values(job, 0.0)
    if not len(v):
        return math.nan, 0
    return float(np.median(v)), int(_get(job["config"], "eval.n", 0) or 0)


def digital(job: dict | None) -> float:
    """The digital (exact arithmetic) accuracy of the job's model, in %."""
    if job is None or not len(job["chips"]):
        return math.nan
    return PTS * float(job["chips"]["digital"].dropna().median()) if job["chips"]["digital"].notna().any() \
        else math.nan


def image_diff(a: float, b: float, n: int, what: str) -> Interval:
    """a - b (points) of two accuracies measured on the same n test images, with the normal interval of two
    independent binomials (conservative: the same images make the two errors positively correlated)."""
    if not (n > 0 and math.isfinite(a) and math.isfinite(b)):
        return Interval(math.nan, math.nan, math.nan, 0, what, "binomial over test images")
    se = math.sqrt(max(a * (1 - a), 0.0) / n + max(b * (1 - b), 0.0) / n)
    d = a - b
    return Interval(PTS * d, PTS * (d - Z95 * se), PTS * (d + Z95 * se), n, what + " (n = test images)",
                    "binomial over test images")


def p75_diff(a: pd.Series, b: pd.Series, what: str, paired: bool = True) -> Interval:
    """p75(a) - p75(b) over chips, in points."""
    return compare(a, b, what, "p75", "diff", paired=paired).scaled(PTS)


def part(name: str, iv: Interval, verdict: str) -> tuple[str, Interval, str]:
    return name, iv, verdict


def parts_text(parts: list[tuple[str, Interval, str]]) -> str:
    return "; ".join(f"{name}: {iv.value:.2f} [{iv.lo:.2f}, {iv.hi:.2f}] ({iv.n}) {v}" for name, iv, v in parts)


def verdict_of(parts: list[tuple[str, Interval, str]]) -> str:
    return combine(*(v for _, _, v in parts))


# ---- plots -----------------------------------------------------------------------------------------------------

def box(js: list[dict], path: Path, title: str, label=lambda j: f"train injection {inj(j['config']):g}") -> str | None:
    """Study 002 Fig. 5 style: at each variation level one box per job."""
    from aimcbench.report import plots

    chips = {}
    for j in js:
        c = j["chips"].copy()
        if len(c):
            c["axis_label"] = [f"{100 * v:g} %" for v in c["axis_value"].astype(float)]
            chips[label(j)] = c
    if not chips:
        return None
    fig = plots.grouped_box_plot(chips, "accuracy", axis="hardware.device.variation",
                                 axis_title="programming variation (fraction of range)", title=title)
    return str(plots.save_figure(fig, path))


# ---- Table 1 and Fig. 4 ----------------------------------------------------------------------------------------

def table1(run_dirs: list[Path], out_dir: Path) -> dict:
    """Arrays of 256x64 per layer and in total (Table 1: 78 for the VGG block, 1447 for WRN-16-8). A count, not a
    statistic over chips: holds when both totals equal the study's (the interval is the exact count)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aimcbench.models import build_model
    from aimcbench.sim import load_hardware, tile_plan

    hw = load_hardware("rram_l3")
    totals, fig = {}, plt.figure(figsize=(9, 3.6))
    lines = ["| model | layer | input | filter | columns | row length | arrays |", "|---|---|---|---|---:|---:|---:|"]
    for i, name in enumerate(("vgg_block", "wrn16_8")):
        rows = tile_plan(build_model(name).eval(), hw, (3, 32, 32))
        totals[name] = sum(r["arrays"] for r in rows)
        lines += [f"| {name} | {r['layer']} | {r['input_size']} | {r['filter_shape']} | {r['columns']} | "
                  f"{r['row_length']} | {r['arrays']} |" for r in rows]
        ax = fig.add_subplot(1, 2, i + 1)
        ax.bar(range(len(rows)), [r["arrays"] for r in rows], color="C0")
        ax.set_yscale("log")
        ax.set_title(f"{name}: {totals[name]} arrays of 256x64", fontsize=9)
        ax.set_xlabel("analog layer")
        ax.set_ylabel("arrays")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "table1.png", dpi=120)
    plt.close(fig)
    (out_dir / "table1.md").write_text("\n".join(lines) + "\n")
    holds = totals == {"vgg_block": 78, "wrn16_8": 1447}
    n = totals["wrn16_8"]
    iv = Interval(float(n), float(n), float(n), 1, "WRN-16-8 arrays", "exact count")
    return result(HOLDS if holds else FAILS, f"VGG block {totals['vgg_block']} arrays (study 78), WRN-16-8 {n} "
                  "(study 1447)", iv, study_value=1447, plot=out_dir / "table1.png")


def fig4(run_dirs: list[Path], out_dir: Path) -> dict:
    """Training level x inference pipeline without variation (one chip: every chip is the same; intervals over
    test images). Parts, with our thresholds (2 points "minimal", 5 points "severe"/"cannot produce acceptable"):
    (a) a level-1 model loses < 2 points in the level-2 pipeline at on/off 1000 ("minimal accuracy drop"; a gain
    counts as no drop);
    (b) it loses > 5 points in the level-2 pipeline at on/off 10 and in the tiled level-3 pipeline ("cannot
    produce acceptable accuracies"); (c) the level-2 (device-aware) model in the level-2 pipeline at on/off 10 is
    within 2 points of the level-1 model in the level-1 pipeline ("successfully mitigate ... on/off ratio down to
    10"); (d) in the tiled pipeline the level-3 model beats the level-2 model ("tile-aware training must be used");
    (e) the 0-1 activation range (IR) loses > 5 points ("severe degradation"). The interval of the row is our
    digital accuracy beside the study's float WRN accuracy (95.11 %)."""
    acc: dict[tuple, tuple[float, int]] = {}
    dig = math.nan
    for d in run_dirs:
        for j in jobs(d):
            c = j["config"]
            key = (int(_get(c, "train.aware.level", 0)), _get(c, "hardware.name", ""),
                   float(_get(c, "hardware.device.on_off_ratio", 10.0)),
                   float(_get(c, "hardware.dac.input_range", 6.0)))
            acc[key] = no_variation_acc(j)
            if key[:2] == (1, "rram_l1") and key[3] == 6.0:
                dig = digital(j)
    get = lambda lvl, hw, onoff=10.0, ir=6.0: acc.get((lvl, hw, onoff, ir), (math.nan, 0))  # noqa: E731
    ref = get(1, "rram_l1")
    if not math.isfinite(ref[0]):
        return missing("the level-1 model in the level-1 pipeline")
    parts = []

    def add(name, a, b, judge, *args):
        if math.isfinite(a[0]) and math.isfinite(b[0]):
            iv = image_diff(a[0], b[0], min(a[1], b[1]), name)
            parts.append(part(name, iv, judge(iv, *args)))

    add("(a) L1 model, L2 (on/off 1000) - L1 pipeline", get(1, "rram_l2", 1000.0), ref, above, -MINIMAL_PTS)
    add("(b) L1 model, L2 (on/off 10) - L1 pipeline", get(1, "rram_l2"), ref, below, -SEVERE_PTS)
    add("(b) L1 model, L3 - L1 pipeline", get(1, "rram_l3"), ref, below, -SEVERE_PTS)
    add("(c) L2 model in L2 (on/off 10) - L1 model in L1", get(2, "rram_l2"), ref, above, -MINIMAL_PTS)
    add("(d) L3 model - L2 model, L3 pipeline", get(3, "rram_l3"), get(2, "rram_l3"), above, 0.0)
    irs = [v for k, v in acc.items() if k[:2] == (1, "rram_l1") and k[3] != 6.0]
    if irs:
        add("(e) IR - CR, L1 model, L1 pipeline", irs[0], ref, below, -SEVERE_PTS)
    if not parts:
        return missing("pairs of level x pipeline jobs")
    plot = _fig4_plot(acc, out_dir)
    n = ref[1] or 1
    p = dig / PTS
    se = math.sqrt(max(p * (1 - p), 0.0) / n) if math.isfinite(p) else math.nan
    iv = Interval(dig, PTS * (p - Z95 * se), PTS * (p + Z95 * se), n, "digital accuracy of the level-1 model (%)",
                  "binomial over test images")
    return result(verdict_of(parts), parts_text(parts) + " (points, images)", iv, FLOAT_ACC["cifar10_wrn"], plot)


def _fig4_plot(acc: dict, out_dir: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 4.0))
    pipes = [("rram_l1", 10.0, "level 1"), ("rram_l2", 1000.0, "L2 on/off 1000"), ("rram_l2", 10.0, "L2 on/off 10"),
             ("rram_l3", 10.0, "L3 tiled, ADC")]
    for i, lvl in enumerate((1, 2, 3)):
        vals = [PTS * acc.get((lvl, hw, o, 6.0), (math.nan, 0))[0] for hw, o, _ in pipes]
        ax.bar(np.arange(len(pipes)) + (i - 1) * 0.25, vals, width=0.25, label=f"level-{lvl} trained")
    ir = [v[0] for k, v in acc.items() if k[:2] == (1, "rram_l1") and k[3] != 6.0]
    if ir:
        ax.bar([-0.75], [PTS * ir[0]], width=0.25, color="0.5", label="level 1, range 0-1 (IR)")
    ax.set_xticks(range(len(pipes)), [p[2] for p in pipes], fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Study 002 Fig. 4: training level x inference pipeline", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "fig4.png", dpi=120)
    plt.close(fig)
    return str(out_dir / "fig4.png")


# ---- Fig. 5 ------------------------------------------------------------------------------------------------------

def by_injection(run_dir: Path) -> dict[float, dict]:
    return {inj(j["config"]): j for j in jobs(run_dir)}


def iqr(a: np.ndarray):
    return np.percentile(a, 75, axis=-1) - np.percentile(a, 25, axis=-1)


def fig5(run_dirs: list[Path], out_dir: Path, name: str = "fig5") -> dict:
    """Level-3 models in the tiled pipeline, one job per training injection, 40 chips per variation. Parts:
    (a) untrained models: p75 at 6.24 % variation (else 12.48 %) more than 5 points below no variation
    ("accuracy degradation becomes unacceptable for variations beyond 4%"); (b) at 6.24 and 12.48 % variation the
    model trained with the same injection has a higher p75 than the untrained one ("improvements in inference
    accuracy from weight noise injection"; chip-paired bootstrap); (c) at 12.48 % the 12.48 % injection beats the
    lower injection (3.12 % if run, else 6.24 %: "higher-level noise injection leads to better accuracy recovery");
    (d) at 12.48 % the injection-trained model's p25-p75 spread over chips is smaller ("reduces the variation in
    performance between different runs")."""
    by = by_injection(run_dirs[0]) if run_dirs else {}
    if 0.0 not in by or len(by) < 2:
        return missing("the injection-0 job and at least one injection-trained job")
    plot = box(sorted(by.values(), key=lambda j: inj(j["config"])), out_dir / f"{name}.png",
               "level-3 pipeline, level-3 models; boxes: training injection")
    base = by[0.0]
    parts = []
    a0 = values(base, 0.0)
    first = next((v for v in HIGH_VARIATION if len(values(base, v))), None)
    if len(a0) and first is not None:
        iv = p75_diff(values(base, first), a0, f"(a) untrained p75 at {first:g} - at 0")
        parts.append(part(iv.what, iv, below(iv, -SEVERE_PTS)))
    primary = None
    for v in HIGH_VARIATION:
        if v in by and len(values(by[v], v)) and len(values(base, v)):
            iv = p75_diff(values(by[v], v), values(base, v), f"(b) p75 inj {v:g} - untrained at {v:g}")
            parts.append(part(iv.what, iv, above(iv, 0.0)))
            primary = iv
    hi_v = HIGH_VARIATION[-1]
    lo_inj = 0.0312 if 0.0312 in by else HIGH_VARIATION[0]
    if hi_v in by and lo_inj in by:
        iv = p75_diff(values(by[hi_v], hi_v), values(by[lo_inj], hi_v), f"(c) p75 inj {hi_v:g} - inj {lo_inj:g}")
        parts.append(part(iv.what, iv, above(iv, 0.0)))
    if hi_v in by and len(values(base, hi_v)):
        iv = compare(values(by[hi_v], hi_v), values(base, hi_v), "(d) IQR inj - untrained", iqr).scaled(PTS)
        parts.append(part(iv.what, iv, below(iv, 0.0)))
    if not parts:
        return missing("points at 0 and 6-12 % variation", plot)
    ours = parts_text(parts) + f" (points); digital {digital(base):.1f} % (study float WRN: 95.11 %)"
    return result(verdict_of(parts), ours, primary or parts[0][1], plot=plot)

