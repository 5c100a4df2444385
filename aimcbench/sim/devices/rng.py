"""Counter-based per-chip random streams: every number is a pure function of (seed, layer, chip, stream, element).

A chip is the same chip at every sweep point, in every chunk of chips, on every chunk size and in every rerun,
because each of its draws is computed, not drawn from a generator's running state: a stream's per-chip key is
hashed from (seed, layer name, chip index, stream name) on the host, and element e of that stream is
``normal(hash(e, key))``. All chips of a chunk share one set of kernels (the key is a [Kc, 1] tensor), so the
number of kernels per draw does not grow with the number of chips; no Python loop over chips touches a tensor.

A stream name says what the numbers are for ("program", "read@1000.0", "out@1000.0 #3", ...): a setting that
changes how many numbers one purpose draws never shifts another purpose's numbers. Streams that are read again
and again (output noise, study 004's per-batch factor) put the read's index in the name.

The bits: two rounds of MurmurHash3's 32-bit finalizer over (element counter + key0) xor key1, in int32 tensors
(wrapping multiplies, logical shifts by masking), so CPU and CUDA compute the same integers. Normals come by
Box-Muller from the hashes of elements 2p and 2p+1, in float32. The numbers of chip k must not depend on where
the chip falls in a chunk: torch's CPU kernels of log/cos/sin/sqrt give the same bits for an element whatever
its position in the tensor (their tails run the vectorized code on a partial load; tests/test_sim_rng.py checks
it, and every chunking test compares chips bitwise), which float64 would cost 2.3x the time to guarantee.
Uniforms have 23 bits, so a normal's magnitude is at most sqrt(2 ln 2^24) = 5.77 (tail mass beyond: 8e-9).
"""

from __future__ import annotations

import hashlib
import math
from typing import Iterable, Optional, Sequence

import torch

from ..compiled import compiled
from ..periphery import quantize_grid

_M1 = -2048144789   # 0x85EBCA6B as int32 (MurmurHash3 fmix32 constants)
_M2 = -1028477387   # 0xC2B2AE35 as int32
_CPU_BLOCK_PAIRS = 1 << 20  # pairs per block on a CPU (all chips together): 2^17-2^20 ran at the same speed on
# one thread; the larger block dispatches 8x fewer ops, each of which waits for its slowest thread
_GPU_BLOCK_PAIRS = 1 << 26  # pairs per block on a GPU: bounds the temporaries of one draw


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (stable across processes and platforms, unlike ``hash``)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _int32(u: int) -> int:
    """An unsigned 32-bit value as the int32 with the same bits."""
    return u - 2**32 if u >= 2**31 else u


def _fmix_(h: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's fmix32 in place on int32 ``h`` (``tmp`` a scratch of the same shape): x ^= x >>> 16;
    x *= M1; x ^= x >>> 13; x *= M2; x ^= x >>> 16. Arithmetic shifts are made logical by masking."""
    for shift, mult in ((16, _M1), (13, _M2), (16, None)):
        torch.bitwise_right_shift(h, shift, out=tmp)
        tmp.bitwise_and_((1 << (32 - shift)) - 1)
        h.bitwise_xor_(tmp)
        if mult is not None:
            h.mul_(mult)
    return h


def hash_bits(counter: torch.Tensor, k0: torch.Tensor, k1: torch.Tensor) -> torch.Tensor:
    """32 random bits (int32) per element: fmix(fmix(counter + k0) ^ k1); keys broadcast against the counter."""
    h = torch.add(counter, k0)
    tmp = torch.empty_like(h)
    _fmix_(h, tmp)
    h.bitwise_xor_(k1)
    return _fmix_(h, tmp)


def _uniform_open(bits: torch.Tensor) -> torch.Tensor:
    """float32 in (0, 1) from the top 23 bits: ((b >>> 9) + 0.5) 2^-23 (exact: 24 significant bits)."""
    u = torch.bitwise_right_shift(bits, 9).bitwise_and_((1 << 23) - 1).float()
    return u.add_(0.5).mul_(2.0**-23)


def _normal_pairs(pair: torch.Tensor, k0: torch.Tensor, k1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-Muller: (r, theta) float32 of pair index ``pair`` (elements 2p -> r cos theta, 2p+1 -> r sin theta)."""
    c = pair.mul(2)
    r = _uniform_open(hash_bits(c, k0, k1)).log_().mul_(-2.0).sqrt_()
    theta = _uniform_open(hash_bits(c.add_(1), k0, k1)).mul_(2 * math.pi)
    return r, theta


def _interleaved(r: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """[..., pairs] Box-Muller parts -> [..., 2 pairs] normals: r cos theta, r sin theta, pair by pair."""
    return torch.stack((theta.cos().mul_(r), theta.sin_().mul_(r)), dim=-1).flatten(-2)


def normals_reference(k0: torch.Tensor, k1: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
    """Normals [Kc, 2 * pairs] of pair indices ``pair`` [1, pairs] (the plain path's numbers)."""
    return _interleaved(*_normal_pairs(pair, k0, k1))


def normals_flat(k0: torch.Tensor, k1: torch.Tensor, n: int) -> torch.Tensor:
    """Elements 0 .. n-1 [Kc, n] of the streams keyed (k0, k1) [Kc, 1], element by element: element e takes pair
    e // 2's (r, theta) and r cos theta (even e) or r sin theta (odd). What the compiled kernel computes: written per
    element, it compiles to one vectorized loop with contiguous stores (the pairwise form's interleaved stores
    compile to a scalar loop of libm sin and cos, 3.5x slower)."""
    return _normals_of(torch.arange(n, dtype=torch.int32, device=k0.device).unsqueeze(0), k0, k1)


def normals_span(k0: torch.Tensor, k1: torch.Tensor, start: torch.Tensor, width: int) -> torch.Tensor:
    """[M, width]: elements ``start[m] .. start[m] + width - 1`` of the streams keyed (k0[m], k1[m]) (all [M, 1]),
    element by element (bound management's re-reads, compiled)."""
    e = start + torch.arange(width, dtype=torch.int32, device=start.device)
    return _normals_of(e, k0, k1)


def _normals_of(e: torch.Tensor, k0: torch.Tensor, k1: torch.Tensor) -> torch.Tensor:
    """The normals of int32 elements ``e`` (broadcast with the keys), element by element."""
    c = e.bitwise_and(-2)                                            # 2 p: the pair's first counter
    r = _uniform_open(hash_bits(c, k0, k1)).log_().mul_(-2.0).sqrt_()
    theta = _uniform_open(hash_bits(c + 1, k0, k1)).mul_(2 * math.pi)
    return torch.where(e.bitwise_and(1).bool(), theta.sin(), theta.cos()).mul_(r)


def noisy_flat(y: torch.Tensor, k0: torch.Tensor, k1: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """y [Kc, n] plus sigma times elements 0 .. n-1 of the streams: a read's output noise in one kernel (a new
    tensor; y, the clean product, is left as it is for bound management)."""
    return y + normals_flat(k0, k1, y.shape[1]) * sigma


def noisy_digitized(y: torch.Tensor, k0: torch.Tensor, k1: torch.Tensor, sigma: torch.Tensor, step: torch.Tensor,
                    lo: torch.Tensor, hi: torch.Tensor, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A read in one kernel: y [Kc, M, P] plus sigma times the streams' elements (as ``noisy_flat``), digitized by a
    uniform ADC (round to the step, clip to [lo, hi]), and each vector's level [Kc, M] before the ADC (max |y|, or
    max y unsigned), which bound management tests against the bound."""
    kc, m, p = y.shape
    noisy = noisy_flat(y.reshape(kc, m * p), k0, k1, sigma).view(kc, m, p)
    # The level written out again (a twin of bounds._level, which rng cannot import: bounds imports rng).
    level = torch.maximum(noisy.amax(-1), noisy.amin(-1).neg()) if signed else noisy.amax(-1)
    return quantize_grid(noisy, step, lo, hi), level


def compiled_noise(kind: str, device: torch.device):
    """The compiled ``normals_flat`` (kind "normals"), ``normals_span`` ("span"), ``noisy_flat`` ("noisy") or
    ``noisy_digitized`` ("digitized") for this device type when compiling is on (``sim.compiled``), else None."""
    return compiled(_NOISE_KERNELS[kind], device, lambda f: _warm_up(kind, f, device))


_NOISE_KERNELS = {"normals": normals_flat, "span": normals_span, "noisy": noisy_flat, "digitized": noisy_digitized}


def _warm_up(kind: str, fn, device: torch.device) -> None:
    """Call a just-compiled noise kernel once on tiny inputs (compile now, or fail now)."""
    k = torch.zeros((2, 1), dtype=torch.int32, device=device)
    one = torch.ones((), device=device)
    if kind == "normals":
        fn(k, k, 33)
    elif kind == "span":
        fn(k, k, k, 33)
    elif kind == "noisy":
        fn(torch.zeros((2, 33), device=device), k, k, one)
    else:
        fn(torch.zeros((2, 3, 4), device=device), k, k, one, one, -one, one, True)


def _key_table(parts: list, cols: int, device: torch.device) -> torch.Tensor:
    """[rows, cols, 2] int32 keys (the two 32-bit halves of ``derive_seed(*p)``) of a rows x cols grid of seed
    parts (rows may be none), built on the host and copied to ``device`` once."""
    halves = [[[_int32(w & 0xFFFFFFFF), _int32((w >> 32) & 0xFFFFFFFF)] for w in (derive_seed(*p) for p in row)]
              for row in parts]
    table = torch.tensor(halves, dtype=torch.int32).reshape(len(parts), cols, 2)
    return table.to(device, non_blocking=True)


class ChipKeys:
    """The keys of one named stream for a chunk of chips: ``randn``/``rand`` give [Kc, *shape] tensors whose
    row k depends only on (seed, layer, chips[k], stream) and the element's position."""

    def __init__(self, seed: int, layer: str, chips: Iterable[int], stream: str | Sequence[str],
                 device: torch.device | str = "cpu"):
        self.seed, self.layer, self.chips, self.device = seed, layer, tuple(chips), torch.device(device)
        names = [stream] * len(self.chips) if isinstance(stream, str) else list(stream)
        if len(names) != len(self.chips):
            raise ValueError(f"{len(names)} stream names for {len(self.chips)} chips")
        self.streams = tuple(names)
        # One host-to-device copy per stream and chunk (non-blocking: no synchronization).
        self.keys = _key_table([[(seed, layer, k, s)] for k, s in zip(self.chips, names)], 1, self.device)[:, 0]
        self.reads: Optional[tuple[int, ...]] = None  # set by a crossbar: which read of the stream this is, per chip

    def derive(self, suffix: str) -> "ChipKeys":
        """The keys of a sub-stream: each chip's stream name with `` <suffix>`` appended."""
        sub = ChipKeys(self.seed, self.layer, self.chips, [f"{s} {suffix}" for s in self.streams], self.device)
        sub.reads = self.reads
        return sub

    def __len__(self) -> int:
        return len(self.chips)

    def _kc(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys as contiguous [Kc, 1] tensors (a compiled kernel is specialized to its inputs' strides)."""
        return self.keys[:, 0].contiguous().view(-1, 1), self.keys[:, 1].contiguous().view(-1, 1)

    def _k(self, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        view = (len(self.chips),) + (1,) * ndim
        return self.keys[:, 0].view(view), self.keys[:, 1].view(view)

    def randn(self, shape: Sequence[int], out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Standard normals [Kc, *shape] (written into ``out`` if given)."""
        n, kc = math.prod(shape), len(self.chips)
        if out is None:
            out = torch.empty((kc, *shape), device=self.device)
        flat = out.view(kc, n)
        half = (n + 1) // 2
        k0, k1 = self._k(1)
        fused = compiled_noise("normals", self.device)
        if fused is not None:  # one compiled kernel for the whole stream (same integers; floats to an ulp)
            flat.copy_(fused(*self._kc(), n))
            return out
        # Plain PyTorch, in blocks of pairs of all chips together. On a CPU the blocks stay in cache (3-5x faster
        # than whole-tensor passes at 10^8 numbers); a GPU takes up to 2^26 pairs per block (one set of kernels
        # per draw in practice), which bounds the temporaries (~12 bytes per number) at ~1.6 GB.
        block = _CPU_BLOCK_PAIRS if self.device.type == "cpu" else _GPU_BLOCK_PAIRS
        step = max(1024, block // max(kc, 1))
        for s in range(0, half, step):
            e = min(s + step, half)
            r, theta = _normal_pairs(torch.arange(s, e, dtype=torch.int32, device=self.device).unsqueeze(0), k0, k1)
            ev = flat[:, 2 * s:min(2 * e, n):2]
            ev.copy_(theta.cos().mul_(r)[:, :ev.shape[1]])
            od = flat[:, 2 * s + 1:min(2 * e, n):2]
            if od.shape[1]:
                od.copy_(theta.sin_().mul_(r)[:, :od.shape[1]])
        return out

    def add_randn(self, y: torch.Tensor, sigma: float) -> Optional[torch.Tensor]:
        """y [Kc, *shape] plus sigma times ``randn(shape)``, as a new tensor, by the compiled kernel; None when
        compiling is off (the caller adds the plain path's noise itself)."""
        fused = compiled_noise("noisy", self.device)
        if fused is None:
            return None
        kc = len(self.chips)
        k0, k1 = self._kc()
        sig = torch.full((), sigma, device=self.device)
        return fused(y.reshape(kc, -1), k0, k1, sig).view(y.shape)

    def add_randn_digitized(self, y: torch.Tensor, sigma: float, step: float, lo: float, hi: float,
                            signed: bool) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """``noisy_digitized`` of a read y [Kc, A, N, P]: (digitized [Kc, A, N, P], levels [Kc, A, N]) by the compiled
        kernel; None when compiling is off."""
        fused = compiled_noise("digitized", self.device)
        if fused is None:
            return None
        kc = len(self.chips)
        k0, k1 = self._kc()
        s = [torch.full((), float(x), device=self.device) for x in (sigma, step, lo, hi)]
        q, level = fused(y.reshape(kc, -1, y.shape[-1]), k0, k1, *s, signed)
        return q.view(y.shape), level.view(y.shape[:-1])

    def randn_at(self, rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The normals ``randn(shape)[rows, index]`` would hold (flat element ``index`` of chip row ``rows``),
        computed at those elements only (bound management re-reads a few outputs)."""
        return randn_keyed_at(self.keys[rows, 0], self.keys[rows, 1], index)

    def randn_rows(self, rows: torch.Tensor, start: torch.Tensor, width: int) -> torch.Tensor:
        """[M, width]: the normals ``randn(shape)`` holds for chip row ``rows[m]`` at flat elements
        ``start[m] .. start[m] + width - 1`` (bound management re-reads whole output vectors)."""
        return randn_keyed_span(self.keys[rows, 0], self.keys[rows, 1], start, width)

    def keys_of(self, suffixes: Sequence[str]) -> torch.Tensor:
        """[Kc, S, 2] int32: the keys of the sub-streams ``derive(suffix)`` for each suffix, built on the host and
        copied once (a forward that picks a sub-stream per element gathers its keys from this table)."""
        return _key_table([[(self.seed, self.layer, k, f"{s} {x}") for x in suffixes]
                           for k, s in zip(self.chips, self.streams)], len(suffixes), self.device)

    def rand(self, shape: Sequence[int]) -> torch.Tensor:
        """Uniforms on [0, 1) with 24 bits, [Kc, *shape]."""
        n = math.prod(shape)
        k0, k1 = self._k(1)
        bits = hash_bits(torch.arange(n, dtype=torch.int32, device=self.device).unsqueeze(0), k0, k1)
        u = torch.bitwise_right_shift(bits, 8).bitwise_and_((1 << 24) - 1).float().mul_(2.0**-24)
        return u.view(len(self.chips), *shape)


def randn_keyed_at(k0: torch.Tensor, k1: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Element ``index`` of the streams keyed (k0, k1) (all three broadcast together)."""
    idx = index.to(torch.int32)
    r, theta = _normal_pairs(torch.div(idx, 2, rounding_mode="floor"), k0, k1)
    odd = idx.bitwise_and(1).bool()
    return torch.where(odd, theta.sin(), theta.cos()).mul_(r)


def randn_keyed_span(k0: torch.Tensor, k1: torch.Tensor, start: torch.Tensor, width: int) -> torch.Tensor:
    """[..., width]: elements ``start .. start + width - 1`` of the streams keyed (k0, k1), all of shape [...]:
    the numbers ``ChipKeys.randn`` puts there. Even ``start`` and ``width`` take whole Box-Muller pairs (half the
    work of element by element)."""
    fused = compiled_noise("span", start.device)
    if fused is not None:
        lead = start.shape
        k0, k1, start = (t.expand(lead).reshape(-1, 1) for t in (k0, k1, start.to(torch.int32)))
        return fused(k0.contiguous(), k1.contiguous(), start.contiguous(), width).view(*lead, width)
    k0, k1 = k0.unsqueeze(-1), k1.unsqueeze(-1)
    if width % 2:
        cols = torch.arange(width, device=start.device)
        return randn_keyed_at(k0, k1, start.unsqueeze(-1) + cols)
    pair = torch.div(start, 2, rounding_mode="floor").to(torch.int32).unsqueeze(-1) \
        + torch.arange(width // 2, dtype=torch.int32, device=start.device)
    return _interleaved(*_normal_pairs(pair, k0, k1))


class ChipStreams:
    """The named random streams of a chunk of chips of one layer: ``streams("program")`` is that stream's
    :class:`ChipKeys` (calling twice gives the same numbers)."""

    def __init__(self, seed: int, layer: str, chips: Iterable[int], device: torch.device | str = "cpu"):
        self.seed, self.layer, self.chips, self.device = seed, layer, tuple(chips), torch.device(device)

    def __len__(self) -> int:
        return len(self.chips)

    def __call__(self, stream: str | Sequence[str]) -> ChipKeys:
        return ChipKeys(self.seed, self.layer, self.chips, stream, self.device)


def randn_chips(shape: Sequence[int], keys: ChipKeys, device: torch.device | None = None,
                out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Standard normals [len(keys), *shape], row k from chip k's stream (into ``out`` if given)."""
    return keys.randn(shape, out)


def randn_per_cell(k: int, shape: Sequence[int], keys: ChipKeys) -> torch.Tensor:
    """``k`` standard normals per cell of a [rows, cols] matrix, as [Kc, k, rows, cols]: drawn row by row (the k
    numbers of a cell together), so the first rows keep their numbers when rows are added (a layer's weight
    slices are extra rows of the programmed matrix: slice 0's cells draw the same at every slice count)."""
    return keys.randn((shape[0], k, *shape[1:])).movedim(2, 1)


def rand_per_cell(k: int, shape: Sequence[int], keys: ChipKeys) -> torch.Tensor:
    """``k`` uniforms per cell, laid out as :func:`randn_per_cell`."""
    return keys.rand((shape[0], k, *shape[1:])).movedim(2, 1)


def rand_chips(shape: Sequence[int], keys: ChipKeys, device: torch.device | None = None) -> torch.Tensor:
    """Uniforms on [0, 1), [len(keys), *shape], row k from chip k's stream."""
    return keys.rand(shape)


def chip_generator(seed: int, layer: str, chip: int, stream: str, device: torch.device) -> torch.Generator:
    """A torch generator seeded from (seed, layer, chip, stream), for code outside the hot path that needs one."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, layer, chip, stream))
    return g
