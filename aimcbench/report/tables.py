"""Percentile tables from tidy per-chip Monte Carlo rows.

The input is the runner's tidy table (one row per point x chip x metric, see the sweep
output layout in the team contracts); the output is the ``percentiles.csv`` table.
All statistics come from pandas (linear-interpolation quantiles, the same rule as
``numpy.percentile``'s default), so they can be checked against numpy directly.
"""

from __future__ import annotations

import pandas as pd

from aimcbench.report.errors import ReportError

#: columns of chips.parquet and points/point_XXX.parquet
CHIP_COLUMNS = ("point", "axis", "axis_value", "axis_label", "chip", "metric", "value")
#: columns of digital.csv that the table needs (axis columns are optional there)
DIGITAL_COLUMNS = ("point", "metric", "value")
#: percentile column name -> quantile fraction
PERCENTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p95": 0.95}
#: the columns of percentiles.csv, in order
PERCENTILE_COLUMNS = [
    "axis", "axis_value", "axis_label", "metric", "n_chips", "mean", "std", "min",
    *PERCENTILES, "max", "digital",
]


def require_columns(df: pd.DataFrame, required, what: str) -> None:
    """Raise a one-line ReportError naming ``what`` if ``df`` lacks any ``required`` column."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReportError(
            f"{what}: missing column(s) {missing}; expected columns {list(required)}"
        )


def percentile_table(chips: pd.DataFrame, digital: pd.DataFrame | None = None) -> pd.DataFrame:
    """Summarise per-chip values into one row per (point, metric).

    Args:
        chips: tidy rows with columns CHIP_COLUMNS (one row per point x chip x metric).
        digital: optional digital-baseline rows with at least point, metric, value.
            Several rows for the same (point, metric) are averaged.

    Returns:
        DataFrame with exactly PERCENTILE_COLUMNS, sorted by point then metric.
        n_chips counts non-missing values; std is the sample standard deviation
        (ddof=1, NaN for a single chip); digital is NaN where no baseline exists.
    """
    require_columns(chips, CHIP_COLUMNS, "chips table")
    if chips.empty:
        raise ReportError("chips table is empty: no finished sweep points to report")
    chips = chips.astype({"point": "int64", "value": "float64", "axis_value": "float64"})
    keys = ["point", "metric"]
    grouped = chips.groupby(keys, sort=True)
    values = grouped["value"]
    # axis columns are constant within a point; take the first row of each group
    table = grouped[["axis", "axis_value", "axis_label"]].first()
    table["n_chips"] = values.count()
    table["mean"] = values.mean()
    table["std"] = values.std(ddof=1)
    table["min"] = values.min()
    for name, fraction in PERCENTILES.items():
        table[name] = values.quantile(fraction)
    table["max"] = values.max()

    if digital is not None and not digital.empty:
        require_columns(digital, DIGITAL_COLUMNS, "digital table")
        base = digital.astype({"point": "int64", "value": "float64"}).groupby(keys)["value"].mean()
        table["digital"] = base.reindex(table.index)
    else:
        table["digital"] = float("nan")

    table = table.reset_index().sort_values(keys, kind="stable")
    table["n_chips"] = table["n_chips"].astype("int64")
    return table[PERCENTILE_COLUMNS].reset_index(drop=True)
