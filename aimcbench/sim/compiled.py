"""Compiled kernels (a sweep's ``compile=true``): ``torch.compile`` of small pure functions of the hot path, each
fused into one loop (a C++ compiler on a CPU, Triton on CUDA), with the plain PyTorch way beside it.

Off by default: compiling costs 10-30 s per process (cached on disk by torch afterwards). A compiled kernel
computes what its plain twin computes, but the compiler's own sin, cos and log and its fused multiply-adds round
differently in the last bit, so ``compile`` is part of a sweep point's hash. If compiling fails (no compiler),
the plain way is used with one warning. Under a dispatch mode (the op-counting tests and bench) compiled code
cannot run, so the plain way is used there too."""

from __future__ import annotations

import warnings
from typing import Callable, Optional

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

from .periphery import quantize_grid

_SETTINGS = {"compile": False}
# Each kernel compiles once per combination of sizes 1 (torch specializes them), ranks and argument flags: up to ~32
# for the largest. torch's default limit (8) would stop a long sweep with an error half way.
RECOMPILE_LIMIT = 64
_KERNELS: dict[tuple[str, str], Optional[Callable]] = {}


def set_compiled(on: bool) -> bool:
    """Use compiled kernels (True) or plain PyTorch (False) from now on; returns the previous setting."""
    before = _SETTINGS["compile"]
    _SETTINGS["compile"] = bool(on)
    if on:
        import torch._dynamo  # noqa: PLC0415 (only when compiling)

        cfg = torch._dynamo.config
        cfg.recompile_limit = max(cfg.recompile_limit, RECOMPILE_LIMIT)
    return before


def compiled(fn: Callable, device: torch.device, warm_up: Callable[[Callable], object]) -> Optional[Callable]:
    """``fn`` compiled for this device type (``warm_up(compiled_fn)`` compiles it now, or fails now) when compiling
    is on, else None; None also when compiling failed once."""
    if not _SETTINGS["compile"] or device.type not in ("cpu", "cuda"):
        return None
    if _get_current_dispatch_mode() is not None:
        return None
    key = (f"{fn.__module__}.{fn.__qualname__}", device.type)
    if key not in _KERNELS:
        kernel = None
        try:
            kernel = torch.compile(fn, dynamic=True, fullgraph=True)
            warm_up(kernel)
        except Exception as err:  # any failure of the compiler stack: keep the plain path, say so once
            warnings.warn(f"aimcbench: torch.compile of the {fn.__name__} kernel failed ({type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''}); using plain PyTorch (slower; numbers "
                          "differ from the compiled ones in the last bits).")
            kernel = None
        _KERNELS[key] = kernel
    return _KERNELS[key]


def _scaled_sum(y: torch.Tensor, scale: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return (y * scale * alpha).sum(dim=1)


def _warm_scaled_sum(kernel, device: torch.device) -> None:
    y, scale = torch.zeros((2, 3, 4, 5), device=device), torch.ones((3, 1, 5), device=device)
    kernel(y, scale, torch.ones((1, 3, 4, 1), device=device))   # a shared input's alpha
    kernel(y, scale, torch.ones((2, 3, 4, 1), device=device))   # the chips' own


def scaled_sum(y: torch.Tensor, scale: torch.Tensor, alpha: torch.Tensor) -> Optional[torch.Tensor]:
    """The digital side of a layer's reads in one kernel: y [Kc, A, N, out] times the weight scale [A, 1, out] and
    the input scale alpha ([Kc,] A, N, 1), summed over the row arrays -> [Kc, N, out]; None when not compiling."""
    kernel = compiled(_scaled_sum, y.device, lambda k: _warm_scaled_sum(k, y.device))
    if kernel is None:
        return None
    a4 = (alpha if alpha.dim() == 4 else alpha.unsqueeze(0)).contiguous()   # one rank, contiguous: fewer variants
    return kernel(y.contiguous(), scale.contiguous(), a4)


def _digitized_difference(yp: torch.Tensor, ym: torch.Tensor, step: torch.Tensor, lo: torch.Tensor,
                          hi: torch.Tensor) -> torch.Tensor:
    return quantize_grid(yp, step, lo, hi) - quantize_grid(ym, step, lo, hi)


def _warm_difference(kernel, device: torch.device) -> None:
    y, one = torch.zeros((2, 3, 4, 5), device=device), torch.ones((), device=device)
    kernel(y, y, one, 0 * one, one)


def digitized_difference(device: torch.device) -> Optional[Callable]:
    """``f(yp, ym, step, lo, hi)``: two noiseless reads [Kc, A, N, P] (separate ADCs for W+ and W-) each digitized
    by an ideal uniform ADC and subtracted, in one kernel instead of nine passes; None when not compiling."""
    kernel = compiled(_digitized_difference, device, lambda k: _warm_difference(k, device))
    if kernel is None:
        return None

    def run(yp: torch.Tensor, ym: torch.Tensor, step: float, lo: float, hi: float) -> torch.Tensor:
        t = [torch.tensor(x, dtype=yp.dtype, device=yp.device) for x in (step, lo, hi)]
        return kernel(yp.contiguous(), ym.contiguous(), *t)

    return run
