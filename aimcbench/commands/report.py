"""`aimc report DIR...`: rebuild percentile tables and plots from sweep results, merge sweeps.

Also its own console script: ``aimc-report RUN_DIR... out=X``.
Errors in the input (a missing directory, no results) print one line naming the path and
exit with status 2.
"""

from __future__ import annotations

import sys

from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf



def _as_list(dirs) -> list[str]:
    """``dirs`` as a list of strings: a list override, a single path, or null."""
    if dirs is None:
        return []
    if isinstance(dirs, (str, int, float)):
        return [str(dirs)]
    items = OmegaConf.to_container(dirs) if OmegaConf.is_config(dirs) else list(dirs)
    return [str(d) for d in items if d is not None]


def _report_settings(cfg: DictConfig) -> dict:
    """The report.* settings given on the command line; the others stay None, so each sweep keeps its own
    (report.style=paper of a sweep is redrawn in paper style by a plain `aimc report DIR`)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        given = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    except ValueError:  # called outside a Hydra run: every setting counts as given
        given = {f"report.{k}" for k in ("formats", "style", "html")}
    report = OmegaConf.to_container(cfg.report) if cfg.get("report") is not None else {}
    return {k: report.get(k) if ("report" in given or f"report.{k}" in given) else None
            for k in ("formats", "style", "html")}


def run(cfg: DictConfig) -> None:
    """Hydra entry point: report every sweep under ``cfg.dirs`` into ``cfg.out``."""
    from aimcbench.report import ReportError, report_dirs

    dirs = [to_absolute_path(d) for d in _as_list(cfg.dirs)]
    out = to_absolute_path(str(cfg.out)) if cfg.out is not None else None
    try:
        stat = str(cfg.get("stat", "p75"))
        allowed = ("mean", "min", "p5", "p25", "p50", "p75", "p95", "max")
        if stat not in allowed:
            raise ReportError(f"stat: must be one of {', '.join(allowed)} (got {stat!r})")
        written = report_dirs(dirs, out=out, normalize_to=cfg.get("normalize_to"), stat=stat,
                              **_report_settings(cfg))
    except ReportError as err:
        print(f"aimc report: error: {err}", file=sys.stderr)
        sys.exit(2)
    folders = sorted({str(p.parent) for p in written})
    print(f"aimc report: wrote {len(written)} files in {len(folders)} folder(s):")
    for folder in folders:
        print(f"  {folder}")

    from aimcbench.report.dataset import is_merged_file

    for path in written:  # the merged analysis table of several jobs (aimcbench.report.dataset)
        if path.name == "chips.parquet" and is_merged_file(path):
            print(f"aimc report: all jobs in one table: pandas.read_parquet({str(path)!r})")
