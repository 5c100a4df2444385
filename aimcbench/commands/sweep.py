"""``aimc sweep``: one Monte Carlo sweep (points x chips) into the Hydra run directory."""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from ._common import check_sweep_config, exits_on_user_error, plain


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


@exits_on_user_error
def run(cfg: DictConfig) -> None:
    """Hydra task: validate, run (or resume) the sweep, print where the results are."""
    from hydra.core.hydra_config import HydraConfig

    from aimcbench.runner import run_sweep

    hc = HydraConfig.get()
    data = plain(cfg)
    check_sweep_config(data)
    run_dir = hc.runtime.output_dir
    meta = run_sweep(data, run_dir, label=" ".join(hc.overrides.task))
    print(f"sweep {meta['axis']} over {len(meta['points'])} points x {meta['chips']} chips "
          f"({meta['timings']['total_s']:.1f} s): {run_dir}")
    print(summary(run_dir))
    sys.stdout.flush()

