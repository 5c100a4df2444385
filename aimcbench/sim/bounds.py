"""Iterative bound management (aihwkit's): an input vector whose output clips at the ADC is re-applied halved, with
fresh output noise, until no output clips, up to 2^10 > 1000x; the read that did not clip (or the last) counts,
multiplied back. Two ways to compute it, with the same numbers bit for bit (tests/test_sim_sync.py):

* ``gather`` (on a CPU): the clipped vectors are picked out (``nonzero``) and halved again and again while any
  still clips. Little work, but each step reads a count back to the host: on a GPU a synchronization per step.
* ``masked`` (on a GPU): no host read. Output noise is bounded -- our normals never exceed Z_MAX in magnitude (23-bit
  uniforms in Box-Muller) -- so the clean product alone says at which halving ``j_def`` a vector surely no longer
  clips, and that every halving below ``j_def - U`` surely still clips, where U (usually 1) is fixed by the bound
  and the noise. The reads at the U + 1 halvings in between are computed for all vectors at once (each vector at
  its own halving and its own noise stream), and the first that does not clip is taken: U + 1 full passes of
  fixed shape, however many vectors clip.

A halved input's product is exactly half the product (scaling by a power of two is exact in floating point), so a
re-read is the clean product times 2^-j plus noise; the noise of halving j of chip k at output e comes from the
stream "<read> halved j" at element e, so neither way depends on which other vectors clip or on the chunk.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from .converters import ADC
from .devices.rng import randn_keyed_span

MAX_HALVINGS = 10      # 2^10 > 1000: aihwkit's bound-management limit
Z_MAX = 5.8            # |normal| <= sqrt(2 ln 2^24) = 5.77 for our streams (rng.py), with room for float rounding
_REL_MARGIN = 1e-5     # relative room for the rounding of c 2^-j + sigma n against the bound
BLOCK_ELEMENTS = 1 << 26  # outputs per block of the sync-free passes (~6 temporaries of 4 bytes each: ~1.6 GB)


def _level(adc: ADC, c: torch.Tensor) -> torch.Tensor:
    """[...]: the largest output of c [..., P] the ADC's bound is checked against (|y| signed, y unsigned)."""
    # amax and amin apart: 6x faster on a CPU than abs().amax() or aminmax (torch 2.14), the same values.
    return torch.maximum(c.amax(dim=-1), c.amin(dim=-1).neg()) if adc.signed else c.amax(dim=-1)


def clip_mask(adc: ADC, y: torch.Tensor) -> torch.Tensor:
    """[...]: vectors of y [..., P] with an output at or past the ADC's bound (one reduction, no host read)."""
    return _level(adc, y) >= adc.bound


def _band(adc: ADC) -> float:
    """How far the output noise (and the rounding of c 2^-j + sigma z) can move an output: sigma Z_MAX + margin."""
    return adc.out_noise * Z_MAX + _REL_MARGIN * adc.bound


Digitize = Callable[[torch.Tensor, int, Optional[torch.Tensor]], torch.Tensor]
"""(reads [..., P], which ADC (0, or 1 for the minus ADCs of separate_adc), rows or None) -> digitized in place."""


def manage_gather(ys: list, clean: list, clip: torch.Tensor, keys: list, adc: ADC, digitize: Digitize,
                  digitized: bool = False) -> None:
    """Digitize the reads ``ys`` [Kc, A, N, P] in place, with the clipped vectors (``clip`` [Kc, A, N]) replaced
    by their bound-managed reads; ``clean``: the noise-free products (may be ``ys`` themselves when noiseless).
    Picks the clipped vectors out: host reads. ``digitized``: ys come digitized already (a compiled read)."""
    sel = clip.nonzero()                                        # [M, 3]: (chip, array, vector)
    clean = [c[sel[:, 0], sel[:, 1], sel[:, 2]] for c in clean]  # [M, P], before ys are digitized
    for i, y in enumerate([] if digitized else ys):
        digitize(y, i, None)
    n, n_out = ys[0].shape[2], ys[0].shape[3]
    sigma = adc.out_noise
    start = (sel[:, 1] * n + sel[:, 2]) * n_out      # flat index of each vector's first output, per chip
    todo = torch.arange(len(sel), device=sel.device)
    factor = 1.0
    for j in range(1, MAX_HALVINGS + 1):
        factor *= 0.5
        reads = []
        for c, k in zip(clean, keys):
            y = c[todo] * factor
            if sigma > 0:
                y += k.derive(f"halved {j}").randn_rows(sel[todo, 0], start[todo], n_out) * sigma
            reads.append(y)
        still = clip_mask(adc, reads[0])
        for y in reads[1:]:
            still |= clip_mask(adc, y)
        s = sel[todo]
        for i, (y, dest) in enumerate(zip(reads, ys)):
            digitize(y, i, s)
            dest[s[:, 0], s[:, 1], s[:, 2]] = y.div_(factor)
        if not bool(still.any()):
            break
        todo = todo[still]


def window(adc: ADC) -> int:
    """U: how many halvings below the first sure non-clipping one may still clip or not (noise within +-band)."""
    band = _band(adc)
    if adc.bound - band <= 0:
        return MAX_HALVINGS  # noise as large as the bound: any halving may or may not clip
    return max(0, math.ceil(math.log2((adc.bound + band) / (adc.bound - band))))


def first_sure_halving(adc: ADC, level: torch.Tensor) -> torch.Tensor:
    """[...] int: the smallest j >= 0 with level 2^-j < bound - band (no output can clip, whatever the noise)."""
    t = adc.bound - _band(adc)
    if t <= 0:
        return torch.full_like(level, MAX_HALVINGS + 1, dtype=torch.int32)
    j = torch.floor(torch.log2(level.clamp(min=t * 2.0**-30) / t)).to(torch.int32).add_(1).clamp_(min=0)
    # log2 may round across an integer: settle j exactly (2^-j scaling is exact).
    j = torch.where(torch.ldexp(level, -j) < t, j, j + 1)
    return torch.where((j > 0) & (torch.ldexp(level, -(j - 1)) < t), j - 1, j)


def manage_masked(ys: list, clean: list, clip: torch.Tensor, keys: list, adc: ADC, digitize: Digitize,
                  digitized: bool = False) -> None:
    """As :func:`manage_gather`, with U + 1 passes over all vectors and no host read (``clean`` must not be ``ys``).
    The passes run over blocks of input vectors of at most BLOCK_ELEMENTS outputs, which bounds their temporaries
    (each vector is computed on its own: the blocks do not change a number)."""
    kc, a, n, n_out = ys[0].shape
    for i, y in enumerate([] if digitized else ys):
        digitize(y, i, None)
    level = _level(adc, clean[0])
    for c in clean[1:]:
        level = torch.maximum(level, _level(adc, c))
    last = first_sure_halving(adc, level).clamp_(1, MAX_HALVINGS)  # the last halving a vector can need
    names = [f"halved {j}" for j in range(1, MAX_HALVINGS + 1)]
    tables = [k.keys_of(names) for k in keys] if adc.out_noise > 0 else [None] * len(clean)  # [Kc, J, 2] per read
    start = torch.arange(a * n, device=clip.device, dtype=torch.int32).view(1, a, n).mul_(n_out)
    u = window(adc)
    step = max(1, BLOCK_ELEMENTS // max(kc * a * n_out, 1))
    for n0 in range(0, n, step):
        b = slice(n0, min(n0 + step, n))
        _masked_passes([y[:, :, b] for y in ys], [c[:, :, b] for c in clean], clip[:, :, b], last[:, :, b],
                       start[:, :, b], tables, u, adc, digitize)


def _masked_passes(ys: list, clean: list, clip: torch.Tensor, last: torch.Tensor, start: torch.Tensor,
                   tables: list, u: int, adc: ADC, digitize: Digitize) -> None:
    """The u + 1 passes over one block of vectors (views of the outputs ``ys``, written in place)."""
    kc, a, n, n_out = ys[0].shape
    done = ~clip
    for t in range(u + 1):
        j = last - (u - t)                                         # [Kc, A, N]: this pass's halving per vector
        ok = j >= 1
        j = j.clamp(min=1)
        factor = torch.ldexp(torch.ones(j.shape, device=clip.device), -j).unsqueeze(-1)   # 2^-j, exact
        reads = []
        for c, table in zip(clean, tables):
            y = c * factor
            if table is not None:
                kk = table.gather(1, (j - 1).reshape(kc, a * n, 1).expand(-1, -1, 2).long()).view(kc, a, n, 2)
                y += randn_keyed_span(kk[..., 0], kk[..., 1], start.expand(kc, -1, -1), n_out) * adc.out_noise
            reads.append(y)
        still = clip_mask(adc, reads[0])
        for y in reads[1:]:
            still |= clip_mask(adc, y)
        take = ~done & ok & (~still | (t == u))                    # the last pass takes what remains
        for i, (y, dest) in enumerate(zip(reads, ys)):
            digitize(y, i, None)
            dest.copy_(torch.where(take.unsqueeze(-1), y.div_(factor), dest))
        done |= take
