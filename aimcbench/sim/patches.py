"""A convolution's input patches (im2col), written straight into the layout the crossbars' products read.

The patches are the largest tensors of a convolution's analog forward (k*k times its activations). ``flat_patches``
gives them as [N, Ho*Wo, C*kh*kw] by one strided copy; the crossbar then stacks them per row array ([A, N, R],
zero-padded to the tallest array), a second copy. When every row array holds whole input channels (channel-aligned
conv rows, or a layer on one array), ``stack_patches`` writes the stacked layout from the strided view directly:
one copy, and the same numbers (it only moves values).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def patch_view(x: torch.Tensor, kernel, dilation, padding, stride) -> torch.Tensor:
    """The patches of x [N, C, H, W] as a strided view [N, Ho, Wo, C, kh, kw] (no copy but the padding's)."""
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = kernel, dilation, padding, stride
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph))
    n, c, h, w = x.shape
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    s = x.stride()
    return x.as_strided((n, ho, wo, c, kh, kw), (s[0], s[2] * sh, s[3] * sw, s[1], s[2] * dh, s[3] * dw))


def flat_patches(p: torch.Tensor) -> torch.Tensor:
    """Patches p [N, Ho, Wo, C, kh, kw] -> [N, Ho*Wo, C*kh*kw], rows ordered (channel, kh, kw) as F.unfold orders
    them, by one strided copy (im2col; F.unfold's CPU kernel is 20-50x slower on batches of small images, torch
    2.14)."""
    n, ho, wo = p.shape[:3]
    return p.reshape(n, ho * wo, -1)


def stack_patches(p: torch.Tensor, row_splits, rows: int, chips: int) -> Optional[torch.Tensor]:
    """Patches p [N, Ho, Wo, C, kh, kw] -> the crossbar's stacked inputs: [A, N*Ho*Wo, R] (``chips`` 0: the input
    is shared by all chips) or [Kc, A, B*Ho*Wo, R] (N = Kc*B, ``chips`` = Kc), each array's rows its own channels,
    the last array zero-padded to R = ``rows``. None unless every array starts on a channel and all but the last
    hold R rows (channel-aligned rows; any layer on one array)."""
    n, ho, wo, c, kh, kw = p.shape
    kk, a = kh * kw, len(row_splits)
    if rows % kk or any(r0 != i * rows for i, (r0, _) in enumerate(row_splits)) or row_splits[-1][1] != c * kk:
        return None
    ca = rows // kk                                    # channels per array
    lead = (chips, n // chips) if chips else (n,)
    p = p.unflatten(0, lead)                           # [*L, b, Ho, Wo, C, kh, kw]
    d = len(lead) - 1                                  # where the array dimension goes
    out = p.new_empty(*lead[:-1], a, lead[-1] * ho * wo, rows)
    o = out.unflatten(-2, (lead[-1], ho, wo)).unflatten(-1, (ca, kh, kw))   # [*L0, A, b, Ho, Wo, ca, kh, kw]
    full = c // ca                                     # arrays holding ca channels (all, or all but the last)
    if full:
        src = p.narrow(-3, 0, full * ca).unflatten(-3, (full, ca)).movedim(-4, d)
        o.narrow(d, 0, full).copy_(src)
    if full < a:                                       # the last array: the remaining channels, then zero rows
        last = o.select(d, a - 1)
        last.narrow(-3, 0, c - full * ca).copy_(p.narrow(-3, full * ca, c - full * ca))
        last.narrow(-3, c - full * ca, ca - (c - full * ca)).zero_()
    return out
