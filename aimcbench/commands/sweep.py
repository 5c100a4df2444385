"""``aimc sweep``: one Monte Carlo sweep (points x chips) into the Hydra run directory.

The task returns the sweep's objective (the ``objective`` settings: a statistic over chips of one metric at one
point, as in percentiles.csv), so Hydra sweepers (``hydra/sweeper=optuna``, ...) can search a design space.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

from omegaconf import DictConfig

from ._common import check_sweep_config, exits_on_user_error, plain

logger = logging.getLogger(__name__)


def summary(run_dir) -> str:
    """A short per-point table (median and digital) of a finished sweep, for the terminal."""
    from pathlib import Path

    import pandas as pd

    run_dir = Path(run_dir)
    chips = pd.read_parquet(run_dir / "chips.parquet")
    digital = pd.read_csv(run_dir / "digital.csv")
    med = chips.groupby(["point", "axis_label", "metric"], sort=True)["value"].median().rename("median_chip")
    table = med.reset_index().merge(digital[["point", "metric", "value"]].rename(columns={"value": "digital"}),
                                    on=["point", "metric"])
    return table.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def objective_value(run_dir, objective: dict | None = None) -> tuple[float, str]:
    """(value, description) of a finished sweep's objective: ``stat`` over chips of ``metric`` (null: the first
    metric the task recorded) at sweep point ``point`` (negative: from the end), computed by the same
    percentile table as percentiles.csv; minus that row's digital value when ``relative``; with ``target`` set,
    the distance |value - target|."""
    from pathlib import Path

    import pandas as pd

    from aimcbench.config import UsageError
    from aimcbench.report import percentile_table

    obj = {"metric": None, "stat": "p5", "point": -1, "relative": False, "target": None, **(objective or {})}
    run_dir = Path(run_dir)
    chips = pd.read_parquet(run_dir / "chips.parquet")
    table = percentile_table(chips, pd.read_csv(run_dir / "digital.csv"))
    metrics = list(dict.fromkeys(chips["metric"]))  # the task's order (its first metric first)
    metric = obj["metric"] or metrics[0]
    if metric not in metrics:
        raise UsageError("objective.metric", f"must be one of {', '.join(metrics)} (got {metric!r})")
    rows = table[table["metric"] == metric].reset_index(drop=True)  # one per point, in point order
    n = len(rows)
    point = check_objective_point(obj["point"], n)
    row = rows.iloc[point % n]
    value = float(row[obj["stat"]]) - (float(row["digital"]) if obj["relative"] else 0.0)
    what = (f"{obj['stat']} of {metric} at point {point % n} ({row['axis']}={row['axis_label']})"
            + (" minus digital" if obj["relative"] else ""))
    if obj.get("target") is not None:
        value, what = abs(value - float(obj["target"])), f"|{what} - ({obj['target']})|"
    return value, what


def check_objective_point(point, n: int) -> int:
    """objective.point as an index into a sweep of ``n`` points (UsageError when outside)."""
    from aimcbench.config import UsageError

    if not -n <= int(point) < n:
        raise UsageError("objective.point", f"must be in [{-n}, {n - 1}] for this sweep of {n} points (got {point})")
    return int(point)


@exits_on_user_error
def run(cfg: DictConfig) -> float:
    """Hydra task: validate, run (or resume) the sweep, print where the results are; return the objective."""
    from hydra.core.hydra_config import HydraConfig

    from aimcbench.runner import run_sweep

    hc = HydraConfig.get()
    data = plain(cfg)
    check_sweep_config(data)
    check_objective_point(data["objective"]["point"], len(data["sweep"]["values"]))  # before any work
    run_dir = hc.runtime.output_dir
    # Python warnings (e.g. the simulator's "no analog layer selected") into the job log too, one line each.
    saved_format = warnings.formatwarning
    warnings.formatwarning = lambda msg, cat, filename, lineno, line=None: (
        f"{cat.__name__}: {msg} ({os.path.basename(filename)}:{lineno})")
    logging.captureWarnings(True)
    try:
        meta = run_sweep(data, run_dir, label=" ".join(hc.overrides.task))
    finally:
        logging.captureWarnings(False)
        warnings.formatwarning = saved_format
    value, what = objective_value(run_dir, data.get("objective"))
    logger.info(f"objective: {what} = {value:.6g}")
    print(f"sweep {meta['axis']} over {len(meta['points'])} points x {meta['chips']} chips "
          f"({meta['timings']['total_s']:.1f} s): {run_dir}")
    print(summary(run_dir))
    print(f"objective: {what} = {value:.6g}")
    sys.stdout.flush()
    return value
