"""Tasks behind one interface (:class:`Task`): classification, denoising, detection, or a user's own.

Public API::

    task = get_task(model_cfg.get("task", "classification"))   # registered name or dotted path to a Task
    data, files = task.eval_data(model, cfg, device, meta, log) # test data, files written once
    result = task.evaluate(model, amodel, data, point_cfg, ctx) # PointResult: per-chip + digital metrics
    register_task(MyTask())                                     # TASKS[name]
"""
from .base import (
           TASKS,
           PointContext,
           PointResult,
           Task,
           TaskError,
           batched_metrics,
           get_task,
           npz_bytes,
           register_task,
)
from .classification import Classification
from .denoising import Denoising, median_chip_images
from .detection import Detection, DetectionData

__all__ = ["TASKS", "Classification", "Denoising", "Detection", "DetectionData", "PointContext", "PointResult", "Task",
           "TaskError", "batched_metrics", "get_task", "median_chip_images", "npz_bytes", "register_task"]
