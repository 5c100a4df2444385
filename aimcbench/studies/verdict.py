"""Verdicts on the studies' claims: statistics over chips with intervals, and the rule that turns them into words.

A claim check (``aimcbench/studies/<id>/claims.py``) reads the per-chip values of its runs (:func:`chip_values`),
computes the statistic the study's sentence is about (a mean or a percentile over chips, or a chip-paired
difference between two points: chip k is the same chip at every point of a sweep), puts a 95 % interval on it
(:func:`bootstrap`, :func:`paired`, :func:`binomial`) and compares the interval with the claim's threshold
(:func:`above`, :func:`below`, :func:`within`). The verdict is

* ``holds`` when the whole interval is on the claim's side,
* ``does not hold`` when the whole interval is on the other side,
* ``inconclusive`` when it straddles the threshold, or when fewer than :data:`MIN_CHIPS` chips were measured
  (a definite answer needs enough chips; the interval is still printed),
* ``not judged`` when there is nothing to judge (results missing, or the study makes no testable claim).

A claim made of several parts is judged with :func:`combine`. :func:`result` builds the dict the index prints.
Every interval is seeded (same numbers, same interval, bit for bit).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

HOLDS, FAILS, INCONCLUSIVE, NOT_JUDGED = "holds", "does not hold", "inconclusive", "not judged"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_JUDGED)
MIN_CHIPS = 40     # the floor for a definite verdict: fewer chips give "inconclusive"
LEVEL = 0.95       # two-sided confidence level of every interval
N_BOOT = 4000      # bootstrap resamples: the interval's end points move by < 1 % of its width between seeds


@dataclass(frozen=True)
class Interval:
    """A statistic with its two-sided :data:`LEVEL` interval over ``n`` chips (or trials)."""

    value: float   #: the statistic on the data
    lo: float      #: lower end of the interval
    hi: float      #: upper end of the interval
    n: int         #: chips (or trials) behind it
    what: str      #: what the statistic is, e.g. "mean accuracy drop (points)"
    method: str = "bootstrap"  #: how the interval was made
    unit: str = "chips"  #: what ``n`` counts ("chips"; "test images" for a proportion over the test set)

    def text(self, fmt: str = "{:.3f}") -> str:
        """``what value [lo, hi] (n chips, method 95 %)``."""
        return (f"{self.what} {fmt.format(self.value)} [{fmt.format(self.lo)}, {fmt.format(self.hi)}] "
                f"({self.n} {self.unit}, {self.method} {LEVEL:.0%})")

    def scaled(self, factor: float, what: str | None = None) -> "Interval":
        """The same interval in other units (e.g. x100 for percentage points); a negative factor swaps the ends."""
        lo, hi = sorted((self.lo * factor, self.hi * factor))
        return dataclasses.replace(self, value=self.value * factor, lo=lo, hi=hi, what=what or self.what)


def _stat_fn(stat: str | Callable[[np.ndarray], float]) -> Callable[[np.ndarray], float]:
    if callable(stat):
        return stat
    if stat == "mean":
        return lambda a: float(np.mean(a, axis=-1)) if a.ndim == 1 else np.mean(a, axis=-1)
    if stat == "median":
        return lambda a: np.median(a, axis=-1)
    if stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit():
        q = float(stat[1:])
        return lambda a: np.percentile(a, q, axis=-1)
    raise ValueError(f"stat: {stat!r}; allowed: mean, median, pNN or a function")


def bootstrap(values: Iterable[float], what: str, stat: str | Callable = "mean", seed: int = 0,
              n_boot: int = N_BOOT) -> Interval:
    """``stat`` of ``values`` (one per chip) with a percentile-bootstrap interval over chips."""
    a = np.asarray(list(values), dtype=np.float64)
    a = a[np.isfinite(a)]
    fn = _stat_fn(stat)
    if a.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, what)
    value = float(fn(a))
    if a.size == 1:
        return Interval(value, value, value, 1, what)
    rng = np.random.default_rng(seed)
    boot = np.asarray(fn(a[rng.integers(0, a.size, size=(n_boot, a.size))]), dtype=np.float64)
    lo, hi = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Interval(value, float(lo), float(hi), int(a.size), what)


def paired(a: pd.Series | dict, b: pd.Series | dict, what: str, stat: str | Callable = "mean",
           seed: int = 0) -> Interval:
    """``stat`` of a - b over the chips both have (indexed by chip), with a bootstrap interval.

    Chip k is the same chip at every point of a sweep, so the chip-paired difference is far tighter than the
    difference of two independent means.
    """
    a, b = pd.Series(a, dtype=float), pd.Series(b, dtype=float)
    common = a.index.intersection(b.index)
    return bootstrap((a[common] - b[common]).to_numpy(), what, stat, seed)


def binomial(k: int, n: int, what: str, unit: str = "chips") -> Interval:
    """A proportion k/n with its exact (Clopper-Pearson) interval, e.g. the share of chips above a bound
    (``unit``: what n counts, e.g. "test images")."""
    from scipy.stats import binomtest

    if n <= 0:
        return Interval(math.nan, math.nan, math.nan, 0, what, "Clopper-Pearson", unit)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=LEVEL, method="exact")
    return Interval(k / n, float(ci.low), float(ci.high), int(n), what, "Clopper-Pearson", unit)


def diff_halfwidth(e1: float, e2: float, n_images: int) -> float:
    """Half-width (95 %) of the test-set sampling error of e1 - e2, two error rates (fractions) measured on the SAME
    ``n_images`` test images. Conservative without per-image results: the images on which the two disagree are at
    most e1 + e2 of them, so var(e1 - e2) <= (e1 + e2) / n."""
    if n_images <= 0:
        return math.inf
    return 1.959964 * math.sqrt(max(e1 + e2, 1.0 / n_images) / n_images)


def with_test_floor(iv: Interval, half_width: float) -> Interval:
    """``iv`` widened to at least +-``half_width`` around its value.

    The bootstrap over chips sees only the chip-to-chip spread, and every chip is tested on the same images: where
    the chips hardly differ (quantization alone draws nothing random, so its 40 chips are identical) the chip
    interval has (nearly) zero width although another test set would move the statistic. The test set's own
    sampling error (:func:`diff_halfwidth`) is then the floor of the interval."""
    if not math.isfinite(iv.value) or iv.hi - iv.lo >= 2 * half_width:
        return iv
    return dataclasses.replace(iv, lo=min(iv.lo, iv.value - half_width), hi=max(iv.hi, iv.value + half_width),
                               method=iv.method + " + test-set floor")


def _enough(iv: Interval, verdict: str) -> str:
    if not math.isfinite(iv.value) or iv.n == 0:
        return NOT_JUDGED
    return verdict if iv.n >= MIN_CHIPS or verdict == INCONCLUSIVE else INCONCLUSIVE


def above(iv: Interval, threshold: float) -> str:
    """The claim "statistic > threshold": holds when lo > threshold, fails when hi <= threshold."""
    v = HOLDS if iv.lo > threshold else FAILS if iv.hi <= threshold else INCONCLUSIVE
    return _enough(iv, v)


def below(iv: Interval, threshold: float) -> str:
    """The claim "statistic < threshold": holds when hi < threshold, fails when lo >= threshold."""
    v = HOLDS if iv.hi < threshold else FAILS if iv.lo >= threshold else INCONCLUSIVE
    return _enough(iv, v)


def within(iv: Interval, low: float, high: float) -> str:
    """The claim "low <= statistic <= high": holds when the interval lies inside, fails when it lies outside."""
    v = (HOLDS if low <= iv.lo and iv.hi <= high else FAILS if iv.hi < low or iv.lo > high else INCONCLUSIVE)
    return _enough(iv, v)


def combine(*verdicts: str) -> str:
    """A claim of several parts: fails if any part fails, holds if all hold, else inconclusive (not judged when
    no part could be judged)."""
    vs = [v for v in verdicts if v != NOT_JUDGED]
    if not vs:
        return NOT_JUDGED
    if FAILS in vs:
        return FAILS
    if len(vs) == len(verdicts) and all(v == HOLDS for v in vs):
        return HOLDS
    return INCONCLUSIVE


def result(verdict: str, ours: str, interval: Interval | None = None, study_value: float | None = None,
           plot: str | Path | None = None) -> dict:
    """The dict a check returns: the index prints ``ours`` (with the interval), the study's number beside ours
    (``value``, same units) and their difference, and the verdict. ``holds`` keeps the old yes/no/n/a meaning."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict: {verdict!r}; allowed: {', '.join(VERDICTS)}")
    out = {"verdict": verdict, "holds": {HOLDS: True, FAILS: False}.get(verdict), "ours": ours,
           "plot": str(plot) if plot else None}
    if interval is not None:
        out.update(value=interval.value, lo=interval.lo, hi=interval.hi, n_chips=interval.n,
                   statistic=interval.text())
    if study_value is not None:
        out["study_value"] = float(study_value)
        if interval is not None and math.isfinite(interval.value):
            out["diff"] = interval.value - float(study_value)
    return out


def missing(what: str, plot: str | Path | None = None) -> dict:
    """The answer of a check that has nothing (or not enough) to look at."""
    return result(NOT_JUDGED, f"missing: {what}", plot=plot)


# ---- reading the per-chip values of a run ----------------------------------------------------------------------

def job_dirs(root: Path) -> list[Path]:
    """The run dirs below ``root`` (each job of a ``-m`` sweep dir), else ``root`` itself: dirs with points/."""
    root = Path(root)
    jobs = sorted(p.parent for p in root.glob("*/points") if (p.parent / "config.yaml").is_file())
    return jobs or ([root] if (root / "points").is_dir() else [])


def chip_values(root: Path, metric: str | None = None) -> pd.DataFrame:
    """Every chip's value of every point of every job below ``root``.

    Columns: job (the job dir's name, "" for a single run), point, axis, axis_value, chip, metric, value,
    digital (the digital model's value at that point). Missing or unreadable points are skipped.
    """
    frames = []
    for job in job_dirs(root):
        for pq in sorted((job / "points").glob("point_*.parquet")):
            try:
                df = pd.read_parquet(pq, columns=["point", "axis", "axis_value", "chip", "metric", "value"])
            except Exception:  # noqa: BLE001 - a damaged point is as good as a missing one here
                continue
            dig_path = pq.with_name(pq.name.replace("point_", "digital_").replace(".parquet", ".csv"))
            digital = {}
            if dig_path.is_file():
                try:
                    d = pd.read_csv(dig_path)
                    digital = dict(zip(d["metric"], d["value"].astype(float)))
                except (OSError, ValueError, KeyError):
                    pass
            df["digital"] = df["metric"].map(digital).astype(float)
            df["job"] = job.name if job != Path(root) else ""
            frames.append(df)
    cols = ["job", "point", "axis", "axis_value", "chip", "metric", "value", "digital"]
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)[cols]
    return out[out["metric"] == metric].reset_index(drop=True) if metric else out


def at(df: pd.DataFrame, axis_value: float, job: str | None = None) -> pd.Series:
    """The per-chip values (indexed by chip) at one axis value (and job), from :func:`chip_values` rows."""
    sel = np.isclose(df["axis_value"].astype(float), float(axis_value))
    if job is not None:
        sel &= df["job"] == job
    return df[sel].set_index("chip")["value"].astype(float)


def _job_file(root: Path, job: str, name: str, parse) -> dict:
    """``parse`` of one job's file ``name`` below ``root`` ("" for a single run); {} when missing or unreadable."""
    path = (Path(root) / job if job else Path(root)) / name
    try:
        return parse(path.read_text()) or {}
    except (OSError, ValueError):
        return {}


def job_meta(root: Path, job: str) -> dict:
    """The meta.json of one job below ``root`` ("" for a single run); {} when missing."""
    import json

    return _job_file(root, job, "meta.json", json.loads)


def job_config(root: Path, job: str) -> dict:
    """The composed config.yaml of one job below ``root`` ("" for a single run)."""
    import yaml

    return _job_file(root, job, "config.yaml", yaml.safe_load)


# ---- added for study 002: a statistic compared between two settings (p75 differences and ratios) --------------

def compare(a: pd.Series | dict, b: pd.Series | dict, what: str, stat: str | Callable = "p75", op: str = "diff",
            paired: bool = True, seed: int = 0, n_boot: int = N_BOOT) -> Interval:
    """``stat(a) - stat(b)`` (op "diff") or ``stat(a) / stat(b)`` (op "ratio") with a percentile-bootstrap interval.

    For a statistic that is not a mean (a percentile over chips: study 002's p75), the chip-paired difference of
    :func:`paired` is not the difference of the statistics. ``paired``: the chips both have (indexed by chip) are
    resampled together (chip k is the same chip at every point of a sweep); else each side is resampled on its own
    (two different sets of chips)."""
    a, b = pd.Series(a, dtype=float).dropna(), pd.Series(b, dtype=float).dropna()
    if paired:
        common = a.index.intersection(b.index)
        a, b = a[common], b[common]
    if op not in ("diff", "ratio"):
        raise ValueError(f"op: {op!r}; allowed: diff, ratio")
    fn = _stat_fn(stat)
    f = (lambda x, y: x - y) if op == "diff" else (lambda x, y: x / y)
    x, y = a.to_numpy(), b.to_numpy()
    n = int(min(x.size, y.size))
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, what)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(f(fn(x), fn(y)))
        rng = np.random.default_rng(seed)
        ia = rng.integers(0, x.size, size=(n_boot, x.size))
        ib = ia if paired else rng.integers(0, y.size, size=(n_boot, y.size))
        boot = np.asarray(f(fn(x[ia]), fn(y[ib])), dtype=np.float64)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return Interval(value, math.nan, math.nan, n, what)
    lo, hi = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Interval(value, float(lo), float(hi), n, what, "paired bootstrap" if paired else "bootstrap")
