"""aimcbench.report: percentile tables, plots and merged reports of Monte Carlo sweeps.

    from aimcbench.report import percentile_table, load_sweep, write_sweep_report, merge_sweeps
"""

from aimcbench.report.build import merge_sweeps, report_dirs, summary_markdown, write_sweep_report
from aimcbench.report.errors import ReportError
from aimcbench.report.sweepdir import Sweep, find_sweep_dirs, label_sweeps, load_sweep
from aimcbench.report.tables import PERCENTILE_COLUMNS, percentile_table

__all__ = [
    "PERCENTILE_COLUMNS", "ReportError", "Sweep", "find_sweep_dirs", "label_sweeps",
    "load_sweep", "merge_sweeps", "percentile_table", "report_dirs", "summary_markdown",
    "write_sweep_report",
]
