"""CPU memory allocation for the batched chips: keep freed blocks in the process instead of unmapping them.

A batched forward allocates tensors of tens to hundreds of MB (the outputs of all chips and arrays) many times
per batch. glibc serves every allocation above its mmap threshold (128 kB, adapting up to 32 MB) with a fresh
``mmap`` and gives it back with ``munmap`` when freed, so each such tensor page-faults and zero-fills all its
pages again: on the 2-core test machine the MLP at 20 chips spent 7.8 of 19.6 s in the kernel, and its batched
forward ran at 4.3x the digital forward per chip. Raising the mmap and trim thresholds (``mallopt``) makes glibc
reuse freed heap memory: 2.6-3.1x, with peak RSS 3.3 GB instead of 2.6 GB (freed blocks are kept for reuse; the
peak of live tensors is unchanged). PyTorch's CPU allocator has no caching of its own to switch on; jemalloc or
tcmalloc (``LD_PRELOAD``) do the same job where installed, and then this is not needed.

It changes process-wide state, so the library never does it behind a caller's back: the sweep runner and
``scripts/bench_sim.py`` call :func:`retain_freed_memory` once; a script of one's own may too.
``AIMC_CPU_MALLOC=system`` turns it off (for instance to compare, or on a machine short of memory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_LIMIT = 2**31 - 1      # mallopt takes an int: blocks below 2 GiB come from the heap and are reused
_applied: bool | None = None


def retain_freed_memory() -> bool:
    """Ask glibc to keep freed blocks below 2 GiB for reuse (no-op elsewhere). True when the setting is in force;
    calling again does nothing more."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("AIMC_CPU_MALLOC", "retain") == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt: keep their behaviour
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, _LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, _LIMIT))
    return _applied
