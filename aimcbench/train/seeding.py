"""Reproducible training: every random draw of training comes from ``train.seed``, inside a forked RNG scope.

:func:`seeded` forks the global RNGs (torch CPU, the CUDA device trained on, Python's ``random``, NumPy's legacy
global generator), seeds them from the given seed, and restores the caller's states on exit, so the weight
initialization (``build_from_config`` runs inside it) and any global draw a layer makes while training
(dropout, a user recipe) depend on the config only and nothing leaks to or from the rest of the process. The
training loops also draw their data order, batches, augmentation, denoising and injected noise from their own
explicit ``torch.Generator`` seeded from the same seed.

On the CPU that makes the same config train bitwise-identical weights, in one process or in two (same torch
build, same machine, same ``train.threads``: another thread count changes the order of float reductions, and
the weights differ in the last bits -- measured after 6 steps, MLP 7e-9, DAE 1.5e-3 max abs; the cache key leaves
threads out, so a cached model is reused whatever the thread count). On a GPU, bitwise reproducibility further needs, and
:func:`deterministic` applies while a CUDA device trains:

* ``torch.use_deterministic_algorithms(True, warn_only=True)``: deterministic kernels where torch has them
  (an op without one warns instead of failing; such an op may still differ in the last bits between runs);
* ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` in the environment before cuBLAS starts (set here if the user has not
  set it; it only takes effect when CUDA has not been used yet in the process, so set it in the shell to be sure);
* ``torch.backends.cudnn.benchmark = False`` and ``torch.backends.cudnn.deterministic = True`` (no autotuned
  kernel choice that varies between runs).

Results are then reproducible on the same GPU model, driver and torch build; a CPU- and a GPU-trained model
differ (different kernels), and so do two GPU models.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["CUBLAS_WORKSPACE", "deterministic", "seeded", "training_scope"]

CUBLAS_WORKSPACE = ":4096:8"
"""The cuBLAS workspace setting deterministic GEMMs need (CUDA >= 10.2)."""


def _cuda_devices(device: str | torch.device | None) -> list[int]:
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type != "cuda" or not torch.cuda.is_available():
        return []
    return [dev.index if dev.index is not None else torch.cuda.current_device()]


@contextlib.contextmanager
def seeded(seed: int, device: str | torch.device | None = "cpu") -> Iterator[None]:
    """Run the block with the global RNGs seeded from ``seed``; the caller's RNG states come back afterwards."""
    seed = int(seed)
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = _cuda_devices(device)
    try:
        with torch.random.fork_rng(devices=devices):
            # Only the forked generators are seeded (torch.manual_seed would also reseed every other GPU's).
            torch.random.default_generator.manual_seed(seed)
            for index in devices:
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@contextlib.contextmanager
def deterministic(device: str | torch.device | None) -> Iterator[None]:
    """While training on a CUDA device: torch's deterministic settings (module docstring); a no-op on the CPU.

    The previous settings are restored afterwards, so evaluation elsewhere keeps its fast kernels.
    """
    if not _cuda_devices(device):
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]


@contextlib.contextmanager
def training_scope(seed: int, device: str | torch.device | None = "cpu") -> Iterator[None]:
    """:func:`seeded` and :func:`deterministic` together: what every training loop runs inside."""
    with seeded(seed, device), deterministic(device):
        yield
