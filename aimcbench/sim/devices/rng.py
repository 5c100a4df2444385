"""Per-chip random streams: chip k's numbers depend only on (seed, layer, k, stream name).

A chip is the same chip at every sweep point, in every chunk of chips and in every rerun because each of its draws
comes from its own generator, seeded by hashing (seed, layer name, chip index, stream name), never from a shared
or global generator. A stream name says what the numbers are for ("program", "read@1000.0", "out@1000.0", ...): a
setting that changes how many numbers one purpose draws can never shift another purpose's numbers.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Sequence

import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (stable across processes and platforms, unlike ``hash``)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def chip_generator(seed: int, layer: str, chip: int, stream: str, device: torch.device) -> torch.Generator:
    """The generator of one chip, layer and stream ("program", "read@t", "out@t", ...)."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, layer, chip, stream))
    return g


class ChipStreams:
    """The named random streams of a chunk of chips of one layer: ``streams("program")`` is a list of fresh
    generators, one per chip in ``chips`` order, each restarted from its seed (calling twice repeats the numbers)."""

    def __init__(self, seed: int, layer: str, chips: Iterable[int], device: torch.device | str = "cpu"):
        self.seed, self.layer, self.chips, self.device = seed, layer, tuple(chips), torch.device(device)

    def __len__(self) -> int:
        return len(self.chips)

    def __call__(self, stream: str) -> list[torch.Generator]:
        return [chip_generator(self.seed, self.layer, k, stream, self.device) for k in self.chips]


def _fill_chips(out: torch.Tensor, gens: Sequence[torch.Generator],
                fill: Callable[[torch.Tensor, torch.Generator], object]) -> torch.Tensor:
    """Fill row k of ``out`` from generator k."""
    if out.device.type == "cpu" and len(gens) > 1 and out[0].numel() >= 65536 and torch.get_num_threads() > 1:
        # torch's CPU samplers with a generator run on one core; chips have independent generators, so fill
        # them from several threads (the op releases the GIL). Same numbers as the serial loop.
        list(_pool().map(lambda k: fill(out[k], gens[k]), range(len(gens))))
    else:
        for k, g in enumerate(gens):
            fill(out[k], g)
    return out


def randn_chips(shape: Sequence[int], gens: Sequence[torch.Generator], device: torch.device,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """Standard normals [len(gens), *shape], row k drawn from generator k (into ``out`` if given)."""
    if out is None:
        out = torch.empty((len(gens), *shape), device=device)
    return _fill_chips(out, gens, lambda t, g: t.normal_(generator=g))


def rand_chips(shape: Sequence[int], gens: Sequence[torch.Generator], device: torch.device) -> torch.Tensor:
    """Uniforms on [0, 1), [len(gens), *shape], row k drawn from generator k."""
    out = torch.empty((len(gens), *shape), device=device)
    return _fill_chips(out, gens, lambda t, g: t.uniform_(generator=g))


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers != torch.get_num_threads():
        _POOL = ThreadPoolExecutor(max_workers=torch.get_num_threads(), thread_name_prefix="aimc-rng")
    return _POOL
