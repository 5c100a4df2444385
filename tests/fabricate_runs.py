"""Fabricated run directories for testing claim checks (aimcbench/studies/*/claims.py) without running sweeps.

A fabricated run has exactly what :func:`aimcbench.studies.verdict.chip_values` and the checks read: config.yaml,
meta.json, points/point_XXX.parquet (one row per chip and metric), points/digital_XXX.csv and percentiles.csv.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def write_run(run_dir: Path, axis: str, points: list[dict], config: dict | None = None,
              data_source: str = "full", n_test: int | None = None) -> Path:
    """Write one run dir. ``points``: [{"x": axis value, "label": str (optional),
    "chips": {metric: per-chip values}, "digital": {metric: value}}]; ``n_test``: test images per chip (meta.json).
    Returns ``run_dir``."""
    run_dir = Path(run_dir)
    (run_dir / "points").mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config or {}))
    meta = {"data": {"name": "mnist", "source": data_source}}
    if n_test is not None:
        meta["n_test"] = n_test
    (run_dir / "meta.json").write_text(json.dumps(meta))
    rows = []
    for i, p in enumerate(points):
        x = float(p["x"])
        frames = [pd.DataFrame({"point": i, "axis": axis, "axis_value": x, "axis_label": str(p.get("label", p["x"])),
                                "chip": np.arange(len(v)), "metric": m, "value": np.asarray(v, dtype=float)})
                  for m, v in p["chips"].items()]
        df = pd.concat(frames, ignore_index=True)
        df.to_parquet(run_dir / "points" / f"point_{i:03d}.parquet", index=False)
        dig = p.get("digital") or {}
        pd.DataFrame({"point": i, "axis": axis, "axis_value": x, "axis_label": str(p.get("label", p["x"])),
                      "metric": list(dig), "value": list(dig.values())}).to_csv(
            run_dir / "points" / f"digital_{i:03d}.csv", index=False)
        for m, v in p["chips"].items():
            v = np.asarray(v, dtype=float)
            rows.append({"axis": axis, "axis_value": x, "axis_label": str(p.get("label", p["x"])), "metric": m,
                         "n_chips": v.size, "mean": v.mean(), "std": v.std(), "min": v.min(),
                         **{f"p{q}": np.percentile(v, q) for q in (5, 25, 50, 75, 95)}, "max": v.max(),
                         "digital": dig.get(m, np.nan)})
    pd.DataFrame(rows).to_csv(run_dir / "percentiles.csv", index=False)
    return run_dir


def chips(mean: float, std: float, n: int = 40, seed: int = 0) -> np.ndarray:
    """``n`` per-chip values with exactly this sample mean and std (so a test's verdict does not hinge on luck)."""
    z = np.random.default_rng(seed).standard_normal(n)
    z = (z - z.mean()) / (z.std() if n > 1 and z.std() > 0 else 1.0)
    return mean + std * z
