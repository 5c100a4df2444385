"""Monte Carlo sweep runner: points x chips -> tidy per-chip metrics, resumable.

``run_sweep(cfg, run_dir)`` takes a plain, resolved sweep config (the ``aimc sweep`` config without
Hydra's section). It loads (or trains) the model and the task's test data once, then for each sweep point
sets the axis key, programs ``mc.chips`` simulated chips with :func:`aimcbench.sim.to_analog` and lets the
task (aimcbench.tasks: classification, denoising, detection or a user's own) evaluate them. The layout it
writes is the team contract (see notes/contracts.md): config.yaml, meta.json, points/point_XXX.parquet,
chips.parquet, digital.csv, the task's files (images/...), then the report (percentiles.csv and plots) via
aimcbench.report.

Ownership and resume (aimcbench.runner.rundir): a sweep holds the directory's lock while it writes
(RunDirBusyError for a second one, or it waits with ``wait=true``). A point is finished when its manifest
``points/point_XXX.json`` lists files that all still match; the manifest holds a hash of everything that determines
the point's numbers (:func:`point_hash`: config, eval.batch_size, the weights' content hash :func:`model_digest`,
the test data's fingerprint). A rerun skips finished points, recomputes damaged ones (a notice names the file) and
refuses, with ResultsMismatchError saying what differs, to mix in points computed under another config, model or
data: use a fresh hydra.run.dir (or delete the old points) in that case.

Modules: sweep (the loop), contract (columns, atomic writes, point files and hashes), rundir (lock, manifests,
fault injection), points (point configs), provenance (git revision, versions, device, data and weights).
"""
from .contract import (
                       CHIP_COLUMNS,
                       DIGITAL_COLUMNS,
                       HASH_KEY,
                       SECONDS_KEY,
                       DiskFullError,
                       ResultsMismatchError,
                       RunDirBusyError,
                       RunDirError,
                       SweepInterrupted,
                       atomic_write_bytes,
                       atomic_write_text,
                       file_sha,
                       merge_points,
                       model_digest,
                       point_hash,
                       point_rows,
                       stored_point_meta,
                       write_point,
)
from .points import UsageError, axis_entries, parse_fixed, point_configs, set_dotted
from .provenance import device_text, git_rev, pick_device, versions
from .sweep import calibration_batches, has_batchnorm, run_sweep

__all__ = ["CHIP_COLUMNS", "DIGITAL_COLUMNS", "HASH_KEY", "SECONDS_KEY", "DiskFullError", "ResultsMismatchError",
           "RunDirBusyError", "RunDirError", "SweepInterrupted", "UsageError", "atomic_write_bytes", "atomic_write_text", "axis_entries", "calibration_batches",
           "device_text", "file_sha", "git_rev", "has_batchnorm", "merge_points", "model_digest", "parse_fixed", "pick_device",
           "point_configs", "point_hash", "point_rows", "run_sweep", "set_dotted", "stored_point_meta", "versions",
           "write_point"]
