"""The Task interface: what a sweep evaluates at every point, and the registry of tasks by name.

A task turns (digital model, analog model of ``mc.chips`` chips, test data) into per-chip metrics and the
digital baseline of one sweep point. The runner (aimcbench.runner) owns the loop over points, the chips and
the run directory; a task owns its test data, its metrics and the files it adds (returned as bytes, written
atomically by the runner). ``model.task`` names a registered task (:data:`TASKS`) or, for a user's own, the
dotted path of a :class:`Task` subclass (``mypkg.tasks.Segmentation``).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm


class TaskError(ValueError):
    """An unknown or unusable ``model.task``; ``str()`` is one line ``model.task: <problem>``."""

    def __init__(self, message: str):
        self.key = message.split(":", 1)[0]
        super().__init__(message)


@dataclass
class PointContext:
    """Where one evaluation runs: point index and label, eval settings of the run, device, progress bar."""

    point: int
    axis_label: str
    batch_size: int
    device: str = "cpu"
    progress: bool = False
    images: int = 0          # denoising: test images kept for the picture grid
    desc: str = ""


@dataclass
class PointResult:
    """One point's numbers: {metric: per-chip values}, {metric: digital value}, extra files, seconds per chip."""

    chip_metrics: dict[str, Any]
    digital: dict[str, float]
    files: dict[str, bytes] = field(default_factory=dict)   # run-dir relative path -> content
    seconds_per_chip: list[float] | None = None


class Task:
    """Base class of tasks (see module docstring)."""

    name = ""
    trained = True        # False: the model is loaded as given (:meth:`load_model`), never trained or cached
    loglog = False        # error rate = 1 - accuracy makes sense (sweep.loglog fits a power law)

    def load_model(self, model_cfg: dict) -> tuple[torch.nn.Module, str, dict]:
        """(model, weights identity for point hashes, info) for tasks whose models are not trained."""
        raise NotImplementedError(f"task {self.name} trains its models")

    def eval_data(self, model: torch.nn.Module, cfg: dict, device: str, meta: dict,
                  log: Callable[[str], None]) -> tuple[Any, dict[str, bytes]]:
        """The test data every point evaluates (anything :meth:`evaluate` takes; len() = number of inputs),
        and files to write once (run-dir relative path -> bytes)."""
        raise NotImplementedError

    def evaluate(self, model: torch.nn.Module, amodel: torch.nn.Module, data: Any, pcfg: dict,
                 ctx: PointContext) -> PointResult:
        raise NotImplementedError


def npz_bytes(**arrays: Any) -> bytes:
    """A compressed .npz file's content."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


@torch.no_grad()
def batched_metrics(n: int, batch_size: int, step: Callable[[int, int], tuple[dict, dict]], progress: bool,
                    desc: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-chip and digital metrics averaged over ``n`` inputs; ``step(start, stop)`` returns one batch's
    ({metric: per-chip tensor}, {metric: digital value}), each a mean over the batch (weighted by its size)."""
    sums: dict[str, torch.Tensor] = {}
    dsums: dict[str, float] = {}
    for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, leave=False, unit="batch"):
        vals, dvals = step(start, start + batch_size)
        w = min(start + batch_size, n) - start
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + v.detach().double().cpu() * w
        for k, v in dvals.items():
            dsums[k] = dsums.get(k, 0.0) + float(v) * w
    return {k: (v / n).numpy() for k, v in sums.items()}, {k: v / n for k, v in dsums.items()}


TASKS: dict[str, Task] = {}
"""Registered tasks by name (``register_task`` adds to it)."""


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The task ``model.task`` names: a registered name, or the dotted path of a Task subclass or instance."""
    if name in TASKS:
        return TASKS[name]
    if isinstance(name, str) and "." in name:
        from aimcbench.imports import import_object

        obj = import_object(name, "model.task", TaskError)
        task = obj() if isinstance(obj, type) and issubclass(obj, Task) else obj
        if isinstance(task, Task):
            return task
        raise TaskError(f"model.task: {name} is a {type(obj).__name__}, not an aimcbench.tasks.Task")
    raise TaskError(f"model.task: unknown task {name!r}; allowed: {', '.join(TASKS)} or a dotted path to a Task")
